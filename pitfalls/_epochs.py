"""Across epochs: is the data the same, and does its order change?

Epochs are read from the source and compared sample by sample, where a sample
is one row (axis 0) of every input array of a batch, fingerprinted by its
bytes the moment it is read. *Repeatable*: the second epoch holds the same
samples as the first, in any order (in-place preprocessing breaks this).
*Shuffled*: the order differs (a generator ignores Keras' ``shuffle=True``).

Random augmentation changes the samples at every read, so both checks read
under controlled randomness (:mod:`pitfalls._randomness`): before each read
every RNG pitfalls can reach is reseeded, the same way for the reads that
are compared; ``reseed=`` reaches the others. Where randomness still makes
two epochs incomparable, the report is inconclusive and says why; it never
passes for it.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._aliasing import source_style
from pitfalls._blame import blame_epochs
from pitfalls._randomness import Change, Randomness, changed_rows, held_by, stored_arrays
from pitfalls._report import (
    MAX_SHOWN,
    EpochChangedError,
    EpochIncompleteError,
    Finding,
    OrderNotShuffledError,
    Report,
)
from pitfalls._sources import Source, add_note, article, call_within, resolve
from pitfalls._tree import _MAX_DEPTH, Parts, as_array, flatten_at, split_batch

_EPOCH_SEED = 1_000_003
"""Reseeds the RNGs before an epoch starts (``on_epoch_end``, ``iter()``); epoch e adds e."""
_MAX_BATCHES = 100_000


@dataclass
class Epoch:
    """One epoch as read: fingerprints of its samples and their targets, per batch."""

    batches: list[list[bytes]] = field(default_factory=list)
    """Per batch, one fingerprint per sample (a copy of its input bytes)."""
    targets: list[list[bytes]] | None = field(default_factory=list)
    """Per batch, one fingerprint per sample's targets; None when batches have none."""

    @property
    def samples(self) -> list[bytes]:
        return [s for batch in self.batches for s in batch]

    @property
    def sample_targets(self) -> list[bytes] | None:
        return None if self.targets is None else [t for batch in self.targets for t in batch]


def _rows(leaves: list[tuple[str, Any]], b: int, what: str) -> list[bytes] | None:
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
    rows = [a.reshape(n, -1) if a.flags.c_contiguous else a.copy().reshape(n, -1) for a in arrays]
    return [b"".join(r[i].tobytes() for r in rows) for i in range(n)]


def _samples(parts: Parts, b: int) -> list[bytes]:
    """One fingerprint per sample: a copy of the bytes of its row in every input array."""
    rows = _rows(list(flatten_at(parts.inputs, parts.inputs_path).leaves), b, "inputs")
    assert rows is not None
    return rows


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


def _dataset_rows(dataset: Any) -> list[bytes]:
    """One fingerprint per sample of ``dataset``, as :func:`_samples` takes a batch's.

    A nested list of numbers (``[[1, 2], [3, 4]]``: no array in it, so it cannot be
    the nesting of the inputs, whose leaves need a sample axis) is read as the
    array numpy makes of it, its rows the samples.
    """
    if isinstance(dataset, (list, tuple)) and _numbers_only(dataset):
        try:
            dataset = np.asarray(dataset)
        except ValueError as exc:  # ragged: rows of different lengths
            raise ValueError(
                f"{_DATASET}; this nested list is ragged, not one array ({exc})"
            ) from None
    rows = _rows(list(flatten_at(dataset, "dataset").leaves), -1, "dataset")
    assert rows is not None
    return rows


def _target_rows(parts: Parts, b: int, n: int) -> list[bytes] | None:
    if parts.targets is None:
        return None
    try:
        rows = _rows(list(flatten_at(parts.targets, parts.targets_path).leaves), b, "targets")
    except Exception:  # targets that are not arrays: no evidence from them
        return None
    return rows if rows is not None and len(rows) == n else None


