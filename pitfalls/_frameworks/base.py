"""The framework layer's plumbing: classes looked up where imported, private APIs named.

See :mod:`pitfalls._frameworks` for the layer as a whole.

"""

from __future__ import annotations

import random
import sys
import warnings
from typing import Any

import numpy as np

PRIVATE: set[str] = set()
"""Every private API pitfalls uses; what each is for is said in ``words.toml``
(``[common.private]``, by its name), in the warning :func:`moved` gives."""

_WARNED: set[str] = set()


def private(name: str) -> str:
    """Register a private API (at import of the module that uses it)."""
    PRIVATE.add(name)
    return name


def moved(name: str, exc: BaseException) -> None:
    """Say once that a private API was not where this version expects it."""
    if name in _WARNED:
        return
    _WARNED.add(name)
    from pitfalls._words import say  # here: the words are read when first needed

    error = f"{type(exc).__name__}: {exc}"
    purpose = say("common", "private", name).text
    text = say("common", "moved", name=name, error=error, purpose=purpose).text
    warnings.warn(text, RuntimeWarning, stacklevel=3)


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
