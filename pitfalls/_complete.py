"""Does one epoch deliver every sample of a dataset exactly once?"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._aliasing import source_style
from pitfalls._boundary import asserting, checker
from pitfalls._reader import Reader, Verdict, compare, finding, layout, reading, remainder
from pitfalls._report import MAX_SHOWN, Cause, Finding, Report
from pitfalls._sources import Source


@checker
def check_epoch_complete(
    source: Any,
    dataset: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Does one epoch of ``source`` deliver every sample of ``dataset`` exactly once?

    ``dataset`` holds the samples on axis 0 (an array, or the same nesting as
    the batches' inputs), in the shape and dtype the batches hold them (else a
    ValueError names both). One epoch is read as training reads it (indices
    0..n-1 of an indexable source, one iteration, or ``steps_per_epoch``
    batches) and compared as a multiset: samples seen twice, samples never
    seen, and samples not in ``dataset`` are reported. Made for what several
    workers deliver: a generator or iterator shared by threads without a lock
    duplicates and drops batches silently, and so does a torch
    ``IterableDataset`` every worker reads whole; Keras' ordered enqueuer and a
    DataLoader's sampler deliver each index once. An epoch missing exactly its
    last, partial batch (``drop_last=True``, ``drop_remainder=True``) is said
    to be that; when the next epoch leaves out other samples (a shuffle), it
    passes. A source that augments its samples at random delivers rows that
    are not in ``dataset``: when it drew random numbers (or its tf.data graph
    has random ops) and such strangers appear, the report is inconclusive
    (check with the augmentation off). Every RNG the reads drew from is put back.
    """
    arrays = validate.dataset("dataset", dataset)
    reference, shape = fingerprint.samples(arrays, len(arrays[0])), layout(arrays)
    data = (len(reference), sum(a.nbytes for a in arrays))
    options = {"reads": "natural", "data": data, "partial": True}
    with reading(source, steps_per_epoch, timeout, unpack, **options) as reader:
        epoch = reader.epoch(None, transition=False)
        if epoch.batches:
            validate.same_layout("dataset", shape, epoch.layout)
        delivered, sizes = epoch.samples, epoch.sizes
        (lost, extra), short = compare(reference, delivered), len(reference) - len(delivered)
        rotated = 0
        if not extra and remainder(sizes, short):
            rotated = _rotates(reader, delivered, reference)
    resolved, rnd, graph = reader.given, reader.rnd, reader.graph
    order = {fp: i for i, fp in reversed(list(enumerate(reference)))}
    twice = sorted(order[fp] for fp in extra if fp in order)
    strangers = sum(k for fp, k in extra.items() if fp not in order)
    shared = frameworks.torch.iterable_workers(resolved.obj) if twice else 0
    dropped = not shared and remainder(sizes, short) and (strangers > 0 or not twice)
    kind, fix = _kind(resolved, graph, shared, dropped, strangers > 0 and not twice)
    fields: dict[str, Any] = {
        "total": len(reference),
        "delivered": len(delivered),
        "strangers": strangers,
        "batches": len(sizes),
        "size": sizes[0] if sizes else 0,
        "short": short,
        "workers": shared,
    }
    if dropped and strangers:  # which rows were left out?
        verdict = Verdict(Cause.AUGMENTED_SAMPLES, "remainder")
    elif strangers and rnd.random:
        verdict = Verdict(Cause.AUGMENTED_SAMPLES, "random", fields={"drew": reader.drawn})
    elif strangers and graph is not None and graph.random_ops:
        verdict = Verdict(
            Cause.AUGMENTED_SAMPLES, "tfdata", fields={"ops": ", ".join(graph.random_ops)}
        )
    elif strangers and (here := _drawn_in_process(reader)):  # draws out of sight, in workers
        verdict = Verdict(Cause.AUGMENTED_SAMPLES, "workers", fields=here)
    elif strangers and strangers == len(delivered):
        verdict = Verdict(Cause.AUGMENTED_SAMPLES)
    elif rotated and not twice:
        verdict = Verdict(kind="rotated", fields={"left_out": rotated})
    else:
        missing = sorted(order[fp] for fp in lost)
        repeats = sum(k for fp, k in extra.items() if fp in order)
        findings = _findings(twice, repeats, missing, strangers, len(reference), len(delivered))
        cause = Cause.SAMPLES_TWICE if twice else Cause.SAMPLES_MISSING
        verdict = Verdict(cause if findings else None, kind, findings, fix=fix)
    verdict.fields = {**fields, **verdict.fields}
    parameters = {"steps_per_epoch": len(sizes), "samples": len(reference)}
    report = reader.report("epoch_complete", verdict)  # of the first epoch read, by the dataset
    return replace(report, parameters=parameters, batches=len(sizes))


