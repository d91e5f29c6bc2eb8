"""Reports and failures: what every checker returns and raises.

``check_<property>`` returns a :class:`Report` and never raises on a failed
check; ``assert_<property>`` raises a :class:`PitfallError` (an
``AssertionError``) carrying that report. The message follows numpy's
``assert_allclose`` order: what was checked, the reason, counts, the first few
locations, and a hint that names the fix.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

MAX_SHOWN = 3
"""The one cap on listings in a message: findings, locations, sample indices."""


# Blame: where a source broke the invariant ----------------------------------------

HOWS = ("frozen", "traced")
"""How a line was found: ``"frozen"``, its write raised on a batch made read-only (and a
traced pass saw the batch change right after it); ``"traced"``, a line-by-line trace saw
the batch change after it."""


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One line of the source's code: where it is and what it says."""

    file: str
    """The file, as Python knows it (``co_filename``; absolute for imported modules)."""
    line: int
    function: str
    """The function's qualified name, e.g. ``Batches.__getitem__``."""
    code: str
    """The line's source text, stripped; empty when the file cannot be read."""

    def describe(self) -> str:
        """``path/to/file.py:LINE in function: the source text``."""
        code = self.code or "[source not available]"
        return f"{_shown_path(self.file)}:{self.line} in {self.function}: {code}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class Blame:
    """Where the source broke the invariant, or why that cannot be told.

    ``frames`` holds the writing line first, then the user frames above it
    (its callers inside the source, e.g. ``on_epoch_end``); it is empty when
    no line can be named, and then ``reason`` says why.
    """

    frames: tuple[Frame, ...] = ()
    how: str = ""
    """``"frozen"`` or ``"traced"`` (see :data:`HOWS`); empty when no line was found."""
    batch: int | None = None
    """The batch that changed (for index stability: the index being read)."""
    path: str = ""
    """What changed in it, e.g. ``inputs[0]``; for index stability, the state that advanced."""
    unit: str = "batch"
    """What ``batch`` counts: ``"batch"`` drawn, or ``"index"`` read."""
    reason: str = ""
    """Why no line can be named; empty when one was."""
    note: str = ""
    """How the diagnosis read the source when not as the check did, e.g. a DataLoader's
    copy with ``num_workers=0``; empty otherwise."""
    why: str = ""
    """Why no line was named, as data: ``"unseen"`` (the change came while none of the
    source's Python lines ran), ``"not reproduced"`` (the diagnosis pass saw nothing
    change); empty otherwise. Code branches on this, never on ``reason``'s words."""

    @property
    def found(self) -> bool:
        return bool(self.frames)

    @property
    def frame(self) -> Frame | None:
        """The writing line, or None."""
        return self.frames[0] if self.frames else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data with fixed keys: the writing line's file, line, function and
        code at the top level (None when not found), every frame under ``frames``."""
        top = self.frame
        return {
            "found": self.found,
            "how": self.how,
            "batch": self.batch,
            "path": self.path,
            "unit": self.unit,
            "file": top.file if top else None,
            "line": top.line if top else None,
            "function": top.function if top else None,
            "code": top.code if top else None,
            "frames": [f.to_dict() for f in self.frames],
            "reason": self.reason,
            "note": self.note,
            "why": self.why,
        }

    def lines(self) -> list[str]:
        """The blame as message lines, to go under a report's findings."""
        note = [f"  ({self.note})"] if self.note else []
        if not self.frames:
            return [f"Written at: cannot tell: {self.reason}", *note]
        first, *above = self.frames
        out = [f"Written at: {first.describe()}"]
        out += [f"  called from {f.describe()}" for f in above]
        what = ", ".join(
            part
            for part in (f"{self.unit} {self.batch}" if self.batch is not None else "", self.path)
            if part
        )
        found_by = {
            "frozen": "the write raised once that memory was made read-only",
            "traced": "seen by tracing the source line by line",
        }.get(self.how, self.how)
        out.append(f"  ({what}; {found_by})" if what else f"  ({found_by})")
        return out + note

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _shown_path(file: str) -> str:
    """A path relative to the working directory when it is under it, as pytest shows them."""
    try:
        rel = os.path.relpath(file)
    except ValueError:  # another drive on Windows
        return file
    return file if rel.startswith(os.pardir) else rel


