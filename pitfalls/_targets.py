"""Are the yielded targets the rule applied to the yielded inputs, now and later?"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._aliasing import (
    DEFAULT_DRAWS,
    array_library,
    is_torch_loader,
    later_fix,
    source_style,
)
from pitfalls._boundary import asserting, checker
from pitfalls._frameworks import tfdata as _tfdata
from pitfalls._matching import (
    ROUNDING_ULPS,
    Comparer,
    coarsest,
    split_targets,
)
from pitfalls._randomness import Randomness, held_by
from pitfalls._report import MAX_SHOWN, Cause, Finding, Report
from pitfalls._sources import Ended, draw, ended_note, resolve
from pitfalls._tree import as_array, buffer_of, flatten_at
from pitfalls._words import Words, say


def _rows(batch: Any, unpack: Any) -> int:
    """Rows in a batch: the first dimension of its first input with one (else 1)."""
    shapes = [
        as_array(a, path).shape
        for path, a in flatten_at(split_targets(batch, 0, unpack)[0], "").leaves
    ]
    return next((shape[0] for shape in shapes if shape), 1)


def _stored(watch: Randomness, batch: Any, unpack: Any) -> dict[str, np.ndarray]:
    """The arrays the source holds with rows for 2 batches or more: its stored samples.

    Random draws by a source that holds its samples are augmentation or
    sampling; by one that holds none, they make the data itself.
    """
    rows = _rows(batch, unpack)
    return {name: a for name, a in held_by(watch.roots).arrays.items() if len(a) >= 2 * rows}


def _sampled_from(
    stored: dict[str, np.ndarray], held: list[Any], batches: list[int], unpack: Any
) -> str | None:
    """The stored array whose rows are every input row of these batches, unchanged: the
    source samples its data, it does not augment it; None when some row is not found."""
    found = None
    for i in batches[:3]:
        for path, leaf in flatten_at(split_targets(held[i], i, unpack)[0], "inputs").leaves:
            x = as_array(leaf, path)
            if x.ndim == 0 or not len(x):
                return None
            name = next(
                (
                    n
                    for n, a in stored.items()
                    if a.shape[1:] == x.shape[1:] and a.dtype == x.dtype and _rows_found(x, a)
                ),
                None,
            )
            if name is None:
                return None
            found = found or name
    return found


_CANDIDATES = 256


def _rows_found(rows: np.ndarray, stored: np.ndarray) -> bool:
    """Is every row of ``rows`` equal to some row of ``stored`` (same shapes past the first)?

    Cheap: rows are first narrowed by three elements each, compared as columns of
    ``stored`` without copying it; only those candidates are compared whole.
    """
    rest = rows.shape[1:]
    flat = rows.reshape(len(rows), -1)
    width = flat.shape[1]
    if not width:
        return False
    probes = sorted({0, width // 2, width - 1})
    columns = [stored[_column(p, rest)] if rest else stored for p in probes]
    for row in flat:
        mask = columns[0] == row[probes[0]]
        for column, p in zip(columns[1:], probes[1:]):
            mask &= column == row[p]
        candidates = np.flatnonzero(mask)[:_CANDIDATES]
        if not candidates.size:
            return False
        if not (stored[candidates].reshape(len(candidates), -1) == row).all(axis=1).any():
            return False
    return True


def _column(flat_index: int, rest: tuple[int, ...]) -> tuple[Any, ...]:
    """The index of one element of every row: ``(:, i, j)`` for the flat position in a row."""
    return (slice(None), *(int(i) for i in np.unravel_index(flat_index, rest)))


def _suggest(gap: float) -> float:
    """A round atol above twice ``gap``: 3.1e-07 -> 1e-06."""
    return float(10.0 ** math.ceil(math.log10(2 * gap))) if gap > 0 else 0.0


@dataclass(frozen=True, kw_only=True)
class _Evidence:
    """What the check saw, from which the reason and the hint are chosen (data first)."""

    cause: str
    """``later``, ``read_ahead``, ``rounding``, ``integers``, ``overwritten``,
    ``sampling``, ``augmentation`` or ``plain``."""
    style: str
    library: str
    torch_loader: bool
    labels: bool
    """The targets and target_fn's are integers or bools (class labels)."""
    aliased: bool = False
    """generator_no_aliasing failed on the same source (check_source knows)."""
    rewritten: int = 0
    """Batches wrong when yielded whose inputs changed again after later draws."""
    shared: int = 0
    """Batches drawn whose inputs share one buffer with another's (nothing changed while
    the check drew: a list filled from one buffer before)."""
    gap: float = 0.0
    ulp: str = "float32"
    given: bool = False
    """The user passed rtol or atol."""


