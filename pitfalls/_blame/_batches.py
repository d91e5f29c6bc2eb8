"""Blame for the checks that draw batches: aliasing, targets, epochs."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls import _tree as tree
from pitfalls._blame._pass import (
    _MAX_STORED,
    NamedArrays,
    Watched,
    _cannot,
    _diagnose,
    _explain,
    _Held,
    _Outcome,
    _Pass,
    _plural,
    _stored,
    _why,
)
from pitfalls._fingerprint import row_multiset
from pitfalls._randomness import Randomness
from pitfalls._report import Blame
from pitfalls._sources import Source, article, is_indexable, resolve

# Fresh copies -------------------------------------------------------------------------


def _fresh(source: Any) -> Callable[[], Source] | str:
    """A function making a fresh copy of ``source`` each call, or why there is none."""
    if not isinstance(source, Source) and not _is_object_source(source):
        return lambda: resolve(source)  # a factory, a class: call it again
    resolved = source if isinstance(source, Source) else resolve(source)
    if resolved.made_by is not None:  # resolved from a factory: call that again
        return functools.partial(resolve, resolved.made_by, resolved.name)
    if resolved.kind in ("indexable", "iterable"):
        return lambda: resolved  # read again: by index from 0, or iter() again
    return _why("no_factory", a_kind=article(resolved.kind))


class _InProcess:
    """Fresh copies as ``fresh`` makes them, but a torch DataLoader with worker processes
    as a copy of it with ``num_workers=0``: a write made in a worker process is out of
    reach of a trace in this one, so its dataset, sampler and collate_fn are run here."""

    def __init__(self, fresh: Callable[[], Source]) -> None:
        self.fresh = fresh
        self.workers = 0
        """The worker processes of the last DataLoader replaced; 0 when none was."""
        self.tf_data = False
        """Was the source a ``tf.data.Dataset``, which runs its pipeline in its own threads?"""

    def __call__(self) -> Source:
        src = self.fresh()
        self.tf_data = self.tf_data or frameworks.tfdata.is_dataset(src.obj)
        dup, workers = frameworks.torch.single_process(src.obj)
        if dup is None:
            return src
        self.workers = workers
        return Source(dup, src.kind, src.made_by, src.name)

    def mark(self, blame: Blame) -> Blame:
        """``blame``, noting the copy when the diagnosis read one, and saying where a
        tf.data pipeline's writes happen."""
        if self.tf_data and blame.why == "unseen":
            blame = _cannot("tf_data")
        if not self.workers:
            return blame
        n = self.workers
        note = _why("dataloader_copy", count=n, processes=_plural(n, "process"))
        return dataclasses.replace(blame, note=note)


def _is_object_source(obj: Any) -> bool:
    """Is ``obj`` a source itself (an iterator, a generator, an iterable, an indexable
    source), rather than a factory or a class that makes one?"""
    return not inspect.isclass(obj) and (is_indexable(obj) or hasattr(type(obj), "__iter__"))


Plan = Callable[[_InProcess, _Pass], None]
"""How a blame reads its fresh copies (made by the first argument) through a pass."""


def _diagnose_fresh(source: Any, plan: Plan, steps: str, **options: Any) -> Blame:
    """Diagnose fresh copies of ``source`` read as ``plan`` says (``steps``: what that is;
    ``options``: as for :func:`_diagnose`), or say why there are none.

    The random generators the source holds (and the global ones) are put back as they
    were once the diagnosis ends: a source object read again must meet the checks that
    follow as it would have without blame, however many times blame read it.
    """
    fresh = _fresh(source)
    if isinstance(fresh, str):
        return Blame(reason=fresh)
    make = _InProcess(fresh)
    obj = source.obj if isinstance(source, Source) else source
    with Randomness([("self", obj)]):
        outcome = _diagnose(functools.partial(plan, make), **options)
    return make.mark(_explain(outcome, "batch", what="the batches", steps=steps))


def _draws(draws: int, parts: Callable[[Any, int], Watched]) -> Plan:
    """Draw ``draws`` batches from a fresh copy, holding the ``parts`` of each."""

    def plan(make: _InProcess, one: _Pass) -> None:
        stream = one.step(lambda: make().stream())
        for i in range(draws):
            batch = one.step(functools.partial(next, stream))
            one.watch(one.snap(i, parts(batch, i)))

    return plan


# Entry points -------------------------------------------------------------------------


def blame_aliasing(source: Any, *, draws: int, timeout: float | None = None) -> Blame:
    """The line that wrote into a batch already handed out, after a failed aliasing check.

    ``source`` is what the check was given (or its resolved ``Source``); a
    fresh copy is drawn ``draws`` times, holding every batch, as
    :func:`check_generator_no_aliasing` does. A bare iterator cannot be read
    again: the Blame then says to pass a factory.
    """
    plan = _draws(draws, lambda batch, i: (("", batch),))
    return _diagnose_fresh(source, plan, f"{draws} draws", timeout=timeout)