def safe_repr(value: Any) -> str:
    """repr that never raises and keeps numpy scalars short (``85.0``, not ``np.float64(85.0)``).

    A numpy scalar prints at its own precision: a float32 as ``0.012573022``,
    not as the float64 it widens to.
    """
    try:
        if isinstance(value, np.floating):
            text = str(value)
        elif isinstance(value, np.generic):
            text = repr(value.item())
        else:
            text = repr(value)
    except Exception:
        return f"[repr failed for <{type(value).__name__}>]"
    return text if len(text) <= 40 else text[:37] + "..."


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: numbers stay numbers, NaN and infinities become strings."""
    if isinstance(value, np.floating):
        return float(str(value)) if np.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    return safe_repr(value)


@dataclass(frozen=True)
class Location:
    """One differing element: where it is, what it should hold, what it holds.

    Unpacks as ``index, expected, actual = location``.
    """

    index: tuple[int, ...]
    """Its index in the array (``()`` for a scalar)."""
    expected: Any
    """What it should hold: the value when yielded, ``target_fn``'s, the first read."""
    actual: Any
    """What it holds: the value now, the yielded target, the second read."""

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.expected, self.actual))


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One leaf of one batch (or one value) that failed the check."""

    batch: int | None = None
    """Index of the batch in the order the source yielded it (0 is the first), or
    of the index read (``Report.unit``); None for checks of one value."""
    path: str = ""
    """Where in the batch, e.g. ``inputs[0]`` or ``targets['y']``."""
    when: str = ""
    """``"when yielded"``, ``"after later draws"``, ``"read again"``, ..."""
    mismatched: int = 0
    """Number of elements (or samples) that differ."""
    total: int = 0
    """Number of elements (or samples) compared."""
    locations: tuple[Location, ...] = ()
    """The first few differing elements."""
    problem: str = ""
    """Set when elements could not be paired, or a count says it better."""

    def describe(self, unit: str = "batch") -> str:
        where = [f"{unit} {self.batch}"] if self.batch is not None else []
        where += [part for part in (self.path, self.when) if part]
        head = ", ".join(where) + ": "
        if self.problem:
            return head + self.problem
        pct = 100.0 * self.mismatched / self.total if self.total else 0.0
        return head + f"{self.mismatched} / {self.total} elements ({pct:.1f}%) differ"

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "path": self.path,
            "when": self.when,
            "mismatched": self.mismatched,
            "total": self.total,
            "problem": self.problem,
            "locations": [
                {
                    "index": list(loc.index),
                    "expected": jsonable(loc.expected),
                    "actual": jsonable(loc.actual),
                }
                for loc in self.locations
            ],
        }


def format_parameters(parameters: Mapping[str, Any]) -> str:
    """``draws=16, rtol=1e-06``: callables by name, floats short, strings bare."""
    parts = []
    for name, value in parameters.items():
        if callable(value):
            text = getattr(value, "__name__", None) or type(value).__name__
        elif isinstance(value, float):
            text = f"{value:g}"
        elif isinstance(value, str):
            text = value
        else:
            text = safe_repr(value)
        parts.append(f"{name}={text}")
    return ", ".join(parts)


class Cause(str, Enum):
    """What a report rests on: the evidence of a failure, or what hid the comparison.

    A ``failed`` report has the cause its evidence shows; an ``inconclusive`` one, the
    cause that kept it from judging; a passed one, none. (``str, Enum``: Python 3.10 has
    no ``StrEnum``; ``report.cause == "same order"`` holds too.)
    """

    # failed: the pitfall shown
    BATCH_CHANGED = "batch changed"
    """Bytes of a batch already handed out changed as the source went on."""
    TARGETS_MISMATCH = "targets mismatch"
    """Yielded targets are not ``target_fn`` of the yielded inputs."""
    STORED_DATA_WRITTEN = "stored data written"
    """An array the source holds (the same object) changed while it was read."""
    SOURCE_STATE_CHANGED = "source state changed"
    """An attribute of the source's own objects (a counter) changed as it was read."""
    ANOTHER_INDEX = "another index served"
    """Reading index i again returned the batch another index gave first."""
    PAIRS_CHANGED = "inputs paired with other targets"
    """Epoch 2 holds epoch 1's inputs and targets, paired otherwise (x reordered, y not)."""
    SAMPLES_TWICE = "samples delivered twice"
    SAMPLES_MISSING = "samples never delivered"
    SAME_ORDER = "same order"
    """Two consecutive epochs, read as training reads them, in the same order."""
    SAME_BATCHES = "same batch membership"
    """Two consecutive epochs cut the same batches (shuffled within them, or only reordered)."""
    SHARED_RNG = "shared random stream"
    BROADCAST = "shapes broadcast"
    PREDICTION_SHAPE = "prediction shape"
    UNDERFIT = "underfit"
    BATCH_DEPENDENCE = "batch dependence"
    # inconclusive: what hid the comparison
    RANDOMNESS_UNREACHED = "randomness not reseeded"
    """Reads drew from generators pitfalls reseeded, and still differ: others drew too."""
    FRESH_ENTROPY = "fresh entropy"
    """A generator made during the read without a seed: no reseeding reaches it."""
    JAX_KEY = "JAX key"
    """The source holds a JAX PRNG key, which cannot be reseeded from outside."""
    UNOBSERVED_CODE = "code run unobserved"
    """A tf.data graph, worker processes: code ran where draws and writes are not seen."""
    AUGMENTED_SAMPLES = "augmented samples"
    """Samples that are no rows of the dataset (augmented): which were delivered is unknown."""
    NOTHING_SEEN = "nothing seen"
    """The reads differ and nothing pitfalls can see explains it: no evidence either way."""
    NO_DRAWS = "nothing drawn"
    """What was compared depends on no random draw: whether streams are shared is unknown."""
    NOT_RUN = "not run"
    """A source read once was consumed by an earlier check."""