def _kind(
    source: Source, graph: Any, shared: int, dropped: bool, strangers: bool
) -> tuple[str | None, str | None]:
    """The words for an incomplete epoch, (kind, the hint's kind), by what it shows: a
    DataLoader's ``shared`` workers each read an IterableDataset whole; its last, partial
    batch ``dropped``, said in the terms of the source's library; samples that are not
    rows of dataset (``strangers``), none twice; else samples missing, none twice (an
    epoch that stops short), or samples twice (a source shared without a lock)."""
    if shared:
        return "workers", None
    if not dropped:
        return ("strangers" if strangers else None), None
    library = frameworks.library_of(source.obj)
    if library == "torch" and getattr(source.obj, "drop_last", False):
        return "remainder_drop_last", "remainder_torch"
    if library == "tf.data" and graph is not None and graph.drops_remainder:
        return "remainder_drop_remainder", "remainder_tfdata"
    if library in ("torch", "tf.data"):
        return f"remainder_{library.replace('.', '')}", None
    return ("remainder_dataset" if source_style(source) == "dataset" else "remainder"), None


def _rotates(reader: Reader, first: list[bytes], reference: list[bytes]) -> int:
    """The samples each epoch left out when the next epoch, read as training reads it,
    leaves out others than the first (``drop_last`` under shuffling: every sample is
    trained on across epochs), else 0 (the same ones are never delivered, or no next
    epoch can be had)."""
    if not reader.source.rereadable:
        return 0
    left_out = set(reference) - set(first)
    if set(reference) - set(reader.epoch(None).samples) == left_out:
        return 0
    return len(left_out)


def _drawn_in_process(reader: Reader) -> dict[str, Any]:
    """What a copy of a DataLoader with worker processes, read for one epoch in this
    process (``num_workers=0``), draws random numbers from (``drew``, by name), and the
    loader's ``workers``; empty when it draws nothing (or is no such loader)."""
    copy, workers = frameworks.torch.single_process(reader.given.obj)
    if copy is None:
        return {}
    options = {"reads": "natural", "partial": True}
    with reading(copy, reader.steps, reader.timeout, reader.unpack, **options) as here:
        here.epoch(None, transition=False)
    return {"drew": here.drawn, "workers": workers} if here.rnd.random else {}


def _findings(
    twice: list[int], extra: int, missing: list[int], strangers: int, total: int, delivered: int
) -> tuple[Finding, ...]:
    """Samples delivered twice, never delivered, and not in dataset: one finding each."""
    found = []
    if twice:
        problem = f"{extra} extra deliveries of {len(twice)} samples; first: {twice[:MAX_SHOWN]}"
        found.append(finding("samples", "duplicated", extra, total, problem))
    if missing:
        problem = f"{len(missing)} / {total} samples never delivered; first: {missing[:MAX_SHOWN]}"
        found.append(finding("samples", "dropped", len(missing), total, problem))
    if strangers:
        problem = f"{strangers} delivered samples are not rows of dataset"
        found.append(finding("samples", "not in dataset", strangers, delivered, problem))
    return tuple(found)


assert_epoch_complete = asserting(check_epoch_complete)
