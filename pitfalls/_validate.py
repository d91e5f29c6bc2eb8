"""Argument checks: one place, so one mistake gets one exception and one wording.

As hypothesis keeps them in ``internal/validation.py``: a value of the wrong
type raises ``TypeError`` (``draws must be an int, got str '3'``); a value of
the right type but out of range raises ``ValueError`` (``draws=1 must be at
least 2: ...``). Every public function calls these helpers and nothing else
for its options, so ``draws="3"`` and ``max_perturbed="3"`` fail alike.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls._report import safe_repr
from pitfalls._tree import _MAX_DEPTH, LeafError, as_array, flatten_at


def got(value: Any) -> str:
    """``str '3'``: a value's type and a short repr, for messages; never raises (the repr
    every report shows, :func:`~pitfalls._report.safe_repr`)."""
    return f"{type(value).__name__} {safe_repr(value)}"


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (Python or numpy int or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    why: str = "",
    maximum: int | None = None,
    why_max: str = "",
) -> int:
    """An int from ``minimum`` to ``maximum``: TypeError for another type, ValueError
    outside."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {got(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}" + (f": {why}" if why else ""))
    if maximum is not None and value > maximum:
        raise ValueError(
            f"{name}={value} is more than {maximum:,}" + (f": {why_max}" if why_max else "")
        )
    return value


def optional_integer(name: str, value: Any, *, minimum: int | None = None) -> int | None:
    """None, or an int as :func:`integer` wants it."""
    return None if value is None else integer(name, value, minimum=minimum)


def draws(value: Any, name: str = "draws") -> int:
    """The count of batches a check draws in a row: at least 2, to see a batch change.

    A batch can only be seen changing under a later draw, so one batch checks
    nothing. :func:`indices` counts what ``check_index_stable`` reads instead.
    """
    return integer(
        name,
        value,
        minimum=2,
        why="at least 2 batches are needed to see a batch change as the source advances",
        maximum=MAX_DRAWS,
        why_max=_TOO_MANY,
    )


MAX_DRAWS = 100_000
"""The most batches (or indices) a check reads in a row: past it, a check would hold more
batches than any prefetch buffer does, for hours, and is taken for a mistake."""
_TOO_MANY = (
    "a check holds every batch it draws, and a reuse is seen within a prefetch buffer's"
    " reach (16, the default, covers Keras'); pass the few dozen batches a consumer holds"
)


def indices(value: Any, name: str = "draws") -> int:
    """The count of indices ``check_index_stable`` reads: at least 1.

    Each index is read twice and the two reads compared, so one index is a
    check already; the sources that draw in a row need 2 (:func:`draws`).
    """
    return integer(
        name,
        value,
        minimum=1,
        why="index_stable reads each of the indices 0 .. draws-1 twice and compares the"
        " two reads, so one index is the fewest it can check",
        maximum=MAX_DRAWS,
        why_max="index_stable holds both reads of every index it reads; a few dozen"
        " indices show a source that depends on more than its index",
    )


def seed(name: str, value: Any) -> int:
    """A seed: an int of at least 0."""
    return integer(name, value, minimum=0)


def number(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    minimum: float | None = None,
) -> float:
    """A finite real number; ``positive``: above 0; ``minimum``: at least that."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number, got {got(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    if positive and not value > 0:
        raise ValueError(f"{name}={value!r} must be above 0")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} must be at least {minimum:g}")
    return value


def tolerance(name: str, value: Any) -> float:
    """A comparison tolerance (``rtol``, ``atol``): a finite number of at least 0."""
    return number(name, value, minimum=0.0)


def optional_tolerance(name: str, value: Any) -> float | None:
    """None (the check picks the tolerance for the dtypes it compares), or a tolerance."""
    return None if value is None else tolerance(name, value)


MAX_TIMEOUT = 7 * 24 * 3600.0
"""A week: longer than any check should wait, short enough for every clock and queue."""


DEFAULT_TIMEOUT = 60.0
"""Seconds every check that reads a source waits for one batch (or index) by default: a
source stuck on a dead worker's queue, a lock or a socket ends in a TimeoutError naming
the batch, instead of hanging the test run. ``timeout=None`` waits as long as it takes."""


def timeout(name: str, value: Any) -> float | None:
    """Seconds to wait, or None (wait as long as it takes): finite, above 0, at most a week."""
    if value is None:
        return None
    if not is_real(value):
        raise TypeError(f"{name} must be a number of seconds or None, got {got(value)}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"{name}={value!r} must be a number of seconds above 0, or None")
    if seconds > MAX_TIMEOUT:
        raise ValueError(
            f"{name}={value!r} is longer than a week; pass None to wait as long as it takes"
        )
    return seconds


def function(name: str, value: Any) -> Callable[..., Any]:
    """Something callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {got(value)}")
    return value


