"""Across epochs: is the data the same, and does its order change?

Two epochs are read from the source and compared sample by sample, where a
sample is one row (axis 0) of every input array of a batch, fingerprinted by
its bytes. *Repeatable*: the second epoch holds the same samples as the
first, in any order (in-place preprocessing breaks this). *Shuffled*: the
order differs (a generator ignores Keras' ``shuffle=True``).
"""

from __future__ import annotations

import inspect
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from pitfalls._report import (
    EpochChangedError,
    EpochIncompleteError,
    Finding,
    OrderNotShuffledError,
    Report,
)
from pitfalls._sources import batch_count, is_indexable, open_source
from pitfalls._tree import as_array, flatten_at


def _epochs(source: Any, epoch_length: int | None) -> Iterator[tuple[list[bytes], int]]:
    """Successive epochs of ``source``: each the fingerprints of its samples, and its batches.

    Indexable: indices 0..n-1, ``on_epoch_end()``, again. With
    ``epoch_length``: consecutive runs of that many batches from one stream.
    Otherwise: full iterations of a finite source (``iter`` again, or a factory
    called again; an iterator gives one epoch only). A class is instantiated
    once. Each batch is fingerprinted the moment it is read, before the source
    can write to it.
    """
    if inspect.isclass(source):
        source = source()
    if epoch_length is not None:
        if isinstance(epoch_length, bool) or not isinstance(epoch_length, int) or epoch_length < 1:
            raise ValueError(f"epoch_length={epoch_length!r} must be an int >= 1")
        stream = open_source(source)
        while True:
            yield _fingerprints(stream, epoch_length)
    n = batch_count(source) if is_indexable(source) else None
    if n is not None:
        stream = open_source(source)  # by index, with on_epoch_end between epochs
        while True:
            yield _fingerprints(stream, n)
    yield _fingerprints(open_source(source), None)
    if isinstance(source, Iterator):
        raise ValueError(
            "an iterator cannot be read twice: pass its factory (a generator function or"
            " class), an iterable, or epoch_length= for an endless stream of epochs"
        )
    while True:
        yield _fingerprints(open_source(source), None)


def _read_epochs(source: Any, epoch_length: int | None) -> tuple[list[bytes], list[bytes], int]:
    """The sample fingerprints of two epochs (see :func:`_epochs`), and the batches in one."""
    epochs = _epochs(source, epoch_length)
    first = next(epochs)
    second = next(epochs)
    if epoch_length is not None and second[1] < epoch_length:
        raise ValueError(
            f"source stopped after {first[1] + second[1]} batches; two epochs of"
            f" epoch_length={epoch_length} need {2 * epoch_length}"
        )
    if first[1] == 0:
        raise ValueError("source yielded no batches")
    return first[0], second[0], first[1]


_MAX_BATCHES = 100_000


def _fingerprints(stream: Iterator[Any], count: int | None) -> tuple[list[bytes], int]:
    """Fingerprints of the samples of up to ``count`` batches (all, if None), and the batches."""
    samples: list[bytes] = []
    batches = 0
    for batch in itertools.islice(stream, count):
        if count is None and batches >= _MAX_BATCHES:
            raise ValueError(
                f"source yielded more than {_MAX_BATCHES} batches in one epoch: if it is"
                " endless, pass epoch_length="
            )
        samples += _samples(batch, batches)
        batches += 1
    return samples, batches


def _samples(batch: Any, b: int) -> list[bytes]:
    """One fingerprint per sample: a copy of the bytes of its row in every input array."""
    inputs = batch[0] if isinstance(batch, tuple) and len(batch) in (2, 3) else batch
    arrays = [as_array(leaf, path) for path, leaf in flatten_at(inputs, "inputs").leaves]
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise ValueError(f"batch {b}: inputs need a batch axis to be split into samples")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"batch {b}: input arrays disagree on the batch size")
    rows = [np.ascontiguousarray(a).reshape(n, -1) for a in arrays]
    return [b"".join(r[i].tobytes() for r in rows) for i in range(n)]


def _params(epoch_length: int | None, batches: int) -> str:
    return f"epoch_length={epoch_length if epoch_length is not None else batches}"


def check_epoch_repeatable(source: Any, *, epoch_length: int | None = None) -> Report:
    """Do two epochs hold the same samples (in any order)?

    Fails when preprocessing writes into the stored dataset, e.g. ``x /= 255``
    on a slice (a view) of it: the second epoch then sees the data transformed
    twice. Random augmentation also fails it; check with augmentation off. Each
    epoch's samples are fingerprinted as they are read (copies of their bytes),
    so memory is about one epoch of inputs.
    """
    first, second, batches = _read_epochs(source, epoch_length)
    missing = Counter(first) - Counter(second)
    findings: tuple[Finding, ...] = ()
    if missing or len(first) != len(second):
        lost = sum(missing.values())
        where = [i for i, s in enumerate(first) if s in missing][:3]
        findings = (
            Finding(
                None,
                "samples of epoch 1",
                "in epoch 2",
                lost,
                len(first),
                (),
                f"{lost} / {len(first)} samples of epoch 1 are not in epoch 2"
                f" (epoch 1 had {len(first)} samples, epoch 2 {len(second)});"
                f" first missing: samples {where}",
            ),
        )
    return Report(
        "epoch_repeatable",
        _params(epoch_length, batches),
        0,
        findings,
        reason=(
            "The second epoch holds other samples than the first: the data changed between"
            " epochs, typically preprocessing written into the stored dataset through a view"
            " (x /= 255 on a slice), so every epoch trains on data transformed once more."
        ),
        hint=(
            "transform a copy (x = data[rows] / 255 makes one), never a slice of the stored"
            " data in place; or preprocess once, before training."
        ),
        summary=f"epoch 2 holds the same {len(first)} samples as epoch 1",
    )