class Unjudged(str):
    """Why a check could not judge: the text of ``Report.inconclusive``, carrying the
    :class:`Cause` that hid the comparison (a Report made with it takes that cause)."""

    cause: Cause

    def __new__(cls, cause: Cause, text: str) -> Unjudged:
        made = super().__new__(cls, text)
        made.cause = cause
        return made


@dataclass(frozen=True, kw_only=True)
class Report:
    """The outcome of one check: data first; ``str(report)`` renders it.

    ``status`` is ``"passed"`` (nothing found), ``"failed"`` (findings) or
    ``"inconclusive"`` (the check could not judge, and says why in
    ``inconclusive``): a check never passes because something hid the
    comparison. ``ok`` is True only for ``"passed"``.
    """

    check: str
    """The property checked, e.g. ``generator_no_aliasing``."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """The options it ran with, e.g. ``{"draws": 16}``."""
    batches: int | None = None
    """Batches (or indices, see ``unit``) read from the source; None for checks of values."""
    unit: str = "batch"
    """What ``Finding.batch`` counts: ``"batch"`` drawn, or ``"index"`` read."""
    findings: tuple[Finding, ...] = ()
    inconclusive: str = ""
    """Why the check could not judge; empty when it could."""
    reason: str = ""
    """One sentence: what the findings mean."""
    hint: str = ""
    """How to fix it."""
    notes: tuple[str, ...] = ()
    """Further evidence, e.g. which batches shared one buffer."""
    columns: tuple[str, str] = ("expected", "actual")
    """What ``Location.expected`` and ``Location.actual`` are, as table headers."""
    summary: str = field(default="", compare=False)
    """One line for a passing report; empty on a report that did not pass (a check gives
    the line it would print on a pass, and a failed report must not read as one)."""
    measured: tuple[tuple[str, float], ...] = ()
    """Numbers the check measured, by name (``dict(report.measured)``)."""
    source: str = ""
    """The kind of source checked (``generator``, ``indexable``, ``iterable``, ...), if any."""
    blame: Blame | None = None
    """For a failed source check: the line that broke the invariant (or why none can be
    named), found by a diagnosis pass on a fresh copy of the source."""
    cause: Cause | None = None
    """The evidence a failure rests on, or what kept the check from judging; None on a
    pass. An :class:`Unjudged` ``inconclusive`` brings its own."""

    def __post_init__(self) -> None:
        if self.summary and self.status != "passed":
            object.__setattr__(self, "summary", "")
        if self.status == "inconclusive" and isinstance(self.inconclusive, Unjudged):
            object.__setattr__(self, "cause", self.inconclusive.cause)
        if self.status == "passed":
            object.__setattr__(self, "cause", None)

    @property
    def status(self) -> str:
        if self.findings:
            return "failed"
        return "inconclusive" if self.inconclusive else "passed"

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    @property
    def bad_batches(self) -> tuple[int, ...]:
        """Indices of the batches with at least one finding, in order."""
        return tuple(sorted({f.batch for f in self.findings if f.batch is not None}))

    def __str__(self) -> str:
        return format_report(self)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data, with the fixed keys of ``docs/report.schema.json``."""
        failed = self.status == "failed"
        return {
            "check": self.check,
            "status": self.status,
            "cause": self.cause.value if self.cause is not None else None,
            "ok": self.ok,
            "parameters": {k: _parameter_json(v) for k, v in self.parameters.items()},
            "source": self.source,
            "batches": self.batches,
            "unit": self.unit,
            "summary": self.summary,
            "inconclusive": str(self.inconclusive),
            "reason": self.reason if failed else "",
            "hint": self.hint if failed else "",
            "notes": list(self.notes),
            "measured": {name: jsonable(value) for name, value in self.measured},
            "columns": {"expected": self.columns[0], "actual": self.columns[1]},
            "findings": [f.to_dict() for f in self.findings],
            "blame": self.blame.to_dict() if self.blame is not None else None,
        }


