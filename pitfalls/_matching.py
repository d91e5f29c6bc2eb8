"""Comparing yielded targets with ``target_fn(inputs)``: tolerances by dtype, and what
explains a difference (rounding, integer arithmetic, inputs rewritten since)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pitfalls._report import Finding
from pitfalls._sources import add_note
from pitfalls._tree import as_array, diff_arrays, flatten_at, split_batch
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

_NARROW_INT = re.compile(r"(?<![a-z])(u?)int(8|16)(?![0-9])")


def precision(dtype: Any) -> str | None:
    """The floating precision of a dtype (numpy's, torch's, TensorFlow's, JAX's): one of
    :data:`TOLERANCES`' keys, or None for integers, bools and anything not floating."""
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f":
            return {2: "float16", 4: "float32"}.get(dtype.itemsize, "float64")
        if dtype.kind == "c":
            return "float32" if dtype.itemsize <= 8 else "float64"
        if dtype.kind == "V" and "float" in dtype.name:  # ml_dtypes: bfloat16, float8_*
            return "bfloat16"
        return None
    text = str(dtype)  # torch.float16, <dtype: 'bfloat16'>
    if "bfloat16" in text:
        return "bfloat16"
    for name, found in (
        ("float16", "float16"),
        ("half", "float16"),
        ("float32", "float32"),
        ("complex64", "float32"),
        ("float64", "float64"),
        ("double", "float64"),
        ("complex128", "float64"),
    ):
        if name in text:
            return found
    return None


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
    def narrow(self) -> tuple[str, str, int] | None:
        """(path, dtype, bits) of the narrowest input of 8 or 16 bit integers, if any."""
        found = []
        for path, leaf in self.leaves:
            match = _NARROW_INT.search(str(_dtype(leaf, "")))
            if match:
                found.append((int(match.group(2)), path, f"{match.group(1)}int{match.group(2)}"))
        if not found:
            return None
        bits, path, name = min(found)
        return path, name, bits

    @cached_property
    def scale(self) -> float:
        """The largest finite magnitude among the floating inputs (0 without any)."""
        top = 0.0
        for path, leaf in self.leaves:
            if precision(_dtype(leaf)) is None:
                continue
            try:
                a = np.abs(as_array(leaf, path))
            except Exception:  # a leaf numpy cannot read: nothing to tell of it
                continue
            a = a[np.isfinite(a)]
            if a.size:
                top = max(top, float(a.max()))
        return top


