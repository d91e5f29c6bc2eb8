"""Epochs as read: the reader the three epoch checks share, and what they share to judge.

Epochs are read from the source and compared sample by sample, where a sample
is one row (axis 0) of every input array of a batch, fingerprinted by its
bytes the moment it is read (:mod:`pitfalls._fingerprint`). *Repeatable*
(:mod:`pitfalls._repeatable`): the second epoch holds the same samples as the
first, in any order, paired with the same targets (in-place preprocessing breaks
this). *Shuffled* (:mod:`pitfalls._order`): two consecutive epochs, read as
training reads them, differ in order and in batch membership (a generator ignores
Keras' ``shuffle=True``). *Complete* (:mod:`pitfalls._complete`): an epoch
delivers every sample of a dataset once.

A verdict needs evidence (:class:`pitfalls.Cause`). Random augmentation changes
the samples at every read, so the repeatable check reads under controlled
randomness (:mod:`pitfalls._randomness`): before each read every RNG pitfalls
can reach is reseeded, the same way for the reads compared; ``reseed=`` and
:func:`pitfalls.register_random` reach the others. The order and completeness
checks read as training does, nothing reseeded; the order check then, only where
augmentation hides the order, reads with each read reseeded and its generators
put back. Where randomness still makes two epochs incomparable, the report is
inconclusive and says why; it never passes for it, and never fails for it.

Shared here: :class:`Epoch`, :class:`Reader` and :func:`reading` (the arguments
validated, the source resolved, its reads under control); one comparison of two multisets
of samples (:func:`compare`) and one remainder rule (:func:`remainder`); one way
from a :class:`Verdict` (evidence) to a :class:`~pitfalls.Report` (words from
``words.toml``), :func:`report`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._frameworks import rngs, tfdata
from pitfalls._frameworks.rngs import get_state, same_state
from pitfalls._randomness import Randomness, fresh_entropy, held_by
from pitfalls._report import MAX_SHOWN, Blame, Cause, Finding, Report, Unjudged
from pitfalls._sources import Source, article, call_within, resolve, restarts_itself
from pitfalls._tree import Parts, as_array, flatten_at, split_batch
from pitfalls._words import say
from pitfalls._written import Change, source_state, state_changed

EPOCH_SEED = 1_000_003
"""The seed the RNGs get as a compared epoch starts (``on_epoch_end``, ``iter()``), so that
what the start draws (an order) is drawn alike; epochs read as training reads them get none."""
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
    layout: Layout = ()
    """The layout of a sample of its first batch."""

    @property
    def samples(self) -> list[bytes]:
        return [s for batch in self.batches for s in batch]

    @property
    def sample_targets(self) -> list[bytes] | None:
        return None if self.targets is None else [t for batch in self.targets for t in batch]

    @property
    def sizes(self) -> list[int]:
        return [len(batch) for batch in self.batches]

    def add(self, parts: Parts, index: int) -> int:
        """Batch ``index``'s samples (and their targets), fingerprinted; how many there were."""
        arrays = _input_arrays(parts, index)
        n = len(arrays[0])
        self.layout = self.layout or layout(arrays)
        self.batches.append(fingerprint.samples(arrays, n))
        self.nbytes += sum(a.nbytes for a in arrays)
        rows = _target_rows(parts, n)
        if rows is None or self.targets is None:
            self.targets = None
        else:
            self.targets.append(rows)
        return n


Layout = tuple[tuple[tuple[int, ...], str], ...]
"""Per array of a sample (in leaf order): its shape without the sample axis, its dtype."""


def layout(arrays: list[np.ndarray]) -> Layout:
    return tuple((tuple(a.shape[1:]), a.dtype.str) for a in arrays)


def _arrays(node: Any, path: str) -> list[np.ndarray]:
    return [as_array(leaf, where) for where, leaf in flatten_at(node, path).leaves]


def _input_arrays(parts: Parts, b: int) -> list[np.ndarray]:
    arrays = _arrays(parts.inputs, parts.inputs_path)
    if not arrays or any(a.ndim == 0 for a in arrays):
        raise ValueError(f"batch {b}: inputs need a batch axis to be split into samples")
    if any(len(a) != len(arrays[0]) for a in arrays):
        raise ValueError(f"batch {b}: input arrays disagree on the batch size")
    return arrays


