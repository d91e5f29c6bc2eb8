"""Do two epochs hold the same samples, in any order, paired with the same targets?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._aliasing import source_style
from pitfalls._boundary import asserting, checker
from pitfalls._reader import (
    EPOCH_SEED,
    Epoch,
    Reader,
    Verdict,
    change_note,
    compare,
    finding,
    reading,
    remainder,
    shown,
)
from pitfalls._report import MAX_SHOWN, Cause, Finding, Report
from pitfalls._written import Stored, changed_rows, stored_arrays

_WITNESSED = (Cause.STORED_DATA_WRITTEN, Cause.PAIRS_CHANGED)
"""Causes shown by a witness; any other cause with findings is a difference unexplained."""


@checker
def check_epoch_repeatable(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
) -> Report:
    """Do two epochs hold the same samples (in any order)?

    Fails when preprocessing writes into the stored dataset, e.g. ``x /= 255``
    on a slice (a view) of it, or ``row -= mean`` on a row of a torch tensor:
    the second epoch then sees the data transformed twice. Each epoch's
    samples are fingerprinted as they are read (a 16-byte digest of their
    bytes), so memory is a few dozen bytes per sample; an epoch with no end
    in sight (thousands of batches, a million samples or 512 MB of inputs, and
    no length) is a ValueError asking for ``steps_per_epoch``.

    Random augmentation is allowed: every read is made after reseeding
    Python's, numpy's, Keras' and torch's global RNGs and the generators the
    source holds (``self.rng``), and ``reseed(seed)`` for the others; all are
    put back afterwards. A tf.data pipeline given by its factory is built
    again under a fixed seed, so that its random ops replay the same numbers
    every epoch, and read on one thread; shuffled anew each iteration, it is
    built once more and its first epoch must come back. An indexable source
    (a PyDataset) is read twice without ``on_epoch_end()`` between (the same
    indices under the same seeds must give the same samples), then once more
    after it; when the source is
    random per read, that last epoch is judged by the arrays it holds
    (``self.images``, ``self.indices``) keeping their rows, since a reordered,
    augmented epoch cannot be matched sample by sample. Epochs of full batches
    that differ by fewer samples than a batch each left out another remainder
    (``len = floor(n / batch_size)`` under shuffling): passed, saying so.

    It fails only on evidence (``report.cause``): an array the source holds
    (the same object, at any size) that reading changed
    (``STORED_DATA_WRITTEN``), or an attribute of the source's own objects the
    reads changed, a counter (``SOURCE_STATE_CHANGED``). Epochs that differ
    with neither witness are inconclusive, never failed and never passed:
    randomness pitfalls cannot reach looks the same as a bug it cannot see.
    """
    from pitfalls import _blame  # imported when first needed

    with reading(source, steps_per_epoch, timeout, unpack, reseed) as reader:
        verdict = _epochs(reader)
    resolved, torch = reader.given, frameworks.torch
    persistent = torch.workers(resolved.obj) if torch.persistent(resolved.obj) else 0
    unexplained = bool(verdict.findings) and verdict.cause not in _WITNESSED
    if unexplained and reader.state_changed and not persistent:  # the evidence: a counter
        state = f"Reading changed the source's own state: {shown(reader.state_changed)}."
        verdict = Verdict(Cause.SOURCE_STATE_CHANGED, findings=verdict.findings, notes=(state,))
    elif unexplained and not persistent:
        verdict.findings = ()  # what differs without evidence is no finding
    blame = None
    if verdict.findings:
        blame = _blame.blame_epochs(
            resolved,
            steps_per_epoch=reader.steps,
            timeout=reader.timeout,
            unpack=reader.unpack,
            reordered=verdict.cause is Cause.PAIRS_CHANGED,
        )
    if unexplained and persistent:
        if blame is not None and blame.found:  # the write, found in this process
            verdict = Verdict(Cause.STORED_DATA_WRITTEN, "persistent", verdict.findings)
        else:  # out of reach, in the workers' copies
            verdict, blame = Verdict(Cause.UNOBSERVED_CODE), None
        verdict.fields["workers"] = persistent
    if verdict.cause is Cause.STORED_DATA_WRITTEN and verdict.kind is None:
        verdict.kind = "torch" if reader.library == "torch" else source_style(resolved)
    return reader.report("epoch_repeatable", verdict, blame=blame)


def _epochs(reader: Reader) -> Verdict:
    """Epoch 2 against epoch 1, both from the same seed; an indexable source's reads that
    draw: epoch 1 read twice by index under the same seeds, then epoch 2 after
    on_epoch_end."""
    first = reader.epoch(EPOCH_SEED, transition=False)  # as Keras' first epoch
    if reader.late:  # a generator's own RNG, found as epoch 1 ran: reseeded from now on
        first = reader.epoch(EPOCH_SEED)
    stored = stored_arrays(reader.held(), 2 * max(first.sizes))
    if not reader.indexable or not reader.rnd.random:  # epoch 2 against 1, sample by sample
        return _judge(reader, first, reader.epoch(EPOCH_SEED), stored)
    again = reader.epoch(EPOCH_SEED, transition=False)
    if again.batches != first.batches:
        changes = changed_rows(stored)
        if not changes:
            return _unreached(reader, stored)
        note, found = change_note(changes, "while reading"), _changed_reads(first, again)
        return Verdict(Cause.STORED_DATA_WRITTEN, findings=(found,), notes=(note,))
    return _judge(reader, again, reader.epoch(EPOCH_SEED), stored, random_reads=True)


def _judge(
    reader: Reader, first: Epoch, second: Epoch, stored: Stored, *, random_reads: bool = False
) -> Verdict:
    """Epoch 2 against epoch 1 as multisets (valid when no read draws random numbers);
    ``random_reads``: the reads draw random numbers, so that epoch 2 is judged by the
    stored arrays instead."""
    n, (lost, extra) = len(first.samples), compare(first.samples, second.samples)
    left_out = lost.total()
    pairs = _repaired(first, second, left_out, extra.total())
    if pairs is not None:
        return pairs
    if not lost and not extra:
        return Verdict(fields={"n": n})
    changes = changed_rows(stored)
    swapped = left_out == extra.total() and remainder(first.sizes + second.sizes, left_out)
    if swapped and not changes:  # each epoch left out another remainder
        fields = {"n": n, "left_out": left_out, "size": first.sizes[0]}
        return Verdict(kind="remainder", fields=fields)
    found = (_missing(first.samples, second.samples),)
    if changes:
        when = "by on_epoch_end" if random_reads else "while reading"
        kind = "on_epoch_end" if random_reads else None
        return Verdict(Cause.STORED_DATA_WRITTEN, kind, found, (change_note(changes, when),))
    if random_reads:
        if stored:
            return Verdict(kind="stored", fields={"n": n, "arrays": shown(stored)})
        return _unreached(reader, stored)
    graph = reader.graph
    rebuildable = graph is not None and graph.reshuffles and reader.rebuilt
    rebuildable = rebuildable and not reader.stream  # then epoch 1 must come back
    if rebuildable and Counter(reader.rebuilt_epoch().samples) == Counter(first.samples):
        return Verdict(kind="rebuilt", fields={"n": n})
    if graph is not None and (graph.random_ops or (graph.reshuffles and not reader.rebuilt)):
        ops = ", ".join(graph.random_ops) or "ShuffleDataset, reshuffled every iteration"
        kind = "tfdata_rebuilt" if reader.rebuilt else "tfdata"
        return Verdict(Cause.RANDOMNESS_UNREACHED, kind, fields={"ops": ops})
    if reader.rnd.random:  # epoch 2's reads drew where epoch 1's did not
        return _unreached(reader, stored)
    keys = list(reader.held().keys)
    if keys:
        return Verdict(Cause.JAX_KEY, fields={"keys": shown(keys)})
    # nothing pitfalls can see explains the difference: one batch read again, watched
    nothing = Verdict(Cause.NOTHING_SEEN, findings=found, fields={"arrays": shown(stored)})
    return reader.fresh_entropy(found) or nothing


def _unreached(reader: Reader, stored: Stored) -> Verdict:
    """Reads that drew random numbers and still differ: randomness pitfalls did not reseed
    alike (no evidence either way)."""
    fields = {"drew": reader.drawn, "arrays": shown(stored)}
    return Verdict(Cause.RANDOMNESS_UNREACHED, fields=fields)


def _missing(first: list[bytes], second: list[bytes]) -> Finding:
    """The samples of epoch 1 that epoch 2 lacks, the first few by position."""
    lost, _ = compare(first, second)
    where = [i for i, s in enumerate(first) if s in lost][:MAX_SHOWN]
    problem = (
        f"{lost.total()} / {len(first)} samples of epoch 1 are not in epoch 2"
        f" (epoch 1 had {len(first)} samples, epoch 2 {len(second)});"
        f" first missing: samples {where}"
    )
    return finding("samples of epoch 1", "in epoch 2", lost.total(), len(first), problem)


def _changed_reads(first: Epoch, again: Epoch) -> Finding:
    a, b = first.samples, again.samples
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    differ += list(range(min(len(a), len(b)), max(len(a), len(b))))
    problem = (
        f"{len(differ)} / {len(a)} samples differ when the same indices are read"
        f" again under the same seeds; first: samples {differ[:MAX_SHOWN]}"
    )
    return finding("samples of epoch 1", "read again", len(differ), len(a), problem)


def _repaired(first: Epoch, second: Epoch, left_out: int, extra: int) -> Verdict | None:
    """A failed verdict when epoch 2 holds epoch 1's inputs and epoch 1's targets (but for
    a dropped remainder) paired otherwise: inputs reordered apart from their targets
    (``np.random.shuffle(self.x)`` without ``self.y``); None when it does not."""
    t1, t2 = first.sample_targets, second.sample_targets
    if t1 is None or t2 is None:  # (else one per sample: Epoch keeps whole batches' targets)
        return None
    if left_out != extra:
        return None  # other inputs, not the same ones paired otherwise
    if compare(t1, t2)[0].total() > left_out:
        return None  # other targets: augmented, not re-paired
    pairs1, pairs2 = Counter(zip(first.samples, t1)), Counter(zip(second.samples, t2))
    moved = (pairs1 - pairs2).total() - left_out
    if moved < 2:
        return None
    n = len(first.samples)
    problem = f"{moved} / {n} inputs of epoch 1 come with another target in epoch 2"
    return Verdict(
        Cause.PAIRS_CHANGED, findings=(finding("sample pairs", "epoch 2", moved, n, problem),)
    )


assert_epoch_repeatable = asserting(check_epoch_repeatable)
