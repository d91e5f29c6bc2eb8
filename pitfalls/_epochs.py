"""Across epochs: is the data the same, and does its order change?

Two epochs are read from the source and compared sample by sample, where a
sample is one row (axis 0) of every input array of a batch, fingerprinted by
its bytes. *Repeatable*: the second epoch holds the same samples as the
first, in any order (in-place preprocessing breaks this). *Shuffled*: the
order differs (a generator ignores Keras' ``shuffle=True``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._report import (
    MAX_SHOWN,
    EpochChangedError,
    EpochIncompleteError,
    Finding,
    OrderNotShuffledError,
    Report,
)
from pitfalls._sources import Source, add_note, article, call_within, resolve
from pitfalls._tree import Parts, as_array, flatten_at, split_batch


def _epochs(
    source: Source, steps_per_epoch: int | None, timeout: float | None, unpack: Any
) -> Iterator[tuple[list[bytes], int]]:
    """Successive epochs of ``source``: each the fingerprints of its samples, and its batches.

    With ``steps_per_epoch``: consecutive runs of that many batches from one
    stream, as Keras' ``fit(steps_per_epoch=)`` reads. Indexable: indices
    0..n-1, ``on_epoch_end()``, again. Otherwise: full iterations of a finite
    source (``iter`` again, or the factory called again; an iterator gives one
    epoch only). Each batch is fingerprinted the moment it is read, before the
    source can write to it.
    """
    length = source.length if source.kind == "indexable" else None
    if steps_per_epoch is not None or length is not None:
        count = steps_per_epoch if steps_per_epoch is not None else length
        stream = source.batches()  # by index, with on_epoch_end between epochs
        drawn = 0
        while True:
            epoch = _fingerprints(stream, count, timeout, unpack, drawn)
            drawn += epoch[1]
            yield epoch
    yield _fingerprints(source.batches(), None, timeout, unpack, 0)
    if not source.rereadable:
        raise ValueError(
            f"source is {article(type(source.obj).__qualname__)} ({article(source.kind)}),"
            " which can be read only once: pass its factory (a generator function or"
            " class), an iterable, or steps_per_epoch= for an"
            " endless stream of epochs"
        )
    drawn = 0
    while True:
        fresh = source.fresh()
        yield _fingerprints(fresh.batches(), None, timeout, unpack, drawn)


def _read_epochs(
    source: Any, steps_per_epoch: int | None, timeout: Any, unpack: Any
) -> tuple[list[bytes], list[bytes], int, Source]:
    """Two epochs' sample fingerprints (see :func:`_epochs`), the batches in one, the source."""
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    resolved = resolve(source)
    epochs = _epochs(resolved, steps_per_epoch, timeout, unpack)
    first = next(epochs)
    second = next(epochs)
    if steps_per_epoch is not None and second[1] < steps_per_epoch:
        raise ValueError(
            f"source stopped after {first[1] + second[1]} batches; two epochs of"
            f" steps_per_epoch={steps_per_epoch} need {2 * steps_per_epoch}"
        )
    if first[1] == 0:
        raise ValueError("source yielded no batches")
    return first[0], second[0], first[1], resolved


_MAX_BATCHES = 100_000


def _fingerprints(
    stream: Iterator[Any], count: int | None, timeout: float | None, unpack: Any, start: int
) -> tuple[list[bytes], int]:
    """Fingerprints of the samples of up to ``count`` batches (all, if None), and the batches."""
    samples: list[bytes] = []
    batches = 0
    while count is None or batches < count:
        if count is None and batches >= _MAX_BATCHES:
            raise ValueError(
                f"source yielded more than {_MAX_BATCHES} batches in one epoch: if it is"
                " endless, pass steps_per_epoch="
            )
        try:
            batch = call_within(lambda: next(stream), timeout, f"yield batch {start + batches}")
        except StopIteration:
            break
        except TimeoutError:
            raise
        except Exception as exc:
            add_note(exc, f"pitfalls: raised by the source while reading batch {start + batches}")
            raise
        samples += _samples(split_batch(batch, start + batches, unpack), start + batches)
        batches += 1
    return samples, batches


def _samples(parts: Parts, b: int) -> list[bytes]:
    """One fingerprint per sample: a copy of the bytes of its row in every input array."""
    leaves = flatten_at(parts.inputs, parts.inputs_path).leaves
    arrays = [as_array(leaf, path) for path, leaf in leaves]
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise ValueError(f"batch {b}: inputs need a batch axis to be split into samples")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"batch {b}: input arrays disagree on the batch size")
    rows = [np.ascontiguousarray(a).reshape(n, -1) for a in arrays]
    return [b"".join(r[i].tobytes() for r in rows) for i in range(n)]


def _params(steps_per_epoch: int | None, batches: int) -> dict[str, Any]:
    return {"steps_per_epoch": steps_per_epoch if steps_per_epoch is not None else batches}


