"""Does the order of samples change from one epoch to the next, read as training reads?"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._aliasing import source_style
from pitfalls._boundary import asserting, checker
from pitfalls._frameworks import rngs
from pitfalls._reader import Epoch, Reader, Verdict, change_note, finding, reading, shown
from pitfalls._report import Cause, Report
from pitfalls._written import changed_rows, stored_arrays


@checker
def check_order_shuffled(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
) -> Report:
    """Does the order of samples change from one epoch to the next?

    Keras shuffles arrays and ``PyDataset`` indices for you, but a Python
    generator's order is its own: ``fit(generator, shuffle=True)`` warns and
    ignores ``shuffle``. A source whose second epoch repeats the first's order
    fails. Pass ``steps_per_epoch`` for an endless generator.

    Two consecutive epochs are read as training reads them: nothing reseeded,
    every read only watched (an indexable source's ``on_epoch_end()`` between
    them, as Keras calls it). It fails when epoch 2 repeats epoch 1's order
    (``Cause.SAME_ORDER``), or cuts the same batches, shuffled only within each
    or only in their order (``Cause.SAME_BATCHES``). When augmentation makes the
    epochs' samples differ, the order is read from what they share: the
    samples both hold, then targets that tell the samples apart; failing
    that, when the reads drew from generators pitfalls can reseed, two more
    epochs are read with every read reseeded by its position and its
    generators put back after it, so that only what the epoch's start draws
    (the shuffle in ``on_epoch_end``, ``iter()``, the first batch) can make a
    new order, and epoch 2 is read again from its start to show that what
    differs follows that start. Otherwise the report is inconclusive. A tf.data
    pipeline is read as built, so the verdict is the one training under the
    same seeding would meet. A shuffle drawn lazily in the middle of an epoch
    (not at its start) reads as augmentation.
    """
    with reading(source, steps_per_epoch, timeout, unpack, reseed, reads="natural") as reader:
        rnd = reader.rnd  # as training reads: nothing reseeded, only watched
        first = reader.epoch(None)
        stored = stored_arrays(reader.held(), 2 * max(first.sizes))
        second = reader.epoch(None)
        verdict = _rule(reader, first, second)
        # TensorFlow's eager random ops (tf.random.uniform in a __getitem__) draw where no
        # watched generator moves until a global seed gives them their op-seed sequence:
        # with TensorFlow imported, an undecided pair of epochs is read again, seeded.
        unseen_ops = frameworks.tensorflow.tensorflow() is not None
        if verdict is None and (rnd.random or unseen_ops) and not reader.tf:
            # augmented per read: two more epochs, each read reseeded with its position and
            # its generators put back after it, so that only what drew as the epoch
            # started (on_epoch_end, iter(), the first batch) can make a new order
            reader.reads = "kept"
            first = reader.epoch(None)
            start = rngs.states(rnd.rngs)
            second = reader.epoch(None)
            verdict = _rule(reader, first, second)
            if verdict is None and (reader.stream or reader.source.rereadable):
                # epoch 2 once more: an indexable source's indices without on_epoch_end,
                # any other from the generators' state at its start. The same batches
                # again: the reads are reproducible, so what made epoch 2 differ from
                # epoch 1 came as it started (its new order), unless stored data changed.
                if not reader.indexable:
                    rngs.put_back(rnd.rngs, start)
                again = reader.epoch(None, transition=False)
                if again.batches == second.batches and not changed_rows(stored):
                    verdict = Verdict(kind="start")
        if verdict is None:
            verdict = _unjudged(reader, changed_rows(stored))
        elif verdict.cause is Cause.SAME_ORDER:
            verdict.kind, verdict.fix, verdict.fields = _words_for(reader)
        verdict.fields.setdefault("n", len(first.samples))
    return reader.report("order_shuffled", verdict)


def _words_for(reader: Reader) -> tuple[str | None, str | None, dict[str, Any]]:
    """The words for an order that never changes: (kind, the hint's kind, fields), by the
    loader's library, the evidence (a tf.data graph, generators made anew from one seed
    each epoch, a JAX key) and the kind of source."""
    same_seed, keys, style = reader.iterables, list(reader.held().keys), source_style(reader.given)
    library = reader.library
    if library == "tf.data":
        return frameworks.tfdata.same_order(reader.graph)
    if library == "keras image iterator" and not same_seed:
        return "image_iterator", None, {}
    if library == "hf":
        return "hf", None, {}
    if library == "torch" and not same_seed:
        loader = reader.source.obj
        start = rngs.states(reader.rnd.rngs)
        orders = frameworks.torch.sampler_orders(loader)
        rngs.put_back(reader.rnd.rngs, start)
        if orders is not None and orders[0] != orders[1]:
            # the sampler draws a new order each epoch, yet the samples came the same:
            # __getitem__ does not serve the index it is given
            return "torch_index_ignored", None, {}
        sequential = frameworks.torch.is_sequential(getattr(loader, "sampler", None))
        return ("torch_sequential" if sequential else "torch"), "torch", {}
    if keys and not same_seed:
        return "jax", None, {"key": keys[0]}
    if same_seed:
        fix = "same_seed_object" if style in ("dataset", "loader") else None
        return "same_seed", fix, {"rng": same_seed[0]}
    return style, None, {}


def _rule(reader: Reader, first: Epoch, second: Epoch) -> Verdict | None:
    """The verdict two consecutive epochs give: a failure (the same order, or the same
    samples in every batch), a pass (another order), or None when what they hold cannot
    be matched (augmented per read, left out)."""
    n, k = len(first.samples), len(first.batches)
    if first.samples == second.samples:
        return _same_order(n, f"order of all {n} samples")
    if Counter(first.samples) == Counter(second.samples):
        if _same_batches_in(first.batches, second.batches):
            return _same_batches(n, k, "samples")
        return Verdict()
    if not reader.indexable and k > 1 and first.batches[1:] == second.batches[1:]:
        first_only = "only the first batch, read as the epoch started, was augmented differently"
        return _same_order(n, f"order of all {n} samples; {first_only}")
    kept1, kept2 = _in_both(first.samples, second.samples)
    if len(kept1) >= 2 and kept1 != kept2:
        return Verdict(kind="common", fields={"differ": n - len(kept1), "common": len(kept1)})
    if len(kept1) >= 2 and _unlikely(kept1):
        return _same_order(n, f"order of the {len(kept1)} samples both epochs hold (of {n})")
    a, b = first.targets, second.targets
    if a is None or b is None:
        return None
    ta, tb = [t for batch in a for t in batch], [t for batch in b for t in batch]
    if ta == tb and _unlikely(ta):
        return _same_order(n, f"sequence of all {n} targets (the inputs differ: random per read)")
    if ta != tb and _identifying(ta) and Counter(ta) == Counter(tb):
        if _same_batches_in(a, b):
            return _same_batches(n, k, "targets (the inputs differ: random per read)")
        return Verdict(kind="targets")
    return None


def _unjudged(reader: Reader, changes: Any) -> Verdict:
    """Why two epochs whose samples cannot be matched leave the order unjudged."""
    if changes:
        return Verdict(Cause.STORED_DATA_WRITTEN, notes=(change_note(changes, "while reading"),))
    obj, graph = reader.source.obj, reader.graph
    if frameworks.torch.persistent(obj):
        return Verdict(Cause.UNOBSERVED_CODE, fields={"workers": frameworks.torch.workers(obj)})
    if reader.rnd.random:
        return Verdict(Cause.RANDOMNESS_UNREACHED, fields={"drew": reader.drawn})
    if graph is not None and graph.random_ops:
        return Verdict(
            Cause.RANDOMNESS_UNREACHED, "tfdata", fields={"ops": ", ".join(graph.random_ops)}
        )
    keys = list(reader.held().keys)
    if keys:
        return Verdict(Cause.JAX_KEY, fields={"keys": shown(keys)})
    return reader.fresh_entropy() or Verdict(Cause.NOTHING_SEEN)


def _same_order(n: int, what: str) -> Verdict:
    """Epoch 2 repeats epoch 1's ``what``."""
    problem = f"epoch 2 repeats epoch 1's {what}"
    return Verdict(Cause.SAME_ORDER, findings=(finding("sample order", "epoch 2", n, n, problem),))


