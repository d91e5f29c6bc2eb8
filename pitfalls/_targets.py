"""Are the yielded targets the rule applied to the yielded inputs, now and later?"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS, array_library, later_fix
from pitfalls._boundary import asserting, checker
from pitfalls._frameworks import tfdata as _tfdata
from pitfalls._matching import ROUNDING_ULPS, Comparer, coarsest, note, split_targets
from pitfalls._randomness import Randomness, held_by
from pitfalls._report import MAX_SHOWN, Blame, Cause, Finding, Report
from pitfalls._sources import drawn, ended_notes, resolve
from pitfalls._tree import as_array, buffer_of, flatten_at
from pitfalls._words import Words, say


def _arrays(batch: Any, index: int, unpack: Any, role: int = 0) -> list[np.ndarray]:
    """The arrays of a batch's inputs (``role`` 0) or targets (1)."""
    part, path = split_targets(batch, index, unpack)[role], ("inputs", "targets")[role]
    return [as_array(a, where) for where, a in flatten_at(part, path).leaves]


def _stored(watch: Randomness, batch: Any, unpack: Any) -> dict[str, Any]:
    """The arrays the source holds with rows for 2 batches or more: its stored samples.

    Random draws by a source that holds its samples are augmentation or
    sampling; by one that holds none, they make the data itself.
    """
    rows = next((x.shape[0] for x in _arrays(batch, 0, unpack) if x.shape), 1)
    return {name: a for name, a in held_by(watch.roots).arrays.items() if len(a) >= 2 * rows}


def _sampled_from(
    stored: dict[str, Any], held: list[Any], batches: list[int], unpack: Any
) -> str | None:
    """The stored array whose rows are every input row of these batches, unchanged: the
    source samples its data, it does not augment it; None when some row is not found.
    Rows are compared by their fingerprints, in arrays of one dtype and row shape."""
    arrays = {name: as_array(a, name) for name, a in stored.items()}
    rows = {name: set(fingerprint.samples([a], len(a))) for name, a in arrays.items()}
    found = []
    for i in batches[:3]:
        for x in _arrays(held[i], i, unpack):
            drawn = set(fingerprint.samples([x], len(x))) if x.ndim else set()
            alike = [
                n for n, a in arrays.items() if (a.shape[1:], a.dtype) == (x.shape[1:], x.dtype)
            ]
            found.append(next((n for n in alike if drawn and drawn <= rows[n]), None))
    return found[0] if found and None not in found else None


def _suggest(gap: float) -> float:
    """A round atol above twice ``gap``: 3.1e-07 -> 1e-06."""
    return float(10.0 ** math.ceil(math.log10(2 * gap))) if gap > 0 else 0.0


@dataclass(frozen=True, kw_only=True)
class _Evidence:
    """What the check saw, from which the reason and the hint are chosen (data first)."""

    cause: str
    """``later`` (every batch matched when yielded), or the kind of TARGETS_MISMATCH
    that explains it best: ``read_ahead``, ``rounding``, ``integers``, ``shared``,
    ``aliased``, ``rewritten``, ``sampling``, ``augmentation`` or ``plain``."""
    labels: bool
    """The targets and target_fn's are integers or bools (class labels)."""
    rewritten: int
    """Batches wrong when yielded whose inputs changed again after later draws."""
    shared: int = 0
    """Batches drawn whose inputs share one buffer with another's (nothing changed while
    the check drew: a list filled from one buffer before)."""
    gap: float = 0.0
    ulp: str = "float32"


def _words(e: _Evidence, draws: int, status_ok: bool, fix: str, library: str, given: bool) -> Words:
    """The reason and hint for the evidence (``words.toml``), in the words of the user's
    framework: the kind of mismatch picks the entry, the library the snippets; ``given``:
    the user passed rtol or atol."""
    if status_ok:
        return say("targets_match", "passed", draws=draws)
    if e.cause == "later":
        return say("targets_match", Cause.BATCH_CHANGED, fix=fix)
    kind = e.cause
    if kind == "rounding" and given:
        kind = "rounding_given"
    elif e.labels and kind in ("augmentation", "plain"):
        kind = "labels_augmentation" if kind == "augmentation" else "labels"
    snippets = {k: say("common", k, library).text for k in ("copy", "expand", "widen", "floating")}
    atol = f"{_suggest(e.gap):g}"
    return say(
        "targets_match", Cause.TARGETS_MISMATCH, kind, fix=fix, atol=atol, **asdict(e), **snippets
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
        for i, batch in enumerate(drawn(batches, resolved, draws, timeout)):
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
    rewritten = []
    for i, batch in enumerate(held):
        if i not in comparer.expected:
            findings += comparer.compare(i, batch, "after later draws")
        elif comparer.changed(i, batch):
            rewritten.append(i)

    graph = _tfdata.graph(resolved.obj) if _tfdata.is_dataset(resolved.obj) else None
    tf_ops = graph.random_ops if graph is not None else ()
    evidence, notes = _weigh(comparer, watch, held, rewritten, aliasing, tf_ops)
    fix = later_fix(resolved, comparer.library)
    given = rtol is not None or atol is not None
    words = _words(evidence, draws, not findings, fix, comparer.library, given)
    blame: Blame | None = None
    if findings and evidence.cause == "later":  # batches changed after they were handed out
        blame = aliasing.blame if aliasing is not None else None  # the same write
        if blame is None:
            blame = _blame.blame_targets(
                resolved,
                target_fn,
                draws=draws,
                rtol=comparer.loosest(0, rtol),
                atol=comparer.loosest(1, atol),
                timeout=timeout,
                unpack=unpack,
            )
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
        notes=tuple(sorted(notes)) + ended_notes(draws, asked),
        columns=("target_fn", "yielded"),
        summary=words.text,
        source=resolved.description,
        blame=blame,
    )


