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

Shared here: :class:`Epoch` and :class:`Reader`; one comparison of two multisets
of samples (:func:`compare`) and one remainder rule (:func:`remainder`); one way
from a :class:`Verdict` (evidence) to a :class:`~pitfalls.Report` (words from
``words.toml``), :func:`report`.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._frameworks import tfdata
from pitfalls._frameworks.rngs import get_state, same_state
from pitfalls._randomness import Randomness, held_by
from pitfalls._report import MAX_SHOWN, Blame, Cause, Finding, Report, Unjudged
from pitfalls._sources import Source, add_note, article, call_within, resolve, restarts_itself
from pitfalls._tree import Parts, as_array, flatten_at, split_batch
from pitfalls._words import say
from pitfalls._written import Change, source_state, state_changed

EPOCH_SEED = 1_000_003
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
    """One fingerprint per sample's targets; None when they are not arrays of n rows."""
    if parts.targets is None:
        return None
    try:
        arrays = _arrays(parts.targets, parts.targets_path)
    except Exception:  # targets that are not arrays: no evidence from them
        return None
    if not arrays or any(a.ndim == 0 or len(a) != n for a in arrays):
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


def _endless(batches: int, samples: int, nbytes: int, length: int | None, data_bytes: int) -> str:
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


class Reader:
    """Reads epochs of a source, each read under :class:`Randomness` control.

    Indexable: ``on_epoch_end()`` (when ``transition``) then indices 0..n-1.
    Otherwise an epoch starts with ``iter()``, a fresh copy from the factory, or
    (``steps_per_epoch``) the next stretch of one stream (started again where it
    ends between two epochs). How each read is made is :attr:`reads`.

    A tf.data pipeline with a factory is built again under a fixed seed
    (``build``), so that its random ops have seeds (see :mod:`pitfalls._frameworks.tfdata`):
    every iteration then replays the same random numbers, as the comparison of
    two epochs' samples needs. The order and completeness checks read the
    pipeline as the user built it instead: seeded, a random op drawn once per
    epoch (Hugging Face's ``to_tf_dataset(shuffle=True)`` draws its permutation
    so) would repeat. Either is read on one thread, reseeded only as each
    iteration starts (its threads read ahead of ``next()``).
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
        reads: str = "seeded",
        data: tuple[int, int] = (0, 0),
        partial: bool = False,
    ) -> None:
        self.steps = steps_per_epoch
        self.timeout = timeout
        self.unpack = unpack
        self.rnd = randomness
        self.read = 0
        self.epochs = 0
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
        self.count = steps_per_epoch
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
            self.count = length if steps_per_epoch is None else steps_per_epoch
        elif steps_per_epoch is not None:
            self.rnd.control(EPOCH_SEED)
            self.stream = self._start(source)
            self.rnd.add_root("stream", self.stream)
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

    def _build(self, source: Source) -> Source:
        """``source`` made again by its factory under :data:`_BUILD_SEED`."""
        self.rnd.control(_BUILD_SEED)
        self.rebuilt = True
        built = source.fresh()
        tfdata.keep_if_from_hf(built.obj)
        return built

    def _start(self, source: Source) -> Iterator[Any]:
        """An iterator over one epoch (or, ``steps_per_epoch``, a stream) of ``source``."""
        if self.tf:  # on one thread, as one iteration
            source = Source(tfdata.one_thread(source.obj), "iterable")
        it = source.batches()
        self.library = self.library or frameworks.library_of(it)
        return it

    def epoch(self, seed: int | None, *, transition: bool = True) -> Epoch:
        """Read one epoch; start it under ``seed`` (``transition=False``: same indices again;
        None: nothing reseeded as it starts, as training goes from one epoch to the next)."""
        self.epochs += 1
        reseed = seed is not None and (transition or not self.indexable)
        if self.tf and self.stream is not None:
            reseed = False  # its threads read ahead of next(): reseeded only as it started
        if reseed and seed is not None:
            self.rnd.control(seed)
        elif seed is None:
            self.rnd.mark()  # what iter() draws (a DataLoader's seeds) counts as the start
        if self.indexable:
            end = getattr(self.source.obj, "on_epoch_end", None)
            if transition and callable(end):
                end()
            return self._read(lambda i: self.source.obj[i])
        if self.stream is not None:
            known = set(self.rnd.rngs)
            epoch = self._read(lambda i: next(self.stream))  # type: ignore[arg-type]
            self.late = bool(set(self.rnd.rngs) - known)
            return epoch
        once = self.source.kind in ("generator", "iterator")
        if once and self.epochs > 1 and restarts_itself(self.current):
            # a loader whose __iter__ starts each epoch, as a for loop over it would;
            # one that gives nothing more is made again by its factory, if it has one
            it = self._start(Source(self.current, "iterator"))
            self.rnd.add_root("iterator", it)
            again = self._read(lambda i: next(it), iterator=it)
            if again.batches:
                return again
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
        return self._read(lambda i: next(it), iterator=it)

    def rebuilt_epoch(self) -> Epoch:
        """Epoch 1 once more: a tf.data pipeline built again and read from the same seed
        (its iterations draw new orders from seeds held inside it)."""
        self.source = self._build(self.source)
        self.current = self.source.obj
        return self.epoch(EPOCH_SEED)

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

    def _read(self, get: Callable[[int], Any], iterator: Any = None) -> Epoch:
        """One epoch, by ``get(position)``: an index's read is reseeded (or marked) before
        it, an iterator's first batch counts from its start (``iter()``)."""
        first_seeded = self.indexable
        epoch = Epoch()
        b = samples = 0
        restarted = False
        state = source_state(self.current)
        length = self.source.length or self.data[0] or None
        # a pipeline's threads read ahead of next(): no reseeding
        per_read = not self.tf and self.reads != "natural"
        while self.count is None or b < self.count:
            if self.count is None:
                endless = _endless(b, samples, epoch.nbytes, length, self.data[1])
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
            self.rnd.drew(at_start=iterator is not None and b == 0)
            if kept is not None:
                self.rnd.put_back(kept)
            if b == 0 and (iterator is not None or self.stream is not None):
                self._made_anew()  # a generator's locals exist once it runs
            parts = split_batch(batch, index, self.unpack)
            arrays = _input_arrays(parts, index)
            n = len(arrays[0])
            epoch.layout = epoch.layout or layout(arrays)
            epoch.batches.append(fingerprint.samples(arrays, n))
            epoch.nbytes += sum(a.nbytes for a in arrays)
            samples += n
            rows = _target_rows(parts, n)
            if rows is None or epoch.targets is None:
                epoch.targets = None
            else:
                epoch.targets.append(rows)
            self.read += 1
            b += 1
        self.lengths.append(b)
        if self.steps is not None and b < self.steps and not self.partial:
            count = {1: "one", 2: "two", 3: "three"}.get(self.epochs, str(self.epochs))
            raise ValueError(
                f"source stopped after {self.read} batches; {count} epochs of"
                f" steps_per_epoch={self.steps} need {self.epochs * self.steps}"
            )
        if b == 0 and not self.partial:
            raise ValueError("source yielded no batches")
        changed = state_changed(state, source_state(self.current))
        self.state_changed += [name for name in changed if name not in self.state_changed]
        if b == 1 and iterator is not None:  # its first batch is all of it: drawn per read
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
            try:
                state = get_state(obj, kind)
            except Exception:  # a state that cannot be read: no evidence
                continue
            if last is not None and same_state(last[1], state) and name not in self.iterables:
                self.iterables.append(name)
            self._made[name] = (obj, state)

    def held(self) -> Any:
        """What the source holds now: the object, this epoch's copy, iterators, the factory."""
        roots = [("self", self.source.obj)]
        if self.current is not self.source.obj:
            roots.append(("self", self.current))
        return held_by(roots + self.rnd.roots[1:])


