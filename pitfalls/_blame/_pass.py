"""One diagnosis read of a source, and the reads a blame takes: what is held and
compared, the outcome of a read, and the Blame it gives."""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls import _tree as tree
from pitfalls._blame._trace import Point, _chain, _Freezer, _read_only, _Watcher
from pitfalls._blame._where import _busy_threads, _children_alive, _frame, _stack, _user_tracebacks
from pitfalls._randomness import held_by
from pitfalls._report import Blame, Frame
from pitfalls._sources import call_within
from pitfalls._words import say

# Reasons a line cannot be named -------------------------------------------------------


def _cannot(reason: str, unit: str = "batch", why: str = "", **fields: Any) -> Blame:
    """The Blame naming no line: ``reason`` is an entry of words.toml's ``[blame]``."""
    return Blame(reason=_why(reason, **fields), unit=unit, why=why)


def _why(reason: str, **fields: Any) -> str:
    return say("blame", reason, **fields).text


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}es"


# What is watched ----------------------------------------------------------------------


def _leaves(root: str, node: Any) -> Any:
    return tree.flatten(node) if root == "" else tree.flatten_at(node, root)


Watched = tuple[tuple[str, Any], ...]
"""What is held of a batch: (root path, node) pairs; root "" is a whole batch."""

NamedArrays = list[tuple[str, np.ndarray]]
"""Arrays a source stores, by the name the user wrote them with (``self.dataset.images``)."""


class _Held:
    """A batch (or parts of one) handed out, with snapshots of its contents."""

    def __init__(self, batch: int | None, parts: Watched, group: str = "") -> None:
        self.batch = batch  # None: not a batch but an array the source stores
        self.parts = parts
        self.group = group or f"batch {batch}"
        """Held things judged together: an invariant may hold across a group (epochs)."""
        self.snaps: list[tree.Snapshot] = []
        self.objects: list[tuple[Any, ...]] = []  # the leaves themselves, at the snapshot
        self.take()

    def take(self) -> None:
        """Snapshot the contents as they are now."""
        flats = [_leaves(root, node) for root, node in self.parts]
        self.snaps = [tree.snapshot(flat) for flat in flats]
        self.objects = [tuple(leaf for _, leaf in flat.leaves) for flat in flats]

    def changed(self, unfrozen: bool = False) -> str | None:
        """The path of the first leaf that differs from its snapshot, or None.

        ``unfrozen``: skip the leaves still the same read-only array (freezing refuses
        writes to them), comparing only what freezing does not guard: a container
        changed, a leaf replaced, an array that could not be frozen.
        """
        for (root, node), snap, objects in zip(self.parts, self.snaps, self.objects):
            flat = _leaves(root, node)
            if flat.structure != snap.structure:
                _, structure = tree.diff_snapshot(snap, flat)
                return structure[0] if structure else root or "batch"
            for (path, then), (_, leaf), was in zip(snap.arrays, flat.leaves, objects):
                if unfrozen and leaf is was and _guarded_array(leaf):
                    continue
                if tree.diff_arrays(path, then, tree.as_array(leaf, path)) is not None:
                    return path
        return None

    def leaves(self) -> Iterator[tuple[str, Any]]:
        """The leaves held now, by path."""
        for root, node in self.parts:
            yield from _leaves(root, node).leaves

    def arrays(self) -> list[np.ndarray]:
        return [leaf for _, leaf in self.leaves() if isinstance(leaf, np.ndarray)]


def _guarded_array(leaf: Any) -> bool:
    return isinstance(leaf, np.ndarray) and not leaf.flags.writeable


Accept = Callable[[_Held, list[_Held]], bool]
"""Does a change of this held batch (with its group) break the invariant? False: absorb it
and go on. None: any change does."""


# One diagnosis pass -------------------------------------------------------------------


@dataclass(eq=False)
class _Outcome(Exception):
    """How a read ended, raised to end it.

    ``kind``: "found" (a line, at a trace point), "frozen" (a write raised), "changed"
    (seen only at the end of a step), "noline" (changed while no user line ran), "end"
    (nothing changed), "error" (the source raised), "cannot" (a timeout, a comparison
    that failed); ``detail``: why no line is named, for "error" and "cannot".
    """

    kind: str
    step: int = -1
    frames: tuple[Frame, ...] = ()
    batch: int | None = None
    path: str = ""
    threads: tuple[str, ...] = ()
    detail: str = ""
    how: str = "traced"  # how a "found" line was found: traced, or frozen (a refused write)
    processes: int = 0
    """Child processes alive when a change was seen with no user line (``noline``,
    ``changed``) or while other threads ran (``found`` with ``threads``): worker
    processes that may have written."""


