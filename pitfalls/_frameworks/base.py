"""The framework layer's plumbing: classes looked up where imported, private APIs named.

See :mod:`pitfalls._frameworks` for the layer as a whole.

"""

from __future__ import annotations

import random
import sys
import warnings
from typing import Any

import numpy as np

PRIVATE: dict[str, str] = {}
"""Every private API pitfalls uses, by the function that uses it: what it is for."""

_WARNED: set[str] = set()


def private(name: str, purpose: str) -> str:
    """Register a private API (at import of the module that uses it)."""
    PRIVATE[name] = purpose
    return name


def moved(name: str, exc: BaseException) -> None:
    """Say once that a private API was not where this version expects it."""
    if name in _WARNED:
        return
    _WARNED.add(name)
    warnings.warn(
        f"pitfalls: {name} is not where it was ({type(exc).__name__}: {exc}); pitfalls goes"
        f" on without it: {PRIVATE.get(name, '')}. Please report it with your versions.",
        RuntimeWarning,
        stacklevel=3,
    )


def class_of(module: str, path: str) -> type | None:
    """The class ``module.path`` (``"torch.utils.data"``, ``"DataLoader"``) when that
    module is imported already, else None (then no object can be of it)."""
    obj: Any = sys.modules.get(module)
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def is_a(obj: Any, module: str, path: str) -> bool:
    cls = class_of(module, path)
    return cls is not None and isinstance(obj, cls)


# Python's and numpy's global generators: the objects behind random.random and
# np.random.random (the module functions are bound methods of one global instance).


def python_global() -> random.Random:
    return random.random.__self__  # type: ignore[attr-defined]


def numpy_global() -> np.random.RandomState:
    return np.random.random.__self__  # type: ignore[attr-defined]