def roots(source: Source) -> list[tuple[str, Any]]:
    """Where the source's own RNGs may be: the object, and the factory that made it."""
    found = [("self" if source.kind in ("indexable", "iterable") else "source", source.obj)]
    return found + ([("factory", source.made_by)] if source.made_by is not None else [])


def setup(
    source: Any, steps_per_epoch: Any, timeout: Any, unpack: Any, reseed: Any = None
) -> tuple[Source, int | None, float | None, Any, Any]:
    """The arguments every epoch check takes, validated, and the source resolved."""
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    reseed = validate.optional_function("reseed", reseed)
    return resolve(source), steps_per_epoch, timeout, unpack, reseed


# Judging: one comparison, one remainder rule, one way to a Report ---------------------


@dataclass(frozen=True)
class Comparison:
    """Samples delivered (``got``) against samples expected, as multisets."""

    missing: Counter[bytes]
    """Expected samples not delivered (as many times as they are short)."""
    extra: Counter[bytes]
    """Delivered samples beyond those expected: twice, or not expected at all."""

    @property
    def same(self) -> bool:
        return not self.missing and not self.extra


def compare(expected: list[bytes], got: list[bytes]) -> Comparison:
    a, b = Counter(expected), Counter(got)
    return Comparison(missing=a - b, extra=b - a)