def check_epoch_repeatable(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Do two epochs hold the same samples (in any order)?

    Fails when preprocessing writes into the stored dataset, e.g. ``x /= 255``
    on a slice (a view) of it: the second epoch then sees the data transformed
    twice. Random augmentation also fails it; check with augmentation off. Each
    epoch's samples are fingerprinted as they are read (copies of their bytes),
    so memory is about one epoch of inputs.
    """
    first, second, batches, resolved = _read_epochs(source, steps_per_epoch, timeout, unpack)
    missing = Counter(first) - Counter(second)
    findings: tuple[Finding, ...] = ()
    if missing or len(first) != len(second):
        lost = sum(missing.values())
        where = [i for i, s in enumerate(first) if s in missing][:MAX_SHOWN]
        findings = (
            Finding(
                path="samples of epoch 1",
                when="in epoch 2",
                mismatched=lost,
                total=len(first),
                problem=f"{lost} / {len(first)} samples of epoch 1 are not in epoch 2"
                f" (epoch 1 had {len(first)} samples, epoch 2 {len(second)});"
                f" first missing: samples {where}",
            ),
        )
    return Report(
        check="epoch_repeatable",
        parameters=_params(steps_per_epoch, batches),
        batches=2 * batches,
        findings=findings,
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
        source=resolved.description,
    )


def check_order_shuffled(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Does the order of samples change from one epoch to the next?

    Keras shuffles arrays and ``PyDataset`` indices for you, but a Python
    generator's order is its own: ``fit(generator, shuffle=True)`` warns and
    ignores ``shuffle``. A source whose second epoch repeats the first's order
    fails. Pass ``steps_per_epoch`` for an endless generator.
    """
    first, second, batches, resolved = _read_epochs(source, steps_per_epoch, timeout, unpack)
    findings: tuple[Finding, ...] = ()
    if first == second:
        findings = (
            Finding(
                path="sample order",
                when="epoch 2",
                mismatched=len(first),
                total=len(first),
                problem=f"epoch 2 repeats epoch 1's order of all {len(first)} samples",
            ),
        )
    return Report(
        check="order_shuffled",
        parameters=_params(steps_per_epoch, batches),
        batches=2 * batches,
        findings=findings,
        reason=(
            "Every epoch visits the samples in the same order: nothing shuffles them, and"
            " Keras does not shuffle a generator (fit(..., shuffle=True) only warns)."
        ),
        hint=(
            "permute inside the generator each epoch (order = rng.permutation(n)), or use"
            " a keras.utils.PyDataset / tf.data pipeline that shuffles."
        ),
        summary=f"epoch 2 reorders epoch 1's {len(first)} samples",
        source=resolved.description,
    )


def assert_epoch_repeatable(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    msg: str | None = None,
) -> None:
    """Fail when a second epoch holds other samples. See :func:`check_epoch_repeatable`."""
    __tracebackhide__ = True
    report = check_epoch_repeatable(
        source, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack
    )
    if not report.ok:
        raise EpochChangedError(report, msg)


def assert_order_shuffled(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    msg: str | None = None,
) -> None:
    """Fail when epoch 2 repeats epoch 1's order. See :func:`check_order_shuffled`."""
    __tracebackhide__ = True
    report = check_order_shuffled(
        source, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack
    )
    if not report.ok:
        raise OrderNotShuffledError(report, msg)


def check_epoch_complete(
    source: Any,
    dataset: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Report:
    """Does one epoch of ``source`` deliver every sample of ``dataset`` exactly once?

    ``dataset`` holds the samples on axis 0 (an array, or the same nesting as
    the batches' inputs). One epoch is read as for :func:`check_epoch_repeatable`
    (or ``steps_per_epoch`` batches) and compared as a multiset: samples seen
    twice, samples never seen, and samples not in ``dataset`` are reported.
    Made for what several workers deliver: a generator or iterator shared by
    threads without a lock duplicates and drops batches silently; Keras'
    ordered enqueuer and a DataLoader's sampler deliver each index once.
    """
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reference = _samples(Parts(dataset, None, "dataset", ""), -1)
    resolved = resolve(source)
    seen_list, batches = next(_epochs(resolved, steps_per_epoch, timeout, unpack))
    wanted = Counter(reference)
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
                path="samples",
                when="duplicated",
                mismatched=extra,
                total=total,
                problem=f"{extra} extra deliveries of {len(twice)} samples;"
                f" first: {twice[:MAX_SHOWN]}",
            )
        )
    if missing:
        findings.append(
            Finding(
                path="samples",
                when="dropped",
                mismatched=len(missing),
                total=total,
                problem=f"{len(missing)} / {total} samples never delivered;"
                f" first: {missing[:MAX_SHOWN]}",
            )
        )
    if strangers:
        findings.append(
            Finding(
                path="samples",
                when="not in dataset",
                mismatched=strangers,
                total=len(seen_list),
                problem=f"{strangers} delivered samples are not rows of dataset",
            )
        )
    return Report(
        check="epoch_complete",
        parameters={"steps_per_epoch": batches, "samples": total},
        batches=batches,
        findings=tuple(findings),
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
        source=resolved.description,
    )


def assert_epoch_complete(
    source: Any,
    dataset: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    msg: str | None = None,
) -> None:
    """Fail unless an epoch delivers every sample exactly once (:func:`check_epoch_complete`)."""
    __tracebackhide__ = True
    report = check_epoch_complete(
        source, dataset, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack
    )
    if not report.ok:
        raise EpochIncompleteError(report, msg)
