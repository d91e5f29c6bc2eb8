"""Comparing yielded targets with ``target_fn(inputs)``: tolerances by dtype, and what
explains a difference (rounding, integer arithmetic, inputs rewritten since)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from pitfalls._report import Finding
from pitfalls._sources import noted
from pitfalls._tree import Diff, as_array, diff_arrays, flatten_at, split_batch
from pitfalls._words import say

TOLERANCES: dict[str, tuple[float, float]] = {
    "bfloat16": (1.6e-2, 1e-5),
    "float16": (1e-3, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
}
"""The default ``(rtol, atol)`` by the less precise floating dtype of the two compared (the
yielded targets and target_fn's), as ``torch.testing.assert_close`` picks them; complex
dtypes count as their parts' float. Integers, bools and anything else that is not floating
compare exactly: ``(0, 0)``. The inputs' dtype does not loosen the comparison: targets
computed from float16 inputs in float64 are exact in float64. ``atol`` is scaled down with
targets smaller than 1 (by the larger magnitude of the two leaves): a fixed 1e-5 would call
any two targets of 1e-6 close; but not below :data:`ROUNDING_ULPS` ulps of the inputs'
largest magnitude, what rounding leaves of a cancellation."""

_COARSEST_FIRST = tuple(TOLERANCES)
_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10, "float32": 2.0**-23, "float64": 2.0**-52}
ROUNDING_ULPS = 8
"""Differences within this many float32 ulps (or ulps of a coarser dtype compared) of the
values' scale are rounding: two computations of one rule in another order or library.
Targets finer than their inputs are allowed one ulp of the inputs' dtype (at the targets'
scale): what rounding each input to it moves a sum or a mean by, at most."""

_NARROW_INT = re.compile(r"(?<![a-z])u?int(8|16)(?![0-9])")
_ALIASES = {
    "float8": "bfloat16",  # ml_dtypes' and torch's float8_*: as coarse as the table goes
    "half": "float16",
    "complex64": "float32",
    "double": "float64",
    "complex128": "float64",
}
"""Floating dtypes by a name in their text that holds none of :data:`TOLERANCES`' keys
(torch.half, <dtype: 'complex64'>); those keys name themselves (torch.float16)."""


def precision(dtype: Any) -> str | None:
    """The floating precision of a dtype (numpy's, torch's, TensorFlow's, JAX's): one of
    :data:`TOLERANCES`' keys, or None for integers, bools and anything not floating."""
    if isinstance(dtype, np.dtype) and dtype.kind in "fc":
        bits = 8 * dtype.itemsize // (2 if dtype.kind == "c" else 1)
        return {16: "float16", 32: "float32"}.get(bits, "float64")
    text = str(dtype)  # bfloat16 is tried before float16, which it holds
    name = next((n for n in (*TOLERANCES, *_ALIASES) if n in text), None)
    return None if name is None else _ALIASES.get(name, name)


def _dtype(leaf: Any, default: Any = None) -> Any:
    """A leaf's own dtype (torch's, TensorFlow's, numpy's), or ``default``; never raises."""
    try:
        return getattr(leaf, "dtype", default)
    except Exception:  # a property that raises: the leaf's array says the rest
        return default


def coarsest(names: list[str | None]) -> str | None:
    found = [n for n in names if n is not None]
    return min(found, key=_COARSEST_FIRST.index) if found else None