def _parameter_json(value: Any) -> Any:
    if callable(value):
        return getattr(value, "__name__", None) or type(value).__name__
    return jsonable(value)


def format_report(report: Report, msg: str | None = None) -> str:
    """The message: what was checked, the reason, counts, first locations, notes, the hint."""
    head = f"{report.check}({format_parameters(report.parameters)})"
    status = report.status
    if status == "passed":
        checked = f"{report.batches} batches checked" if report.batches else "nothing found"
        lines = [f"{head} passed: {report.summary or checked}"]
        lines.extend(report.notes)
        return "\n".join(lines + ([msg] if msg else []))
    if status == "inconclusive":
        lines = [f"{head} could not judge", report.inconclusive, *report.notes]
        return "\n".join(lines + ([msg] if msg else []))
    lines = [f"{head} failed", report.reason]
    if report.batches and report.bad_batches:
        bad = report.bad_batches
        pct = 100.0 * len(bad) / report.batches
        units = {"batch": "Batches", "index": "Indices"}.get(report.unit, report.unit)
        lines.append(
            f"{units} affected: {len(bad)} of {report.batches} ({pct:.1f}%);"
            f" findings: {len(report.findings)}"
        )
    shown = report.findings[:MAX_SHOWN]
    more = len(report.findings) - len(shown)
    lines.append(f"First {len(shown)} shown:" if more else "Findings:")
    for finding in shown:
        lines.append("  " + finding.describe(report.unit))
        if finding.locations:
            lines.extend(_table(finding, report.columns))
    if more:
        lines.append(f"  ... and {more} more")
    if report.blame is not None:
        lines.extend(report.blame.lines())
    lines.extend(report.notes)
    if report.hint:
        lines.append(f"Hint: {report.hint}")
    if msg:
        lines.append(msg)
    return "\n".join(lines)