class _Reader:
    """Reads epochs of a source, each read under :class:`Randomness` control.

    Indexable: ``on_epoch_end()`` (when ``transition``) then indices 0..n-1,
    each read after reseeding with its position. Otherwise an epoch starts
    with ``iter()``, a fresh copy from the factory, or (``steps_per_epoch``)
    the next stretch of one stream; its first batch is read right after the
    epoch's reseed (a permutation drawn lazily, at the first ``next()``,
    follows the epoch's seed), later ones after reseeding with their position.
    """

    def __init__(
        self,
        source: Source,
        steps_per_epoch: int | None,
        timeout: float | None,
        unpack: Any,
        randomness: Randomness,
    ) -> None:
        self.source = source
        self.steps = steps_per_epoch
        self.timeout = timeout
        self.unpack = unpack
        self.rnd = randomness
        self.read = 0
        self.epochs = 0
        self.indexable = source.kind == "indexable"
        self.stream: Iterator[Any] | None = None
        self.current: Any = source.obj
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
                self.stream = source.batches()
                self.rnd.add_root("stream", self.stream)
        self.iterables: list[str] = []
        """Names of RNGs found in an epoch's own iterator (made anew each epoch)."""

    @property
    def replayable(self) -> bool:
        """Can the same epoch be started again from the same seed?"""
        return self.indexable or (self.stream is None and self.source.rereadable)

    def epoch(self, seed: int, *, transition: bool = True) -> Epoch:
        """Read one epoch; start it under ``seed`` (``transition=False``: same indices again)."""
        self.epochs += 1
        if self.indexable:
            if transition:
                self.rnd.control(seed)
                end = getattr(self.source.obj, "on_epoch_end", None)
                if callable(end):
                    end()
            return self._read(lambda i: self.source.obj[i], first_seeded=True)
        self.rnd.control(seed)
        if self.stream is not None:
            it = self.stream
        else:
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
            it = src.batches()
            self.current = src.obj
            self.rnd.add_root("iterator", it)
        return self._read(lambda i: next(it), first_seeded=False, iterator=it)

    def _read(
        self, get: Callable[[int], Any], *, first_seeded: bool, iterator: Any = None
    ) -> Epoch:
        epoch = Epoch()
        b = 0
        while self.count is None or b < self.count:
            if self.count is None and b >= _MAX_BATCHES:
                raise ValueError(
                    f"source yielded more than {_MAX_BATCHES} batches in one epoch: if it is"
                    " endless, pass steps_per_epoch="
                )
            if b > 0 or first_seeded:
                self.rnd.control(b)
            index = self.read
            try:
                batch = call_within(functools.partial(get, b), self.timeout, f"yield batch {index}")
            except StopIteration:
                break
            except TimeoutError:
                raise
            except Exception as exc:
                add_note(exc, f"pitfalls: raised by the source while reading batch {index}")
                raise
            self.rnd.drew()
            if b == 0 and iterator is not None:
                before = set(self.rnd.rngs)
                self.rnd.rescan()  # a generator's locals exist once it runs
                self.iterables += [n for n in self.rnd.rngs if n not in before and "()'s " in n]
            parts = split_batch(batch, index, self.unpack)
            samples = _samples(parts, index)
            epoch.batches.append(samples)
            rows = _target_rows(parts, index, len(samples))
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
        return epoch

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
        " in another module, or TensorFlow's ops) as well as a bug. Pass reseed=, a"
        " function that reseeds your generators from its seed argument (for"
        " self.rng: lambda seed: ...), or check with the augmentation turned off."
    )


# epoch_repeatable -------------------------------------------------------------------


