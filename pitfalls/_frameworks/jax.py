"""JAX: arrays and PRNG keys, never importing jax."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from pitfalls._frameworks.base import is_a


def is_array(obj: Any) -> bool:
    return is_a(obj, "jax", "Array")


def is_key(obj: Any) -> bool:
    """A typed JAX PRNG key (``jax.random.key``): immutable, so no reseeding reaches it.

    A legacy ``PRNGKey`` is a plain uint32 array, told from data by nothing but a name:
    it is read as data (use ``jax.random.key``, which JAX recommends)."""
    if not is_array(obj):
        return False
    dtypes = getattr(sys.modules.get("jax"), "dtypes", None)
    try:
        return bool(dtypes.issubdtype(obj.dtype, dtypes.prng_key))  # type: ignore[union-attr]
    except Exception:
        return False


def tensor_like(array: np.ndarray, original: Any) -> Any:
    """``array`` as a JAX array of ``original``'s dtype."""
    return sys.modules["jax.numpy"].asarray(array, dtype=original.dtype)