def _table(finding: Finding, columns: tuple[str, str]) -> list[str]:
    """The locations as a table; without the index column when every location is a
    scalar (``()``), which has no index to show."""
    rows: list[tuple[str, ...]] = [("index", *columns)]
    rows += [
        (str(list(loc.index)), safe_repr(loc.expected), safe_repr(loc.actual))
        for loc in finding.locations
    ]
    if not any(loc.index for loc in finding.locations):
        rows = [row[1:] for row in rows]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return [
        "      " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows
    ]


class PitfallError(AssertionError):
    """A check failed. ``.report`` holds the :class:`Report` behind the message."""

    def __init__(self, report: Report, msg: str | None = None) -> None:
        self.report = report
        super().__init__(format_report(report, msg))


class InconclusiveError(PitfallError):
    """A check could not judge: something hid the comparison (randomness it cannot
    reseed, code that ran where it cannot look). The message says what, and which option
    (``reseed=``, the augmentation turned off) lets it judge. Not a pitfall's error: no
    pitfall was shown."""


class AliasingError(PitfallError):
    """A batch already handed out changed as the source advanced."""


class TargetMismatchError(PitfallError):
    """Yielded targets are not ``target_fn(yielded inputs)``."""


class IndexUnstableError(PitfallError):
    """Reading the same index of a batch source twice gave different batches."""


class BatchDependenceError(PitfallError):
    """An output of one sample depends on other samples of the batch."""


class EpochChangedError(PitfallError):
    """A second epoch holds other samples than the first."""


class EpochIncompleteError(PitfallError):
    """An epoch delivered some samples twice, or not at all."""


class SharedRngError(PitfallError):
    """Worker processes drew the same random numbers: they share one RNG stream."""


class OrderNotShuffledError(PitfallError):
    """Every epoch visits the samples in the same order."""


class BroadcastError(PitfallError):
    """Two shapes would silently broadcast in an elementwise loss."""


class PredictionShapeError(PitfallError):
    """A model predicts another shape than it declares."""


class UnderfitError(PitfallError):
    """A model did not fit, within the training budget, data that it can represent."""


ERRORS: dict[str, type[PitfallError]] = {
    "generator_no_aliasing": AliasingError,
    "targets_match": TargetMismatchError,
    "index_stable": IndexUnstableError,
    "batch_independent": BatchDependenceError,
    "epoch_repeatable": EpochChangedError,
    "epoch_complete": EpochIncompleteError,
    "worker_randomness": SharedRngError,
    "order_shuffled": OrderNotShuffledError,
    "no_broadcast": BroadcastError,
    "prediction_shape": PredictionShapeError,
    "fits": UnderfitError,
}
"""The error each check raises, by ``Report.check``."""

# Shown as pitfalls.AliasingError in tracebacks, the name users import.
for _public in (
    Location,
    Finding,
    Report,
    Cause,
    PitfallError,
    InconclusiveError,
    *ERRORS.values(),
):
    _public.__module__ = "pitfalls"


def raise_for(reports: Report | tuple[Report, ...], msg: str | None = None) -> None:
    """The check's error for a failed report, :class:`InconclusiveError` for one that could
    not judge; nothing for a pass. Of several reports, the first failed one's error, else
    the first inconclusive one's, its message ending with a line per other that did not
    pass. Every ``assert_*`` ends here."""
    __tracebackhide__ = True
    several = reports if isinstance(reports, tuple) else (reports,)
    bad = sorted((r for r in several if not r.ok), key=lambda r: r.status != "failed")
    if not bad:
        return
    others = [f"Also {r.status}: {r.check}" for r in bad[1:]]
    msg = "\n".join([*others, *([msg] if msg else [])]) or None
    if bad[0].status == "failed":
        raise ERRORS[bad[0].check](bad[0], msg)
    raise InconclusiveError(bad[0], msg)