def _same_batches(n: int, batches: int, what: str) -> Verdict:
    problem = (
        f"each of the {batches} batches of epoch 2 holds the same {what} as a batch of"
        " epoch 1; only the order of the batches, or inside each, changed"
    )
    found = finding("batch membership", "epoch 2", n, n, problem)
    return Verdict(Cause.SAME_BATCHES, findings=(found,))


def _in_both(first: list[bytes], second: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The samples both epochs hold, in each epoch's order: their relative order tells a
    reordering even when other samples changed."""
    common = Counter(first) & Counter(second)

    def keep(samples: list[bytes]) -> list[bytes]:
        left = Counter(common)
        out = []
        for s in samples:
            if left[s] > 0:
                left[s] -= 1
                out.append(s)
        return out

    return keep(first), keep(second)


def _identifying(targets: list[bytes]) -> bool:
    """Do the targets tell the samples apart (nine in ten distinct)? Then the same targets
    in another order are the same samples reordered: targets that augmentation changed
    (a label flipped with its image) would show new values, not the same multiset."""
    return len(set(targets)) >= 0.9 * len(targets) and len(targets) >= 2


def _unlikely(sequence: list[bytes]) -> bool:
    """Would a random reordering keep this sequence, with chance below 1e-6?"""
    return _unlikely_batches([[item] for item in sequence])


def _same_batches_in(first: list[list[bytes]], second: list[list[bytes]]) -> bool:
    """Does every batch of ``second`` hold what a batch of ``first`` held (the batches
    reordered, or shuffled within only), in batches a random reordering would hardly
    cut so?"""
    cut = Counter(tuple(sorted(batch)) for batch in first)
    same = cut == Counter(tuple(sorted(batch)) for batch in second)
    return same and _unlikely_batches(first, in_any_order=True)


def _unlikely_batches(batches: list[list[bytes]], *, in_any_order: bool = False) -> bool:
    """Would a random reordering of the epoch cut the same batches (``in_any_order``: the
    same batches, whatever their order), with chance below 1e-6? (Two batches of two
    keep theirs one time in three: no evidence.)"""
    counts = Counter(s for batch in batches for s in batch).values()
    n = sum(counts)
    log_same = sum(math.lgamma(len(b) + 1) for b in batches) - math.lgamma(n + 1)
    log_same += sum(math.lgamma(c + 1) for c in counts)  # repeated samples: fewer orders
    if in_any_order:  # batches of one size may come in any order
        log_same += sum(math.lgamma(m + 1) for m in Counter(map(len, batches)).values())
    return len(batches) > 1 and log_same < math.log(1e-6)


assert_order_shuffled = asserting(check_order_shuffled)