def optional_function(name: str, value: Any) -> Callable[..., Any] | None:
    return None if value is None else function(name, value)


def flag(name: str, value: Any) -> bool:
    """True or False (numpy's bools too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {got(value)}")
    return bool(value)


def optional_flag(name: str, value: Any) -> bool | None:
    return None if value is None else flag(name, value)


def message(name: str, value: Any) -> str | None:
    """The ``msg=`` option: None or a str."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {got(value)}")
    return value


def _numbers_only(node: Any, depth: int = 0) -> bool:
    """A list or tuple, nested or not, of Python or numpy numbers (no array in it).

    Nested deeper than a batch may be, it is not: flattening it then says so.
    """
    if isinstance(node, (list, tuple)):
        return depth < _MAX_DEPTH and all(_numbers_only(item, depth + 1) for item in node)
    return isinstance(node, (bool, int, float, complex, np.number, np.bool_))


def dataset(name: str, value: Any) -> list[np.ndarray]:
    """The arrays of a dataset that holds its samples on axis 0, as a batch holds them: an
    array, or the nesting of the batches' inputs, each leaf with as many rows.

    A nested list of numbers (``[[1, 2], [3, 4]]``: no array in it, so it cannot be
    the nesting of the inputs, whose leaves need a sample axis) is read as the
    array numpy makes of it, its rows the samples.
    """
    what = (
        f"{name} must hold the samples on axis 0: an array, a nested list of numbers (read"
        " as one array), or the nesting of the batches' inputs"
    )
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{what}; got {got(value)}")
    if isinstance(value, (list, tuple)) and _numbers_only(value):
        try:
            value = np.asarray(value)
        except ValueError as exc:  # ragged: rows of different lengths
            raise ValueError(f"{what}; this nested list is ragged, not one array ({exc})") from None
    try:
        leaves = list(flatten_at(value, name).leaves)
        arrays = [as_array(leaf, path) for path, leaf in leaves]
    except LeafError as exc:  # an object that is no array: in the words of dataset
        raise TypeError(f"{what}; {exc}".replace("a batch leaf", "a leaf")) from None
    scalar = next((path for (path, _), a in zip(leaves, arrays) if a.ndim == 0), None)
    if not arrays or scalar:
        raise ValueError(f"{what}; " + (f"{scalar} is a scalar" if scalar else "it holds no array"))
    if any(len(a) != len(arrays[0]) for a in arrays):
        sizes = ", ".join(f"{path} {len(a)}" for (path, _), a in zip(leaves, arrays))
        raise ValueError(f"{what}; its arrays disagree on the number of samples: {sizes}")
    return arrays


def same_layout(name: str, expected: tuple[Any, ...], got: tuple[Any, ...]) -> None:
    """``name``'s samples laid out as the batches' (``got``): per array of a sample, its
    shape without the sample axis and its dtype; they are compared byte for byte."""
    if expected == got:
        return
    hint = (
        "; a batch that holds its inputs as a tuple or list of rows is read as that many"
        " inputs: pass unpack=lambda batch: (np.stack(batch[0]), np.stack(batch[1]))"
    )
    raise ValueError(
        f"{name}'s samples are {_layout(expected)}, but the source's batches hold samples"
        f" of {_layout(got)}: {name} must hold the samples as the source delivers them, in"
        " the same shape and dtype, since they are compared byte for byte"
        + (hint if len(got) > 1 else "")
    )


def _layout(layout: tuple[Any, ...]) -> str:
    """``shape (3,) float32``, one per array of a sample."""
    parts = [f"shape {shape} {np.dtype(dtype).name}" for shape, dtype in layout]
    return " and ".join(parts) if parts else "empty"


def indexed_epoch(name: str, value: int | None, length: int | None) -> int:
    """The batches an epoch of an indexable source reads: ``value`` (``steps_per_epoch``,
    validated), at most its ``length``, or else its length."""
    if value is None:
        if length is None:
            raise ValueError(f"source has no length (num_batches is None): pass {name}=")
        return length
    if length is not None and value > length:
        raise ValueError(
            f"{name}={value} is more than the {length} batches of source; an epoch of an"
            " indexable source reads each index once"
        )
    return value