def _range(unsigned: bool, bits: int) -> tuple[int, int]:
    return (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@dataclass(frozen=True, kw_only=True)
class _Mismatch:
    """One target leaf of one batch whose values differed when yielded: what explains it."""

    batch: int
    rounding: str | None
    """The precision whose ulps bound every difference (rounding), or None."""
    of_inputs: bool = False
    """That precision is the inputs' (coarser than the targets'): targets computed from the
    inputs before they were rounded to it."""
    input_ulp: tuple[str, float] | None = None
    """Not rounding at the targets' scale, but within one ulp of the largest input in the
    inputs' precision, (that precision, that input): perhaps targets computed before the
    inputs were rounded (or a wrong rule: which inputs the rule reads is unknown)."""
    integers: bool
    """Every difference is what a wrap-around or a floor division leaves."""
    gap: float
    """The largest |targets - target_fn(inputs)| among the differing elements."""
    scale: float


class Comparer:
    """Compares targets with target_fn(inputs), batch after batch, and keeps the evidence."""

    def __init__(
        self,
        target_fn: Callable[[Any], Any],
        rtol: float | None,
        atol: float | None,
        unpack: Any,
    ) -> None:
        self.target_fn = target_fn
        self.rtol, self.atol = rtol, atol
        self.unpack = unpack
        self.library = "numpy"
        self.notes: set[str] = set()
        self.kinds: set[tuple[str, str]] = set()
        self.used: dict[str, tuple[float, float]] = {}
        """The tolerances applied, by what set them (a precision, or the dtype compared exactly)."""
        self.mismatches: list[_Mismatch] = []
        self.shapes = False
        """A leaf's shape differed from target_fn's when yielded."""
        self.expected: dict[int, list[tuple[np.ndarray, float, float]]] = {}
        """For each batch wrong when yielded: copies of target_fn's leaves then, with their
        (rtol, atol)."""

    def _target(self, index: int, inputs: Any, when: str) -> Any:
        try:
            expected = self.target_fn(inputs)
        except Exception as exc:
            add_note(exc, f"pitfalls: raised by target_fn on the inputs of batch {index} ({when})")
            raise
        if expected is None:
            raise TypeError(
                f"target_fn returned None for batch {index} ({when}): a missing return?"
                " target_fn must return the targets it expects for the inputs it is given,"
                " nested like the yielded targets"
            )
        return expected

    def _leaves(self, index: int, expected: Any) -> tuple[tuple[str, Any], ...]:
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
        self._record(name or str(a.dtype), rtol, atol)
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
        expected = self._target(index, inputs, when)
        got = flatten_at(targets, targets_path).leaves
        want = self._leaves(index, expected)
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
            kept.append((d, rtol, atol))
            if a.shape != d.shape:
                findings.append(
                    Finding(
                        batch=index,
                        path=path,
                        when=when,
                        mismatched=a.size,
                        total=a.size,
                        problem=f"shape {a.shape}, but target_fn gives {d.shape}",
                    )
                )
                self.shapes = self.shapes or when == "when yielded"
                continue
            diff = diff_arrays(path, d, a, rtol=rtol, atol=atol)
            wider = None if diff is None else self.floor(atol, name, facts)
            if wider is not None:  # the inputs' scale, read only when it could matter
                atol = wider
                kept[-1] = (d, rtol, atol)
                self._record(name or str(a.dtype), rtol, atol)
                diff = diff_arrays(path, d, a, rtol=rtol, atol=atol)
            if diff is None:
                continue
            findings.append(diff.finding(index, when))
            if when == "when yielded":
                self.notes.update(_integer_notes(path, a, d, self.library))
                self.mismatches.append(self._explain(index, path, a, d, rtol, atol, name, facts))
        if findings and when == "when yielded":
            self.expected[index] = [(np.array(d, copy=True), r, t) for d, r, t in kept]
        return findings

    def _explain(
        self,
        index: int,
        path: str,
        a: np.ndarray,
        d: np.ndarray,
        rtol: float,
        atol: float,
        name: str | None,
        facts: _Inputs,
    ) -> _Mismatch:
        """What the differing elements of one leaf look like: rounding, integer arithmetic."""
        plain = _Mismatch(batch=index, rounding=None, integers=False, gap=math.inf, scale=0.0)
        if a.dtype.kind not in "biufc" or d.dtype.kind not in "biufc":
            return plain
        try:
            return self._measure(index, path, a, d, rtol, atol, name, facts) or plain
        except Exception:  # evidence only: a dtype numpy cannot subtract explains nothing
            return plain

    def _measure(
        self,
        index: int,
        path: str,
        a: np.ndarray,
        d: np.ndarray,
        rtol: float,
        atol: float,
        name: str | None,
        facts: _Inputs,
    ) -> _Mismatch | None:
        wrong = ~np.isclose(a, d, rtol=rtol, atol=atol, equal_nan=True)
        gaps = d[wrong].astype(np.complex128 if "c" in a.dtype.kind + d.dtype.kind else float)
        gaps = gaps - a[wrong].astype(gaps.dtype)
        if not gaps.size or not np.isfinite(gaps).all():
            return None  # NaN against a number, or infinities: neither rounding nor integers
        size = np.abs(gaps)
        gap = float(size.max())
        scale = max(_magnitude(a), _magnitude(d))
        rounding, of_inputs = None, False
        if name is not None:
            # the targets' own precision (float32 at least), else the inputs' coarser one:
            # targets computed from the inputs before these were rounded to float16
            own = coarsest([name, "float32"])
            coarse = coarsest([own, facts.precision])
            if own is not None and gap <= ROUNDING_ULPS * _EPS[own] * scale:
                rounding = own
            elif coarse != own and coarse is not None and gap <= _EPS[coarse] * scale:
                rounding, of_inputs = coarse, True
        integers = gaps.dtype.kind == "f" and self._integers(path, a, d, gaps, facts)
        input_ulp = None
        coarse = facts.precision
        if rounding is None and coarse is not None and gap <= _EPS[coarse] * facts.scale:
            input_ulp = (coarse, facts.scale)
        return _Mismatch(
            batch=index,
            rounding=rounding,
            of_inputs=of_inputs,
            input_ulp=input_ulp,
            integers=integers,
            gap=gap,
            scale=scale,
        )

    def _integers(
        self, path: str, a: np.ndarray, d: np.ndarray, gaps: np.ndarray, facts: _Inputs
    ) -> bool:
        """Is every difference what integer arithmetic leaves: a wrap-around in a dtype of 8
        or 16 bits (a multiple of an eighth of its range), a floor (less than 1), or both?"""
        if a.dtype.kind not in "iu" or d.dtype.kind not in "iuf":
            return False
        floors = d.dtype.kind == "f"
        moduli = []
        if a.dtype.itemsize <= 2:
            moduli.append(2 ** (8 * a.dtype.itemsize))
        narrow = facts.narrow
        if narrow is not None:
            moduli.append(2 ** narrow[2])
        if not moduli:
            return floors and bool(np.all((np.abs(gaps) < 1) & (gaps != 0)))
        step = min(moduli) / 8
        turns = np.round(gaps / step)
        rest = gaps - turns * step
        left = np.abs(rest) < 1 if floors else rest == 0
        explained = bool(np.all(left & ((turns != 0) | (floors & (rest != 0)))))
        if explained and narrow is not None and a.dtype.itemsize > 2 and np.any(turns != 0):
            where, dtype, bits = narrow
            lo, hi = _range(dtype.startswith("u"), bits)
            widen = say("common", "widen", self.library).text
            self.notes.add(
                say(
                    "targets_match",
                    "note",
                    "narrow_inputs",
                    where=where,
                    dtype=dtype,
                    lo=lo,
                    hi=hi,
                    path=path,
                    step=f"{step:g}",
                    widen=widen,
                ).text
            )
        return explained

    def changed(self, index: int, batch: Any) -> bool:
        """Does target_fn give other targets for the batch's inputs now than when it was
        yielded (a batch wrong when yielded): its inputs were rewritten since?"""
        inputs = split_targets(batch, index, self.unpack)[0]
        want = self._leaves(index, self._target(index, inputs, "after later draws"))
        then = self.expected[index]
        if len(want) != len(then):
            return True
        for (path, leaf), (old, rtol, atol) in zip(want, then):
            new = as_array(leaf, path)
            try:
                if new.shape != old.shape or diff_arrays(path, old, new, rtol=rtol, atol=atol):
                    return True
            except TypeError:  # elements that cannot be compared: no evidence either way
                return False
        return False

    def read_ahead(self, held: list[Any], rewritten: list[int]) -> list[tuple[int, int]]:
        """(i, j) for each rewritten batch i whose inputs, when compared, gave the targets
        yielded with batch j: they held batch j's data, written ahead of the consumer."""
        pairs = []
        for i in rewritten:
            then = self.expected[i]
            if not any(_varies(d) for d, _, _ in then):
                continue  # constant targets match any batch's: no evidence
            for j, batch in enumerate(held):
                if j != i and self._same(then, batch, j):
                    pairs.append((i, j))
                    break
        return pairs

    def _same(self, then: list[tuple[np.ndarray, float, float]], batch: Any, j: int) -> bool:
        got = flatten_at(split_targets(batch, j, self.unpack)[1], "targets").leaves
        if len(got) != len(then):
            return False
        for (path, leaf), (d, rtol, atol) in zip(got, then):
            try:
                a = as_array(leaf, path)
                if a.shape != d.shape or diff_arrays(path, d, a, rtol=rtol, atol=atol):
                    return False
            except TypeError:  # a leaf that cannot be read or compared: no match
                return False
        return True

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


def _integer_notes(path: str, actual: np.ndarray, desired: np.ndarray, library: str) -> list[str]:
    """Say when integer targets explain a mismatch: a narrow dtype, or division that floors."""
    if actual.dtype.kind not in "iu" or desired.dtype.kind not in "iuf":
        return []
    if actual.shape != desired.shape:
        return []
    notes = []
    wrong = ~np.isclose(actual, desired)
    d = desired[wrong].astype(np.float64)
    a = actual[wrong].astype(np.float64)
    if desired.dtype.kind == "f" and np.all(np.abs(d - a) < 1) and np.any(d != np.round(d)):
        notes.append(say("targets_match", "note", "floors", path=path, dtype=actual.dtype).text)
    if actual.dtype.itemsize <= 2:
        info = np.iinfo(actual.dtype)
        widen = say("common", "widen", library).text
        notes.append(
            say(
                "targets_match",
                "note",
                "narrow",
                path=path,
                dtype=actual.dtype,
                lo=info.min,
                hi=info.max,
                widen=widen,
            ).text
        )
    return notes


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
