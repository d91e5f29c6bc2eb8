"""Across epochs: is the data the same, does its order change, is every sample delivered?

Epochs are read from the source and compared sample by sample, where a sample
is one row (axis 0) of every input array of a batch, fingerprinted by its
bytes the moment it is read (:mod:`pitfalls._fingerprint`). *Repeatable*: the
second epoch holds the same samples as the first, in any order, paired with the
same targets (in-place preprocessing breaks this). *Shuffled*: two consecutive
epochs, read as training reads them, differ in order and in batch membership
(a generator ignores Keras' ``shuffle=True``). *Complete*: an epoch delivers
every sample of a dataset once.

A verdict needs evidence (:class:`pitfalls.Cause`). Random augmentation changes
the samples at every read, so the repeatable check reads under controlled
randomness (:mod:`pitfalls._randomness`): before each read every RNG pitfalls
can reach is reseeded, the same way for the reads compared; ``reseed=`` and
:func:`pitfalls.register_random` reach the others. The order check reads first
as training does, nothing reseeded, then, only where augmentation hides the
order, with each read reseeded and its generators put back. Where randomness
still makes two epochs incomparable, the report is inconclusive and says why;
it never passes for it, and never fails for it.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._aliasing import source_style
from pitfalls._boundary import asserting, checker
from pitfalls._frameworks import tfdata
from pitfalls._randomness import (
    FRESH_ENTROPY,
    Change,
    Randomness,
    changed_rows,
    fresh_entropy,
    held_by,
    source_state,
    state_changed,
    stored_arrays,
)
from pitfalls._report import MAX_SHOWN, Cause, Finding, Report, Unjudged
from pitfalls._sources import Source, add_note, article, call_within, resolve
from pitfalls._tree import _MAX_DEPTH, LeafError, Parts, as_array, flatten_at, split_batch

_EPOCH_SEED = 1_000_003
"""Reseeds the RNGs before an epoch starts (``on_epoch_end``, ``iter()``); epoch e adds e."""
_BUILD_SEED = 1_000_033
"""Reseeds the RNGs (TensorFlow's global seed too) before a tf.data pipeline is built."""
_ENDLESS = (5_000, 1_000_000, 2**29)
"""An epoch with no end in sight: this many batches, samples or bytes of inputs read
(whichever comes first) without the source stopping or a length saying where it stops.
Each sample read costs a 16-byte digest; 512 MB take seconds to read."""


@dataclass
class Epoch:
    """One epoch as read: fingerprints of its samples and their targets, per batch."""

    batches: list[list[bytes]] = field(default_factory=list)
    """Per batch, one fingerprint per sample (a 16-byte digest of its input bytes)."""
    targets: list[list[bytes]] | None = field(default_factory=list)
    """Per batch, one fingerprint per sample's targets; None when batches have none."""
    nbytes: int = 0
    """Bytes of inputs read."""

    @property
    def samples(self) -> list[bytes]:
        return [s for batch in self.batches for s in batch]

    @property
    def sample_targets(self) -> list[bytes] | None:
        return None if self.targets is None else [t for batch in self.targets for t in batch]


Layout = tuple[tuple[tuple[int, ...], str], ...]
"""Per array of a sample (in leaf order): its shape without the sample axis, its dtype."""


def _layout(arrays: list[np.ndarray]) -> Layout:
    return tuple((tuple(a.shape[1:]), a.dtype.str) for a in arrays)


def _arrays(leaves: list[tuple[str, Any]], b: int, what: str) -> list[np.ndarray] | None:
    arrays = [as_array(leaf, path) for path, leaf in leaves]
    if not arrays or any(a.ndim == 0 for a in arrays):
        if what == "targets":
            return None
        if what == "dataset":
            scalar = next((path for (path, _), a in zip(leaves, arrays) if a.ndim == 0), None)
            raise ValueError(
                f"{_DATASET}; " + (f"{scalar} is a scalar" if scalar else "it holds no array")
            )
        raise ValueError(f"batch {b}: inputs need a batch axis to be split into samples")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        if what == "targets":
            return None
        if what == "dataset":
            sizes = ", ".join(f"{path} {len(a)}" for (path, _), a in zip(leaves, arrays))
            raise ValueError(f"{_DATASET}; its arrays disagree on the number of samples: {sizes}")
        raise ValueError(f"batch {b}: input arrays disagree on the batch size")
    return arrays


def _input_arrays(parts: Parts, b: int) -> list[np.ndarray]:
    arrays = _arrays(list(flatten_at(parts.inputs, parts.inputs_path).leaves), b, "inputs")
    assert arrays is not None
    return arrays


def _samples(parts: Parts, b: int) -> list[bytes]:
    """One fingerprint per sample: a digest of the bytes of its row in every input array."""
    arrays = _input_arrays(parts, b)
    return fingerprint.samples(arrays, len(arrays[0]))


_DATASET = (
    "dataset must hold the samples on axis 0: an array, a nested list of numbers (read"
    " as one array), or the nesting of the batches' inputs"
)


def _numbers_only(node: Any, depth: int = 0) -> bool:
    """A list or tuple, nested or not, of Python or numpy numbers (no array in it).

    Nested deeper than a batch may be, it is not: flattening it then says so.
    """
    if isinstance(node, (list, tuple)):
        return depth < _MAX_DEPTH and all(_numbers_only(item, depth + 1) for item in node)
    return isinstance(node, (bool, int, float, complex, np.number, np.bool_))


def _dataset_rows(dataset: Any) -> tuple[list[bytes], Layout]:
    """One fingerprint per sample of ``dataset``, as :func:`_samples` takes a batch's,
    and the layout of a sample (compared with the batches' before any verdict).

    A nested list of numbers (``[[1, 2], [3, 4]]``: no array in it, so it cannot be
    the nesting of the inputs, whose leaves need a sample axis) is read as the
    array numpy makes of it, its rows the samples.
    """
    if dataset is None or isinstance(dataset, (str, bytes)):
        raise TypeError(f"{_DATASET}; got {validate.got(dataset)}")
    if isinstance(dataset, (list, tuple)) and _numbers_only(dataset):
        try:
            dataset = np.asarray(dataset)
        except ValueError as exc:  # ragged: rows of different lengths
            raise ValueError(
                f"{_DATASET}; this nested list is ragged, not one array ({exc})"
            ) from None
    try:
        arrays = _arrays(list(flatten_at(dataset, "dataset").leaves), -1, "dataset")
    except LeafError as exc:  # an object that is no array: in the words of dataset
        raise TypeError(f"{_DATASET}; {exc}".replace("a batch leaf", "a leaf")) from None
    assert arrays is not None
    return fingerprint.samples(arrays, len(arrays[0])), _layout(arrays)


def _target_rows(parts: Parts, b: int, n: int) -> list[bytes] | None:
    if parts.targets is None:
        return None
    try:
        arrays = _arrays(list(flatten_at(parts.targets, parts.targets_path).leaves), b, "targets")
    except Exception:  # targets that are not arrays: no evidence from them
        return None
    if arrays is None or len(arrays[0]) != n:
        return None
    return fingerprint.samples(arrays, n)


def _next_batch(get: Callable[[], Any], index: int, timeout: float | None) -> Any:
    """``get()``, bounded by ``timeout``; what the source raises carries a note saying so.

    StopIteration ends the epoch (passed on). Memory running out is not blamed on the
    source: the check holds what it read too.
    """
    try:
        return call_within(get, timeout, f"yield batch {index}")
    except (StopIteration, TimeoutError):
        raise
    except MemoryError as exc:
        add_note(exc, f"pitfalls: memory ran out while reading batch {index} of the source")
        raise
    except Exception as exc:
        add_note(exc, f"pitfalls: raised by the source while reading batch {index}")
        raise


def _endless(
    batches: int, samples: int, nbytes: int, length: int | None, data_bytes: int = 0
) -> str:
    """Why an epoch read this far has no end in sight, or ""; a length (of batches, or of
    the dataset's samples) raises the limits, and so does the dataset's size in bytes."""
    scale = 1 if length is None else max(1, -(-2 * length // _ENDLESS[0]))
    limits = [limit * scale for limit in _ENDLESS]
    limits[2] = max(limits[2], 2 * data_bytes)
    if batches < limits[0] and samples < limits[1] and nbytes < limits[2]:
        return ""
    size = (
        f"{nbytes / 2**20:.0f} MB"
        if nbytes >= 2**20
        else f"{nbytes / 2**10:.0f} kB"
        if nbytes >= 2**10
        else f"{nbytes} bytes"
    )
    return (
        f"source has no end after {batches} batches ({samples} samples, {size} of inputs)"
        " in one epoch: pass steps_per_epoch=, the batches of one epoch, if it is endless"
        " (or if its epochs are longer still)"
    )


class _Reader:
    """Reads epochs of a source, each read under :class:`Randomness` control.

    Indexable: ``on_epoch_end()`` (when ``transition``) then indices 0..n-1,
    each read after reseeding with its position. Otherwise an epoch starts
    with ``iter()``, a fresh copy from the factory, or (``steps_per_epoch``)
    the next stretch of one stream (started again where it ends between two
    epochs); its first batch is read right after the epoch's reseed (a
    permutation drawn lazily, at the first ``next()``, follows the epoch's
    seed), later ones after reseeding with their position.

    A tf.data pipeline with a factory is built again under a fixed seed
    (``build``), so that its random ops have seeds (see :mod:`pitfalls._frameworks.tfdata`):
    every iteration then replays the same random numbers, as the comparison of
    two epochs' samples needs. The order check reads the pipeline as the user
    built it instead: seeded, a random op drawn once per epoch (Hugging Face's
    ``to_tf_dataset(shuffle=True)`` draws its permutation so) would repeat.
    Either is read on one thread, reseeded only as each iteration starts (its
    threads read ahead of ``next()``).
    """

    def __init__(
        self,
        source: Source,
        steps_per_epoch: int | None,
        timeout: float | None,
        unpack: Any,
        randomness: Randomness,
        *,
        build: bool = True,
    ) -> None:
        self.steps = steps_per_epoch
        self.timeout = timeout
        self.unpack = unpack
        self.rnd = randomness
        self.read = 0
        self.epochs = 0
        self.seeds: list[int] = []
        """The seed each epoch was started under, in order (for :meth:`again`)."""
        self.reads = "seeded"
        """How reads are made: ``"seeded"`` (each after reseeding with its position),
        ``"natural"`` (watched, nothing reseeded: as training reads), ``"kept"`` (reseeded
        with the position, then every generator put back where the read found it, so
        that what an epoch's start draws goes on as in training)."""
        self.indexable = source.kind == "indexable"
        self.tf = tfdata.is_dataset(source.obj)
        self.rebuilt = False
        """A tf.data pipeline built again by its factory, under :data:`_BUILD_SEED`."""
        if self.tf:
            tfdata.keep_if_from_hf(source.obj)
        if build and self.tf and source.made_by is not None:
            source = self._build(source)
        self.source = source
        self.graph = tfdata.graph(source.obj) if self.tf else None
        self.stream: Iterator[Any] | None = None
        self.current: Any = source.obj
        self.library = frameworks.library_of(source.obj)
        if self.indexable:
            length = source.length
            if steps_per_epoch is None and length is None:
                raise ValueError(
                    "source has no length (num_batches is None): pass steps_per_epoch="
                )
            if steps_per_epoch is not None and length is not None and steps_per_epoch > length:
                raise ValueError(
                    f"steps_per_epoch={steps_per_epoch} is more than the {length} batches"
                    " of source; an epoch of an indexable source reads each index once"
                )
            self.count: int | None = steps_per_epoch if steps_per_epoch is not None else length
        else:
            self.count = steps_per_epoch
            if steps_per_epoch is not None:
                self.rnd.control(_EPOCH_SEED)
                self.stream = self._start(source)
                self.rnd.add_root("stream", self.stream)
        self.state_changed: list[str] = []
        """Attributes of the source's own objects that its reads changed (a counter)."""
        self.iterables: list[str] = []
        """Names of RNGs found in an epoch's own iterator (made anew each epoch)."""
        self._stream_rngs: dict[str, int] = {}
        """The objects of a stream's local RNGs at the last epoch's start, by name."""
        self.late = False
        """The last epoch of a stream found RNGs as it read (a generator's locals exist
        once it runs): they were not reseeded as it started, so it is no reference."""
        if self.library == "torch":
            self.rnd.orders.update(id(g) for g in frameworks.torch.order_generators(source.obj))

    def _build(self, source: Source) -> Source:
        """``source`` made again by its factory under :data:`_BUILD_SEED`."""
        self.rnd.control(_BUILD_SEED)
        self.rebuilt = True
        built = source.fresh()
        tfdata.keep_if_from_hf(built.obj)
        return built

    def _start(self, source: Source) -> Iterator[Any]:
        """An iterator over one epoch (or, ``steps_per_epoch``, a stream) of ``source``."""
        if not self.tf:
            it = source.batches()
        else:
            try:
                it = iter(tfdata.one_thread(source.obj))
            except Exception as exc:
                add_note(
                    exc, f"pitfalls: raised by iter() of the source {type(source.obj).__qualname__}"
                )
                raise
        self.library = self.library or frameworks.library_of(it)
        return it

    @property
    def replayable(self) -> bool:
        """Can the same epoch be started again from the same seed?"""
        if self.tf:
            return self.rebuilt and self.stream is None
        if self.stream is not None:  # its next epoch, under the same seeds as the last
            return not self.late
        return self.indexable or self.source.rereadable

    def epoch(self, seed: int | None, *, transition: bool = True) -> Epoch:
        """Read one epoch; start it under ``seed`` (``transition=False``: same indices again;
        None: nothing reseeded as it starts, as training goes from one epoch to the next)."""
        self.epochs += 1
        self.seeds.append(seed if seed is not None else -1)
        if self.indexable:
            if transition:
                if seed is not None:
                    self.rnd.control(seed)
                end = getattr(self.source.obj, "on_epoch_end", None)
                if callable(end):
                    end()
            return self._read(lambda i: self.source.obj[i], first_seeded=True)
        if self.stream is not None:
            if not self.tf and seed is not None:  # its threads read ahead: reseeded as it
                self.rnd.control(seed)  # started, only
            elif seed is None:
                self.rnd.mark()
            known = set(self.rnd.rngs)
            epoch = self._read(self._next_in_stream, first_seeded=False, iterator=None)
            self.late = bool(set(self.rnd.rngs) - known)
            return epoch
        if seed is not None:
            self.rnd.control(seed)
        else:
            self.rnd.mark()  # what iter() draws (a DataLoader's seeds) counts as the start
        once = self.source.kind in ("generator", "iterator")
        src = self.source.fresh() if once and self.epochs > 1 else self.source
        if self.epochs > 1 and not self.source.rereadable:
            kind, name = self.source.kind, type(self.source.obj).__qualname__
            what = article(kind) if name == kind else f"{article(name)} ({article(kind)})"
            raise ValueError(
                f"source is {what}, which can be read only once: pass its"
                " factory (a generator function or class), an iterable, or"
                " steps_per_epoch= for an endless stream of epochs"
            )
        it = self._start(src)
        self.current = src.obj
        self.rnd.add_root("iterator", it)
        return self._read(lambda i: next(it), first_seeded=False, iterator=it)

    def again(self, k: int | None = None) -> Epoch:
        """Epoch ``k`` (1-based; the last by default) read once more, as it was read: from
        the same seed; a tf.data pipeline is built again and read up to it (its
        iterations draw new orders from seeds held inside it)."""
        seeds = list(self.seeds)
        k = len(seeds) if k is None else k
        if not self.tf:
            return self.epoch(seeds[k - 1], transition=not self.indexable)
        self.source = self._build(self.source)
        self.current = self.source.obj
        epoch = Epoch()
        for seed in seeds[:k]:
            epoch = self.epoch(seed)
        self.seeds = [*seeds, seeds[k - 1]]
        return epoch

    def _next_in_stream(self, b: int) -> Any:
        assert self.stream is not None
        return next(self.stream)

    def _restart(self) -> bool:
        """Start the stream again where it ended between two epochs (as an iterable's next
        ``iter()``, or its factory's next generator); False when it cannot be."""
        if self.source.kind in ("generator", "iterator"):
            if self.source.made_by is None:
                return False
            self.source = self.source.fresh()
        self.stream = self._start(self.source)
        self.rnd.add_root("stream", self.stream)
        return True

    def _read(
        self, get: Callable[[int], Any], *, first_seeded: bool, iterator: Any = None
    ) -> Epoch:
        epoch = Epoch()
        b = samples = 0
        restarted = False
        state = source_state(self.current)
        length = self.source.length
        # a pipeline's threads read ahead of next(): no reseeding
        per_read = not self.tf and self.reads != "natural"
        while self.count is None or b < self.count:
            if self.count is None:
                endless = _endless(b, samples, epoch.nbytes, length)
                if endless:
                    raise ValueError(endless)
            kept = None
            if per_read and (b > 0 or first_seeded):
                kept = self.rnd.states() if self.reads == "kept" else None
                self.rnd.control(b)
            elif self.reads != "seeded" and (b > 0 or first_seeded):
                self.rnd.mark()  # the first batch of an iterator: watched since iter()
            index = self.read
            try:
                batch = _next_batch(functools.partial(get, b), index, self.timeout)
            except StopIteration:
                between = b == 0 and self.stream is not None and self.epochs > 1
                if between and not restarted and self._restart():
                    restarted = True  # get reads self.stream: the new one
                    continue
                break
            at_start = iterator is not None and b == 0
            self.rnd.drew(at_start=at_start)
            if kept is not None:
                self.rnd.put_back(kept)
            if b == 0 and iterator is not None:
                before = set(self.rnd.rngs)
                self.rnd.rescan()  # a generator's locals exist once it runs
                self.iterables += [n for n in self.rnd.rngs if n not in before and "()'s " in n]
            elif b == 0 and self.stream is not None:  # one generator, epoch after epoch
                self._remade_in_stream()
            parts = split_batch(batch, index, self.unpack)
            arrays = _input_arrays(parts, index)
            n = len(arrays[0])
            epoch.batches.append(fingerprint.samples(arrays, n))
            epoch.nbytes += sum(a.nbytes for a in arrays)
            samples += n
            rows = _target_rows(parts, index, n)
            if rows is None or epoch.targets is None:
                epoch.targets = None
            else:
                epoch.targets.append(rows)
            self.read += 1
            b += 1
        if self.steps is not None and b < self.steps:
            count = {1: "one", 2: "two", 3: "three"}.get(self.epochs, str(self.epochs))
            raise ValueError(
                f"source stopped after {self.read} batches; {count} epochs of"
                f" steps_per_epoch={self.steps} need {self.epochs * self.steps}"
            )
        if b == 0:
            raise ValueError("source yielded no batches")
        changed = state_changed(state, source_state(self.current))
        self.state_changed += [name for name in changed if name not in self.state_changed]
        if b == 1 and iterator is not None:  # its first batch is all of it: drawn per read
            self.rnd.per_read()
        return epoch

    def _remade_in_stream(self) -> None:
        """Note the generator's local RNGs that are other objects than at the last epoch's
        start: made anew inside its epoch loop (``rng = default_rng(0)`` under ``while
        True:``)."""
        self.rnd.rescan()
        ids = {n: id(obj) for n, (obj, _) in self.rnd.rngs.items() if "()'s " in n}
        for name, made in ids.items():
            if self._stream_rngs.get(name, made) != made and name not in self.iterables:
                self.iterables.append(name)
        self._stream_rngs = ids

    def held(self) -> Any:
        """What the source holds now: the object, this epoch's copy, iterators, the factory."""
        roots = [("self", self.source.obj)]
        if self.current is not self.source.obj:
            roots.append(("self", self.current))
        return held_by(roots + self.rnd.roots[1:])


def _roots(source: Source) -> list[tuple[str, Any]]:
    """Where the source's own RNGs may be: the object, and the factory that made it."""
    roots = [("self" if source.kind in ("indexable", "iterable") else "source", source.obj)]
    return roots + ([("factory", source.made_by)] if source.made_by is not None else [])


def _setup(
    source: Any, steps_per_epoch: Any, timeout: Any, unpack: Any, reseed: Any
) -> tuple[Source, int | None, float | None, Any, Any]:
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reseed = validate.optional_function("reseed", reseed)
    return resolve(source), steps_per_epoch, timeout, unpack, reseed


def _params(steps_per_epoch: int | None, batches: int, reseed: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "steps_per_epoch": steps_per_epoch if steps_per_epoch is not None else batches
    }
    if reseed is not None:
        params["reseed"] = reseed
    return params


def _random_per_read(rnd: Randomness, what: str) -> str:
    drew = ", ".join(name for name, _ in rnd.seen.most_common(3)) or "your reseed= hook"
    return (
        f"The source is random per read (it drew from {drew}), and {what} even with every"
        " generator pitfalls can reach reseeded alike before each read, so the"
        " difference may be randomness pitfalls cannot reach (a generator in a closure,"
        " in another module, or TensorFlow ops in a tf.function) as well as a bug. Pass reseed=, a"
        " function that reseeds your generators from its seed argument (for"
        " self.rng: lambda seed: ...), or check with the augmentation turned off."
    )


# epoch_repeatable -------------------------------------------------------------------


def _repeatable_text(
    style: str, where: str, library: str | None = None, persistent: int = 0
) -> tuple[str, str]:
    """(reason, hint) for an epoch that changed: by the kind of source and the evidence.

    ``where`` is ``"read"`` (reading the same batches again changed them),
    ``"on_epoch_end"`` (it rewrote stored arrays), ``"epoch"`` (epoch 2
    holds other samples), or ``"persistent workers"``
    (a write the blame found, in a dataset a DataLoader's ``persistent`` worker
    processes keep). ``library`` is the loader's (:func:`framework`): a torch
    Dataset's fix is in ``__getitem__``.
    """
    if where == "on_epoch_end":
        return (
            "on_epoch_end rewrote the data the source holds (see the note): the next epoch"
            " trains on other samples than this one.",
            "in on_epoch_end only reorder (shuffle an index array: self.rng.shuffle"
            "(self.indices)); never transform the stored samples there, nor resample them"
            " with replacement.",
        )
    if where == "pairs":
        return (
            "The second epoch pairs its inputs with other targets than the first: the inputs"
            " were reordered apart from their targets (np.random.shuffle(self.x) without"
            " self.y), so from epoch 2 on the model learns from wrong targets.",
            "reorder an index array and read inputs and targets through it"
            " (self.rng.shuffle(self.indices); x = self.x[self.indices[rows]], the same for"
            " y), or reorder both with one permutation: p = rng.permutation(len(self.x));"
            " self.x, self.y = self.x[p], self.y[p].",
        )
    if where == "state":
        return (
            "The second epoch holds other samples than the first: reading changes the"
            " source's own state (see the note), a counter or a position its batches drift"
            " with, so every epoch trains on other data.",
            "make each batch depend on its index (or the epoch's order) and the stored data"
            " alone: keep counters and positions out of the read.",
        )
    example = "x /= 255 on a slice"
    if library == "torch":
        example = "row -= mean or row.sub_(mean) on row = self.x[i]"
    reason = (
        "The second epoch holds other samples than the first: the data changed between"
        " epochs, typically preprocessing written into the stored dataset through a view"
        f" ({example}), so every epoch trains on data transformed once more."
    )
    if where == "persistent workers":
        reason = (
            "The second epoch holds other samples than the first: reading writes the data the"
            f" source holds ({example}; the line is under Written at, found by reading a copy"
            f" with num_workers=0), and the DataLoader's {persistent} persistent worker"
            " processes keep their copies of the dataset across epochs, so every epoch trains"
            " on data transformed once more."
        )
    if where == "read":
        reason = (
            "Reading the same batches again gave other samples: reading writes the data the"
            " source holds, typically preprocessing done in place through a view"
            f" ({example}), so every epoch trains on data transformed once more."
        )
    if library == "torch":
        return reason, (
            "transform a copy inside the Dataset's __getitem__ (row = self.x[i] - mean makes"
            " one; so does self.x[i].clone()), never the stored tensor in place (-=, sub_,"
            " mul_ on self.x[i] write it); or preprocess once, before training."
        )
    hints = {
        "dataset": "transform a copy inside __getitem__ (x = self.images[rows] / 255 makes"
        " one), never a slice of the stored data in place; or preprocess once, in __init__.",
        "loader": "transform a copy inside __iter__ (x = self.images[a:b] / 255 makes one),"
        " never a slice of the stored data in place; or preprocess once, before training.",
    }
    default = (
        "transform a copy (x = data[rows] / 255 makes one), never a slice of the stored"
        " data in place; or preprocess once, before training."
    )
    return reason, hints.get(style, default)


def _change_note(changes: tuple[Change, ...], when: str) -> str:
    parts = [f"{c.name} ({c.changed} of {c.rows} rows)" for c in changes[:MAX_SHOWN]]
    return f"Stored data written {when}: " + ", ".join(parts) + "."


def _missing(first: list[bytes], second: list[bytes], path: str, when: str) -> Finding:
    missing = Counter(first) - Counter(second)
    lost = sum(missing.values())
    where = [i for i, s in enumerate(first) if s in missing][:MAX_SHOWN]
    return Finding(
        path=path,
        when=when,
        mismatched=lost,
        total=len(first),
        problem=f"{lost} / {len(first)} samples of epoch 1 are not in epoch 2"
        f" (epoch 1 had {len(first)} samples, epoch 2 {len(second)});"
        f" first missing: samples {where}",
    )


def _changed_reads(first: Epoch, again: Epoch) -> Finding:
    a, b = first.samples, again.samples
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    differ += list(range(min(len(a), len(b)), max(len(a), len(b))))
    return Finding(
        path="samples of epoch 1",
        when="read again",
        mismatched=len(differ),
        total=len(a),
        problem=f"{len(differ)} / {len(a)} samples differ when the same indices are read"
        f" again under the same seeds; first: samples {differ[:MAX_SHOWN]}",
    )


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
    (``len = floor(n / batch_size)`` under shuffling): passed, with a note.

    It fails only on evidence (``report.cause``): an array the source holds
    (the same object, at any size) that reading changed
    (``STORED_DATA_WRITTEN``), or an attribute of the source's own objects the
    reads changed, a counter (``SOURCE_STATE_CHANGED``). Epochs that differ
    with neither witness are inconclusive, never failed and never passed:
    randomness pitfalls cannot reach looks the same as a bug it cannot see.
    """
    from pitfalls import _blame  # imported when first needed

    resolved, steps_per_epoch, timeout, unpack, reseed = _setup(
        source, steps_per_epoch, timeout, unpack, reseed
    )
    style = source_style(resolved)
    with Randomness(_roots(resolved), reseed) as rnd:
        reader = _Reader(resolved, steps_per_epoch, timeout, unpack, rnd)
        verdict = (_repeatable_indexable if reader.indexable else _repeatable_stream)(reader)
    findings, where, notes, inconclusive, batches, summary = verdict
    torch = frameworks.torch
    persistent = torch.workers(resolved.obj) if torch.persistent(resolved.obj) else 0
    unexplained = where.startswith("unexplained")
    if unexplained and reader.state_changed and not persistent:
        shown = ", ".join(reader.state_changed[:MAX_SHOWN])
        where, inconclusive = "state", ""  # the evidence: what the reads changed
        notes = [*notes, f"Reading changed the source's own state: {shown}."]
    elif inconclusive and not (unexplained and persistent):
        findings = ()  # what differs without evidence is no finding
    blame = (
        _blame.blame_epochs(
            resolved, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack
        )
        if findings
        else None
    )
    if findings and unexplained and persistent:
        if blame is not None and blame.found:
            where, inconclusive = "persistent workers", ""  # the write, found in this process
        else:
            findings, blame = (), None
            inconclusive = Unjudged(
                Cause.UNOBSERVED_CODE,
                "The second epoch holds other samples than the first, but the DataLoader's"
                f" {persistent} persistent worker processes keep their own copies of the"
                " dataset across epochs, out of pitfalls' reach: a random generator there"
                " goes on from where it was (pitfalls cannot reseed it), and a write there"
                " cannot be seen; reading a copy with num_workers=0 found no write. Check"
                " with persistent_workers=False, whose workers start every epoch from the"
                " dataset as it is in this process, under the loader's seed.",
            )
    reason, hint = _repeatable_text(style, where, reader.library, persistent)
    note = rnd.note()
    return Report(
        check="epoch_repeatable",
        cause={"state": Cause.SOURCE_STATE_CHANGED, "pairs": Cause.PAIRS_CHANGED}.get(
            where, Cause.STORED_DATA_WRITTEN
        ),
        parameters=_params(steps_per_epoch, batches, reseed),
        batches=reader.read,
        findings=findings,
        inconclusive=inconclusive,
        reason=reason,
        hint=hint,
        notes=tuple(notes) + ((note,) if note else ()),
        summary=summary,
        source=resolved.description,
        blame=blame,
    )


_Verdict = tuple[tuple[Finding, ...], str, list[str], str, int, str]


def _repeatable_indexable(reader: _Reader) -> _Verdict:
    rnd = reader.rnd
    first = reader.epoch(_EPOCH_SEED, transition=False)  # as Keras' first epoch
    n, batches = len(first.samples), len(first.batches)
    stored = stored_arrays(reader.held(), 2 * max(len(b) for b in first.batches))
    if not rnd.random:  # reads draw nothing: epoch 2 against epoch 1, sample by sample
        return _compare_epochs(reader, first, stored)
    again = reader.epoch(_EPOCH_SEED, transition=False)
    if again.batches != first.batches:
        changes = changed_rows(stored)
        if changes:
            note = _change_note(changes, "while reading")
            return (_changed_reads(first, again),), "read", [note], "", batches, ""
        what = "reading the same indices again gave other samples"
        where = "read" if rnd.random else "unexplained read"
        findings = (_changed_reads(first, again),)
        hidden = _unexplained(rnd, what, stored, lambda: reader.source.obj[0])
        return findings, where, [], hidden, batches, ""
    second = reader.epoch(_EPOCH_SEED)  # after on_epoch_end()
    repaired = _repaired(again, second)
    if repaired is not None:
        return repaired
    if Counter(second.samples) == Counter(again.samples):
        return (), "epoch", [], "", batches, f"epoch 2 holds the same {n} samples as epoch 1"
    missing = (_missing(again.samples, second.samples, "samples of epoch 1", "in epoch 2"),)
    changes = changed_rows(stored)
    remainder = _remainder_verdict(again, second, changes)
    if remainder is not None:
        return remainder
    if changes:
        return missing, "on_epoch_end", [_change_note(changes, "by on_epoch_end")], "", batches, ""
    if not rnd.random:  # reads are reproducible and draw nothing, yet nothing explains it
        what = "epoch 2 holds other samples than epoch 1"
        hidden = _unexplained(rnd, what, stored, lambda: reader.source.obj[0])
        return missing, "unexplained epoch", [], hidden, batches, ""
    if stored:
        names = ", ".join(list(stored)[:MAX_SHOWN])
        return (
            (),
            "epoch",
            [
                f"Epoch 2 was judged by the arrays the source holds ({names}): they kept"
                " their rows, so epoch 2 differs from epoch 1 only by order and augmentation."
            ],
            "",
            batches,
            f"the same indices read twice gave the same {n} samples, and on_epoch_end"
            " kept the stored data",
        )
    what = "epoch 2 holds other samples than epoch 1"
    return (), "epoch", [], _unexplained(rnd, what, stored), batches, ""


def _remainder(first: Epoch, second: Epoch) -> str:
    """A note when two epochs of full batches differ only by fewer samples than a batch
    (each left out another remainder: ``len = floor(n / batch_size)``, ``drop_last``
    under shuffling, the convention), else ""."""
    a, b = Counter(first.samples), Counter(second.samples)
    sizes = {len(batch) for batch in first.batches + second.batches}
    if len(sizes) != 1 or a.total() != b.total():
        return ""
    (size,) = sizes
    left_out = (a - b).total()
    if not 0 < left_out < size:
        return ""
    return (
        f"Epochs 1 and 2 left out different samples: {left_out} of epoch 1's are not in"
        f" epoch 2, and as many others came instead, fewer than the {size} of a batch. Each"
        " epoch leaves out the samples that do not fill a last batch, other ones as the"
        " order changes (the drop_last convention); the rest are the same samples."
    )


def _remainder_verdict(first: Epoch, second: Epoch, changes: tuple[Change, ...]) -> _Verdict | None:
    note = "" if changes else _remainder(first, second)
    if not note:
        return None
    n = len(second.samples)
    summary = f"epoch 2 holds epoch 1's samples but for a dropped remainder ({n} samples read)"
    return (), "epoch", [note], "", len(first.batches), summary


def _repaired(first: Epoch, second: Epoch) -> _Verdict | None:
    """A failed verdict when epoch 2 holds epoch 1's inputs and epoch 1's targets (but for
    a dropped remainder) paired otherwise: inputs reordered apart from their targets
    (``np.random.shuffle(self.x)`` without ``self.y``); None when it does not."""
    t1, t2 = first.sample_targets, second.sample_targets
    if t1 is None or t2 is None or len(t1) != len(first.samples) or len(t2) != len(second.samples):
        return None
    left_out = (Counter(first.samples) - Counter(second.samples)).total()
    if left_out != (Counter(second.samples) - Counter(first.samples)).total():
        return None  # other inputs, not the same ones paired otherwise
    if (Counter(t1) - Counter(t2)).total() > left_out:
        return None  # other targets: augmented, not re-paired
    pairs1, pairs2 = Counter(zip(first.samples, t1)), Counter(zip(second.samples, t2))
    moved = (pairs1 - pairs2).total() - left_out
    if moved < 2:
        return None
    n = len(first.samples)
    finding = Finding(
        path="sample pairs",
        when="epoch 2",
        mismatched=moved,
        total=n,
        problem=f"{moved} / {n} inputs of epoch 1 come with another target in epoch 2",
    )
    return (finding,), "pairs", [], "", len(first.batches), ""


def _compare_epochs(reader: _Reader, first: Epoch, stored: dict[str, Any]) -> _Verdict:
    """Epoch 2 against epoch 1 as multisets: valid when no read draws random numbers."""
    n, batches = len(first.samples), len(first.batches)
    second = reader.epoch(_EPOCH_SEED)
    repaired = _repaired(first, second)
    if repaired is not None:
        return repaired
    if Counter(first.samples) == Counter(second.samples):
        return (), "epoch", [], "", batches, f"epoch 2 holds the same {n} samples as epoch 1"
    missing = (_missing(first.samples, second.samples, "samples of epoch 1", "in epoch 2"),)
    changes = changed_rows(stored)
    remainder = _remainder_verdict(first, second, changes)
    if remainder is not None:
        return remainder
    if changes:
        return missing, "epoch", [_change_note(changes, "while reading")], "", batches, ""
    what = "epoch 2 holds other samples than epoch 1"
    if reader.tf:
        verdict = _tf_epochs(reader, first, what)
        if verdict is not None:
            return verdict
    if reader.rnd.random:  # epoch 2's reads drew, where epoch 1's did not
        return (), "epoch", [], _unexplained(reader.rnd, what, stored), batches, ""
    keys = list(reader.held().keys)
    if keys:
        return (), "epoch", [], _jax_unexplained(keys, what), batches, ""
    read = (lambda: reader.source.obj[0]) if reader.indexable else None
    hidden = _unexplained(reader.rnd, what, stored, read)
    return missing, "unexplained epoch", [], hidden, batches, ""


def _jax_unexplained(keys: list[str], what: str, compared: str = "sample by sample") -> str:
    return Unjudged(
        Cause.JAX_KEY,
        f"The source holds a JAX PRNG key ({', '.join(keys[:MAX_SHOWN])}), and {what}: a key"
        " cannot be reseeded from outside, so each epoch draws on from where the last left"
        " it (new orders and augmentations, as meant) and two epochs cannot be compared"
        f" {compared}; no array the source holds changed. Check with the augmentation"
        " turned off, or keep the key on an object (self.key) and pass reseed=lambda seed:"
        " setattr(source, 'key', jax.random.key(seed)).",
    )


def _tf_epochs(reader: _Reader, first: Epoch, what: str) -> _Verdict | None:
    """Two epochs of a tf.data pipeline that differ: explained by TensorFlow's own seeds?

    A shuffle draws a new order at every iteration, so random ops after it give
    each sample other random numbers in epoch 2. Built again under the same seed,
    the pipeline's first epoch must then be epoch 1 again (a pass); if it is not,
    or the pipeline could not be built again, its randomness is out of reach.
    """
    graph = reader.graph
    n, batches = len(first.samples), len(first.batches)
    if graph is not None and graph.reshuffles and reader.replayable:
        again = reader.again(1)
        if Counter(again.samples) == Counter(first.samples):
            anew = "reshuffled and augmented anew" if graph.random_ops else "reshuffled"
            return (
                (),
                "epoch",
                [
                    f"Epoch 2 of the pipeline came {anew}, as TensorFlow draws new seeds for"
                    " its shuffle at every iteration; the pipeline built again under the same"
                    " seed gave epoch 1's samples again."
                ],
                "",
                batches,
                f"the pipeline built again gave the same {n} samples as epoch 1",
            )
    if graph is not None and (graph.random_ops or (graph.reshuffles and not reader.rebuilt)):
        return (), "epoch", [], _tf_unreached(reader, what), batches, ""
    return None


def _tf_unreached(reader: _Reader, what: str) -> str:
    """Why a tf.data pipeline's randomness keeps two epochs apart, and what to pass."""
    graph = reader.graph
    assert graph is not None
    ops = ", ".join(graph.random_ops)
    drawn = f"random ops ({ops})" if ops else "shuffle, which draws a new order every iteration"
    if not reader.rebuilt:
        return Unjudged(
            Cause.RANDOMNESS_UNREACHED,
            f"The tf.data pipeline draws in TensorFlow {drawn}, and {what}: its ops took"
            " their seeds when it was built (none at all without tf.random.set_seed: fresh"
            " ones at every iteration), which no reseeding afterwards reaches. Pass a"
            " factory that builds the pipeline (lambda: make_dataset()), so that pitfalls"
            " builds it under a fixed seed, or check with the augmentation turned off.",
        )
    return Unjudged(
        Cause.RANDOMNESS_UNREACHED,
        f"The tf.data pipeline draws in TensorFlow {drawn}, and {what} even built again"
        " under the same tf.random.set_seed: it draws from state no seed resets (a"
        " tf.random.Generator made outside the pipeline, a py_function's own generator)."
        " Pass reseed=, a function that resets that generator from its seed argument"
        " (lambda seed: generator.reset_from_seed(seed)), or check with the augmentation"
        " turned off.",
    )


def _unexplained(
    rnd: Randomness, what: str, stored: dict[str, Any], read: Callable[[], Any] | None = None
) -> str:
    """Why a difference is not judged (no evidence: nothing changed that pitfalls can see),
    and what to do; ``read`` reads one batch again, watched for fresh entropy."""
    if not rnd.random and read is not None and fresh_entropy(read):
        return Unjudged(
            Cause.FRESH_ENTROPY,
            f"{what[0].upper()}{what[1:]}, and reading a batch again {FRESH_ENTROPY},"
            " so the difference is no evidence of a bug. Seed it from the index and pass"
            " reseed=, a function that sets what your generators are made from, or check"
            " with the augmentation turned off.",
        )
    if not rnd.random:
        text = (
            f"No read drew from a generator pitfalls watches (what an epoch's start draws is"
            f" its order), and {what}, but nothing"
            " pitfalls can see explains it, so it is no evidence of a bug: a generator made"
            " during the read (np.random.default_rng() without a seed, random.Random(), or"
            " seeded from the epoch, which changes the augmentation every epoch by design)"
            " does this as well as state that changes per call (a counter, data held"
            " elsewhere). Pass reseed=, a function that sets what your generators are made"
            " from (for a seed the source keeps: reseed=lambda seed: setattr(dataset,"
            " 'seed', seed)), or check with the augmentation turned off."
        )
    else:
        text = _random_per_read(rnd, what)
    if stored:
        names = ", ".join(list(stored)[:MAX_SHOWN])
        text += f" The arrays the source holds ({names}) did not change."
    else:
        text += " No array holding the samples was found on the source."
    return Unjudged(Cause.RANDOMNESS_UNREACHED if rnd.random else Cause.NOTHING_SEEN, text)


def _repeatable_stream(reader: _Reader) -> _Verdict:
    first = reader.epoch(_EPOCH_SEED)
    if reader.late:  # a generator's own RNG, found as epoch 1 ran: reseeded from now on
        first = reader.epoch(_EPOCH_SEED)
    stored = stored_arrays(reader.held(), 2 * max(len(b) for b in first.batches))
    return _compare_epochs(reader, first, stored)


# order_shuffled ----------------------------------------------------------------------


def _order_text(
    style: str,
    same_seed: list[str],
    library: str | None = None,
    graph: tfdata.Graph | None = None,
    sampler_of: Any = None,
    keys: list[str] | None = None,
) -> tuple[str, str]:
    """(reason, hint) for an order that never changes, by the kind of source and the evidence.

    ``same_seed`` names generators the source made anew inside ``__iter__``
    (or the generator function) for each epoch: reseeded from one seed, they
    repeat the order. ``library`` (:func:`framework`) puts the fix in the terms
    of the user's loader; a tf.data ``graph`` says which op froze the order; a
    DataLoader (``sampler_of``) by its sampler; ``keys``, the JAX PRNG keys it holds.
    """
    if library == "tf.data":
        if graph is not None and graph.cache_after_shuffle:
            why = "a cache() after its shuffle() stores the first epoch's order and replays it"
        elif graph is not None and graph.frozen:
            why = (
                "its shuffle() has reshuffle_each_iteration=False, so every epoch repeats"
                " the first permutation"
            )
        elif graph is not None and not graph.shuffles and graph.order_ops:
            why = (
                f"its order comes from random ops ({', '.join(graph.order_ops)}) that took"
                " fixed seeds when it was built, under tf.random.set_seed, and seeded ops in a"
                " pipeline draw the same numbers at every iteration (so does"
                " to_tf_dataset(shuffle=True) under a global seed)"
            )
        elif graph is not None and not graph.shuffles:
            why = "the pipeline has no shuffle()"
        else:
            why = "nothing in the pipeline reorders the samples between iterations"
        return (
            f"Every epoch visits the samples in the same order: {why}.",
            "shuffle after cache() and before batch(), drawing a new order every epoch:"
            " dataset.cache().shuffle(buffer_size).batch(batch_size), with"
            " reshuffle_each_iteration=True (the default, which reshuffles under a global"
            " seed too) and buffer_size at least the number of samples for a full shuffle.",
        )
    if library == "keras image iterator" and not same_seed:
        return (
            "Every epoch visits the samples in the same order: the ImageDataGenerator"
            " iterator was made with shuffle=False, so it reads its samples in stored order"
            " every epoch.",
            "pass shuffle=True to flow() (or flow_from_directory(), flow_from_dataframe()):"
            " its iterator draws a new order of the indices as each epoch ends; seed= makes"
            " that order reproducible.",
        )
    if library == "hf":
        return (
            "Every epoch visits the samples in the same order: a Hugging Face dataset"
            " iterates in its stored order, and its shuffle() draws one order that every"
            " later iteration repeats (Dataset.shuffle() fixes an indices mapping; an"
            " IterableDataset reshuffles only when set_epoch() gives it a new epoch).",
            "shuffle anew for every epoch with the epoch as seed:"
            " dataset.shuffle(seed=epoch).iter(batch_size=...); for an IterableDataset,"
            " call dataset.set_epoch(epoch) before each epoch; through torch,"
            " DataLoader(dataset, shuffle=True).",
        )
    if library == "torch" and not same_seed:
        sampler = type(getattr(sampler_of, "sampler", None)).__name__
        why = (
            "its SequentialSampler visits the indices in stored order (shuffle=False, the default)"
            if sampler == "SequentialSampler"
            else "its sampler visits the indices in the same order every epoch (it draws no"
            " new order, or draws it from the same seed each time)"
        )
        return (
            f"Every epoch visits the samples in the same order: {why}.",
            "pass shuffle=True to the DataLoader (with generator=torch.Generator()"
            ".manual_seed(seed), made once, for a reproducible order), or give a custom"
            " sampler a torch.Generator made once in __init__ and return"
            " iter(torch.randperm(n, generator=self.generator).tolist()) from __iter__.",
        )
    if keys and not same_seed:
        return (
            "Every epoch visits the samples in the same order: the source permutes with a"
            f" JAX PRNG key ({keys[0]}) that is the same as every epoch starts (split but"
            " never carried forward, or made again from one seed), and the same key gives"
            " the same permutation.",
            "carry the key forward every epoch: key, sub = jax.random.split(key), then"
            " jax.random.permutation(sub, n); never draw twice from one key.",
        )
    if same_seed:
        hint = (
            "make the random generator once, outside the epoch's loop (before while True:,"
            " or passed in to the generator function), and draw a new permutation from it"
            " every epoch; or seed it with the epoch: np.random.default_rng([seed, epoch])."
        )
        if style in ("dataset", "loader"):
            hint = (
                "make the generator once, in __init__ (self.rng = np.random.default_rng(seed)),"
                " and draw a new permutation from it in every __iter__."
            )
        return (
            "Every epoch visits the samples in the same order: the source makes its random"
            f" generator ({same_seed[0]}) anew for every epoch, from the same seed, so every"
            " epoch draws the same permutation (and the same augmentation).",
            hint,
        )
    if style == "dataset":
        return (
            "Every epoch visits the samples in the same order: on_epoch_end does not reorder"
            " them (Generator.permutation returns a shuffled copy; shuffle works in place),"
            " or reorders them the same way each time (a generator made from the same seed"
            " inside on_epoch_end). Keras' fit (shuffle=True, its default) reorders whole"
            " batches, never the samples within them: the same samples share a batch every"
            " epoch.",
            "shuffle self.indices in on_epoch_end, in place, with a generator made once in"
            " __init__ (self.rng.shuffle(self.indices)), and read batch i as"
            " self.indices[i * batch_size:(i + 1) * batch_size].",
        )
    if style == "loader":
        return (
            "Every epoch visits the samples in the same order: the loader does not reshuffle"
            " between epochs (its shuffle option is ignored), or reshuffles with the same"
            " seed every epoch.",
            "draw a new permutation in every __iter__ from a generator made once in __init__"
            " (order = self.rng.permutation(n)); with torch, DataLoader(shuffle=True).",
        )
    return (
        "Every epoch visits the samples in the same order: nothing shuffles them, and"
        " Keras does not shuffle a generator (fit(..., shuffle=True) only warns).",
        "permute inside the generator each epoch (order = rng.permutation(n)), or use"
        " a keras.utils.PyDataset / tf.data pipeline that shuffles.",
    )


def _same_order(n: int, problem: str) -> tuple[Finding, ...]:
    return (Finding(path="sample order", when="epoch 2", mismatched=n, total=n, problem=problem),)


def _in_both(first: list[bytes], second: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
    """The samples both epochs hold, in each epoch's order (None when fewer than two):
    their relative order tells a reordering even when other samples changed."""
    common = Counter(first) & Counter(second)
    if sum(common.values()) < 2:
        return None

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


def _informative(targets: list[bytes]) -> bool:
    """Would a random reordering keep this sequence of targets with chance below 1e-6?"""
    counts = Counter(targets).values()
    log_chance = sum(math.lgamma(c + 1) for c in counts) - math.lgamma(len(targets) + 1)
    return log_chance < math.log(1e-6)


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
    (``Cause.SAME_ORDER``), or puts the same samples in every batch, shuffled
    only within each (``Cause.SAME_BATCHES``). When augmentation makes the
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
    resolved, steps_per_epoch, timeout, unpack, reseed = _setup(
        source, steps_per_epoch, timeout, unpack, reseed
    )
    style = source_style(resolved)
    with Randomness(_roots(resolved), reseed) as rnd:
        reader = _Reader(resolved, steps_per_epoch, timeout, unpack, rnd, build=False)
        reader.reads = "natural"  # as training reads: nothing reseeded, only watched
        first = reader.epoch(None)
        stored = stored_arrays(reader.held(), 2 * max(len(b) for b in first.batches))
        second = reader.epoch(None)
        verdict = _order_rule(reader, first, second)
        # TensorFlow's eager random ops (tf.random.uniform in a __getitem__) draw where no
        # watched generator moves until a global seed gives them their op-seed sequence:
        # with TensorFlow imported, an undecided pair of epochs is read again, seeded.
        unseen_ops = frameworks.tensorflow.tensorflow() is not None
        if verdict is None and (rnd.random or reseed or unseen_ops) and not reader.tf:
            # augmented per read: two more epochs, each read reseeded with its position and
            # its generators put back after it, so that only what drew as the epoch
            # started (on_epoch_end, iter(), the first batch) can make a new order
            reader.reads = "kept"
            first = reader.epoch(None)
            start = rnd.states()
            second = reader.epoch(None)
            verdict = _order_rule(reader, first, second)
            if verdict is None and (reader.stream is not None or reader.source.rereadable):
                # epoch 2 once more: an indexable source's indices without on_epoch_end,
                # any other from the generators' state at its start. The same batches
                # again: the reads are reproducible, so what made epoch 2 differ from
                # epoch 1 came as it started (its new order), unless stored data changed.
                if not reader.indexable:
                    rnd.put_back(start)
                again = reader.epoch(None, transition=False)
                if again.batches == second.batches and not changed_rows(stored):
                    verdict = (
                        (),
                        [
                            "Epochs 1 and 2 hold differently augmented samples; epoch 2 read"
                            " again, each read reseeded alike, gave the same batches, so what"
                            " made it differ from epoch 1 came as the epoch started: its order."
                        ],
                    )
        if verdict is None:
            changes = changed_rows(stored)
            inconclusive, notes = _order_unjudged(reader, changes)
            findings: tuple[Finding, ...] = ()
        else:
            (findings, notes), inconclusive = verdict, ""
        natural = reader.reads == "natural"
    n, batches = len(first.samples), len(first.batches)
    reason, hint = _order_text(
        style,
        reader.iterables if findings else [],
        reader.library,
        reader.graph,
        resolved.obj,
        list(reader.held().keys) if findings else [],
    )
    if findings and findings[0].path == _MEMBERSHIP:
        reason = (
            "Every epoch puts the same samples in each batch: the source reorders the samples"
            " inside each batch (sklearn.utils.shuffle(x_batch, y_batch), a permutation of"
            " one batch's rows), never across the epoch, so batch k trains on the same"
            " samples every epoch."
        )
        hint = (
            "draw one permutation of all the samples every epoch and cut the batches from it:"
            " order = rng.permutation(n), then batch i is order[i * batch_size:(i + 1) *"
            " batch_size], with rng made once, outside the epoch's loop."
        )
    note = rnd.note(natural=natural)
    return Report(
        check="order_shuffled",
        cause=Cause.SAME_BATCHES
        if findings and findings[0].path == _MEMBERSHIP
        else Cause.SAME_ORDER,
        parameters=_params(steps_per_epoch, batches, reseed),
        batches=reader.read,
        findings=findings,
        inconclusive=inconclusive,
        reason=reason,
        hint=hint,
        notes=tuple(notes) + ((note,) if note else ()),
        summary=f"epoch 2 reorders epoch 1's {n} samples",
        source=resolved.description,
    )


def _membership(batches: list[list[bytes]]) -> list[Counter[bytes]]:
    return [Counter(batch) for batch in batches]


def _membership_informative(batches: list[list[bytes]]) -> bool:
    """Would a random reordering of the epoch keep every batch's samples, with chance below
    1e-6? (Two batches of two keep theirs one time in three: no evidence.)"""
    counts = Counter(s for batch in batches for s in batch).values()
    n = sum(counts)
    log_same = sum(math.lgamma(len(b) + 1) for b in batches) - math.lgamma(n + 1)
    log_same += sum(math.lgamma(c + 1) for c in counts)  # repeated samples: fewer orders
    return len(batches) > 1 and log_same < math.log(1e-6)


_MEMBERSHIP = "batch membership"
"""The path of a finding that every batch holds the same samples in both epochs."""


def _same_batches(n: int, batches: int, what: str) -> tuple[Finding, ...]:
    problem = (
        f"each of the {batches} batches of epoch 2 holds the same {what} as in epoch 1;"
        " only the order inside each batch changed"
    )
    return (Finding(path=_MEMBERSHIP, when="epoch 2", mismatched=n, total=n, problem=problem),)


def _order_rule(
    reader: _Reader, first: Epoch, second: Epoch
) -> tuple[tuple[Finding, ...], list[str]] | None:
    """The verdict two consecutive epochs give: findings (the same order, or the same
    samples in every batch), no findings (another order), or None when what they hold
    cannot be matched (augmented per read, left out)."""
    n, k = len(first.samples), len(first.batches)
    if first.samples == second.samples:
        return _same_order(n, f"epoch 2 repeats epoch 1's order of all {n} samples"), []
    if Counter(first.samples) == Counter(second.samples):
        same = _membership(first.batches) == _membership(second.batches)
        if same and _membership_informative(first.batches):
            return _same_batches(n, k, "samples"), []
        return (), []
    if not reader.indexable and k > 1 and first.batches[1:] == second.batches[1:]:
        return (
            _same_order(
                n,
                f"epoch 2 repeats epoch 1's order of all {n} samples; only the first batch,"
                " read as the epoch started, was augmented differently",
            ),
            [],
        )
    both = _in_both(first.samples, second.samples)
    if both is not None:
        kept1, kept2 = both
        if kept1 != kept2:
            return (), [
                f"Epochs 1 and 2 differ in {n - len(kept1)} samples (augmented, or left out),"
                f" and the {len(kept1)} samples both hold come in another order."
            ]
        if _informative(kept1):
            problem = (
                f"epoch 2 repeats epoch 1's order of the {len(kept1)} samples both epochs hold"
                f" (of {n})"
            )
            return _same_order(n, problem), []
    a, b = first.targets, second.targets
    if a is None or b is None:
        return None
    ta, tb = [t for batch in a for t in batch], [t for batch in b for t in batch]
    if ta == tb and _informative(ta):
        return (
            _same_order(
                n,
                f"epoch 2 repeats epoch 1's sequence of all {n} targets (the inputs differ:"
                " random per read)",
            ),
            [],
        )
    if ta != tb and _identifying(ta) and Counter(ta) == Counter(tb):
        if _membership(a) == _membership(b) and _membership_informative(a):
            return _same_batches(n, k, "targets (the inputs differ: random per read)"), []
        return (), [
            "Epochs 1 and 2 hold differently augmented samples, but the same targets in"
            " another order: the samples were reordered."
        ]
    return None


def _order_unjudged(reader: _Reader, changes: tuple[Change, ...]) -> tuple[str, list[str]]:
    """Why two epochs whose samples cannot be matched leave the order unjudged."""
    what = "epoch 2 holds other samples than epoch 1"
    if changes:
        return Unjudged(
            Cause.STORED_DATA_WRITTEN,
            "Epoch 2 holds other samples than epoch 1 because reading writes the data the"
            " source holds (see the note), so their order cannot be compared: fix that first"
            " (check_epoch_repeatable reports it).",
        ), [_change_note(changes, "while reading")]
    if frameworks.torch.persistent(reader.source.obj):
        workers = frameworks.torch.workers(reader.source.obj)
        return Unjudged(
            Cause.UNOBSERVED_CODE,
            f"The samples cannot be matched across epochs: {what}, and the DataLoader's"
            f" {workers} persistent worker processes keep their own copies of the dataset"
            " across epochs, out of pitfalls' reach: a random generator there goes on from"
            " where it was (pitfalls cannot reseed it). Check with persistent_workers=False,"
            " whose workers start every epoch from the dataset as it is in this process.",
        ), []
    if reader.rnd.random:
        text = _random_per_read(reader.rnd, what) + " Their order cannot be compared."
        return Unjudged(Cause.RANDOMNESS_UNREACHED, text), []
    graph = reader.graph
    if graph is not None and graph.random_ops:
        ops = ", ".join(graph.random_ops)
        return Unjudged(
            Cause.RANDOMNESS_UNREACHED,
            f"The tf.data pipeline draws in TensorFlow random ops ({ops}) as it reads, so"
            f" {what} and, with targets that change with them or tell no samples apart,"
            " their order cannot be compared. Check with the augmentation turned off (the"
            " same pipeline without its random map).",
        ), []
    keys = list(reader.held().keys)
    if keys:
        return _jax_unexplained(keys, what, compared="in order"), []
    return Unjudged(
        Cause.NOTHING_SEEN,
        f"The samples cannot be matched across epochs: {what}, and nothing pitfalls can see"
        " explains it (no random generator it can reach was drawn from, no array the source"
        " holds changed). If the source augments with a generator pitfalls cannot reach,"
        " pass reseed=, a function that reseeds it from the seed it is given, or check with"
        " the augmentation turned off; otherwise see check_epoch_repeatable.",
    ), []


assert_epoch_repeatable = asserting(check_epoch_repeatable)


assert_order_shuffled = asserting(check_order_shuffled)


# epoch_complete ----------------------------------------------------------------------


def _first_epoch(
    source: Source,
    steps_per_epoch: int | None,
    timeout: float | None,
    unpack: Any,
    rnd: Randomness,
    layout: Layout,
    max_samples: int,
    max_bytes: int = 0,
) -> tuple[list[bytes], list[int]]:
    """The samples of the first epoch, read as Keras would (indices 0..n-1, or one
    iteration), and the size of each batch; ``rnd`` watches each read. ``max_samples``
    and ``max_bytes`` (the dataset's) raise the limits past which an epoch counts as
    endless."""
    indexable = source.kind == "indexable"
    length = source.length if indexable else None
    count = steps_per_epoch if steps_per_epoch is not None else length
    rnd.mark()
    stream = source.batches()
    samples: list[bytes] = []
    sizes: list[int] = []
    nbytes = 0
    while count is None or len(sizes) < count:
        b = len(sizes)
        if count is None:
            endless = _endless(b, len(samples), nbytes, source.length or max_samples, max_bytes)
            if endless:
                raise ValueError(endless)
        try:
            batch = _next_batch(lambda: next(stream), b, timeout)
        except StopIteration:
            break
        rnd.drew(at_start=not indexable and b == 0)
        arrays = _input_arrays(split_batch(batch, b, unpack), b)
        if b == 0 and _layout(arrays) != layout:
            raise ValueError(
                f"dataset's samples are {_shown(layout)}, but the source's batches hold"
                f" samples of {_shown(_layout(arrays))}: dataset must hold the samples as"
                " the source delivers them, in the same shape and dtype, since they are"
                " compared byte for byte"
            )
        samples += fingerprint.samples(arrays, len(arrays[0]))
        sizes.append(len(arrays[0]))
        nbytes += sum(a.nbytes for a in arrays)
        rnd.mark()
    if len(sizes) == 1 and not indexable:
        rnd.per_read()
    return samples, sizes


def _shown(layout: Layout) -> str:
    """``shape (3,) float32``, one per array of a sample."""
    parts = [f"shape {shape} {np.dtype(dtype).name}" for shape, dtype in layout]
    return " and ".join(parts) if parts else "empty"


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
    ValueError names both). One epoch is read (indices 0..n-1 of an indexable
    source, one iteration, or ``steps_per_epoch`` batches) and compared as a
    multiset: samples seen twice, samples never seen, and samples not in
    ``dataset`` are reported. Made for what several workers deliver: a
    generator or iterator shared by threads without a lock duplicates and drops
    batches silently, and so does a torch ``IterableDataset`` every worker
    reads whole; Keras' ordered enqueuer and a DataLoader's sampler deliver
    each index once. An epoch missing exactly its last, partial batch
    (``drop_last=True``, ``drop_remainder=True``) is said to be that. A source
    that augments its samples at random delivers rows that are not in
    ``dataset``: when it drew random numbers (or its tf.data graph has random
    ops) and such strangers appear, the report is inconclusive (check with the
    augmentation off). Every RNG the reads drew from is put back.
    """
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reference, layout = _dataset_rows(dataset)
    resolved = resolve(source)
    graph = tfdata.graph(resolved.obj) if tfdata.is_dataset(resolved.obj) else None
    with Randomness(_roots(resolved)) as rnd:
        sample_bytes = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in layout)
        limits = (len(reference), len(reference) * sample_bytes)
        seen_list, sizes = _first_epoch(
            resolved, steps_per_epoch, timeout, unpack, rnd, layout, *limits
        )
        cause = _complete_cause(resolved, sizes, len(seen_list), len(reference), False, 0)
        rotated = ""
        if cause == "remainder" and set(seen_list) <= set(reference):
            rotated = _next_remainder(
                resolved,
                seen_list,
                reference,
                steps_per_epoch,
                timeout,
                unpack,
                rnd,
                layout,
                limits,
            )
    batches = len(sizes)
    wanted = Counter(reference)
    seen = Counter(seen_list)
    order = {fp: i for i, fp in reversed(list(enumerate(reference)))}
    twice = sorted(order.get(fp, -1) for fp, k in seen.items() if k > 1 and fp in wanted)
    missing = sorted(order[fp] for fp in wanted if seen[fp] < wanted[fp])
    strangers = sum(k for fp, k in seen.items() if fp not in wanted)
    findings = []
    total = sum(wanted.values())
    inconclusive = ""
    tf_random = graph is not None and bool(graph.random_ops)
    workers = frameworks.torch.workers(resolved.obj)
    not_rows = f"{strangers} of the {len(seen_list)} samples it delivered are not rows of dataset"
    cause = _complete_cause(resolved, sizes, len(seen_list), total, bool(twice), strangers)
    if cause == "remainder" and strangers:  # augmented: which rows were left out is unknown
        short = total - len(seen_list)
        inconclusive = Unjudged(
            Cause.AUGMENTED_SAMPLES,
            f"The epoch delivered {len(seen_list)} of the {total} samples, in"
            f" {len(sizes)} full batches of {sizes[0]}: its last, partial batch of {short}"
            f" was left out (the drop_last convention). {not_rows[0].upper()}{not_rows[1:]}"
            " (augmented), so which samples were left out, and whether other ones each"
            " epoch (as a shuffle makes them), cannot be told. Check with the augmentation"
            " turned off.",
        )
    elif strangers and (rnd.random or tf_random):
        drew = ", ".join(rnd.seen) if rnd.random else "TensorFlow's " + ", ".join(graph.random_ops)  # type: ignore[union-attr]
        inconclusive = Unjudged(
            Cause.AUGMENTED_SAMPLES,
            f"The source is random per read (it drew from {drew}): {not_rows}, as augmented"
            " samples never are, so which rows were delivered cannot be told. Check with"
            " the augmentation turned off.",
        )
    elif (  # draws made in the workers are out of sight: read a copy in this process
        strangers
        and workers
        and (here := _drawn_in_process(resolved, steps_per_epoch, timeout, unpack, layout))
    ):
        inconclusive = Unjudged(
            Cause.AUGMENTED_SAMPLES,
            f"The DataLoader reads in {workers} worker processes, whose random draws"
            f" pitfalls cannot watch; read in this process (num_workers=0), it drew from"
            f" {here}: {not_rows}, as augmented samples never are, so which rows were"
            " delivered cannot be told. Check with the augmentation turned off.",
        )
    elif strangers and strangers == len(seen_list):
        inconclusive = Unjudged(
            Cause.AUGMENTED_SAMPLES,
            f"No sample the epoch delivered is a row of dataset ({not_rows}): the source"
            " transforms its samples (normalises, resizes, augments) or dataset is not what"
            " it delivers, so which rows were delivered cannot be told. Pass as dataset the"
            " samples as the source delivers them, transformed alike, and check with random"
            " augmentation turned off.",
        )
    elif not (rotated and not twice):
        findings = _complete_findings(seen, wanted, twice, missing, strangers, total, seen_list)
    reason, hint = _complete_text(cause, resolved, graph)
    return Report(
        check="epoch_complete",
        cause=Cause.SAMPLES_TWICE if twice else Cause.SAMPLES_MISSING,
        parameters={"steps_per_epoch": batches, "samples": total},
        batches=batches,
        findings=tuple(findings),
        inconclusive=inconclusive,
        reason=reason,
        hint=hint,
        notes=(rotated,) if rotated and not findings and not inconclusive else (),
        summary=f"all {total} samples delivered exactly once"
        if not rotated
        else f"{total} samples, each delivered at most once, a different remainder left out"
        " each epoch",
        source=resolved.description,
    )


def _next_remainder(
    source: Source,
    first: list[bytes],
    reference: list[bytes],
    steps_per_epoch: int | None,
    timeout: float | None,
    unpack: Any,
    rnd: Randomness,
    layout: Layout,
    limits: tuple[int, int],
) -> str:
    """A note when the next epoch, read as training reads it, leaves out other samples than
    the first (``drop_last`` under shuffling: every sample is trained on across epochs),
    else "" (the same ones are never delivered, or no next epoch can be had)."""
    if source.kind == "indexable":
        end = getattr(source.obj, "on_epoch_end", None)
        if callable(end):
            end()
    elif source.kind in ("generator", "iterator"):
        if source.made_by is None:
            return ""
        source = source.fresh()
    second, _ = _first_epoch(source, steps_per_epoch, timeout, unpack, rnd, layout, *limits)
    left_out = set(reference) - set(first)
    if set(reference) - set(second) == left_out:
        return ""
    return (
        f"Each epoch left out its last, partial batch ({len(left_out)} samples), other samples"
        " in epoch 2 than in epoch 1: the drop_last convention under shuffling, every sample"
        " is trained on across epochs."
    )


def _drawn_in_process(
    source: Source, steps_per_epoch: int | None, timeout: float | None, unpack: Any, layout: Layout
) -> str:
    """What a copy of a DataLoader with worker processes, read for one epoch in this
    process (``num_workers=0``), draws random numbers from, by name; "" when nothing."""

    copy, _ = frameworks.torch.single_process(source.obj)
    if copy is None:
        return ""
    here = Source(copy, source.kind, None, source.name)
    with Randomness(_roots(here)) as rnd:
        _first_epoch(here, steps_per_epoch, timeout, unpack, rnd, layout, 0)
    return ", ".join(rnd.seen) if rnd.random else ""


def _complete_cause(
    source: Source, sizes: list[int], delivered: int, total: int, twice: bool, strangers: int
) -> str:
    """``"remainder"``: exactly the samples past the last whole batch are missing, by count
    (augmented samples need not be recognised; without strangers, none may come twice);
    ``"workers"``: a DataLoader's workers each read an IterableDataset whole;
    ``"strangers"``: samples that are not rows of dataset, none twice; ``"short"``: samples
    missing, none twice (an epoch that stops early); else ""."""
    if twice and frameworks.torch.iterable_workers(source.obj):
        return "workers"
    size = sizes[0] if sizes and len(set(sizes)) == 1 else 0
    short = total - delivered
    if size > 1 and 0 < short == total % size and (strangers or not twice):
        return "remainder"
    if strangers and not twice:
        return "strangers"
    if not twice and short > 0:
        return "short"
    return ""


def _complete_text(cause: str, source: Source, graph: tfdata.Graph | None) -> tuple[str, str]:
    """(reason, hint) for an incomplete epoch, in the terms of the source's library."""
    library = frameworks.library_of(source.obj)
    style = source_style(source)
    if cause == "workers":
        workers = frameworks.torch.iterable_workers(source.obj)
        return (
            f"An epoch delivered samples more than once: each of the DataLoader's {workers}"
            " worker processes iterates its own copy of the IterableDataset, so, unsharded,"
            " every worker yields the whole stream.",
            "shard the stream in __iter__ with torch.utils.data.get_worker_info(): yield"
            " only the items i with i % info.num_workers == info.id (info is None in the"
            " main process), or use a map-style Dataset, whose indices the sampler hands"
            " out once.",
        )
    if cause == "remainder":
        if library == "torch":
            how = (
                "DataLoader(drop_last=True)"
                if getattr(source.obj, "drop_last", False)
                else "its batch sampler keeps whole batches only"
            )
            hint = (
                "keep the last, smaller batch: DataLoader(..., drop_last=False), the default;"
                " or make the dataset's length a multiple of batch_size if every batch must"
                " be full."
            )
        elif library == "tf.data":
            how = (
                "batch(..., drop_remainder=True)"
                if graph is not None and graph.drops_remainder
                else "the pipeline keeps whole batches only"
            )
            hint = (
                "keep the last, smaller batch: dataset.batch(batch_size), whose"
                " drop_remainder=False is the default; or make the number of samples a"
                " multiple of the batch size if every batch must be full."
            )
        elif style == "dataset":
            how = "__len__ counts whole batches only"
            hint = (
                "count the last, smaller batch too: __len__ returns math.ceil(len(self.x) /"
                " self.batch_size), and __getitem__ gives the last index the rows left."
            )
        else:
            how = "the batching stops at the last whole batch"
            hint = (
                "yield the last, smaller batch too: for start in range(0, n, batch_size)"
                " reaches the rows left; range(0, n - batch_size + 1, batch_size) skips them."
            )
        return (
            f"An epoch did not deliver every sample: its last, partial batch was dropped"
            f" ({how}), so the samples past the last whole batch are never trained on in"
            " an epoch (other ones each epoch, when it shuffles).",
            hint,
        )
    if cause == "short":
        return (
            "An epoch did not deliver every sample, and none twice: it stops short of the"
            " dataset (a __len__ or steps_per_epoch that misses the last batches, a range"
            " or slice that ends early), so the samples past it are never trained on.",
            "make an epoch cover the whole dataset: __len__ returns"
            " math.ceil(len(self.x) / self.batch_size) and the last batch takes the rows"
            " left; a generator's loop runs to len(x), not len(x) - batch_size.",
        )
    if cause == "strangers":
        return (
            "An epoch delivered samples that are not rows of dataset, none of them twice:"
            " the source changes some of the samples it delivers (a transform applied to"
            " some, stored data written in place as it is read, samples mixed) or dataset"
            " is not what it delivers.",
            "pass as dataset the samples as the source delivers them, transformed alike;"
            " check_epoch_repeatable and check_index_stable tell whether the source writes"
            " its stored data in place.",
        )
    return (
        "An epoch did not deliver every sample exactly once: a source shared by"
        " several workers without a lock (a read-modify-write of its position) hands"
        " out some batches twice and skips others, or the epoch boundary is off.",
        "give each worker indices, not a shared iterator: keras.utils.PyDataset with"
        " workers, or a DataLoader with a sampler; guard a shared iterator with a"
        " threading.Lock around next().",
    )


def _complete_findings(
    seen: Counter[bytes],
    wanted: Counter[bytes],
    twice: list[int],
    missing: list[int],
    strangers: int,
    total: int,
    seen_list: list[bytes],
) -> list[Finding]:
    findings = []
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
    return findings


assert_epoch_complete = asserting(check_epoch_complete)