class _Inputs:
    """What a batch's inputs tell about its targets' arithmetic, measured only when asked."""

    def __init__(self, inputs: Any, path: str) -> None:
        try:
            self.leaves = flatten_at(inputs, path).leaves
        except ValueError:  # a cycle or a nesting too deep in the inputs: nothing to tell
            self.leaves = ()

    @cached_property
    def precision(self) -> str | None:
        """The least precise floating dtype among the inputs."""
        return coarsest([precision(_dtype(leaf)) for _, leaf in self.leaves])

    @cached_property
    def narrow(self) -> tuple[str, np.dtype[Any]] | None:
        """(path, dtype) of the narrowest input of 8 or 16 bit integers, if any."""
        found = []
        for path, leaf in self.leaves:
            match = _NARROW_INT.search(str(_dtype(leaf, "")))
            if match:
                found.append((path, np.dtype(match.group(0))))
        return min(found, key=lambda f: (f[1].itemsize, f[0]), default=None)

    @cached_property
    def scale(self) -> float:
        """The largest finite magnitude among the floating inputs (0 without any)."""
        floating = [(path, leaf) for path, leaf in self.leaves if precision(_dtype(leaf))]
        try:
            return max((_magnitude(as_array(leaf, path)) for path, leaf in floating), default=0.0)
        except Exception:  # a leaf numpy cannot read: no scale to tell
            return 0.0

    def rounding(self, gap: float, scale: float, name: str | None) -> tuple[str, str, float] | None:
        """How rounding explains a largest difference ``gap`` of targets of floating
        precision ``name`` (None: not floating) and largest magnitude ``scale``: (the note,
        the precision, the scale it is measured at), or None.

        ``rounding``: within :data:`ROUNDING_ULPS` ulps of the targets' own precision
        (float32 at least) at their scale; ``rounding_inputs``: within one ulp of the
        inputs' coarser precision (targets computed from the inputs before these were
        rounded to float16); ``perhaps_rounding``: within one ulp of the inputs'
        precision at the largest input (or a wrong rule: which inputs the rule reads is
        unknown)."""
        coarse = self.precision
        if name is not None:
            own = coarsest([name, "float32"]) or "float32"
            if gap <= ROUNDING_ULPS * _EPS[own] * scale:
                return "rounding", own, scale
            if (
                coarse is not None
                and coarsest([own, coarse]) != own
                and gap <= _EPS[coarse] * scale
            ):
                return "rounding_inputs", coarse, scale
        if coarse is not None and gap <= _EPS[coarse] * self.scale:
            return "perhaps_rounding", coarse, self.scale
        return None


@dataclass(frozen=True, kw_only=True)
class _Mismatch:
    """One target leaf of one batch whose values differed when yielded: what explains it."""

    rounding: tuple[str, str, float] | None = None
    """How rounding explains every difference (:meth:`_Inputs.rounding`), or None."""
    integers: bool = False
    """Every difference is what a wrap-around or a floor division leaves."""
    gap: float = math.inf
    """The largest |targets - target_fn(inputs)| among the differing elements."""


Kept = list[tuple[np.ndarray, float, float]]
"""target_fn's leaves for a batch, copied, with the (rtol, atol) they were compared with."""