class _Pass(_Watcher):
    """One read of a fresh copy of the source, driven by a plan through :meth:`step` and
    :meth:`watch`, watching what it holds: after each user line of the steps
    :meth:`_traced` says, and after each step.

    ``freeze``: freeze what is held (and trace every step); ``start``: compare after
    every user line from that step on, or (``candidate``) only after that (file, line)
    runs. A change that keeps the invariant (``accept``
    says False: a reorder, a write that leaves the pairs matching) becomes the new
    state of its group, and the watch goes on.
    """

    def __init__(
        self,
        accept: Accept | None,
        *,
        timeout: float | None,
        freeze: bool = False,
        start: int | None = None,
        candidate: tuple[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.held: list[_Held] = []
        self.accept = accept
        self.freezer = _Freezer() if freeze else None
        self.timeout = timeout
        self.caller = threading.get_ident()
        """The thread that reads the source, unless a step runs in a helper thread."""
        self.start = start
        self.candidate = candidate
        self.steps = 0
        self.found: _Outcome | None = None

    def _traced(self, index: int) -> bool:
        """Are step ``index``'s lines traced?"""
        return self.freezer is not None or (self.start is not None and index >= self.start)

    def _change(self, unfrozen: bool = False) -> tuple[int | None, str] | None:
        """(batch, path) of the first held batch that changed and broke the invariant
        (``unfrozen``: looking only at what freezing does not guard, as ``_Held.changed``)."""
        for h in self.held:
            path = h.changed(unfrozen)
            if path is None:
                continue
            group = [other for other in self.held if other.group == h.group]
            if self.accept is None or self.accept(h, group):
                return h.batch, path
            for other in group:
                other.take()
        return None

    def _threads(self) -> tuple[str, ...]:
        """The other threads that may have written: running the user's code, or started
        or waited on by the source."""
        exclude = {self.caller, threading.get_ident()}
        threads = sorted(_busy_threads(exclude))
        if self.threads:
            threads.append("threads the source started or waited on")
        return tuple(threads)

    def on_point(self, point: Point) -> bool:
        if self.candidate is not None and (
            point is None or (point[0].f_code.co_filename, point[1]) != self.candidate
        ):
            return False
        change = self._change(unfrozen=self.freezer is not None)
        if change is None:
            return False
        if point is None:  # changed while no user line ran
            found = _Outcome("noline", self.steps - 1, (), *change)
        elif self.candidate is not None:  # the refused write, confirmed: this thread's line
            found = _Outcome("found", self.steps - 1, _stack(*point), *change, how="frozen")
        else:
            found = _Outcome("found", self.steps - 1, _stack(*point), *change, self._threads())
        if point is None or found.threads:
            found.processes = _children_alive()
        self.found = found
        return True

    def step(self, fn: Callable[[], Any]) -> Any:
        """Run one step of the source (a draw, a read, a factory call) under the watch."""
        index = self.steps
        self.steps += 1
        self.lines = self._traced(index)
        self.pending = None
        try:
            run = functools.partial(self.run, fn)
            result = call_within(run, self.timeout, f"finish step {index}")
        except StopIteration:
            raise _Outcome("end", index) from None
        except TimeoutError as exc:
            raise _Outcome("cannot", index, detail=_why("timed_out", error=exc)) from None
        except Exception as exc:
            raise self._failed(index, exc) from None
        finally:
            self.lines = False
        if self.error:
            detail = _why("not_compared", error=self.error)
            raise _Outcome("cannot", index, detail=detail)
        if self.found is not None:
            raise self.found
        change = self._guarded(self._change)
        if change is not None:
            batch, path = change
            raise _Outcome("changed", index, (), batch, path, processes=_children_alive())
        return result

    def _guarded(self, compare: Callable[[], Any]) -> Any:
        """``compare()`` after the last step, its failure the reason no line is named."""
        try:
            return compare()
        except Exception as exc:
            detail = _why("not_compared", error=f"{type(exc).__name__}: {exc}")
            raise _Outcome("cannot", self.steps - 1, detail=detail) from None

    def _failed(self, index: int, exc: Exception) -> _Outcome:
        ro = _read_only(exc)
        if ro is not None and self.freezer is not None and self.freezer.enabled:
            # The refused write ended this read before its effect could be judged: what it
            # would have written, and any later write, are seen by reading again (with no
            # user line, the step is traced).
            writers = _user_tracebacks(ro.__traceback__)
            frames = tuple(_frame(f.f_code, line) for f, line in writers)
            hit = self._refused_into_held(writers[0][0]) if writers else None
            if hit is not None:
                return _Outcome("found", index, frames, *hit, how="frozen")
            return _Outcome("frozen" if frames else "changed", index, frames)
        detail = _why("raised", error=f"{type(exc).__name__}: {exc}")
        return _Outcome("error", index, detail=detail)

    def _refused_into_held(self, writer: FrameType) -> tuple[int | None, str] | None:
        """(batch, path) a refused write went into, when that alone breaks the invariant:
        any change counts, and every array frozen lies in memory that batches handed out
        hold (freezing an owner refuses writes to parts no batch holds too). The part
        named is the earliest held one the ``writer`` frame reaches (its locals, the
        attributes of its ``self``), else the earliest one. One read fewer than
        confirming the line by reading again."""
        if self.freezer is None or self.accept is not None:
            return None
        spans = sorted(
            _byte_bounds(a)
            for h in self.held
            for a in h.arrays()
            if a.size and (a.flags.c_contiguous or a.flags.f_contiguous)
        )
        merged: list[list[int]] = []
        for low, high in spans:
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        for array in self.freezer.frozen:
            low, high = _byte_bounds(array)
            if array.size and not any(a <= low and high <= b for a, b in merged):
                return None
        local = writer.f_locals
        values = [*local.values(), *getattr(local.get("self"), "__dict__", {}).values()]
        reached = [v for v in values if isinstance(v, np.ndarray)]
        parts = [(h.batch, path, leaf) for h in self.held for path, leaf in h.leaves()]
        frozen = [(batch, path, leaf) for batch, path, leaf in parts if _guarded_array(leaf)]
        for batch, path, leaf in frozen:
            if any(np.may_share_memory(leaf, a) for a in reached):
                return batch, path
        return (frozen[0][0], frozen[0][1]) if frozen else None

    def snap(self, batch: int | None, parts: Watched, group: str = "") -> _Held:
        """What a step handed out, with snapshots of it, not watched yet."""
        return self._guarded(lambda: _Held(batch, parts, group))

    def watch(self, held: _Held) -> None:
        """Keep a snap and compare it from now on (freeze it too, when freezing)."""
        self.held.append(held)
        if self.freezer is None or not self.freezer.enabled:
            return
        if self._threads():
            self.freezer.restore()  # another thread runs user code: it must not meet one
            return
        for array in held.arrays():
            self.freezer.freeze(array)

    def settle(self, held: list[_Held]) -> None:
        """Start watching ``held``, less the reused buffers: those that already changed, and
        those whose memory another of them holds too."""
        reused = _reused(held)
        for h in held:
            if id(h) not in reused and self._guarded(h.changed) is None:
                self.watch(h)

    def close(self) -> None:
        self.closed = True
        if self.freezer is not None:
            self.freezer.restore()


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    if hasattr(np, "byte_bounds"):  # numpy 1.x
        low, high = np.byte_bounds(a)
    else:
        from numpy.lib.array_utils import byte_bounds

        low, high = byte_bounds(a)
    return int(low), int(high)


def _reused(held: list[_Held]) -> set[int]:
    """ids of the held batches whose arrays' memory overlaps another held batch's: one
    buffer (or a ring of them) refilled for several batches. Bounds, sorted: n log n."""
    spans = sorted(
        (*_byte_bounds(a), i)
        for i, h in enumerate(held)
        for a in h.arrays()
        if a.size and not a.dtype.hasobject
    )
    reused: set[int] = set()
    reach, owner = -1, -1  # the furthest end seen so far, and whose it is
    for low, high, i in spans:
        if low < reach and owner != i:
            reused.update((id(held[i]), id(held[owner])))
        if high > reach:
            reach, owner = high, i
    return reused


Plan = Callable[[_Pass], None]


def _run(plan: Plan, one: _Pass) -> _Outcome:
    """Read the source through ``one`` as ``plan`` says; what the read ended on."""
    try:
        plan(one)
    except _Outcome as outcome:
        _forget(outcome)
        return outcome
    except Exception as exc:  # raised reading a batch outside a step (its layout, say)
        detail = _why("not_read", error=f"{type(exc).__name__}: {exc}")
        _forget(exc)
        return _Outcome("cannot", one.steps, detail=detail)
    finally:
        one.close()
    return _Outcome("end", one.steps)


def _forget(exc: BaseException) -> None:
    """Drop the frames an exception chain holds: an exception caught while it is bound
    in a frame of its own traceback is a reference cycle, which would keep the source
    (a DataLoader's iterator and its worker processes) alive until the garbage
    collector runs, at some later moment."""
    for link in _chain(exc):
        traceback.clear_frames(link.__traceback__)
        link.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None


def _diagnose(plan: Plan, *, accept: Accept | None = None, timeout: float | None) -> _Outcome:
    """Read the source frozen and traced; read it again only where that read could not
    judge what it saw; the outcome that tells (:func:`_explain` words it).

    One read names the line when a refused write lands in memory only handed-out
    batches hold and any change counts, or when the trace sees a change freezing does
    not guard. A second read is needed when a refused write ended the read before its
    effect could be judged (an owner's memory no batch holds yet, a write that may keep
    the invariant), when the batches changed unrefused and unseen by the per-line
    comparison (a view made before the freeze, C code), or when frozen the source took
    another path. A refused write's line is named once the second read, comparing
    after that line runs, sees it change what is held (freezing an owner refuses
    writes to parts no batch holds too, and a write may keep the invariant); a change
    seen only after a step is looked for after every user line from that step.
    """

    def read(**how: Any) -> _Outcome:
        return _run(plan, _Pass(accept, timeout=timeout, **how))

    first = read(freeze=True)
    if first.kind in ("end", "error"):
        # Frozen, the source may take another path (it caught the refused write, or a
        # library reworded it): read it once more as it is, comparing after each step.
        plain = read()
        first = plain if plain.kind == "changed" else first
    if first.kind == "frozen":
        top = first.frames[0]
        first = read(start=first.step, candidate=(top.file, top.line))
    if first.kind == "changed":
        first = read(start=first.step)
    return first


_REASONS = ("other_threads", "unseen", "not_reproduced")
"""The words.toml ``[blame]`` entries for a line not named because other threads ran, no
user line ran, or nothing changed; index blame's state watch has its own."""


def _explain(
    outcome: _Outcome, unit: str, reasons: tuple[str, str, str] = _REASONS, **fields: Any
) -> Blame:
    """The Blame a pass's outcome gives; ``fields`` fill in the words (``what`` names
    what was watched, ``steps`` what was read)."""
    threads, unseen, nothing = reasons
    if outcome.kind == "found" and not outcome.threads:
        return Blame(
            frames=outcome.frames,
            how=outcome.how,
            batch=outcome.batch,
            path=outcome.path,
            unit=unit,
        )
    if outcome.kind in ("found", "noline", "changed") and outcome.processes:
        count = outcome.processes
        processes = _plural(count, "process")
        return _cannot("child_processes", unit, count=count, processes=processes, **fields)
    if outcome.kind == "found":
        return _cannot(threads, unit, names=", ".join(outcome.threads), **fields)
    if outcome.kind in ("noline", "changed"):
        return _cannot(unseen, unit, "unseen", **fields)
    if outcome.kind in ("error", "cannot"):
        return Blame(reason=outcome.detail, unit=unit)
    return _cannot(nothing, unit, "not reproduced", **fields)


_MAX_STORED = 1 << 30
"""Bytes of stored data watched at most (a snapshot of each is kept)."""


def _stored(roots: list[tuple[str, Any]]) -> NamedArrays:
    """The arrays ``roots`` hold, found as the checks find their witness (``held_by``:
    attributes a few levels deep, a generator's locals, a factory's arguments and
    closure, the module globals their code names), named as the user wrote them, each
    as numpy (a CPU torch tensor through a view of its memory: a write shows in both)."""
    try:
        found = held_by(roots).arrays
    except Exception:  # an attribute that breaks when read: no stored data watched
        return []
    arrays = [(name, frameworks.as_numpy(held)) for name, held in found.items()]
    return [(name, a) for name, a in arrays if a is not None and not a.dtype.hasobject]
