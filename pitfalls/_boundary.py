"""What every public checker does on its way in and out, in one place.

* The global RNGs (Python's, numpy's, torch's, TensorFlow's op seeds and global
  Generator, Keras' seed) are put back as they were found: whatever the
  source's factory drew while building it, the reads, a blame pass, or
  ``check_fits``' seeded training (:func:`pitfalls._randomness.global_rngs_kept`).
* The worker processes of the persistent DataLoaders the check's factories
  made are stopped (:func:`pitfalls._sources.made_closed`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pitfalls._randomness import global_rngs_kept
from pitfalls._sources import made_closed

_P = ParamSpec("_P")
_R = TypeVar("_R")


def checker(check: Callable[_P, _R]) -> Callable[_P, _R]:
    """A public checker: leaves the global RNGs as found, and nothing it made running."""

    @functools.wraps(check)
    def bounded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with global_rngs_kept(), made_closed():
            return check(*args, **kwargs)

    return bounded