@dataclass
class Comparer:
    """Compares targets with target_fn(inputs), batch after batch, and keeps the evidence."""

    target_fn: Callable[[Any], Any]
    rtol: float | None
    atol: float | None
    unpack: Any
    library: str = "numpy"
    """The array library of the batches, whose words the notes use."""
    notes: set[str] = field(default_factory=set)
    kinds: set[tuple[str, str]] = field(default_factory=set)
    """The dtype kinds of the targets and target_fn's compared, in pairs."""
    used: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The tolerances applied, by what set them (a precision, or the dtype compared exactly)."""
    mismatches: list[_Mismatch] = field(default_factory=list)
    shapes: bool = False
    """A leaf's shape differed from target_fn's when yielded."""
    expected: dict[int, Kept] = field(default_factory=dict)
    """For each batch wrong when yielded: target_fn's leaves then."""

    def _expected(self, index: int, inputs: Any, when: str) -> tuple[tuple[str, Any], ...]:
        """The leaves of ``target_fn(inputs)`` for batch ``index``; misuse named."""
        with noted(f"pitfalls: raised by target_fn on the inputs of batch {index} ({when})"):
            expected = self.target_fn(inputs)
        if expected is None:
            raise TypeError(
                f"target_fn returned None for batch {index} ({when}): a missing return?"
                " target_fn must return the targets it expects for the inputs it is given,"
                " nested like the yielded targets"
            )
        want = flatten_at(expected, "target_fn(inputs)").leaves
        for path, leaf in want:
            if leaf is None:
                raise TypeError(
                    f"target_fn returned None at {path} for batch {index}: it must return"
                    " arrays (or numbers) where the yielded targets have them"
                )
        return want

    def tolerance(
        self, a: np.ndarray, actual: Any, d: np.ndarray, desired: Any
    ) -> tuple[float, float, str | None]:
        """(rtol, atol, precision) for one pair of leaves: the user's, else by the dtypes."""
        name = coarsest([precision(_dtype(actual, a.dtype)), precision(_dtype(desired, d.dtype))])
        default = TOLERANCES[name] if name is not None else (0.0, 0.0)
        rtol = default[0] if self.rtol is None else self.rtol
        atol = self.atol
        if atol is None:
            atol = default[1]
            if atol and a.dtype.kind in "biufc" and d.dtype.kind in "biufc":
                atol *= min(1.0, max(_magnitude(a), _magnitude(d)))
        return rtol, atol, name

    def _record(self, key: str, rtol: float, atol: float) -> None:
        before = self.used.get(key)
        if before is None or atol > before[1]:
            self.used[key] = (rtol, atol)  # the loosest applied, as the report shows it

    def floor(self, atol: float, name: str | None, facts: _Inputs) -> float | None:
        """A larger default atol for targets smaller than their inputs, or None: what
        rounding leaves of a cancellation (x - x.mean() gives 1e-17 where 0 is meant) is
        a few ulps of the inputs, not of the targets; never above the table's atol."""
        if self.atol is not None or name is None or atol >= TOLERANCES[name][1]:
            return None
        floor = min(TOLERANCES[name][1], ROUNDING_ULPS * _EPS[name] * facts.scale)
        return floor if floor > atol else None

    def compare(self, index: int, batch: Any, when: str) -> list[Finding]:
        inputs, targets, inputs_path, targets_path = split_targets(batch, index, self.unpack)
        want = self._expected(index, inputs, when)
        got = flatten_at(targets, targets_path).leaves
        if len(got) != len(want):
            raise ValueError(
                f"target_fn returned {len(want)} array(s) for batch {index}, but the batch's"
                f" targets hold {len(got)}; target_fn must return targets nested like the"
                " yielded ones"
            )
        facts = _Inputs(inputs, inputs_path)
        findings = []
        kept = []
        for (path, actual), (wpath, desired) in zip(got, want):
            a = as_array(actual, path)
            d = as_array(desired, wpath)
            self.kinds.add((a.dtype.kind, d.dtype.kind))
            rtol, atol, name = self.tolerance(a, actual, d, desired)
            shape = a.shape != d.shape
            diff = diff_arrays(path, d, a, rtol=rtol, atol=atol)
            wider = None if diff is None or shape else self.floor(atol, name, facts)
            if wider is not None:  # the inputs' scale, read only when it could matter
                atol = wider
                diff = diff_arrays(path, d, a, rtol=rtol, atol=atol)
            self._record(name or str(a.dtype), rtol, atol)
            kept.append((d, rtol, atol))
            if shape:
                problem = f"shape {a.shape}, but target_fn gives {d.shape}"
                diff = Diff(path, a.size, a.size, (), problem)
                self.shapes = self.shapes or when == "when yielded"
            if diff is None:
                continue
            findings.append(diff.finding(index, when))
            if when == "when yielded" and not shape:
                self.mismatches.append(self._explain(path, a, d, rtol, atol, name, facts))
        if findings and when == "when yielded":
            self.expected[index] = [(np.array(d, copy=True), r, t) for d, r, t in kept]
        return findings

    def _explain(
        self,
        path: str,
        a: np.ndarray,
        d: np.ndarray,
        rtol: float,
        atol: float,
        name: str | None,
        facts: _Inputs,
    ) -> _Mismatch:
        """What the differing elements of one leaf look like: rounding, integer arithmetic."""
        if a.dtype.kind not in "biufc" or d.dtype.kind not in "biufc":
            return _Mismatch()
        try:
            wrong = ~np.isclose(a, d, rtol=rtol, atol=atol, equal_nan=True)
            kind = np.complex128 if "c" in a.dtype.kind + d.dtype.kind else float
            gaps = d[wrong].astype(kind) - a[wrong].astype(kind)
            integers = self._integers(path, a, d, gaps, facts)
        except Exception:  # evidence only: a dtype numpy cannot subtract explains nothing
            return _Mismatch()
        if not gaps.size or not np.isfinite(gaps).all():
            return _Mismatch()  # NaN against a number, or infinities: neither explains it
        gap = float(np.abs(gaps).max())
        scale = max(_magnitude(a), _magnitude(d))
        return _Mismatch(rounding=facts.rounding(gap, scale, name), integers=integers, gap=gap)

    def _integers(
        self, path: str, a: np.ndarray, d: np.ndarray, gaps: np.ndarray, facts: _Inputs
    ) -> bool:
        """Is every difference what integer arithmetic leaves: a wrap-around in a dtype of 8
        or 16 bits (a multiple of an eighth of its range), a floor (less than 1), or both?
        Notes say which: a division that floors, narrow targets, narrow inputs that wrap."""
        if a.dtype.kind not in "iu" or d.dtype.kind not in "iuf":
            return False
        floors = d.dtype.kind == "f"
        if floors and np.all(np.abs(gaps) < 1) and np.any(gaps != np.round(gaps)):
            self._note("floors", path=path, dtype=a.dtype)
        widths = [a.dtype.itemsize] if a.dtype.itemsize <= 2 else []
        if widths:
            self._note("narrow", a.dtype, path=path)
        narrow = facts.narrow
        if narrow is not None:
            widths.append(narrow[1].itemsize)
        if not widths:
            return floors and bool(np.all((np.abs(gaps) < 1) & (gaps != 0)))
        step = 2 ** (8 * min(widths)) / 8
        turns = np.round(gaps / step)
        rest = gaps - turns * step
        left = np.abs(rest) < 1 if floors else rest == 0
        explained = bool(np.all(left & ((turns != 0) | (floors & (rest != 0)))))
        if explained and narrow is not None and a.dtype.itemsize > 2 and np.any(turns != 0):
            self._note("narrow_inputs", narrow[1], where=narrow[0], path=path, step=f"{step:g}")
        return explained

    def _note(self, kind: str, wraps: np.dtype[Any] | None = None, **fields: Any) -> None:
        """Keep a note; ``wraps``: the integer dtype it says wraps around."""
        if wraps is not None:
            info = np.iinfo(wraps)
            widen = say("common", "widen", self.library).text
            fields.update(dtype=wraps, lo=info.min, hi=info.max, widen=widen)
        self.notes.add(note(kind, **fields))

    def _matches(self, leaves: tuple[tuple[str, Any], ...], then: Kept) -> bool | None:
        """Do ``leaves`` hold what ``then`` kept, within its tolerances? None when they
        cannot be read or compared: no evidence either way."""
        if len(leaves) != len(then):
            return False
        try:
            return not any(
                diff_arrays(path, d, as_array(leaf, path), rtol=rtol, atol=atol)
                for (path, leaf), (d, rtol, atol) in zip(leaves, then)
            )
        except TypeError:
            return None

    def changed(self, index: int, batch: Any) -> bool:
        """Does target_fn give other targets for the batch's inputs now than when it was
        yielded (a batch wrong when yielded): its inputs were rewritten since?"""
        inputs = split_targets(batch, index, self.unpack)[0]
        now = self._expected(index, inputs, "after later draws")
        return self._matches(now, self.expected[index]) is False

    def read_ahead(self, held: list[Any], rewritten: list[int]) -> list[tuple[int, int]]:
        """(i, j) for each rewritten batch i whose inputs, when compared, gave the targets
        yielded with batch j: they held batch j's data, written ahead of the consumer."""
        pairs = []
        for i in rewritten:
            then = self.expected[i]
            if not any(_varies(d) for d, _, _ in then):
                continue  # constant targets match any batch's: no evidence
            for j, batch in enumerate(held):
                targets = flatten_at(split_targets(batch, j, self.unpack)[1], "targets").leaves
                if j != i and self._matches(targets, then):
                    pairs.append((i, j))
                    break
        return pairs

    def parameter(self, which: int, given: float | None) -> Any:
        """What to show for rtol (0) or atol (1): the value given, the one applied, or each
        by what set it (``1.3e-06 (float32), 0 (int64)``); None when nothing was compared."""
        if given is not None:
            return given
        values = {name: tol[which] for name, tol in self.used.items()}
        if len(set(values.values())) == 1:
            return next(iter(values.values()))
        if not values:
            return None
        return ", ".join(f"{v:g} ({name})" for name, v in values.items())

    def loosest(self, which: int, given: float | None) -> float:
        if given is not None:
            return given
        return max((tol[which] for tol in self.used.values()), default=0.0)