def _words(e: _Evidence, draws: int, status_ok: bool) -> Words:
    """The reason and hint for the evidence (``words.toml``), in the words of the user's
    framework: the kind of mismatch picks the entry, the library the snippets."""
    if status_ok:
        return say("targets_match", "passed", draws=draws)
    fix = later_fix(e.style, e.library, e.torch_loader)
    if e.cause == "later":
        return say("targets_match", Cause.BATCH_CHANGED, fix=fix)
    kind = e.cause
    if e.cause == "overwritten":
        kind = "shared" if e.shared else "aliased" if e.aliased else "rewritten"
    elif e.cause == "rounding" and e.given:
        kind = "rounding_given"
    elif e.cause in ("augmentation", "plain"):
        kind = (
            "_".join(
                k
                for k, on in (("labels", e.labels), ("augmentation", e.cause == "augmentation"))
                if on
            )
            or "plain"
        )
    return say(
        "targets_match",
        Cause.TARGETS_MISMATCH,
        kind,
        fix=fix,
        atol=f"{_suggest(e.gap):g}",
        ulp=e.ulp,
        shared=e.shared,
        rewritten=e.rewritten,
        copy=say("common", "copy", e.library).text,
        expand=say("common", "expand", e.library).text,
        widen=say("common", "widen", e.library).text,
        floating=say("common", "floating", e.library).text,
    )