def check_order_shuffled(source: Any, *, epoch_length: int | None = None) -> Report:
    """Does the order of samples change from one epoch to the next?

    Keras shuffles arrays and ``PyDataset`` indices for you, but a Python
    generator's order is its own: ``fit(generator, shuffle=True)`` warns and
    ignores ``shuffle``. A source whose second epoch repeats the first's order
    fails. Pass ``epoch_length`` for an endless generator.
    """
    first, second, batches = _read_epochs(source, epoch_length)
    same = first == second
    findings: tuple[Finding, ...] = ()
    if same:
        findings = (
            Finding(
                None,
                "sample order",
                "epoch 2",
                len(first),
                len(first),
                (),
                f"epoch 2 repeats epoch 1's order of all {len(first)} samples",
            ),
        )
    return Report(
        "order_shuffled",
        _params(epoch_length, batches),
        0,
        findings,
        reason=(
            "Every epoch visits the samples in the same order: nothing shuffles them, and"
            " Keras does not shuffle a generator (fit(..., shuffle=True) only warns)."
        ),
        hint=(
            "permute inside the generator each epoch (order = rng.permutation(n)), or use"
            " a keras.utils.PyDataset / tf.data pipeline that shuffles."
        ),
        summary=f"epoch 2 reorders epoch 1's {len(first)} samples",
    )


def assert_epoch_repeatable(
    source: Any, *, epoch_length: int | None = None, msg: str | None = None
) -> None:
    """Fail when a second epoch holds other samples. See :func:`check_epoch_repeatable`."""
    __tracebackhide__ = True
    report = check_epoch_repeatable(source, epoch_length=epoch_length)
    if not report.ok:
        raise EpochChangedError(report, msg)


def assert_order_shuffled(
    source: Any, *, epoch_length: int | None = None, msg: str | None = None
) -> None:
    """Fail when epoch 2 repeats epoch 1's order. See :func:`check_order_shuffled`."""
    __tracebackhide__ = True
    report = check_order_shuffled(source, epoch_length=epoch_length)
    if not report.ok:
        raise OrderNotShuffledError(report, msg)


def check_epoch_complete(source: Any, dataset: Any, *, epoch_length: int | None = None) -> Report:
    """Does one epoch of ``source`` deliver every sample of ``dataset`` exactly once?

    ``dataset`` holds the samples on axis 0 (an array, or the same nesting as
    the batches' inputs). One epoch is read as for :func:`check_epoch_repeatable`
    (or ``epoch_length`` batches) and compared as a multiset: samples seen
    twice, samples never seen, and samples not in ``dataset`` are reported.
    Made for what several workers deliver: a generator or iterator shared by
    threads without a lock duplicates and drops batches silently; Keras'
    ordered enqueuer and a DataLoader's sampler deliver each index once.
    """
    reference = _samples((dataset, None), -1)
    wanted = Counter(reference)
    seen_list, batches = next(_epochs(source, epoch_length))
    seen = Counter(seen_list)
    order = {fp: i for i, fp in reversed(list(enumerate(reference)))}
    twice = sorted(order.get(fp, -1) for fp, k in seen.items() if k > 1 and fp in wanted)
    missing = sorted(order[fp] for fp in wanted if seen[fp] < wanted[fp])
    strangers = sum(k for fp, k in seen.items() if fp not in wanted)
    findings = []
    total = sum(wanted.values())
    if twice:
        extra = sum(seen[fp] - wanted[fp] for fp in seen if fp in wanted and seen[fp] > wanted[fp])
        findings.append(
            Finding(
                None,
                "samples",
                "duplicated",
                extra,
                total,
                (),
                f"{extra} extra deliveries of {len(twice)} samples; first: {twice[:5]}",
            )
        )
    if missing:
        findings.append(
            Finding(
                None,
                "samples",
                "dropped",
                len(missing),
                total,
                (),
                f"{len(missing)} / {total} samples never delivered; first: {missing[:5]}",
            )
        )
    if strangers:
        findings.append(
            Finding(
                None,
                "samples",
                "not in dataset",
                strangers,
                len(seen_list),
                (),
                f"{strangers} delivered samples are not rows of dataset",
            )
        )
    return Report(
        "epoch_complete",
        f"epoch of {batches} batches, dataset of {total} samples",
        0,
        tuple(findings),
        reason=(
            "An epoch did not deliver every sample exactly once: a source shared by"
            " several workers without a lock (a read-modify-write of its position) hands"
            " out some batches twice and skips others, or the epoch boundary is off."
        ),
        hint=(
            "give each worker indices, not a shared iterator: keras.utils.PyDataset with"
            " workers, or a DataLoader with a sampler; guard a shared iterator with a"
            " threading.Lock around next()."
        ),
        summary=f"all {total} samples delivered exactly once",
    )


def assert_epoch_complete(
    source: Any, dataset: Any, *, epoch_length: int | None = None, msg: str | None = None
) -> None:
    """Fail unless an epoch delivers every sample exactly once (:func:`check_epoch_complete`)."""
    __tracebackhide__ = True
    report = check_epoch_complete(source, dataset, epoch_length=epoch_length)
    if not report.ok:
        raise EpochIncompleteError(report, msg)