def _magnitude(a: np.ndarray) -> float:
    m = np.abs(a[np.isfinite(a)]) if a.dtype.kind in "fc" else np.abs(a.astype(float))
    return float(m.max()) if m.size else 0.0


def _varies(a: np.ndarray) -> bool:
    try:
        return a.size > 1 and bool(np.any(a != a.flat[0]))
    except Exception:  # elements without a usable ==
        return False


def note(kind: str, **values: Any) -> str:
    """One note of the targets report, from ``words.toml``."""
    return say("targets_match", "note", kind, **values).text


def split_targets(batch: Any, index: int, unpack: Any) -> tuple[Any, Any, str, str]:
    parts = split_batch(batch, index, unpack)
    if parts.targets is None:
        what = f"a {type(batch).__name__}"
        if isinstance(batch, (tuple, list)):
            what += f" of {len(batch)} items"
        elif isinstance(batch, dict):
            what += f" with keys {list(batch)[:6]}"
        raise ValueError(
            f"batch {index} is {what}, with no targets to check: check_targets_match needs"
            " batches of (inputs, targets[, sample_weights]) as a tuple or list, a dict"
            " with a 'y', 'label', 'labels', 'target' or 'targets' key, or"
            " unpack=lambda batch: (inputs, targets)"
        )
    return parts.inputs, parts.targets, parts.inputs_path, parts.targets_path
