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
import inspect
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

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


def asserting(check: Callable[..., _R]) -> Callable[..., _R]:
    """``assert_X`` from ``check_X``: the same arguments and ``msg=``; raises the check's
    error (an ``AssertionError``) on a failed report, :class:`~pitfalls.InconclusiveError`
    on one that could not judge, through :func:`~pitfalls._report.raise_for`."""
    from pitfalls import _validate as validate
    from pitfalls._report import raise_for

    name = check.__name__.replace("check_", "assert_", 1)

    def asserted(*args: Any, msg: str | None = None, **kwargs: Any) -> _R:
        __tracebackhide__ = True
        msg = validate.message("msg", msg)
        result = check(*args, **kwargs)
        raise_for(result, msg)  # type: ignore[arg-type]
        return result

    signature = inspect.signature(check)
    message = inspect.Parameter("msg", inspect.Parameter.KEYWORD_ONLY, default=None)
    asserted.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), message]
    )
    asserted.__name__ = asserted.__qualname__ = name
    code = asserted.__code__.replace(co_name=name)  # tracebacks name the assert
    if sys.version_info >= (3, 11):
        code = code.replace(co_qualname=name)
    asserted.__code__ = code
    asserted.__module__ = check.__module__
    first = (check.__doc__ or "").strip().splitlines()[0] if check.__doc__ else ""
    asserted.__doc__ = (
        f"Raise unless :func:`{check.__name__}` passes: {first}\n\n"
        f"A failed report raises the check's error, an inconclusive one"
        f" :class:`~pitfalls.InconclusiveError`; ``msg`` is added to either message."
        f" Every other argument is :func:`{check.__name__}`'s; returns what it returns."
    )
    return asserted