def remainder(sizes: list[int], left_out: int) -> bool:
    """The one remainder rule: an epoch of full batches of one size that left out fewer
    samples than a batch left out the samples that do not fill a last batch
    (``len = floor(n / batch_size)``, ``drop_last``, ``drop_remainder``)."""
    return len(set(sizes)) == 1 and 0 < left_out < sizes[0]


def missing(first: list[bytes], second: list[bytes], path: str, when: str) -> Finding:
    """A finding: the samples of ``first`` that ``second`` lacks, the first few by position."""
    lost = compare(first, second).missing
    where = [i for i, s in enumerate(first) if s in lost][:MAX_SHOWN]
    return Finding(
        path=path,
        when=when,
        mismatched=lost.total(),
        total=len(first),
        problem=f"{lost.total()} / {len(first)} samples of epoch 1 are not in epoch 2"
        f" (epoch 1 had {len(first)} samples, epoch 2 {len(second)});"
        f" first missing: samples {where}",
    )


def change_note(changes: tuple[Change, ...], when: str) -> str:
    parts = [f"{c.name} ({c.changed} of {c.rows} rows)" for c in changes[:MAX_SHOWN]]
    return f"Stored data written {when}: " + ", ".join(parts) + "."


def drew(rnd: Randomness) -> str:
    """The generators the reads drew from, most drawn first."""
    return ", ".join(name for name, _ in rnd.seen.most_common(3)) or "your reseed= hook"


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


def report(
    check: str,
    verdict: Verdict,
    source: Source,
    rnd: Randomness,
    *,
    parameters: dict[str, Any],
    batches: int,
    blame: Blame | None = None,
    natural: bool = False,
) -> Report:
    """The report of an epoch check: the verdict's words, and what the reads drew from."""
    words = say(check, verdict.cause or "passed", verdict.kind, **verdict.fields)
    if verdict.fix is not None:
        words = words._replace(hint=say(check, verdict.cause, verdict.fix, **verdict.fields).hint)
    failed = bool(verdict.findings)
    note = rnd.note(natural=natural)
    return Report(
        check=check,
        cause=verdict.cause,
        parameters=parameters,
        batches=batches,
        findings=verdict.findings,
        inconclusive=Unjudged(verdict.cause, words.text) if verdict.cause and not failed else "",
        reason=words.text if failed else "",
        hint=words.hint if failed else "",
        notes=verdict.notes + ((note,) if note else ()),
        summary=words.text if verdict.cause is None else "",
        source=source.description,
        blame=blame,
    )


def parameters(steps_per_epoch: int | None, batches: int, reseed: Any) -> dict[str, Any]:
    """``steps_per_epoch`` (the batches of an epoch read, when not given) and ``reseed``."""
    params: dict[str, Any] = {"steps_per_epoch": steps_per_epoch or batches}
    return params | ({"reseed": reseed} if reseed is not None else {})