def blame_targets(
    source: Any,
    target_fn: Callable[[Any], Any],
    *,
    draws: int,
    rtol: float = 1e-6,
    atol: float = 0.0,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
) -> Blame:
    """The line that made a batch's targets stop matching ``target_fn(inputs)`` after it
    was handed out, after a targets check that failed "after later draws".

    The inputs and targets of every batch drawn are watched; a write counts
    once the batch it wrote no longer satisfies ``targets == target_fn(inputs)``
    (``numpy.isclose`` with ``rtol``, ``atol``), so a write that leaves the pair
    consistent is not blamed. Arguments as for :func:`check_targets_match`.
    """

    def pair(batch: Any, i: int) -> Watched:
        parts = tree.split_batch(batch, i, unpack)
        watched = ((parts.inputs_path, parts.inputs), (parts.targets_path, parts.targets))
        return watched if parts.targets is not None else watched[:1]

    def broken(held: _Held, group: list[_Held]) -> bool:
        """Do the held batch's targets no longer equal ``target_fn(inputs)``?"""
        if len(held.parts) < 2:
            return True
        (_, inputs), (path, targets) = held.parts
        try:
            got = tree.flatten_at(targets, path).leaves
            want = tree.flatten_at(target_fn(inputs), "target_fn(inputs)").leaves
            if len(got) != len(want):
                return True
            for (p, actual), (wp, desired) in zip(got, want):
                a, d = tree.as_array(actual, p), tree.as_array(desired, wp)
                if tree.diff_arrays(p, d, a, rtol=rtol, atol=atol) is not None:
                    return True
            return False
        except Exception:  # target_fn fails on what the write left: the pair is broken
            return True

    plan = _draws(draws, pair)
    return _diagnose_fresh(source, plan, f"{draws} draws", accept=broken, timeout=timeout)


_MAX_EPOCH = 100_000


def blame_epochs(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reordered: bool = False,
) -> Blame:
    """The line that rewrote the data between epochs, after a failed epoch check.

    Two epochs of a fresh copy are read as :func:`check_epoch_repeatable`
    reads them (indices with ``on_epoch_end()`` between epochs; an iterable,
    such as a DataLoader or a loader object, started again with ``iter()``; a
    generator made again by its factory; or ``steps_per_epoch`` draws from one
    stream). The inputs of epoch 1's batches are watched from the end of
    epoch 1 (those already rewritten during epoch 1 are reused buffers, not
    the dataset, and are dropped), and so are the arrays and CPU tensors the
    source holds (``self.dataset.images``); the first write in epoch 2 that
    changes their samples is blamed, e.g. ``x /= 255`` on a slice of the
    stored data. Reordering the samples (an in-place shuffle) is not a rewrite,
    except with ``reordered``: inputs paired with other targets in epoch 2
    (``Cause.PAIRS_CHANGED``), where the first write that moves a stored array's
    rows is blamed (``np.random.shuffle(self.x)`` without ``self.y``).
    """

    def plan(make: _InProcess, one: _Pass) -> None:
        src: Source = one.step(make)
        stored = _stored_arrays(src)  # the data it holds before reading a batch
        length = src.length if src.kind == "indexable" else None
        count = steps_per_epoch if steps_per_epoch is not None else length
        stream = src.batches()
        epoch1 = []
        for i in range(count if count is not None else _MAX_EPOCH):
            try:
                batch = one.step(functools.partial(next, stream))
            except _Outcome as stop:
                if stop.kind == "end" and count is None:
                    break  # the end of epoch 1
                raise
            parts = tree.split_batch(batch, i, unpack)
            epoch1.append(one.snap(i, ((parts.inputs_path, parts.inputs),), "epoch 1"))
        one.settle(epoch1)
        for name, array in _datasets(stored, epoch1):
            one.watch(one.snap(None, ((name, array),), name))
        if count is None:
            if not src.rereadable:
                raise _Outcome("cannot", detail=_why("read_once"))
            # As the check reads epoch 2: iter() again on an iterable (the same object, whose
            # stored data epoch 1 may have rewritten), a fresh copy of a generator.
            again = src.fresh() if src.kind in ("generator", "iterator") else src
            stream = one.step(again.batches)
        for _ in range(len(epoch1)):
            one.step(functools.partial(next, stream))

    def rewritten(held: _Held, group: list[_Held]) -> bool:
        """Do the held batches no longer hold the samples (rows) of their snapshots, in any
        order? With ``reordered``, moving a stored array's rows counts too."""
        if reordered and held.batch is None:  # an array the source stores: rows moved
            return True
        then: Counter[bytes] = Counter()
        now: Counter[bytes] = Counter()
        try:
            for h in group:
                snapped = [array for snap in h.snaps for array in snap.arrays]
                for (path, was), (_, leaf) in zip(snapped, h.leaves()):
                    then += row_multiset(np.atleast_1d(was))
                    now += row_multiset(np.atleast_1d(tree.as_array(leaf, path)))
        except Exception:  # a batch no longer splits into samples: rewritten
            return True
        return then != now

    return _diagnose_fresh(source, plan, "two epochs", accept=rewritten, timeout=timeout)


def _stored_arrays(src: Source) -> NamedArrays:
    """The arrays a source holds (``self.dataset.images``), a generator's by its local
    names; and those the factory that made it holds."""
    if inspect.isgenerator(src.obj):
        roots = list(inspect.getgeneratorlocals(src.obj).items())
    else:
        roots = [("self", src.obj)]
    return _stored(roots + src.roots[1:])  # and the factory's


def _datasets(stored: NamedArrays, epoch1: list[_Held]) -> NamedArrays:
    """The stored arrays to watch in epoch 2: larger than a batch (a buffer is not the
    dataset), not memory the batches handed out (watched as batches already)."""
    leaves = [a for h in epoch1 for objs in h.objects for a in objs if isinstance(a, np.ndarray)]
    rows = max((len(leaf) for leaf in leaves if leaf.ndim), default=0)
    chosen, total = [], 0
    for name, array in stored:
        if array.ndim == 0 or len(array) <= rows or total + array.nbytes > _MAX_STORED:
            continue
        if any(np.may_share_memory(array, leaf) for leaf in leaves):
            continue
        chosen.append((name, array))
        total += array.nbytes
    return chosen