def _target_rows(parts: Parts, n: int) -> list[bytes] | None:
    """One fingerprint per sample's targets; None when they are not arrays of n rows (or
    there are none)."""
    try:
        arrays = _arrays(parts.targets, parts.targets_path)
    except Exception:  # targets that are not arrays: no evidence from them
        return None
    if not arrays or any(a.ndim == 0 or len(a) != n for a in arrays):
        return None
    return fingerprint.samples(arrays, n)


def _endless(batches: int, samples: int, nbytes: int, length: int | None, data_bytes: int) -> None:
    """A ValueError when an epoch read this far has no end in sight; a length (of batches,
    or of the dataset's samples) raises the limits, and so does the dataset's size in bytes."""
    scale = 1 if length is None else max(1, -(-2 * length // _ENDLESS[0]))
    limits = [limit * scale for limit in _ENDLESS]
    limits[2] = max(limits[2], 2 * data_bytes)
    if batches < limits[0] and samples < limits[1] and nbytes < limits[2]:
        return
    size = f"{nbytes} bytes"
    for unit, scale in (("kB", 2**10), ("MB", 2**20)):
        if nbytes >= scale:
            size = f"{nbytes / scale:.0f} {unit}"
    raise ValueError(
        f"source has no end after {batches} batches ({samples} samples, {size} of inputs)"
        " in one epoch: pass steps_per_epoch=, the batches of one epoch, if it is endless"
        " (or if its epochs are longer still)"
    )


class Reader:
    """Reads epochs of a source, each read under :class:`Randomness` control.

    One plan for every source: an epoch is ``count`` reads (without a count, the
    reads until the source stops), each reseeded, watched or both as :attr:`reads`
    says. An indexable source is read by index, 0..n-1, after ``on_epoch_end()``
    (when ``transition``). Any other is read with ``next()`` from an iteration
    (:meth:`_open`): a new one for each epoch (``iter()`` of an iterable, a
    generator made again by its factory), or, with ``steps_per_epoch``, one
    stream whose epochs are its next stretches, opened again where it stops
    between two epochs.

    A tf.data pipeline with a factory is built again under a fixed seed
    (``reads="seeded"``), so that its random ops have seeds (see
    :mod:`pitfalls._frameworks.tfdata`): every iteration then replays the same
    random numbers, as the comparison of two epochs' samples needs. The order and
    completeness checks read the pipeline as the user built it instead: seeded, a
    random op drawn once per epoch (Hugging Face's ``to_tf_dataset(shuffle=True)``
    draws its permutation so) would repeat. Either is read on one thread, reseeded
    only as each iteration starts (its threads read ahead of ``next()``).
    """

    def __init__(
        self,
        source: Source,
        steps_per_epoch: int | None,
        timeout: float | None,
        unpack: Any,
        randomness: Randomness,
        *,
        reads: str = "seeded",
        data: tuple[int, int] = (0, 0),
        partial: bool = False,
    ) -> None:
        self.given = source
        """The source as the user gave it (a report names it)."""
        self.steps = steps_per_epoch
        self.timeout = timeout
        self.unpack = unpack
        self.rnd = randomness
        self.read = self.epochs = 0
        """The batches read, and the epochs begun."""
        self.lengths: list[int] = []
        """The batches of each epoch read."""
        self.reads = reads
        """How reads are made: ``"seeded"`` (each after reseeding with its position),
        ``"natural"`` (watched, nothing reseeded: as training reads), ``"kept"`` (reseeded
        with the position, then every generator put back where the read found it, so
        that what an epoch's start draws goes on as in training)."""
        self.data = data
        """The samples and bytes of a dataset an epoch should deliver (raise the limits
        past which an epoch counts as endless)."""
        self.partial = partial
        """An epoch may stop before ``steps_per_epoch``, or yield nothing: judged, no error."""
        self.indexable = source.kind == "indexable"
        self.stream = steps_per_epoch is not None and not self.indexable
        """One iteration read across epochs, ``steps_per_epoch`` batches at a time."""
        self.tf = tfdata.is_dataset(source.obj)
        self.rebuilt = False
        """A tf.data pipeline built again by its factory, under :data:`_BUILD_SEED`."""
        self.source = source
        if self.tf:
            tfdata.keep_if_from_hf(source.obj)
            if reads == "seeded" and source.made_by is not None:
                self._build()
        self.graph = tfdata.graph(self.source.obj) if self.tf else None
        self.library = frameworks.library_of(self.source.obj)
        self.current: Any = self.source.obj
        """What is read now: the source, or the generator made for this epoch."""
        self.it: Any = None
        """The iteration ``next()`` reads (None before the first, and by index)."""
        self.in_place = False
        """The last iteration was started by iter() of the object read before."""
        self.count = steps_per_epoch
        if self.indexable:
            self.count = validate.indexed_epoch("steps_per_epoch", steps_per_epoch, source.length)
        elif self.stream:
            self.rnd.control(EPOCH_SEED)
            self._open()
        self.state_changed: list[str] = []
        """Attributes of the source's own objects that its reads changed (a counter)."""
        self.iterables: list[str] = []
        """Names of RNGs made anew for each epoch (other objects under one name) in the
        same state as the last epoch's at its first batch: one seed for every epoch."""
        self._made: dict[str, tuple[Any, Any]] = {}
        """Each RNG's object and its state when last found new at an epoch's first batch."""
        self.late = False
        """The last epoch of a stream found RNGs as it read (a generator's locals exist
        once it runs): they were not reseeded as it started, so it is no reference."""
        if self.library == "torch":
            self.rnd.orders.update(id(g) for g in frameworks.torch.order_generators(source.obj))

    def _build(self) -> None:
        """The source made again by its factory under :data:`_BUILD_SEED`."""
        self.rnd.control(_BUILD_SEED)
        self.rebuilt = True
        self.source = self.source.fresh()
        tfdata.keep_if_from_hf(self.source.obj)

    def _open(self, in_place: bool = True) -> bool:
        """Start an iteration: the source's first, or its next between two epochs (``iter()``
        of an iterable, or of a loader whose class starts its epochs in ``__iter__``, as a
        for loop over it does; else a generator made again by its factory); a tf.data
        pipeline on one thread. False when a stream cannot be started again."""
        source = self.source
        self.in_place = in_place and self.it is not None and restarts_itself(self.current)
        if self.in_place:
            source = Source(self.current, "iterator")
        elif self.it is not None and not source.rereadable:
            if self.stream:
                return False  # the stream stops: fewer batches than epochs need
            kind, name = source.kind, type(source.obj).__qualname__
            what = article(kind) if name == kind else f"{article(name)} ({article(kind)})"
            raise ValueError(
                f"source is {what}, which can be read only once: pass its"
                " factory (a generator function or class), an iterable, or"
                " steps_per_epoch= for an endless stream of epochs"
            )
        elif self.it is not None and source.kind in ("generator", "iterator"):
            source = source.fresh()
        self.current = source.obj
        if self.tf:  # on one thread, as one iteration
            source = Source(tfdata.one_thread(source.obj), "iterable")
        self.it = source.batches()
        self.library = self.library or frameworks.library_of(self.it)
        self.rnd.add_root("stream" if self.stream else "iterator", self.it)
        return True

    def epoch(self, seed: int | None, *, transition: bool = True) -> Epoch:
        """Read one epoch; start it under ``seed`` (``transition=False``: same indices again;
        None: nothing reseeded as it starts, as training goes from one epoch to the next)."""
        self.epochs += 1
        if seed is None:
            self.rnd.mark()  # what iter() draws (a DataLoader's seeds) counts as the start
        elif (transition or not self.indexable) and not (self.tf and self.stream):
            self.rnd.control(seed)  # (a pipeline's threads read ahead: seeded as it started)
        if self.indexable:
            end = getattr(self.source.obj, "on_epoch_end", None)
            if transition and callable(end):
                end()
        elif not self.stream:
            self._open()
        known = set(self.rnd.rngs)
        epoch = self._read()
        if not epoch.batches and self.in_place and self.source.made_by is not None:
            self._open(in_place=False)  # a one-shot iterator: its factory makes the next
            epoch = self._read()
        if not epoch.batches and not self.partial:
            raise ValueError("source yielded no batches")
        self.late = self.stream and bool(set(self.rnd.rngs) - known)
        return epoch

    def rebuilt_epoch(self) -> Epoch:
        """Epoch 1 once more: a tf.data pipeline built again and read from the same seed
        (its iterations draw new orders from seeds held inside it)."""
        self._build()
        return self.epoch(EPOCH_SEED)

    def _batch(self, b: int) -> Any:
        """Batch ``b`` of this epoch (by index, or the iteration's next), bounded by
        ``timeout``; what the source raises carries a note saying so.

        StopIteration ends the epoch (passed on). Memory running out is not blamed on the
        source: the check holds what it read too.
        """
        get = (lambda: self.source.obj[b]) if self.indexable else (lambda: next(self.it))
        return call_within(
            get,
            self.timeout,
            f"yield batch {self.read}",
            f"pitfalls: raised by the source while reading batch {self.read}",
            f"pitfalls: memory ran out while reading batch {self.read} of the source",
        )

    def _read(self) -> Epoch:
        """One epoch: each read reseeded (or marked) before it as :attr:`reads` says, an
        iteration's first batch watched from its start (``iter()``), its draws noted after."""
        opened = not self.indexable and not self.stream  # iter() started this epoch
        epoch = Epoch()
        b = samples = 0
        restarted = False
        current = self.current
        state = source_state(current)
        length = self.source.length or self.data[0] or None
        # a pipeline's threads read ahead of next(): no reseeding
        per_read = not self.tf and self.reads != "natural"
        while self.count is None or b < self.count:
            if self.count is None:
                _endless(b, samples, epoch.nbytes, length, self.data[1])
            kept = None
            if (b > 0 or self.indexable) and per_read:
                kept = rngs.states(self.rnd.rngs) if self.reads == "kept" else None
                self.rnd.control(b)
            elif (b > 0 or self.indexable) and self.reads != "seeded":
                self.rnd.mark()  # the first batch of an iterator: watched since iter()
            try:
                batch = self._batch(b)
            except StopIteration:
                between = b == 0 and self.stream and self.epochs > 1
                if between and not restarted and self._open():
                    restarted = True  # the stream started again where it ended
                    continue
                break
            self.rnd.drew(at_start=opened and b == 0)
            if kept is not None:
                rngs.put_back(self.rnd.rngs, kept)
            if b == 0 and not self.indexable:
                self._made_anew()  # a generator's locals exist once it runs
            samples += epoch.add(split_batch(batch, self.read, self.unpack), self.read)
            self.read += 1
            b += 1
        self.lengths.append(b)
        if self.steps is not None and b < self.steps and not self.partial:
            count = {1: "one", 2: "two", 3: "three"}.get(self.epochs, str(self.epochs))
            raise ValueError(
                f"source stopped after {self.read} batches; {count} epochs of"
                f" steps_per_epoch={self.steps} need {self.epochs * self.steps}"
            )
        changed = state_changed(state, source_state(current))
        self.state_changed += [name for name in changed if name not in self.state_changed]
        if b == 1 and opened:  # its first batch is all of it: drawn per read
            self.rnd.per_read()
        return epoch

    def _made_anew(self) -> None:
        """Note the RNGs made anew for this epoch (another object under a name than at the
        last epoch's start: ``rng = default_rng(0)`` inside ``__iter__`` or under ``while
        True:``) whose state at its first batch is the last one's: the same seed every
        epoch, by evidence (a DataLoader's sampler makes a generator each epoch too, seeded
        anew from torch's: other states, no such evidence)."""
        self.rnd.rescan()
        for name, (obj, kind) in list(self.rnd.rngs.items()):
            last = self._made.get(name)
            if last is not None and last[0] is obj:
                continue
            state = get_state(obj, kind)  # (Randomness keeps only RNGs whose state it read)
            if last is not None and same_state(last[1], state) and name not in self.iterables:
                self.iterables.append(name)
            self._made[name] = (obj, state)

    def held(self) -> Any:
        """What the source holds now: the object, this epoch's copy, iterators, the factory."""
        # (an object met twice is walked once)
        return held_by([("self", self.source.obj), ("self", self.current), *self.rnd.roots[1:]])

    def fresh_entropy(self, findings: tuple[Finding, ...] = ()) -> Verdict | None:
        """``Cause.FRESH_ENTROPY`` (with ``findings``) when reading batch 0 of an indexable
        source again draws fresh entropy (a generator made in the read without a seed);
        None otherwise. Asked where nothing else explains a difference."""
        if not self.indexable:
            return None
        note = "pitfalls: raised by the source while reading batch 0 again, watched"

        def read() -> Any:
            return call_within(lambda: self.source.obj[0], self.timeout, "yield batch 0", note)

        if not fresh_entropy(read):
            return None
        entropy = {"fresh_entropy": say("common", "fresh_entropy").text}
        return Verdict(Cause.FRESH_ENTROPY, findings=findings, fields=entropy)

    @property
    def drawn(self) -> str:
        """The generators the reads drew from, most drawn first."""
        return ", ".join(name for name, _ in self.rnd.seen.most_common(3)) or "your reseed= hook"

    def report(self, check: str, verdict: Verdict, blame: Blame | None = None) -> Report:
        """The report of an epoch check: the verdict's words, and what the reads drew from;
        its parameters ``steps_per_epoch`` (the batches of the first epoch read, when not
        given) and ``reseed``, its batches all the reader read."""
        words = say(check, verdict.cause or "passed", verdict.kind, **verdict.fields)
        if verdict.fix is not None:
            fix = say(check, verdict.cause, verdict.fix, **verdict.fields)
            words = words._replace(hint=fix.hint)
        failed = bool(verdict.findings)
        unjudged = Unjudged(verdict.cause, words.text) if verdict.cause and not failed else ""
        note = self.rnd.note(natural=self.reads == "natural")
        parameters: dict[str, Any] = {"steps_per_epoch": self.steps or self.lengths[0]}
        parameters |= {"reseed": self.rnd.hook} if self.rnd.hook is not None else {}
        return Report(
            check=check,
            cause=verdict.cause,
            parameters=parameters,
            batches=self.read,
            findings=verdict.findings,
            inconclusive=unjudged,
            reason=words.text if failed else "",
            hint=words.hint if failed else "",
            notes=verdict.notes + ((note,) if note else ()),
            summary=words.text if verdict.cause is None else "",
            source=self.given.description,
            blame=blame,
        )


@contextlib.contextmanager
def reading(
    source: Any, steps_per_epoch: Any, timeout: Any, unpack: Any, reseed: Any = None, **options: Any
) -> Iterator[Reader]:
    """A :class:`Reader` of ``source`` (``options`` are its own), the arguments every
    epoch check takes validated; its reads under :class:`Randomness` control, which
    puts back every generator they drew from at the end."""
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reseed = validate.optional_function("reseed", reseed)
    resolved = resolve(source)
    with Randomness(resolved.roots, reseed) as rnd:
        yield Reader(resolved, steps_per_epoch, timeout, unpack, rnd, **options)


# Judging: one comparison, one remainder rule, one way to a Report ---------------------


def compare(expected: list[bytes], got: list[bytes]) -> tuple[Counter[bytes], Counter[bytes]]:
    """Samples delivered (``got``) against samples expected, as multisets: the expected
    ones not delivered (as many times as they are short), and those delivered beyond
    the expected (twice, or not expected at all)."""
    a, b = Counter(expected), Counter(got)
    return a - b, b - a


def remainder(sizes: list[int], left_out: int) -> bool:
    """The one remainder rule: an epoch of full batches of one size that left out fewer
    samples than a batch left out the samples that do not fill a last batch
    (``len = floor(n / batch_size)``, ``drop_last``, ``drop_remainder``)."""
    return len(set(sizes)) == 1 and 0 < left_out < sizes[0]


def finding(path: str, when: str, mismatched: int, total: int, problem: str) -> Finding:
    """A :class:`Finding` about samples, its fields in the order its message reads them."""
    return Finding(path=path, when=when, mismatched=mismatched, total=total, problem=problem)


def change_note(changes: tuple[Change, ...], when: str) -> str:
    parts = [f"{c.name} ({c.changed} of {c.rows} rows)" for c in changes[:MAX_SHOWN]]
    return f"Stored data written {when}: " + ", ".join(parts) + "."


def shown(names: Any) -> str:
    """The first few names, for a message; ``none found`` when there are none."""
    return ", ".join(list(names)[:MAX_SHOWN]) or "none found"


@dataclass
class Verdict:
    """What a check found, before words: a pass (``cause`` None), a failure (findings)
    or an inconclusive report (a cause, no findings). ``kind`` picks the words of
    ``words.toml`` (``[check.CAUSE.kind]``), ``fix`` the hint's when the fix depends
    on other evidence than the reason; ``fields`` fill them in."""

    cause: Cause | None = None
    kind: str | None = None
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    fix: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
