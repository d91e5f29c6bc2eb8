"""Reports and failures: what every checker returns and raises.

``check_<property>`` returns a :class:`Report` and never raises on a failed
check; ``assert_<property>`` raises a :class:`PitfallError` (an
``AssertionError``) carrying that report. The message follows numpy's
``assert_allclose`` order: what was checked, the reason, counts, the first few
locations, and a hint that names the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_FINDINGS_SHOWN = 3


def safe_repr(value: Any) -> str:
    """repr that never raises and keeps numpy scalars short (``85.0``, not ``np.float64(85.0)``)."""
    try:
        if isinstance(value, np.generic):
            value = value.item()
        text = repr(value)
    except Exception:
        return f"[repr failed for <{type(value).__name__}>]"
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return safe_repr(value)


@dataclass(frozen=True)
class Finding:
    """One leaf of one batch that failed the check."""

    batch: int | None
    """Index of the batch in the order the source yielded it (0 is the first); None
    for checks of one value (a shape, a loss)."""
    path: str
    """Where in the batch, e.g. ``inputs[0]`` or ``targets['y']``."""
    when: str
    """``"when yielded"`` or ``"after later draws"``."""
    mismatched: int
    """Number of elements that differ."""
    total: int
    """Number of elements compared."""
    locations: tuple[tuple[tuple[int, ...], Any, Any], ...] = ()
    """The first few differing elements: (index, expected, actual)."""
    problem: str = ""
    """Set when elements could not be paired (shape, dtype or nesting changed)."""

    def describe(self, unit: str = "batch") -> str:
        where = [f"{unit} {self.batch}"] if self.batch is not None else []
        where += [part for part in (self.path, self.when) if part]
        head = ", ".join(where) + ": "
        if self.problem:
            return head + self.problem
        pct = 100.0 * self.mismatched / self.total if self.total else 0.0
        return head + f"{self.mismatched} / {self.total} elements ({pct:.1f}%) differ"


@dataclass(frozen=True)
class Report:
    """The outcome of one check. ``ok`` is True when nothing was found."""

    check: str
    """The property checked, e.g. ``generator_no_aliasing``."""
    parameters: str
    """The options it ran with, e.g. ``draws=16``."""
    batches: int
    """How many batches were drawn from the source (0 for checks of one value)."""
    findings: tuple[Finding, ...] = ()
    reason: str = ""
    """One sentence: what the findings mean."""
    hint: str = ""
    """How to fix it."""
    notes: tuple[str, ...] = ()
    """Further evidence, e.g. which batches shared one buffer."""
    columns: tuple[str, str] = ("expected", "actual")
    """Headers of the two value columns in the locations table."""
    summary: str = field(default="", compare=False)
    """One line for a passing report."""
    measured: tuple[tuple[str, float], ...] = ()
    """Numbers the check measured, by name (``dict(report.measured)``)."""
    unit: str = "batch"
    """What ``Finding.batch`` counts: ``"batch"`` drawn, or ``"index"`` read."""

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def bad_batches(self) -> tuple[int, ...]:
        """Indices of the batches with at least one finding, in order."""
        return tuple(sorted({f.batch for f in self.findings if f.batch is not None}))

    def __str__(self) -> str:
        return format_report(self)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data (numbers as numbers, NaN as "nan")."""
        return {
            "check": self.check,
            "parameters": self.parameters,
            "ok": self.ok,
            "batches": self.batches,
            "unit": self.unit,
            "summary": self.summary if self.ok else "",
            "reason": "" if self.ok else self.reason,
            "hint": "" if self.ok else self.hint,
            "notes": list(self.notes),
            "measured": {name: _jsonable(value) for name, value in self.measured},
            "findings": [
                {
                    "batch": f.batch,
                    "path": f.path,
                    "when": f.when,
                    "mismatched": f.mismatched,
                    "total": f.total,
                    "problem": f.problem,
                    "locations": [
                        {
                            "index": list(index),
                            self.columns[0]: _jsonable(a),
                            self.columns[1]: _jsonable(b),
                        }
                        for index, a, b in f.locations
                    ],
                }
                for f in self.findings
            ],
        }


def format_report(report: Report, msg: str | None = None) -> str:
    head = f"{report.check}({report.parameters})"
    if report.ok:
        lines = [f"{head} passed: {report.summary or f'{report.batches} batches checked'}"]
        return "\n".join(lines + ([msg] if msg else []))
    lines = [f"{head} failed", report.reason]
    if report.batches:
        bad = report.bad_batches
        pct = 100.0 * len(bad) / report.batches
        units = {"batch": "Batches", "index": "Indices"}.get(report.unit, report.unit)
        lines.append(
            f"{units} affected: {len(bad)} of {report.batches} ({pct:.1f}%);"
            f" findings: {len(report.findings)}"
        )
    shown = report.findings[:MAX_FINDINGS_SHOWN]
    more = len(report.findings) - len(shown)
    lines.append(f"First {len(shown)} shown:" if more else "Findings:")
    for finding in shown:
        lines.append("  " + finding.describe(report.unit))
        if finding.locations:
            lines.extend(_table(finding, report.columns))
    if more:
        lines.append(f"  ... and {more} more")
    lines.extend(report.notes)
    if report.hint:
        lines.append(f"Hint: {report.hint}")
    if msg:
        lines.append(msg)
    return "\n".join(lines)


def _table(finding: Finding, columns: tuple[str, str]) -> list[str]:
    rows = [("index", *columns)]
    rows += [(str(list(i)), safe_repr(a), safe_repr(b)) for i, a, b in finding.locations]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return [
        "      " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows
    ]


class PitfallError(AssertionError):
    """A check failed. ``.report`` holds the :class:`Report` behind the message."""

    def __init__(self, report: Report, msg: str | None = None) -> None:
        self.report = report
        super().__init__(format_report(report, msg))


class AliasingError(PitfallError):
    """A batch already handed out changed as the source advanced."""


class TargetMismatchError(PitfallError):
    """Yielded targets are not ``target_fn(yielded inputs)``."""


class IndexStabilityError(PitfallError):
    """Reading the same index of a batch source twice gave different batches."""


class BatchDependenceError(PitfallError):
    """An output of one sample depends on other samples of the batch."""


class EpochChangedError(PitfallError):
    """A second epoch holds other samples than the first."""


class EpochIncompleteError(PitfallError):
    """An epoch delivered some samples twice, or not at all."""


class WorkerRandomnessError(PitfallError):
    """Worker processes drew the same random numbers."""


class OrderNotShuffledError(PitfallError):
    """Every epoch visits the samples in the same order."""


class BroadcastError(PitfallError):
    """Two shapes would silently broadcast in an elementwise loss."""


class PredictionShapeError(PitfallError):
    """A model predicts another shape than it declares."""


class FitError(PitfallError):
    """A model did not fit data that it can represent, within the training budget."""


# Shown as pitfalls.AliasingError in tracebacks, the name users import.
for _public in (
    Finding,
    Report,
    PitfallError,
    AliasingError,
    TargetMismatchError,
    IndexStabilityError,
    BatchDependenceError,
    EpochChangedError,
    EpochIncompleteError,
    WorkerRandomnessError,
    OrderNotShuffledError,
    BroadcastError,
    PredictionShapeError,
    FitError,
):
    _public.__module__ = "pitfalls"