def _weigh(
    comparer: Comparer,
    watch: Randomness,
    held: list[Any],
    rewritten: list[int],
    aliasing: Report | None,
    tf_ops: tuple[str, ...] = (),
) -> tuple[_Evidence, set[str]]:
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
    wrong = sorted(comparer.expected)  # the batches wrong when yielded
    labels = bool(comparer.kinds) and all(a in "iub" and d in "iub" for a, d in comparer.kinds)

    def found(cause: str, **measured: Any) -> tuple[_Evidence, set[str]]:
        return _Evidence(cause=cause, labels=labels, rewritten=len(rewritten), **measured), notes

    if not wrong:
        return found("later")
    aliased = aliasing is not None and aliasing.status == "failed"
    if aliased and aliasing is not None:
        notes.add(note("aliasing", bad=len(aliasing.bad_batches), batches=aliasing.batches))
    pairs = comparer.read_ahead(held, rewritten)
    if pairs:  # evidence even for a few batches; the cause when it explains half of them
        shown = pairs[:MAX_SHOWN]
        notes.add(
            note(
                "read_ahead",
                batch_word="batches" if len(shown) > 1 else "batch",
                rewritten=", ".join(str(i) for i, _ in shown),
                sources=", ".join(str(j) for _, j in shown),
                pairs=len(pairs),
                wrong=len(wrong),
            )
        )
        if 2 * len(pairs) >= len(wrong):
            return found("read_ahead")
    mismatched = [] if comparer.shapes else comparer.mismatches
    integers = bool(mismatched) and all(m.integers for m in mismatched)
    rounds = [m.rounding for m in mismatched if m.rounding is not None]
    if rounds and len(rounds) == len(mismatched):  # every difference rounding, or perhaps
        kinds = {kind for kind, _, _ in rounds}
        gap = max(m.gap for m in mismatched)
        ulp = coarsest([p for _, p, _ in rounds]) or "float32"
        scale = f"{max(s for _, _, s in rounds):.3g}"
        measured = {"ulps": ROUNDING_ULPS, "ulp": ulp, "scale": scale, "gap": f"{gap:.2g}"}
        if "perhaps_rounding" not in kinds:
            kind = "rounding_inputs" if "rounding_inputs" in kinds else "rounding"
            notes.add(note(kind, **measured))
            return found("rounding", gap=gap, ulp=ulp)
        if kinds == {"perhaps_rounding"} and not integers:
            notes.add(note("perhaps_rounding", **measured))
    if integers:
        return found("integers")
    if rewritten and not aliased:
        notes.add(note("rewritten", rewritten=len(rewritten), wrong=len(wrong)))
    stored = _stored(watch, held[0], comparer.unpack) if watch.random else {}
    try:
        sampled = _sampled_from(stored, held, wrong, comparer.unpack) if stored else None
    except Exception:  # rows numpy cannot read: no evidence of sampling
        sampled = None
    if sampled is not None:
        notes.add(note("sampling", drew=", ".join(watch.seen), stored=sampled))
    elif stored and not (aliased or rewritten):  # memory rewritten: a likelier story
        notes.add(note("randomness", drew=", ".join(watch.seen)))
    shared = 0 if aliased or rewritten else _shared_inputs(held, comparer.unpack)
    if shared:
        notes.add(note("shared", shared=shared, drawn=len(held)))
        return found("shared", shared=shared)
    if aliased or rewritten:
        return found("aliased" if aliased else "rewritten")
    if sampled is not None:
        return found("sampling")
    if not stored and tf_ops:
        notes.add(note("tf_randomness", ops=", ".join(tf_ops)))
    return found("augmentation" if stored or tf_ops else "plain")


def _shared_inputs(held: list[Any], unpack: Any) -> int:
    """How many of the batches drawn have inputs at the same address as another batch's
    whose targets differ: one buffer filled again after its targets were taken (a list
    filled from it). The same batch read twice (a view of stored data, an index read
    again next epoch) has the same targets, and does not count."""
    try:  # all held while addresses are read: a freed copy's could be reused
        kept = [(_arrays(b, i, unpack), _arrays(b, i, unpack, 1)) for i, b in enumerate(held)]
    except Exception:  # inputs numpy cannot read: no evidence either way
        return 0
    by_address: dict[int, list[bytes]] = {}
    for inputs, targets in kept:
        if inputs and inputs[0].size and inputs[0].ndim:
            key = b"".join(np.ascontiguousarray(t).tobytes() for t in targets)
            by_address.setdefault(buffer_of(inputs[0])[1], []).append(key)
    return sum(len(keys) for keys in by_address.values() if len(set(keys)) > 1)


assert_targets_match = asserting(check_targets_match)
