"""Are the yielded targets the rule applied to the yielded inputs, now and later?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS, source_style
from pitfalls._blame import blame_targets
from pitfalls._randomness import Randomness, held_by
from pitfalls._report import Finding, Report, TargetMismatchError
from pitfalls._sources import add_note, draw, resolve
from pitfalls._tree import as_array, diff_arrays, flatten_at, split_batch

_REASON_AT_YIELD = (
    "Targets differ from target_fn(inputs) on batches as they were yielded: the source"
    " computes its targets by another rule than target_fn (a wrong formula, targets"
    " computed before a random augmentation changed the inputs, integer overflow or"
    " division, a shape (n,) where (n, 1) is meant), or target_fn is wrong."
)
_HINT_AT_YIELD = (
    "compute the targets from the very inputs you yield, in a floating dtype, shaped"
    " as the model's output (np.expand_dims(y, -1) for a Dense(1) head)."
)
_REASON_LATER = (
    "Every batch matched when it was yielded but not after later draws: the source"
    " overwrote the inputs or targets of batches it had handed out, so a consumer"
    " that reads ahead (Keras' fit, tf.data prefetch) trains on inputs paired with"
    " another batch's targets."
)
_HINT_LATER = (
    "allocate new arrays for every batch (move np.zeros(...) inside the loop) or"
    " yield copies (np.copy(x)); assert_generator_no_aliasing names the buffer."
)


def _text(style: str, later_only: bool, labels: bool, random: bool) -> tuple[str, str]:
    """(reason, hint), data first: when it failed, the source's style, the targets' kind.

    ``labels``: the targets and target_fn's are integers or bools (class
    labels, not an integer regression target); ``random``: the source drew
    random numbers while making the batches (augmentation).
    """
    if later_only:
        method = {"dataset": "__getitem__", "loader": "__iter__"}.get(style)
        if method is None:
            return _REASON_LATER, _HINT_LATER
        return _REASON_LATER, (
            f"allocate the batch inside {method} (self.x[:] = ... reuses one buffer for"
            " every batch) or hand out copies (np.copy(x));"
            " assert_generator_no_aliasing names the buffer."
        )
    if labels and random:
        hint = (
            "compute each label from the augmented inputs you return (a flipped image needs"
            " its flipped label), not from the stored sample before the augmentation; or"
            " check target_fn."
        )
    elif labels:
        hint = "compute each label from the very inputs you yield, or check target_fn."
    elif random:
        hint = (
            "compute the targets from the augmented inputs you yield (scale the target with"
            " the image), not before the augmentation; keep a floating dtype and the"
            " model's output shape."
        )
    else:
        hint = _HINT_AT_YIELD
    return _REASON_AT_YIELD, hint


def _split(batch: Any, index: int, unpack: Any) -> tuple[Any, Any, str, str]:
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


def _compare(
    index: int,
    batch: Any,
    target_fn: Callable[[Any], Any],
    when: str,
    rtol: float,
    atol: float,
    notes: set[str],
    unpack: Any = None,
    kinds: set[tuple[str, str]] | None = None,
) -> list[Finding]:
    inputs, targets, _, targets_path = _split(batch, index, unpack)
    try:
        expected = target_fn(inputs)
    except Exception as exc:
        add_note(exc, f"pitfalls: raised by target_fn on the inputs of batch {index} ({when})")
        raise
    got = flatten_at(targets, targets_path).leaves
    want = flatten_at(expected, "target_fn(inputs)").leaves
    if len(got) != len(want):
        raise ValueError(
            f"target_fn returned {len(want)} array(s) for batch {index}, but the batch's"
            f" targets hold {len(got)}; target_fn must return targets nested like the"
            " yielded ones"
        )
    findings = []
    for (path, actual), (wpath, desired) in zip(got, want):
        a = as_array(actual, path)
        d = as_array(desired, wpath)
        if kinds is not None:
            kinds.add((a.dtype.kind, d.dtype.kind))
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
            continue
        diff = diff_arrays(path, d, a, rtol=rtol, atol=atol)
        if diff is not None:
            findings.append(diff.finding(index, when))
            if when == "when yielded":
                notes.update(_integer_notes(path, a, d))
    return findings


def _integer_notes(path: str, actual: np.ndarray, desired: np.ndarray) -> list[str]:
    """Say when integer targets explain a mismatch: a narrow dtype, or division that floors."""
    if actual.dtype.kind not in "iu" or desired.dtype.kind not in "iuf":
        return []
    notes = []
    wrong = ~np.isclose(actual, desired)
    d = desired[wrong].astype(np.float64)
    a = actual[wrong].astype(np.float64)
    if desired.dtype.kind == "f" and np.all(np.abs(d - a) < 1) and np.any(d != np.round(d)):
        notes.append(
            f"Integers: {path} is {actual.dtype} while target_fn gives fractions, which it"
            " floors: integer division (//) or an integer dtype. Divide with / in floats."
        )
    if actual.dtype.itemsize <= 2:
        info = np.iinfo(actual.dtype)
        notes.append(
            f"Integers: {path} is {actual.dtype} ({info.min}..{info.max}); arithmetic in it"
            f" wraps around (e.g. {info.max} + 1 = {info.min}): compute targets in a wider"
            " dtype, x.astype(np.int64)."
        )
    return notes


def _holds_samples(watch: Randomness, batch: Any, unpack: Any) -> bool:
    """Does the source hold stored samples (arrays of 2 batches' rows or more)?

    Random draws by a source that holds its samples are augmentation (or
    sampling); by one that holds none, they make the data itself.
    """
    shapes = [
        as_array(a, path).shape for path, a in flatten_at(_split(batch, 0, unpack)[0], "").leaves
    ]
    rows = next((shape[0] for shape in shapes if shape), 1)
    held = held_by(watch.roots)
    return any(len(a) >= 2 * rows for a in held.arrays.values())


def check_targets_match(
    source: Any,
    target_fn: Callable[[Any], Any],
    *,
    draws: int = DEFAULT_DRAWS,
    rtol: float = 1e-6,
    atol: float = 0.0,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Check ``targets == target_fn(inputs)`` on each batch, when yielded and later.

    Batches must be ``(inputs, targets)`` or ``(inputs, targets,
    sample_weights)`` (a tuple or a list), or a dict with its targets under
    ``"y"``, ``"label(s)"`` or ``"target(s)"``, nested as you like
    (``unpack=lambda batch: (inputs, targets)`` for any other layout).
    ``target_fn`` gets the inputs as yielded and returns the targets they imply,
    nested the same way (leaves are paired in order). Each batch is checked
    right after it is drawn, then again after all ``draws`` batches were drawn:
    the shared-input generator passes the first check and fails the second,
    which is what a consumer that reads ahead sees. Values compare as
    ``numpy.isclose(targets, expected, rtol, atol)`` with NaN equal to NaN;
    shapes must be equal. ``target_fn`` must not modify its argument.
    ``timeout`` bounds each draw, as in :func:`check_generator_no_aliasing`.
    """
    target_fn = validate.function("target_fn", target_fn)
    draws = validate.draws(draws)
    rtol = validate.tolerance("rtol", rtol)
    atol = validate.tolerance("atol", atol)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    resolved = resolve(source)
    batches = resolved.stream()
    held = []
    findings: list[Finding] = []
    notes: set[str] = set()
    kinds: set[tuple[str, str]] = set()
    with Randomness([("self", resolved.obj)], restore=False) as watch:  # to name augmentation
        watch.mark()
        for i in range(draws):
            batch = draw(batches, i, draws, timeout)
            findings += _compare(
                i, batch, target_fn, "when yielded", rtol, atol, notes, unpack, kinds
            )
            held.append(batch)
            if i == 0:  # a generator's own RNGs exist once it runs
                watch.drew()
                watch.add_root("source", batches)
                watch.mark()
        watch.drew()
    wrong_at_yield = {f.batch for f in findings}
    for i, batch in enumerate(held):
        if i not in wrong_at_yield:
            findings += _compare(
                i, batch, target_fn, "after later draws", rtol, atol, notes, unpack
            )

    later_only = not wrong_at_yield
    labels = bool(kinds) and all(a in "iub" and d in "iub" for a, d in kinds)
    augments = watch.random and _holds_samples(watch, held[0], unpack)
    reason, hint = _text(source_style(resolved), later_only, labels, augments)
    if augments and not later_only:
        drew = ", ".join(watch.seen)
        notes.add(
            f"Randomness: the source drew from {drew} while making these batches: targets"
            " computed before a random augmentation mismatch exactly the samples it changed."
        )
    return Report(
        check="targets_match",
        parameters={"target_fn": target_fn, "draws": draws, "rtol": rtol, "atol": atol},
        batches=draws,
        findings=tuple(findings),
        reason=reason,
        hint=hint,
        notes=tuple(sorted(notes)),
        columns=("target_fn", "yielded"),
        summary=f"all {draws} batches matched when yielded and after later draws",
        source=resolved.description,
        blame=(
            blame_targets(
                resolved,
                target_fn,
                draws=draws,
                rtol=rtol,
                atol=atol,
                timeout=timeout,
                unpack=unpack,
            )
            if findings and later_only
            else None
        ),
    )


def assert_targets_match(
    source: Any,
    target_fn: Callable[[Any], Any],
    *,
    draws: int = DEFAULT_DRAWS,
    rtol: float = 1e-6,
    atol: float = 0.0,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    msg: str | None = None,
) -> None:
    """Fail unless every batch's targets equal ``target_fn(inputs)``, when yielded and later.

    See :func:`check_targets_match`. Raises :class:`TargetMismatchError` naming
    the batch, the target path, whether it failed when yielded or only after
    later draws, the first differing values and the fix. ``msg`` is appended.
    """
    __tracebackhide__ = True
    report = check_targets_match(
        source, target_fn, draws=draws, rtol=rtol, atol=atol, timeout=timeout, unpack=unpack
    )
    if not report.ok:
        raise TargetMismatchError(report, msg)