@checker
def check_targets_match(
    source: Any,
    target_fn: Callable[[Any], Any],
    *,
    draws: int = DEFAULT_DRAWS,
    rtol: float | None = None,
    atol: float | None = None,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Check ``targets == target_fn(inputs)`` on each batch, when yielded and later.

    Batches must be ``(inputs, targets)`` or ``(inputs, targets,
    sample_weights)`` (a tuple or a list), or a dict with its targets under
    ``"y"``, ``"label(s)"`` or ``"target(s)"``, nested as you like
    (``unpack=lambda batch: (inputs, targets)`` for any other layout).
    ``target_fn`` gets the inputs as yielded and returns the targets they imply,
    nested the same way (leaves are paired in order); returning None is misuse
    (a TypeError). Each batch is checked right after it is drawn, then again
    after all ``draws`` batches were drawn: the shared-input generator passes
    the first check and fails the second, which is what a consumer that reads
    ahead sees. ``target_fn`` must not modify its argument. ``timeout`` bounds
    each draw, as in :func:`check_generator_no_aliasing`.

    Values compare as ``numpy.isclose(targets, expected, rtol, atol)`` with NaN
    equal to NaN; shapes must be equal. ``rtol`` and ``atol`` left None are
    picked per leaf for the less precise floating dtype of the targets and
    target_fn's (:data:`TOLERANCES`, as ``torch.testing.assert_close``):
    bfloat16 ``1.6e-2, 1e-5``, float16 ``1e-3, 1e-5``, float32 ``1.3e-6,
    1e-5``, float64 ``1e-7, 1e-7``; integers and bools exactly; ``atol``
    shrinks in proportion for leaves whose largest magnitude is below 1 (not below a few
    ulps of the largest input). The
    report's parameters show the loosest applied.
    When every difference is within a few float32 ulps, the report says the
    targets differ only by rounding and which ``atol`` admits it.
    """
    return targets_report(
        source, target_fn, draws=draws, rtol=rtol, atol=atol, timeout=timeout, unpack=unpack
    )


def targets_report(
    source: Any,
    target_fn: Callable[[Any], Any],
    *,
    draws: int = DEFAULT_DRAWS,
    rtol: float | None = None,
    atol: float | None = None,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    aliasing: Report | None = None,
) -> Report:
    """:func:`check_targets_match`, told the aliasing report of the same source (by
    :func:`pitfalls.check_source`): a failed one is evidence that inputs wrong when
    yielded may have been overwritten before they were compared."""
    from pitfalls import _blame  # imported when first needed

    target_fn = validate.function("target_fn", target_fn)
    draws = validate.draws(draws)
    rtol = validate.optional_tolerance("rtol", rtol)
    atol = validate.optional_tolerance("atol", atol)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    resolved = resolve(source)
    batches = resolved.stream()
    held = []
    findings: list[Finding] = []
    comparer = Comparer(target_fn, rtol, atol, unpack)
    with Randomness([("self", resolved.obj)], restore=False) as watch:  # to name augmentation
        watch.mark()
        for i in range(draws):
            try:
                batch = draw(batches, i, draws, timeout, resolved)
            except Ended:  # a short finite source is read whole
                break
            if i == 0:
                comparer.library = array_library(batch)
            findings += comparer.compare(i, batch, "when yielded")
            held.append(batch)
            if i == 0:  # a generator's own RNGs exist once it runs
                watch.drew()
                watch.add_root("source", batches)
                watch.mark()
        watch.drew()
    asked, draws = draws, len(held)
    wrong_at_yield = sorted({f.batch for f in findings if f.batch is not None})
    rewritten = []
    for i, batch in enumerate(held):
        if i in comparer.expected:
            if comparer.changed(i, batch):
                rewritten.append(i)
        else:
            findings += comparer.compare(i, batch, "after later draws")

    graph = _tfdata.graph(resolved.obj) if _tfdata.is_dataset(resolved.obj) else None
    tf_ops = graph.random_ops if graph is not None else ()
    found, notes = _weigh(comparer, watch, held, wrong_at_yield, rewritten, aliasing, tf_ops)
    evidence = _Evidence(
        **found,
        style=source_style(resolved),
        library=comparer.library,
        torch_loader=is_torch_loader(resolved),
        given=rtol is not None or atol is not None,
    )
    words = _words(evidence, draws, not findings)
    return Report(
        check="targets_match",
        cause=Cause.BATCH_CHANGED if evidence.cause == "later" else Cause.TARGETS_MISMATCH,
        parameters={
            "target_fn": target_fn,
            "draws": draws,
            "rtol": comparer.parameter(0, rtol),
            "atol": comparer.parameter(1, atol),
        },
        batches=draws,
        findings=tuple(findings),
        reason=words.text if findings else "",
        hint=words.hint,
        notes=tuple(sorted(notes)) + ((ended_note(draws, asked),) if draws < asked else ()),
        columns=("target_fn", "yielded"),
        summary=words.text,
        source=resolved.description,
        blame=(
            None
            if not findings or evidence.cause != "later"
            else aliasing.blame  # the same write: batches changed after they were handed out
            if aliasing is not None and aliasing.blame is not None
            else _blame.blame_targets(
                resolved,
                target_fn,
                draws=draws,
                rtol=comparer.loosest(0, rtol),
                atol=comparer.loosest(1, atol),
                timeout=timeout,
                unpack=unpack,
            )
        ),
    )


def _weigh(
    comparer: Comparer,
    watch: Randomness,
    held: list[Any],
    wrong: list[int],
    rewritten: list[int],
    aliasing: Report | None,
    tf_ops: tuple[str, ...] = (),
) -> tuple[dict[str, Any], set[str]]:
    """The cause that explains the mismatches best, and the notes that back it.

    ``tf_ops``: the random ops of a tf.data pipeline's graph (a random flip in its map),
    which draw where no RNG pitfalls watches moves: augmentation, by the graph's word.

    In this order: rewritten inputs that held another batch's data
    (read-ahead); differences all within rounding; all what integer arithmetic
    leaves; inputs rewritten after they were handed out (or a failed aliasing
    check of the same source); stored rows sampled unchanged; random numbers
    drawn by a source holding its samples (augmentation); none of these.
    """
    notes = set(comparer.notes)
    labels = bool(comparer.kinds) and all(a in "iub" and d in "iub" for a, d in comparer.kinds)
    found: dict[str, Any] = {"labels": labels, "rewritten": len(rewritten)}
    aliased = aliasing is not None and aliasing.status == "failed"
    if not wrong:
        return {**found, "cause": "later"}, notes
    if aliased and aliasing is not None:
        bad, batches = len(aliasing.bad_batches), aliasing.batches
        notes.add(_note("aliasing", bad=bad, batches=batches))
    mismatched = comparer.mismatches
    pairs = comparer.read_ahead(held, rewritten)
    if pairs:  # evidence even for a few batches; the cause when it explains half of them
        shown = pairs[:MAX_SHOWN]
        notes.add(
            _note(
                "read_ahead",
                batch_word="batches" if len(shown) > 1 else "batch",
                rewritten=", ".join(str(i) for i, _ in shown),
                sources=", ".join(str(j) for _, j in shown),
                pairs=len(pairs),
                wrong=len(wrong),
            )
        )
        if 2 * len(pairs) >= len(wrong):
            return {**found, "cause": "read_ahead"}, notes
    exact = bool(mismatched) and not comparer.shapes
    if exact and all(m.rounding for m in mismatched):
        gap = max(m.gap for m in mismatched)
        ulp = coarsest([m.rounding for m in mismatched]) or "float32"
        scale = max(m.scale for m in mismatched)
        kind = "rounding_inputs" if any(m.of_inputs for m in mismatched) else "rounding"
        notes.add(_note(kind, ulps=ROUNDING_ULPS, ulp=ulp, scale=f"{scale:.3g}", gap=f"{gap:.2g}"))
        return {**found, "cause": "rounding", "gap": gap, "ulp": ulp}, notes
    if exact and all(m.integers for m in mismatched):
        return {**found, "cause": "integers"}, notes
    near = [m.input_ulp for m in mismatched if m.input_ulp is not None]
    if exact and len(near) == len(mismatched):
        coarse = coarsest([name for name, _ in near])
        gap, scale = max(m.gap for m in mismatched), max(s for _, s in near)
        notes.add(_note("perhaps_rounding", gap=f"{gap:.2g}", ulp=coarse, scale=f"{scale:.3g}"))
    if rewritten and not aliased:
        notes.add(_note("rewritten", rewritten=len(rewritten), wrong=len(wrong)))
    stored = _stored(watch, held[0], comparer.unpack) if watch.random else {}
    try:
        sampled = _sampled_from(stored, held, wrong, comparer.unpack) if stored else None
    except Exception:  # rows numpy cannot compare: no evidence of sampling
        sampled = None
    if sampled is not None:
        notes.add(_note("sampling", drew=", ".join(watch.seen), stored=sampled))
    elif stored and not (aliased or rewritten):  # memory rewritten: a likelier story
        notes.add(_note("randomness", drew=", ".join(watch.seen)))
    shared = 0 if aliased or rewritten else _shared_inputs(held, comparer.unpack)
    if shared:
        notes.add(_note("shared", shared=shared, drawn=len(held)))
        return {**found, "cause": "overwritten", "shared": shared}, notes
    if aliased or rewritten:
        return {**found, "cause": "overwritten", "aliased": aliased}, notes
    if sampled is not None:
        return {**found, "cause": "sampling"}, notes
    if not stored and tf_ops and not (aliased or rewritten):
        notes.add(_note("tf_randomness", ops=", ".join(tf_ops)))
        return {**found, "cause": "augmentation"}, notes
    return {**found, "cause": "augmentation" if stored else "plain"}, notes


def _shared_inputs(held: list[Any], unpack: Any) -> int:
    """How many of the batches drawn have inputs at the same address as another batch's
    whose targets differ: one buffer filled again after its targets were taken (a list
    filled from it). The same batch read twice (a view of stored data, an index read
    again next epoch) has the same targets, and does not count."""
    try:
        kept = []  # all held while addresses are read: a freed copy's could be reused
        by_address: dict[int, list[bytes]] = {}
        for i, batch in enumerate(held):
            inputs, targets, path, targets_path = split_targets(batch, i, unpack)
            leaves = flatten_at(inputs, path).leaves
            if not leaves or targets is None:
                continue
            first = as_array(leaves[0][1], leaves[0][0])
            wanted = [as_array(leaf, p) for p, leaf in flatten_at(targets, targets_path).leaves]
            kept.append((first, wanted))
            if first.size and first.ndim:
                key = b"".join(np.ascontiguousarray(t).tobytes() for t in wanted)
                by_address.setdefault(buffer_of(first)[1], []).append(key)
    except Exception:  # inputs numpy cannot read: no evidence either way
        return 0
    return sum(len(keys) for keys in by_address.values() if len(set(keys)) > 1)


def _note(kind: str, **values: Any) -> str:
    """One note of the targets report, from ``words.toml``."""
    return say("targets_match", "note", kind, **values).text


assert_targets_match = asserting(check_targets_match)