def _repeatable_text(style: str, where: str) -> tuple[str, str]:
    """(reason, hint) for an epoch that changed: by the kind of source and the evidence.

    ``where`` is ``"read"`` (reading the same batches again changed them),
    ``"on_epoch_end"`` (it rewrote stored arrays), ``"epoch"`` (epoch 2
    holds other samples), or ``"unexplained read"`` / ``"unexplained epoch"``
    (neither randomness nor a stored array explains it).
    """
    if where == "on_epoch_end":
        return (
            "on_epoch_end rewrote the data the source holds (see the note): the next epoch"
            " trains on other samples than this one.",
            "in on_epoch_end only reorder (shuffle an index array: self.rng.shuffle"
            "(self.indices)); never transform the stored samples there, nor resample them"
            " with replacement.",
        )
    if where.startswith("unexplained"):
        what = (
            "Reading the same indices again gave other samples"
            if where.endswith("read")
            else "The second epoch holds other samples than the first"
        )
        return (
            f"{what}, and nothing pitfalls can see explains it: no array the source holds"
            " changed, and it drew from no random generator pitfalls can reach. Either it"
            " changes its samples by state (a counter, data held elsewhere), or it augments"
            " with a random generator pitfalls cannot reach (in a closure, another module,"
            " TensorFlow's ops).",
            "if the source augments at random, pass reseed=, a function that reseeds its"
            " generator from the seed it is given; otherwise make each batch depend on its"
            " index and the stored data alone.",
        )
    reason = (
        "The second epoch holds other samples than the first: the data changed between"
        " epochs, typically preprocessing written into the stored dataset through a view"
        " (x /= 255 on a slice), so every epoch trains on data transformed once more."
    )
    if where == "read":
        reason = (
            "Reading the same batches again gave other samples: reading writes the data the"
            " source holds, typically preprocessing done in place through a view (x /= 255"
            " on a slice), so every epoch trains on data transformed once more."
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


def check_epoch_repeatable(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
) -> Report:
    """Do two epochs hold the same samples (in any order)?

    Fails when preprocessing writes into the stored dataset, e.g. ``x /= 255``
    on a slice (a view) of it: the second epoch then sees the data transformed
    twice. Each epoch's samples are fingerprinted as they are read (copies of
    their bytes), so memory is about one epoch of inputs.

    Random augmentation is allowed: every read is made after reseeding
    Python's, numpy's, Keras' and torch's global RNGs and the generators the
    source holds (``self.rng``), and ``reseed(seed)`` for the others; all are
    put back afterwards. An indexable source (a PyDataset) is read twice
    without ``on_epoch_end()`` between (the same indices under the same seeds
    must give the same samples), then once more after it; when the source is
    random per read, that last epoch is judged by the arrays it holds
    (``self.images``, ``self.indices``) keeping their rows, since a reordered,
    augmented epoch cannot be matched sample by sample. What cannot be told
    apart, randomness pitfalls cannot reach from data it cannot see change,
    gives an inconclusive report, never a pass.
    """
    resolved, steps_per_epoch, timeout, unpack, reseed = _setup(
        source, steps_per_epoch, timeout, unpack, reseed
    )
    style = source_style(resolved)
    with Randomness(_roots(resolved), reseed) as rnd:
        reader = _Reader(resolved, steps_per_epoch, timeout, unpack, rnd)
        verdict = (_repeatable_indexable if reader.indexable else _repeatable_stream)(reader)
    findings, where, notes, inconclusive, batches, summary = verdict
    reason, hint = _repeatable_text(style, where)
    note = rnd.note()
    return Report(
        check="epoch_repeatable",
        parameters=_params(steps_per_epoch, batches, reseed),
        batches=reader.read,
        findings=findings,
        inconclusive=inconclusive,
        reason=reason,
        hint=hint,
        notes=tuple(notes) + ((note,) if note else ()),
        summary=summary,
        source=resolved.description,
        blame=(
            blame_epochs(resolved, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack)
            if findings
            else None
        ),
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
        changes = changed_rows(stored, reader.held())
        if changes:
            note = _change_note(changes, "while reading")
            return (_changed_reads(first, again),), "read", [note], "", batches, ""
        if not rnd.random:
            return (_changed_reads(first, again),), "unexplained read", [], "", batches, ""
        what = "reading the same indices again gave other samples"
        return (), "read", [], _unexplained(rnd, what, stored), batches, ""
    second = reader.epoch(_EPOCH_SEED)  # after on_epoch_end()
    if Counter(second.samples) == Counter(again.samples):
        return (), "epoch", [], "", batches, f"epoch 2 holds the same {n} samples as epoch 1"
    missing = (_missing(again.samples, second.samples, "samples of epoch 1", "in epoch 2"),)
    changes = changed_rows(stored, reader.held())
    if changes:
        return missing, "on_epoch_end", [_change_note(changes, "by on_epoch_end")], "", batches, ""
    if not rnd.random:  # reads are reproducible and draw nothing: the samples changed
        return missing, "unexplained epoch" if stored else "epoch", [], "", batches, ""
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


def _compare_epochs(reader: _Reader, first: Epoch, stored: dict[str, Any]) -> _Verdict:
    """Epoch 2 against epoch 1 as multisets: valid when no read draws random numbers."""
    n, batches = len(first.samples), len(first.batches)
    second = reader.epoch(_EPOCH_SEED)
    if Counter(first.samples) == Counter(second.samples):
        return (), "epoch", [], "", batches, f"epoch 2 holds the same {n} samples as epoch 1"
    missing = (_missing(first.samples, second.samples, "samples of epoch 1", "in epoch 2"),)
    changes = changed_rows(stored, reader.held())
    if changes:
        return missing, "epoch", [_change_note(changes, "while reading")], "", batches, ""
    if reader.rnd.random:  # epoch 2's reads drew, where epoch 1's did not
        what = "epoch 2 holds other samples than epoch 1"
        return (), "epoch", [], _unexplained(reader.rnd, what, stored), batches, ""
    return missing, "unexplained epoch" if stored else "epoch", [], "", batches, ""


def _unexplained(rnd: Randomness, what: str, stored: dict[str, Any]) -> str:
    """Why a difference from a random source is not judged, and what to do."""
    text = _random_per_read(rnd, what)
    if stored:
        names = ", ".join(list(stored)[:MAX_SHOWN])
        return text + f" The arrays the source holds ({names}) did not change."
    return text + " No array holding the samples was found on the source."


def _repeatable_stream(reader: _Reader) -> _Verdict:
    first = reader.epoch(_EPOCH_SEED)
    stored = stored_arrays(reader.held(), 2 * max(len(b) for b in first.batches))
    return _compare_epochs(reader, first, stored)


# order_shuffled ----------------------------------------------------------------------


def _order_text(style: str, same_seed: list[str]) -> tuple[str, str]:
    """(reason, hint) for an order that never changes, by the kind of source and the evidence.

    ``same_seed`` names generators the source made anew inside ``__iter__``
    (or the generator function) for each epoch: reseeded from one seed, they
    repeat the order.
    """
    if same_seed:
        return (
            "Every epoch visits the samples in the same order: the source makes its random"
            f" generator ({same_seed[0]}) anew for every epoch, from the same seed, so every"
            " epoch draws the same permutation (and the same augmentation).",
            "make the generator once, in __init__ (self.rng = np.random.default_rng(seed)),"
            " and draw a new permutation from it in every __iter__.",
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


def _informative(targets: list[bytes]) -> bool:
    """Would a random reordering keep this sequence of targets with chance below 1e-6?"""
    counts = Counter(targets).values()
    log_chance = sum(math.lgamma(c + 1) for c in counts) - math.lgamma(len(targets) + 1)
    return log_chance < math.log(1e-6)


def check_order_shuffled(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
) -> Report:
    """Does the order of samples change from one epoch to the next?

    Keras shuffles arrays and ``PyDataset`` indices for you, but a Python
    generator's order is its own: ``fit(generator, shuffle=True)`` warns and
    ignores ``shuffle``. A source whose second epoch repeats the first's order
    fails. Pass ``steps_per_epoch`` for an endless generator.

    Two epochs are read, each started under its own seed (an indexable
    source's after ``on_epoch_end()``), every later read after reseeding with
    its position, so random augmentation is drawn alike in both epochs and
    cannot pass for a new order. When the epochs still hold different samples,
    a replay of epoch 2 under the same seeds tells reproducible reads (the order
    changed: pass) from randomness pitfalls cannot reach; then the sequence of
    targets may still show the same order; otherwise the report is inconclusive.
    A shuffle drawn lazily in the middle of an epoch (not at its start) would
    be reseeded like an augmentation and look unshuffled.
    """
    resolved, steps_per_epoch, timeout, unpack, reseed = _setup(
        source, steps_per_epoch, timeout, unpack, reseed
    )
    style = source_style(resolved)
    with Randomness(_roots(resolved), reseed) as rnd:
        reader = _Reader(resolved, steps_per_epoch, timeout, unpack, rnd)
        first = reader.epoch(_EPOCH_SEED + 1)
        second = reader.epoch(_EPOCH_SEED + 2)
        findings, inconclusive, notes = _order_verdict(reader, first, second)
    n, batches = len(first.samples), len(first.batches)
    reason, hint = _order_text(style, reader.iterables if findings else [])
    note = rnd.note()
    return Report(
        check="order_shuffled",
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


def _order_verdict(
    reader: _Reader, first: Epoch, second: Epoch
) -> tuple[tuple[Finding, ...], str, list[str]]:
    n = len(first.samples)
    if first.samples == second.samples:
        return _same_order(n, f"epoch 2 repeats epoch 1's order of all {n} samples"), "", []
    if Counter(first.samples) == Counter(second.samples):
        return (), "", []
    if not reader.indexable and len(first.batches) > 1 and first.batches[1:] == second.batches[1:]:
        return (
            _same_order(
                n,
                f"epoch 2 repeats epoch 1's order of all {n} samples; only the first batch,"
                " read right after the epoch's own reseed, was augmented differently",
            ),
            "",
            [],
        )
    changes: tuple[Change, ...] = ()
    if reader.replayable:
        stored = stored_arrays(reader.held(), 2 * max(len(b) for b in first.batches))
        replay = reader.epoch(_EPOCH_SEED + 2, transition=not reader.indexable)
        if replay.batches == second.batches:
            return (
                (),
                "",
                [
                    "Epochs 1 and 2 hold differently augmented samples; epoch 2 read again"
                    " under the same seeds was the same, so the order follows the shuffle."
                ],
            )
        changes = changed_rows(stored, reader.held())
    a, b = first.sample_targets, second.sample_targets
    if a is not None and a == b and _informative(a):
        return (
            _same_order(
                n,
                f"epoch 2 repeats epoch 1's sequence of all {n} targets (the inputs differ:"
                " random per read)",
            ),
            "",
            [],
        )
    if changes:
        return (
            (),
            "Epoch 2 holds other samples than epoch 1 because reading writes the data the"
            " source holds (see the note), so their order cannot be compared: fix that first"
            " (check_epoch_repeatable reports it).",
            [_change_note(changes, "while reading")],
        )
    what = "epoch 2 holds other samples than epoch 1"
    if reader.rnd.random:
        return (), _random_per_read(reader.rnd, what) + " Their order cannot be compared.", []
    return (
        (),
        f"The samples cannot be matched across epochs: {what}, and nothing pitfalls can see"
        " explains it (no random generator it can reach was drawn from, no array the source"
        " holds changed). If the source augments with a generator pitfalls cannot reach,"
        " pass reseed=, a function that reseeds it from the seed it is given; otherwise see"
        " check_epoch_repeatable.",
        [],
    )


def assert_epoch_repeatable(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
    msg: str | None = None,
) -> None:
    """Fail when a second epoch holds other samples. See :func:`check_epoch_repeatable`.

    An inconclusive report (randomness pitfalls could not control) raises too.
    """
    __tracebackhide__ = True
    report = check_epoch_repeatable(
        source, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack, reseed=reseed
    )
    if not report.ok:
        raise EpochChangedError(report, msg)


def assert_order_shuffled(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
    msg: str | None = None,
) -> None:
    """Fail when epoch 2 repeats epoch 1's order. See :func:`check_order_shuffled`.

    An inconclusive report (randomness pitfalls could not control) raises too.
    """
    __tracebackhide__ = True
    report = check_order_shuffled(
        source, steps_per_epoch=steps_per_epoch, timeout=timeout, unpack=unpack, reseed=reseed
    )
    if not report.ok:
        raise OrderNotShuffledError(report, msg)


# epoch_complete ----------------------------------------------------------------------


def _first_epoch(
    source: Source, steps_per_epoch: int | None, timeout: float | None, unpack: Any
) -> tuple[list[bytes], int]:
    """The samples of the first epoch, read as Keras would: indices 0..n-1, or one iteration."""
    length = source.length if source.kind == "indexable" else None
    count = steps_per_epoch if steps_per_epoch is not None else length
    stream = source.batches()
    samples: list[bytes] = []
    batches = 0
    while count is None or batches < count:
        if count is None and batches >= _MAX_BATCHES:
            raise ValueError(
                f"source yielded more than {_MAX_BATCHES} batches in one epoch: if it is"
                " endless, pass steps_per_epoch="
            )
        try:
            batch = call_within(lambda: next(stream), timeout, f"yield batch {batches}")
        except StopIteration:
            break
        except TimeoutError:
            raise
        except Exception as exc:
            add_note(exc, f"pitfalls: raised by the source while reading batch {batches}")
            raise
        samples += _samples(split_batch(batch, batches, unpack), batches)
        batches += 1
    return samples, batches


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
    the batches' inputs). One epoch is read (indices 0..n-1 of an indexable
    source, one iteration, or ``steps_per_epoch`` batches) and compared as a
    multiset: samples seen twice, samples never seen, and samples not in
    ``dataset`` are reported. Made for what several workers deliver: a
    generator or iterator shared by threads without a lock duplicates and drops
    batches silently; Keras' ordered enqueuer and a DataLoader's sampler
    deliver each index once. A source that augments its samples at random
    delivers rows that are not in ``dataset``: when it drew random numbers and
    such strangers appear, the report is inconclusive (check with the
    augmentation off).
    """
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reference = _dataset_rows(dataset)
    resolved = resolve(source)
    with Randomness(_roots(resolved), restore=False) as rnd:
        rnd.mark()
        seen_list, batches = _first_epoch(resolved, steps_per_epoch, timeout, unpack)
        rnd.drew()
    wanted = Counter(reference)
    seen = Counter(seen_list)
    order = {fp: i for i, fp in reversed(list(enumerate(reference)))}
    twice = sorted(order.get(fp, -1) for fp, k in seen.items() if k > 1 and fp in wanted)
    missing = sorted(order[fp] for fp in wanted if seen[fp] < wanted[fp])
    strangers = sum(k for fp, k in seen.items() if fp not in wanted)
    findings = []
    total = sum(wanted.values())
    inconclusive = ""
    if strangers and rnd.random:
        inconclusive = (
            f"The source is random per read (it drew from {', '.join(rnd.seen)}):"
            f" {strangers} of the {len(seen_list)} samples it delivered are not rows of"
            " dataset, as augmented samples never are, so which rows were delivered cannot"
            " be told. Check with the augmentation turned off."
        )
    else:
        findings = _complete_findings(seen, wanted, twice, missing, strangers, total, seen_list)
    return Report(
        check="epoch_complete",
        parameters={"steps_per_epoch": batches, "samples": total},
        batches=batches,
        findings=tuple(findings),
        inconclusive=inconclusive,
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
