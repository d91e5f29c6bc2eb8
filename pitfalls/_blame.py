"""Blame: name the line that broke the invariant a check found broken.

A failed check says *what* changed (batch 0's ``inputs[0]``, after later
draws); these functions say *where*: ``path/to/file.py:LINE in function: the
source text``, with the user frames above it. Each runs a diagnosis pass on
a fresh copy of the source (a factory or a class is called again, an
indexable source such as a ``keras.utils.PyDataset`` is read again by index,
an iterable is iterated again) and watches it:

* :func:`blame_aliasing`: every batch drawn, for a write after it was handed out;
* :func:`blame_targets`: the inputs and targets drawn, for a write that makes
  them disagree with ``target_fn``;
* :func:`blame_epochs`: epoch 1's batches and the data the source stores, for
  a rewrite during epoch 2 (an in-place shuffle is a reorder, not a rewrite);
* :func:`blame_index`: the data an indexable source stores, for a write made
  while an index is read again, then its counters and random generators, for
  the line that advances one on every read.

Two mechanisms find the line:

1. Freezing. Once a batch is drawn, every numpy array in it, and each array
   that owns its memory, is made read-only, so the source's next write into
   it raises ``ValueError: assignment destination is read-only`` at the
   guilty statement; the traceback names the line.
2. Tracing. For what freezing cannot see (a write through a view made before
   the freeze, a list cleared and refilled, a dict value replaced, a C
   extension that ignores the flag) the source's Python lines are traced one
   by one (``sys.monitoring`` on 3.12+, ``sys.settrace`` before) and what is
   held compared with its snapshot at each line; the first line after which
   it differs is the line that wrote.

A line found by freezing is confirmed by tracing before it is named: freezing
the array that owns a batch's memory also refuses writes to parts of it that
no batch holds. Where no line can be named (another thread wrote, C code with
no Python line, a worker process, a bare iterator that cannot be read again)
the :class:`Blame` says why instead: a wrong blame is worse than none. A torch
DataLoader with worker processes builds its batches where no trace reaches, so
the diagnosis reads a copy of it with ``num_workers=0`` and says so
(:attr:`Blame.note`).

Every flag changed is restored, also on error; the user's arrays are never
written. Nothing here runs unless a caller asks, after a check failed: a
passing check costs what it cost before.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import linecache
import os
import random
import re
import site
import sys
import sysconfig
import threading
import traceback
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import CodeType, FrameType, TracebackType
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._compat import qualname
from pitfalls._randomness import held_by
from pitfalls._report import MAX_SHOWN, Blame, Frame
from pitfalls._sources import Source, article, batch_count, call_within, is_indexable, resolve
from pitfalls._tree import (
    Snapshot,
    as_array,
    bitwise_equal,
    diff_arrays,
    diff_snapshot,
    flatten,
    flatten_at,
    split_batch,
)

# Results ------------------------------------------------------------------------------


# Reasons a line cannot be named -------------------------------------------------------

_FACTORY = (
    "pass a factory (the generator function, the class, or a lambda that builds the"
    " iterator) to enable blame"
)


def _cannot(reason: str, unit: str = "batch", why: str = "") -> Blame:
    return Blame(reason=reason, unit=unit, why=why)


def _not_reproduced(steps: str) -> str:
    return (
        f"the diagnosis pass read a fresh copy of the source ({steps}) and saw nothing"
        " change: the change depends on timing, on where memory happened to lie (a library"
        " that shares an array's memory only when it is aligned, as jax.device_put and"
        " tf.data may), or on state the check's own read left behind"
    )


# Which code is the user's --------------------------------------------------------------

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE = os.path.join(_HERE, "pitfalls")
_LESSONS = os.path.join(_PACKAGE, "reproductions")


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _library_dirs() -> tuple[str, ...]:
    dirs: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            dirs.add(paths[key])
    for getter in ("getsitepackages", "getusersitepackages"):
        try:
            found = getattr(site, getter)()
        except Exception:  # some embedded interpreters' site module lacks them
            continue
        dirs.update([found] if isinstance(found, str) else found)
    dirs.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    return tuple(sorted({_norm(d) + os.sep for d in dirs if d}))


_LIBRARIES = _library_dirs()
_USER_FILES: dict[str, bool] = {}


def _is_user_file(filename: str) -> bool:
    """True for the user's code: not numpy, not pitfalls (but its reproductions), not
    the standard library nor anything installed in site-packages."""
    known = _USER_FILES.get(filename)
    if known is not None:
        return known
    if filename.startswith("<"):  # <frozen ...>, <string>, <__array_function__ internals>
        user = False
    elif not os.path.isabs(filename) and not os.path.exists(filename):
        user = False  # a compiled module's frame (numpy/random/_generator.pyx)
    else:
        path = _norm(filename)
        if path.startswith(_norm(_LESSONS) + os.sep):
            user = True
        elif path.startswith(_norm(_PACKAGE) + os.sep):
            user = False
        else:
            user = not path.startswith(_LIBRARIES)
    _USER_FILES[filename] = user
    return user


def _is_user(code: CodeType) -> bool:
    return _is_user_file(code.co_filename)


def _is_ours(code: CodeType) -> bool:
    """pitfalls' own code (the reproductions excepted): the edge of the source's frames."""
    path = _norm(code.co_filename)
    return path.startswith(_norm(_PACKAGE) + os.sep) and not path.startswith(
        _norm(_LESSONS) + os.sep
    )


def _frame(code: CodeType, line: int) -> Frame:
    return Frame(
        file=code.co_filename,
        line=line,
        function=qualname(code),
        code=linecache.getline(code.co_filename, line).strip(),
    )


def _stack(frame: FrameType, line: int) -> tuple[Frame, ...]:
    """The user frames from ``frame`` (at ``line``) up to pitfalls' own code, innermost first."""
    frames = [_frame(frame.f_code, line)]
    caller = frame.f_back
    while caller is not None and not _is_ours(caller.f_code):
        if _is_user(caller.f_code):
            frames.append(_frame(caller.f_code, caller.f_lineno))
        caller = caller.f_back
    return tuple(frames)


def _traceback_frames(tb: TracebackType | None) -> tuple[Frame, ...]:
    """The user frames of a traceback, innermost (the raising line) first."""
    frames = []
    while tb is not None:
        if _is_user(tb.tb_frame.f_code):
            frames.append(_frame(tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    return tuple(reversed(frames))


_WAITS = {
    "threading": {"start", "join", "wait", "wait_for", "acquire", "release", "set", "notify"},
    "queue": {"get", "put", "join", "task_done"},
    "concurrent": {"submit", "map", "result", "wait", "as_completed"},
    "multiprocessing": {"start", "join", "get", "put", "recv", "map", "imap", "starmap", "apply"},
}
"""Functions that start, wake or wait for another thread: a sign that another thread may be
the one writing (creating a lock, as numpy's random generators do, is not)."""


def _is_threading(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    if not isinstance(name, str):
        return False
    waits = _WAITS.get(name.split(".", 1)[0])
    return waits is not None and frame.f_code.co_name in waits


def _user_on_stack(frame: FrameType | None) -> bool:
    """Is a user frame among ``frame`` and its callers, below pitfalls' own code?"""
    while frame is not None and not _is_ours(frame.f_code):
        if _is_user(frame.f_code):
            return True
        frame = frame.f_back
    return False


def _idle(frame: FrameType) -> bool:
    """Is a thread whose innermost frame is ``frame`` blocked until another thread wakes it?

    ``Condition.wait()`` without a timeout (under ``Event.wait``, ``Queue.get``,
    ``Future.result``, ...) and ``Thread.join()`` are; a wait with a timeout is
    a poll, and a thread in the user's own code may be writing.
    """
    if frame.f_globals.get("__name__") != "threading":
        return False
    if frame.f_code.co_name == "wait" and frame.f_locals.get("timeout") is None:
        return True
    # Thread.join() waits in a helper of threading's own before 3.13 and in C from 3.13:
    # the public join(timeout=None) is found among the threading frames on top either way.
    f: FrameType | None = frame
    while f is not None and f.f_globals.get("__name__") == "threading":
        if f.f_code.co_name == "join" and f.f_locals.get("timeout") is None:
            return True
        f = f.f_back
    return False


def _busy_threads(exclude: set[int]) -> list[str]:
    """Names of the other threads that may be running the user's code now.

    Threads with no user frame on their stacks are left out, and so are
    threads blocked until woken (the source waking one is seen by the tracer).
    """
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    stacks = sys._current_frames()
    try:
        for ident, frame in stacks.items():
            if ident in exclude or _idle(frame):
                continue
            f: FrameType | None = frame
            while f is not None:
                if _is_user(f.f_code):
                    busy.append(names.get(ident, f"thread {ident}"))
                    break
                f = f.f_back
    finally:
        # This thread's own frame is among them: holding it in a local of that very
        # frame is a reference cycle, which keeps every frame below it (the source
        # and its iterators, a DataLoader's workers) alive until the collector runs.
        del stacks
        frame = f = None  # type: ignore[assignment]
    return busy


def _children_alive() -> int:
    """How many child processes of this one are running (a DataLoader's workers, a pool).

    Read from ``multiprocessing`` only when something has imported it: a source
    that never did started no worker process through it.
    """
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return 0
    try:
        return len(mp.active_children())
    except Exception:  # an interpreter shutting down, a child table being rebuilt
        return 0


# Freezing -----------------------------------------------------------------------------


def _writable_buffer(obj: Any) -> bool:
    try:
        with memoryview(obj) as view:
            return not view.readonly
    except Exception:  # no buffer protocol (as_strided's DummyArray): numpy cannot restore
        return False


class _Freezer:
    """Arrays made read-only, with what it takes to make them writeable again."""

    def __init__(self) -> None:
        self._frozen: list[tuple[int, np.ndarray]] = []  # (depth in its base chain, array)
        self._ids: set[int] = set()
        self.enabled = True

    def freeze(self, array: np.ndarray) -> None:
        """Make ``array`` and the arrays owning its memory read-only, where numpy allows
        making them writeable again afterwards."""
        if not self.enabled:
            return
        chain = []
        node: Any = array
        while isinstance(node, np.ndarray):
            chain.append(node)
            node = node.base
        if node is not None and not _writable_buffer(node):
            return  # numpy would refuse to restore the flag: leave the chain alone
        for depth, a in enumerate(reversed(chain)):  # the owner has depth 0
            if id(a) not in self._ids and a.flags.writeable:
                a.flags.writeable = False
                self._ids.add(id(a))
                self._frozen.append((depth, a))

    def arrays(self) -> list[np.ndarray]:
        return [a for _, a in self._frozen]

    def restore(self) -> None:
        """Make writeable again every array made read-only, owners before their views."""
        self.enabled = False
        pending = sorted(self._frozen, key=lambda item: item[0])
        self._frozen, self._ids = [], set()
        failed: list[tuple[int, np.ndarray]] = []
        for _ in range(len(pending) + 1):
            for item in pending:
                try:
                    item[1].flags.writeable = True
                except ValueError:  # a base not yet restored: try again after it
                    failed.append(item)
            if not failed or len(failed) == len(pending):
                break
            pending, failed = failed, []
        if failed:
            raise RuntimeError(
                f"pitfalls could not make {len(failed)} array(s) writeable again after"
                " freezing them; please report this as a bug"
            )


_REFUSED = re.compile(r"read-?only|not writ(e)?able", re.IGNORECASE)


def _read_only(exc: BaseException) -> BaseException | None:
    """The refused write behind ``exc`` (itself, its cause or its context), or None.

    numpy says ``assignment destination is read-only`` or ``output array is
    read-only``; a memoryview ``cannot modify read-only memory``; Cython's
    typed memoryviews ``buffer source array is read-only``.
    """
    seen = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, (ValueError, TypeError, BufferError)) and _REFUSED.search(str(node)):
            return node
        node = node.__cause__ or node.__context__
    return None


# Tracing ------------------------------------------------------------------------------

Point = tuple[FrameType, int] | None
"""The line that ran since the previous trace event: its frame and line; None when the
code that ran was not the user's."""


class _Observer:
    """Turns trace events into points: after each line of the user's code, ``on_point``
    is called with the line that just ran, and stops the tracing by returning True."""

    def __init__(self, on_threads: Callable[[], None]) -> None:
        self.lines = False
        self.pending: Point = None
        self.on_point: Callable[[Point], bool] = lambda point: False
        self.on_threads = on_threads
        self.threads = False
        """The source called into threading, queue, concurrent.futures, ..."""
        self.foreign: set[str] = set()
        """Other threads seen running the user's code (sys.monitoring only)."""
        self.closed = False
        self.error = ""
        """Why a comparison failed, if one did."""

    def call(self, frame: FrameType) -> bool:
        """A frame starts or resumes; True to trace its lines."""
        if self.closed:
            return False
        if not _is_user(frame.f_code):
            if not self.threads and _is_threading(frame) and _user_on_stack(frame.f_back):
                self.threads = True
                try:
                    self.on_threads()
                except Exception as exc:  # never into the user's frame
                    self.error = f"{type(exc).__name__}: {exc}"
            return False
        if not self.lines:
            return False
        self._point()
        self.pending = (frame, frame.f_lineno)
        return True

    def line(self, frame: FrameType) -> None:
        if self.lines and not self.closed:
            self._point()
            self.pending = (frame, frame.f_lineno)

    def leave(self, frame: FrameType) -> None:
        if self.lines and not self.closed:
            self._point()
            caller = frame.f_back
            user = caller is not None and _is_user(caller.f_code)
            self.pending = (caller, caller.f_lineno) if user and caller is not None else None

    def _point(self) -> None:
        try:
            done = self.on_point(self.pending)
        except Exception as exc:  # never let a failed comparison escape into the user's frame
            self.error = f"{type(exc).__name__}: {exc}"
            done = True
        if done:
            self.lines = False


class _SetTrace:
    """``sys.settrace`` in the thread that runs the source (Python < 3.12)."""

    def __init__(self, observer: _Observer) -> None:
        self.observer = observer
        self.traced: list[FrameType] = []

    def run(self, fn: Callable[[], Any]) -> Any:
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            return fn()
        finally:
            sys.settrace(previous)
            for frame in self.traced:  # no stale local tracer left on a suspended generator
                frame.f_trace = None
            self.traced.clear()

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and self.observer.call(frame):
            self.traced.append(frame)
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.observer.closed:
            return None
        if event == "line":
            self.observer.line(frame)
        elif event == "return":
            self.observer.leave(frame)
        return self._local

    def close(self) -> None:
        pass


class _Monitoring:
    """``sys.monitoring`` (Python 3.12+): one tool id, events filtered to one thread."""

    def __init__(self, observer: _Observer, tool: int) -> None:
        self.observer = observer
        self.tool = tool
        self.ident = -1
        self.codes: set[CodeType] = set()

    @classmethod
    def open(cls, observer: _Observer) -> _Monitoring | None:
        if sys.version_info < (3, 12):
            return None
        mon = sys.monitoring
        for tool in (mon.PROFILER_ID, 5, 4, 3):
            if mon.get_tool(tool) is None:
                try:
                    mon.use_tool_id(tool, "pitfalls blame")
                except ValueError:  # taken meanwhile
                    continue
                tracer = cls(observer, tool)
                events = mon.events
                mon.register_callback(tool, events.PY_START, tracer._start)
                mon.register_callback(tool, events.PY_RESUME, tracer._start)
                mon.register_callback(tool, events.PY_RETURN, tracer._return)
                mon.register_callback(tool, events.PY_YIELD, tracer._return)
                mon.register_callback(tool, events.LINE, tracer._line)
                return tracer
        return None

    def run(self, fn: Callable[[], Any]) -> Any:
        if sys.version_info < (3, 12):  # pragma: no cover - open() returns None there
            return fn()
        mon = sys.monitoring
        self.ident = threading.get_ident()
        mon.set_events(self.tool, mon.events.PY_START | mon.events.PY_RESUME)
        try:
            return fn()
        finally:
            mon.set_events(self.tool, 0)

    def _mine(self, code: CodeType) -> bool:
        if threading.get_ident() == self.ident:
            return True
        if _is_user(code) and not self.observer.closed:
            self.observer.foreign.add(threading.current_thread().name)
        return False

    def _start(self, code: CodeType, offset: int) -> Any:
        if not self._mine(code):
            return None
        if self.observer.call(sys._getframe(1)) and code not in self.codes:
            if sys.version_info >= (3, 12):
                mon = sys.monitoring
                events = mon.events.LINE | mon.events.PY_RETURN | mon.events.PY_YIELD
                mon.set_local_events(self.tool, code, events)
            self.codes.add(code)
        return None

    def _line(self, code: CodeType, line: int) -> Any:
        if self._mine(code):
            self.observer.line(sys._getframe(1))
        return None

    def _return(self, code: CodeType, offset: int, value: Any) -> Any:
        if self._mine(code):
            self.observer.leave(sys._getframe(1))
        return None

    def close(self) -> None:
        if sys.version_info < (3, 12):  # pragma: no cover
            return
        mon = sys.monitoring
        mon.set_events(self.tool, 0)
        for code in self.codes:
            mon.set_local_events(self.tool, code, 0)
        for event in ("PY_START", "PY_RESUME", "PY_RETURN", "PY_YIELD", "LINE"):
            mon.register_callback(self.tool, getattr(mon.events, event), None)
        mon.free_tool_id(self.tool)


def _tracer(observer: _Observer) -> _SetTrace | _Monitoring:
    return _Monitoring.open(observer) or _SetTrace(observer)


# What is watched ----------------------------------------------------------------------


def _leaves(root: str, node: Any) -> Any:
    return flatten(node) if root == "" else flatten_at(node, root)


class _Copies:
    """Snapshot buffers, reused from one pass to the next: a large batch's copy then costs
    a memcpy, not a fresh allocation whose every page faults on first touch."""

    def __init__(self) -> None:
        self.free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}

    def copy(self, a: np.ndarray) -> np.ndarray:
        spare = self.free.get((a.shape, a.dtype.str))
        out = spare.pop() if spare else np.empty(a.shape, a.dtype)
        np.copyto(out, a, casting="no")
        return out

    def release(self, snap: Snapshot) -> None:
        for _, a in snap.arrays:
            self.free.setdefault((a.shape, a.dtype.str), []).append(a)

    def clear(self) -> None:
        self.free.clear()


_CHUNK = 1 << 18
"""Elements compared at a time when the bytes differ."""


def _unchanged(then: np.ndarray, now: np.ndarray) -> bool:
    """Does ``now`` hold what ``then`` held (NaN equal to NaN), as the checkers compare?

    Bytes first; where they differ (NaN payloads, -0.0), values, one chunk at a
    time, stopping at the first real difference: a changed batch is found
    without building a batch-sized mask.
    """
    if then.shape != now.shape or then.dtype != now.dtype:
        return False
    if bitwise_equal(then, now):
        return True
    if then.dtype.hasobject:
        return diff_arrays("", then, now) is None
    nan = then.dtype.kind in "fc"
    if not (then.flags.c_contiguous and now.flags.c_contiguous):
        return bool(np.array_equal(then, now, equal_nan=nan))
    a, b = then.reshape(-1), now.reshape(-1)
    for start in range(0, a.size, _CHUNK):
        x, y = a[start : start + _CHUNK], b[start : start + _CHUNK]
        if x.tobytes() != y.tobytes() and not np.array_equal(x, y, equal_nan=nan):
            return False
    return True


class _Held:
    """A batch (or parts of one) handed out, with snapshots of its contents."""

    def __init__(
        self,
        batch: int | None,
        parts: tuple[tuple[str, Any], ...],
        group: str = "",
        copies: _Copies | None = None,
    ) -> None:
        self.batch = batch  # None: not a batch but an array the source stores
        self.parts = parts  # (root path, node); root "" is a whole batch
        self.group = group or f"batch {batch}"
        """Held things judged together: an invariant may hold across a group (epochs)."""
        self.active = True
        self.copies = copies or _Copies()
        self.snaps: list[Snapshot] = []
        self.objects: list[tuple[Any, ...]] = []
        """The leaves themselves, as they were at the snapshot."""
        self.take()

    def take(self) -> None:
        """Snapshot the contents as they are now."""
        old, self.snaps, self.objects = self.snaps, [], []
        for snap in old:
            self.copies.release(snap)
        for root, node in self.parts:
            flat = _leaves(root, node)
            self.objects.append(tuple(leaf for _, leaf in flat.leaves))
            arrays = tuple(
                (path, self.copies.copy(as_array(leaf, path))) for path, leaf in flat.leaves
            )
            self.snaps.append(Snapshot(flat.structure, arrays))

    def changed(self, unfrozen: bool = False) -> str | None:
        """The path of the first leaf that differs from its snapshot, or None.

        ``unfrozen``: skip the leaves still the same read-only array (freezing refuses
        writes to them), comparing only what freezing does not guard: a container
        changed, a leaf replaced, an array that could not be frozen.
        """
        for (root, node), snap, objects in zip(self.parts, self.snaps, self.objects):
            flat = _leaves(root, node)
            if flat.structure != snap.structure:
                _, structure = diff_snapshot(snap, flat)
                return structure[0] if structure else root or "batch"
            for (path, then), (_, leaf), was in zip(snap.arrays, flat.leaves, objects):
                if unfrozen and leaf is was and _guarded_array(leaf):
                    continue
                if not _unchanged(then, as_array(leaf, path)):
                    return path
        return None

    def release(self) -> None:
        for snap in self.snaps:
            self.copies.release(snap)
        self.snaps, self.objects = [], []

    def arrays(self) -> Iterator[np.ndarray]:
        for root, node in self.parts:
            for _, leaf in _leaves(root, node).leaves:
                if isinstance(leaf, np.ndarray):
                    yield leaf


def _guarded_array(leaf: Any) -> bool:
    return isinstance(leaf, np.ndarray) and not leaf.flags.writeable


Accept = Callable[[_Held, list[_Held]], bool]
"""Does a change of this held batch (with its group) break the invariant? False: absorb it
and go on."""


def _any_change(held: _Held, group: list[_Held]) -> bool:
    return True


class _Watch:
    def __init__(self, accept: Accept, copies: _Copies) -> None:
        self.held: list[_Held] = []
        self.accept = accept
        self.copies = copies

    def change(self, unfrozen: bool = False) -> tuple[int | None, str] | None:
        """(batch, path) of the first held batch that changed and broke the invariant
        (``unfrozen``: looking only at what freezing does not guard, as ``_Held.changed``).

        A change that keeps it (a reorder, a write that leaves the pairs
        matching) becomes the new state of its group, and the search goes on.
        """
        active = [h for h in self.held if h.active]
        for h in active:
            path = h.changed(unfrozen)
            if path is None:
                continue
            group = [other for other in active if other.group == h.group]
            if self.accept(h, group):
                return h.batch, path
            for other in group:
                other.take()
        return None


# One diagnosis pass -------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__(outcome.kind)
        self.outcome = outcome


@dataclass
class _Outcome:
    kind: str
    """``found`` (a line, at a trace point), ``frozen`` (a write raised), ``changed`` (seen
    only at the end of a step), ``noline`` (changed while no user line ran), ``end``
    (nothing changed), ``error`` (the source raised), ``timeout``, ``cannot`` (``detail``
    says why)."""
    step: int = -1
    frames: tuple[Frame, ...] = ()
    batch: int | None = None
    path: str = ""
    threads: tuple[str, ...] = ()
    detail: str = ""
    how: str = "traced"
    """How a ``found`` line was found: ``traced``, or ``frozen`` (a refused write)."""
    processes: int = 0
    """Child processes alive when a change was seen with no user line (``noline``,
    ``changed``) or while other threads ran (``found`` with ``threads``): worker
    processes that may have written."""


class _Pass:
    """One read of a fresh copy of the source, driven by a plan through :meth:`step` and
    :meth:`hold`. ``freeze``: freeze what is held; ``candidate``: compare only after
    that (file, line) runs, from step ``start``; ``trace_step``: compare after every
    user line of that step."""

    def __init__(
        self,
        accept: Accept,
        *,
        timeout: float | None,
        caller: int,
        copies: _Copies,
        freeze: bool = False,
        candidate: tuple[str, int] | None = None,
        start: int = 0,
        trace_step: int | None = None,
    ) -> None:
        self.watch = _Watch(accept, copies)
        self.freezer = _Freezer() if freeze else None
        self.timeout = timeout
        self.caller = caller
        self.candidate = candidate
        self.start = start
        self.trace_step = trace_step
        self.steps = 0
        self.found: _Outcome | None = None
        self.observer = _Observer(self._threads_seen)
        self.observer.on_point = self._point
        self.tracer = _tracer(self.observer)

    def _threads_seen(self) -> None:
        if self.freezer is not None:
            self.freezer.restore()  # a thread of the source must never meet a frozen array

    def _point(self, point: Point) -> bool:
        if self.candidate is not None and (
            point is None or (point[0].f_code.co_filename, point[1]) != self.candidate
        ):
            return False
        change = self.watch.change(unfrozen=self.freezer is not None)
        if change is None:
            return False
        exclude = {self.caller, threading.get_ident()}
        threads = sorted(self.observer.foreign | set(_busy_threads(exclude)))
        if self.observer.threads:
            threads.append("threads the source started or waited on")
        if point is None:
            self.found = _Outcome(
                "noline",
                self.steps - 1,
                batch=change[0],
                path=change[1],
                processes=_children_alive(),
            )
        else:
            frames = _stack(*point)
            self.found = _Outcome(
                "found",
                self.steps - 1,
                frames,
                change[0],
                change[1],
                tuple(threads),
                processes=_children_alive() if threads else 0,
            )
        return True

    def step(self, fn: Callable[[], Any]) -> Any:
        """Run one step of the source (a draw, a read, a factory call) under the watch."""
        index = self.steps
        self.steps += 1
        on = (
            (self.candidate is not None and index >= self.start)
            or index == self.trace_step
            or self.freezer is not None
        )
        self.observer.lines = on
        self.observer.pending = None
        try:
            if self.timeout is None:
                result = self.tracer.run(fn)
            else:
                result = call_within(
                    lambda: self.tracer.run(fn), self.timeout, f"finish step {index}"
                )
        except StopIteration:
            raise _Stop(_Outcome("end", index)) from None
        except TimeoutError as exc:
            raise _Stop(_Outcome("timeout", index, detail=str(exc))) from None
        except Exception as exc:
            raise self._failed(index, exc) from None
        finally:
            self.observer.lines = False
        if self.observer.error:
            raise _Stop(
                _Outcome(
                    "cannot",
                    index,
                    detail=f"pitfalls could not compare the batches ({self.observer.error})",
                )
            )
        if self.found is not None:
            raise _Stop(self.found)
        change = self._guarded(self.watch.change, index)
        if change is not None:
            raise _Stop(
                _Outcome(
                    "changed",
                    index,
                    batch=change[0],
                    path=change[1],
                    processes=_children_alive(),
                )
            )
        return result

    def _guarded(self, compare: Callable[[], Any], index: int) -> Any:
        """``compare()``, its failure reported as the reason no line can be named."""
        try:
            return compare()
        except Exception as exc:
            detail = f"pitfalls could not compare the batches ({type(exc).__name__}: {exc})"
            raise _Stop(_Outcome("cannot", index, detail=detail)) from None

    def _failed(self, index: int, exc: Exception) -> _Stop:
        ro = _read_only(exc)
        if ro is not None and self.freezer is not None and self.freezer.enabled:
            frames = _traceback_frames(ro.__traceback__)
            if not frames:
                return _Stop(_Outcome("changed", index))  # no user line: trace the step
            hit = self._refused_into_held(ro.__traceback__)
            if hit is not None:
                return _Stop(_Outcome("found", index, frames, *hit, how="frozen"))
            # The refused write ended this read before its effect could be judged: what it
            # would have written, and any later write, are seen by reading again.
            return _Stop(_Outcome("frozen", index, frames))
        detail = f"{type(exc).__name__}: {exc}"
        return _Stop(_Outcome("error", index, detail=detail))

    def _refused_into_held(self, tb: TracebackType | None) -> tuple[int | None, str] | None:
        """(batch, path) a refused write went into, when that alone breaks the invariant:
        any change counts, and every array frozen lies in memory that batches handed out
        hold (freezing an owner refuses writes to parts no batch holds too). The part
        named is the earliest held one the writing frame reaches, else the earliest one."""
        if self.freezer is None or self.watch.accept is not _any_change:
            return None
        active = [h for h in self.watch.held if h.active]
        spans = sorted(
            _byte_bounds(a)
            for h in active
            for a in h.arrays()
            if a.size and (a.flags.c_contiguous or a.flags.f_contiguous)
        )
        merged: list[list[int]] = []
        for low, high in spans:
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        for array in self.freezer.arrays():
            low, high = _byte_bounds(array)
            if array.size and not any(a <= low and high <= b for a, b in merged):
                return None
        reached = _reached(tb)
        parts = [
            (h.batch, path, leaf)
            for h in active
            for root, node in h.parts
            for path, leaf in _leaves(root, node).leaves
            if isinstance(leaf, np.ndarray) and not leaf.flags.writeable
        ]
        for batch, path, leaf in parts:
            if any(np.may_share_memory(leaf, a) for a in reached):
                return batch, path
        return (parts[0][0], parts[0][1]) if parts else None

    def hold(
        self,
        batch: int | None,
        parts: tuple[tuple[str, Any], ...],
        *,
        active: bool = True,
        group: str = "",
    ) -> None:
        """Keep what a step handed out and watch it (freeze it too, when freezing)."""
        held = self._guarded(lambda: _Held(batch, parts, group, self.watch.copies), self.steps - 1)
        held.active = active
        self.watch.held.append(held)
        if active:
            self._freeze(held)

    def label(self, batch: int | None) -> None:
        """Report a change of what is held, from now on, as one of ``batch`` (an index read)."""
        for held in self.watch.held:
            held.batch = batch

    def settle(self) -> None:
        """Start watching the inactive held batches, less the reused buffers: those that
        already changed, and those whose memory another of them holds too."""
        keep = []
        reused = _reused([h for h in self.watch.held if not h.active])
        for held in self.watch.held:
            if held.active:
                keep.append(held)
            elif id(held) not in reused and self._guarded(held.changed, self.steps - 1) is None:
                held.active = True
                keep.append(held)
                self._freeze(held)
            else:
                held.release()
        self.watch.held = keep

    def _freeze(self, held: _Held) -> None:
        if self.freezer is None or not self.freezer.enabled:
            return
        if self.observer.threads or _busy_threads({self.caller, threading.get_ident()}):
            self.freezer.restore()  # another thread runs user code: it must not meet one
            return
        for array in held.arrays():
            self.freezer.freeze(array)

    def close(self) -> None:
        self.observer.closed = True
        try:
            if self.freezer is not None:
                self.freezer.restore()
        finally:
            self.tracer.close()
            for held in self.watch.held:  # the next pass reuses the snapshot buffers
                held.release()
            self.watch.held = []


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    if hasattr(np, "byte_bounds"):  # numpy 1.x
        low, high = np.byte_bounds(a)
    else:
        from numpy.lib.array_utils import byte_bounds

        low, high = byte_bounds(a)
    return int(low), int(high)


def _reached(tb: TracebackType | None) -> list[np.ndarray]:
    """The arrays the innermost user frame of a traceback names: its locals, and the
    attributes of its ``self``."""
    frame = None
    while tb is not None:
        if _is_user(tb.tb_frame.f_code):
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return []
    values = list(frame.f_locals.values())
    values += [v for _, v in _attributes(frame.f_locals.get("self"))]
    return [v for v in values if isinstance(v, np.ndarray)]


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


def _run(plan: Plan, accept: Accept, **options: Any) -> _Outcome:
    one = _Pass(accept, **options)
    try:
        plan(one)
    except _Stop as stop:
        _forget(stop)
        return stop.outcome
    except Exception as exc:  # raised reading a batch outside a step (its layout, say)
        detail = f"the diagnosis pass could not read the batches ({type(exc).__name__}: {exc})"
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
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if link.__traceback__ is not None:
            traceback.clear_frames(link.__traceback__)
            link.__traceback__ = None
        link = link.__cause__ or link.__context__
    exc.__context__ = None
    exc.__cause__ = None


def _diagnose(
    plan: Plan,
    *,
    accept: Accept = _any_change,
    timeout: float | None,
    steps: str,
    unit: str = "batch",
    what: str = "the batches",
) -> Blame:
    """Freeze, confirm by tracing, trace what freezing missed; a Blame either way."""
    copies = _Copies()
    options = {"timeout": timeout, "caller": threading.get_ident(), "copies": copies}
    try:
        return _passes(plan, accept, options, steps, unit, what)
    finally:
        copies.clear()


def _passes(
    plan: Plan, accept: Accept, options: dict[str, Any], steps: str, unit: str, what: str
) -> Blame:
    first = _run(plan, accept, freeze=True, **options)
    if first.kind == "frozen":
        top = first.frames[0]
        confirm = _run(plan, accept, candidate=(top.file, top.line), start=first.step, **options)
        if confirm.kind == "found":
            return Blame(
                frames=confirm.frames,
                how="frozen",
                batch=confirm.batch,
                path=confirm.path,
                unit=unit,
            )
        if confirm.kind != "changed":
            return _explain(confirm, steps, unit, what)
        first = confirm
    elif first.kind in ("end", "error"):
        # Frozen, the source may take another path (it caught the refused write, or a
        # library reworded it): read it once more as it is, comparing after each step.
        plain = _run(plan, accept, **options)
        first = plain if plain.kind == "changed" else first
    if first.kind == "changed":
        return _explain(_run(plan, accept, trace_step=first.step, **options), steps, unit, what)
    return _explain(first, steps, unit, what)


def _explain(outcome: _Outcome, steps: str, unit: str, what: str = "the batches") -> Blame:
    """The Blame a traced pass's outcome gives; ``what`` names what was watched."""
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
        return _cannot(
            f"{what} changed while {count} child process{'es' if count > 1 else ''} of this"
            " one ran: most likely a worker process (a DataLoader with num_workers > 0, a"
            " process pool) wrote them, where no trace reaches; run it with num_workers=0"
            " (no worker processes) to find the line",
            unit,
        )
    if outcome.kind == "found":
        names = ", ".join(outcome.threads)
        return _cannot(
            f"{what} changed while other threads ran the source's code ({names});"
            " blame follows only the thread that reads the source, so no line can be named",
            unit,
        )
    if outcome.kind in ("noline", "changed"):
        return _cannot(
            f"{what} changed while none of the source's Python lines ran: C code"
            " with no Python line of its own, or another thread, wrote them",
            unit,
            "unseen",
        )
    if outcome.kind == "error":
        return _cannot(f"the source raised {outcome.detail} during the diagnosis pass", unit)
    if outcome.kind == "cannot":
        return _cannot(outcome.detail, unit)
    if outcome.kind == "timeout":
        return _cannot(f"the diagnosis pass timed out: {outcome.detail}", unit)
    return _cannot(_not_reproduced(steps), unit, "not reproduced")


# Fresh copies -------------------------------------------------------------------------


def _fresh(source: Any) -> Callable[[], Source] | str:
    """A function making a fresh copy of ``source`` each call, or why there is none."""
    if isinstance(source, Source):
        resolved = source
        if resolved.made_by is not None:
            made_by = resolved.made_by
            return lambda: resolve(made_by, resolved.name)
    elif inspect.isclass(source) or not _is_object_source(source):
        return lambda: resolve(source)  # a factory, a class: call it again
    else:
        resolved = resolve(source)
    if resolved.kind in ("indexable", "iterable"):
        return lambda: resolved  # read again: by index from 0, or iter() again
    return (
        f"the source is {article(resolved.kind)} object, read once by the check, which a"
        f" diagnosis pass cannot read again: {_FACTORY}"
    )


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
            blame = _cannot(
                "the batches changed while tf.data ran its pipeline in its own threads (a"
                " from_generator's Python generator runs there too), where no trace reaches:"
                " pass the generator function itself (the one given to from_generator) to"
                " the check to find the line"
            )
        if not self.workers:
            return blame
        n = self.workers
        return dataclasses.replace(
            blame,
            note=(
                "the diagnosis read a copy of the DataLoader with num_workers=0: its"
                f" {n} worker process{'es' if n > 1 else ''}, where the batches are built,"
                " cannot be traced"
            ),
        )


def _is_object_source(obj: Any) -> bool:
    return (
        inspect.isgenerator(obj)
        or isinstance(obj, Iterator)
        or is_indexable(obj)
        or hasattr(type(obj), "__iter__")
    )


def _draw(stream: Iterator[Any]) -> Callable[[], Any]:
    return lambda: next(stream)


# Entry points -------------------------------------------------------------------------


def blame_aliasing(source: Any, *, draws: int, timeout: float | None = None) -> Blame:
    """The line that wrote into a batch already handed out, after a failed aliasing check.

    ``source`` is what the check was given (or its resolved ``Source``); a
    fresh copy is drawn ``draws`` times, holding every batch, as
    :func:`check_generator_no_aliasing` does. A bare iterator cannot be read
    again: the Blame then says to pass a factory.
    """
    draws = validate.draws(draws)
    timeout = validate.timeout("timeout", timeout)
    fresh = _fresh(source)
    if isinstance(fresh, str):
        return _cannot(fresh)
    make = _InProcess(fresh)

    def plan(one: _Pass) -> None:
        stream = one.step(lambda: make().stream())
        for i in range(draws):
            batch = one.step(_draw(stream))
            one.hold(i, (("", batch),))

    return make.mark(_diagnose(plan, timeout=timeout, steps=f"{draws} draws"))


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
    target_fn = validate.function("target_fn", target_fn)
    draws = validate.draws(draws)
    rtol = validate.tolerance("rtol", rtol)
    atol = validate.tolerance("atol", atol)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    fresh = _fresh(source)
    if isinstance(fresh, str):
        return _cannot(fresh)
    make = _InProcess(fresh)

    def plan(one: _Pass) -> None:
        stream = one.step(lambda: make().stream())
        for i in range(draws):
            batch = one.step(_draw(stream))
            parts = split_batch(batch, i, unpack)
            watched = [(parts.inputs_path, parts.inputs)]
            if parts.targets is not None:
                watched.append((parts.targets_path, parts.targets))
            one.hold(i, tuple(watched))

    def broken(held: _Held, group: list[_Held]) -> bool:
        return not _rule_holds(held, target_fn, rtol, atol)

    return make.mark(_diagnose(plan, accept=broken, timeout=timeout, steps=f"{draws} draws"))


def _rule_holds(held: _Held, target_fn: Callable[[Any], Any], rtol: float, atol: float) -> bool:
    """Do the held batch's targets still equal ``target_fn(inputs)``?"""
    if len(held.parts) < 2:
        return False
    (_, inputs), (path, targets) = held.parts[:2]
    try:
        expected = target_fn(inputs)
        got = flatten_at(targets, path).leaves
        want = flatten_at(expected, "target_fn(inputs)").leaves
        if len(got) != len(want):
            return False
        for (p, actual), (wp, desired) in zip(got, want):
            a, d = as_array(actual, p), as_array(desired, wp)
            if a.shape != d.shape or diff_arrays(p, d, a, rtol=rtol, atol=atol) is not None:
                return False
    except Exception:  # target_fn fails on what the write left: the pair is broken
        return False
    return True


_MAX_EPOCH = 100_000


def blame_epochs(
    source: Any,
    *,
    steps_per_epoch: int | None = None,
    timeout: float | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
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
    stored data. Reordering the samples (an in-place shuffle) is not a rewrite.
    """
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    unpack = validate.optional_function("unpack", unpack)
    fresh = _fresh(source)
    if isinstance(fresh, str):
        return _cannot(fresh)
    make = _InProcess(fresh)

    def plan(one: _Pass) -> None:
        src: Source = one.step(make)
        stored = _stored_arrays(src)  # the data it holds before reading a batch
        length = src.length if src.kind == "indexable" else None
        count = steps_per_epoch if steps_per_epoch is not None else length
        stream = src.batches()
        inputs = []
        for i in range(count if count is not None else _MAX_EPOCH):
            try:
                batch = one.step(_draw(stream))
            except _Stop as stop:
                if stop.outcome.kind == "end" and count is None:
                    break  # the end of epoch 1
                raise
            parts = split_batch(batch, i, unpack)
            one.hold(i, ((parts.inputs_path, parts.inputs),), active=False, group="epoch 1")
            inputs.append(flatten_at(parts.inputs, parts.inputs_path).leaves)
        one.settle()
        for name, array in _datasets(stored, inputs):
            one.hold(None, ((name, array),), group=name)
        if count is None:
            if not src.rereadable:
                raise _Stop(
                    _Outcome("cannot", detail=f"the source cannot be read twice: {_FACTORY}")
                )
            # As the check reads epoch 2: iter() again on an iterable (the same object, whose
            # stored data epoch 1 may have rewritten), a fresh copy of a generator.
            again = src.fresh() if src.kind in ("generator", "iterator") else src
            stream = one.step(again.batches)
        for _ in range(len(inputs)):
            one.step(_draw(stream))

    def rewritten(held: _Held, group: list[_Held]) -> bool:
        return not _same_samples(group)

    return make.mark(_diagnose(plan, accept=rewritten, timeout=timeout, steps="two epochs"))


_MAX_STORED = 1 << 30
"""Bytes of stored data watched at most (a snapshot of each is kept)."""


def _stored_arrays(src: Source) -> list[tuple[str, np.ndarray]]:
    """The arrays a source holds: its attributes and theirs (a DataLoader's
    ``dataset.images``), a generator's arguments, the cells and arguments of the
    factory that made it; each named as the user wrote it. A torch tensor on the CPU
    is watched through a numpy view of its memory."""
    found: dict[int, tuple[str, np.ndarray]] = {}
    seen: set[int] = set()

    def add(name: str, value: Any, depth: int) -> None:
        if id(value) in seen or len(seen) > _MAX_OBJECTS:
            return
        seen.add(id(value))
        array = value if isinstance(value, np.ndarray) else _tensor_memory(value)
        if array is not None:
            found.setdefault(id(value), (name, array))
        elif depth <= 0 or isinstance(value, _NOT_HELD):
            return
        elif isinstance(value, (list, tuple)) and len(value) <= 64:
            for i, item in enumerate(value):
                add(f"{name}[{i}]", item, depth - 1)
        elif isinstance(value, dict) and len(value) <= 64:
            for key, item in list(value.items()):
                add(f"{name}[{key!r}]", item, depth - 1)
        else:
            for key, item in _attributes(value):
                add(f"{name}.{key}", item, depth - 1)

    obj = src.obj
    frame = getattr(obj, "gi_frame", None)
    if inspect.isgenerator(obj) and frame is not None:
        for name, value in list(frame.f_locals.items()):
            add(name, value, 2)
    else:
        seen.add(id(obj))
        for name, value in _attributes(obj):
            add(f"self.{name}", value, 2)
    fn = src.made_by
    while isinstance(fn, functools.partial):
        for i, value in enumerate(fn.args):
            add(f"argument {i}", value, 2)
        for name, value in fn.keywords.items():
            add(name, value, 2)
        fn = fn.func
    code = getattr(fn, "__code__", None)
    for name, cell in zip(code.co_freevars if code else (), getattr(fn, "__closure__", None) or ()):
        try:
            add(name, cell.cell_contents, 2)
        except ValueError:  # an empty cell
            continue
    return list(found.values())


_MAX_OBJECTS = 2000
"""Objects visited at most looking for the arrays a source holds."""

_NOT_HELD = (
    str,
    bytes,
    bytearray,
    int,
    float,
    complex,
    bool,
    type(None),
    np.generic,
    range,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    types.GeneratorType,
)
"""What is not followed looking for stored arrays: scalars, code, modules, classes."""


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    try:
        attributes = vars(obj)
    except TypeError:  # no __dict__
        return []
    return [(k, v) for k, v in list(attributes.items())[:256] if not k.startswith("__")]


def _tensor_memory(value: Any) -> np.ndarray | None:
    """A numpy view of a CPU torch tensor's memory (writes to either show in both), or
    None for anything else, a tensor on a device included (a copy would show nothing)."""
    array = frameworks.torch.bits(value)
    return array if array is not None and array.ndim else None


def _datasets(
    stored: list[tuple[str, np.ndarray]], inputs: list[tuple[tuple[str, Any], ...]]
) -> list[tuple[str, np.ndarray]]:
    """The stored arrays to watch in epoch 2: larger than a batch (a buffer is not the
    dataset), not memory the batches handed out (watched as batches already)."""
    leaves = [leaf for batch in inputs for _, leaf in batch if isinstance(leaf, np.ndarray)]
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


def _samples(held: _Held, snapshot_side: bool) -> list[bytes]:
    """One fingerprint per sample (row) of a held batch's inputs, then or now."""
    if snapshot_side:
        arrays = [a for snap in held.snaps for _, a in snap.arrays]
    else:
        arrays = [
            as_array(leaf, path)
            for root, node in held.parts
            for path, leaf in _leaves(root, node).leaves
        ]
    if not arrays or any(a.ndim == 0 for a in arrays):
        return [b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)]
    n = len(arrays[0])
    rows = [np.ascontiguousarray(a).reshape(len(a), -1) for a in arrays]
    if any(len(r) != n for r in rows):
        return [b"".join(r.tobytes() for r in rows)]
    return [b"".join(r[i].tobytes() for r in rows) for i in range(n)]


def _same_samples(held: list[_Held]) -> bool:
    """Do the held batches hold the same samples as their snapshots, in any order?"""
    try:
        then = Counter(s for h in held for s in _samples(h, True))
        now = Counter(s for h in held for s in _samples(h, False))
    except Exception:  # a batch no longer splits into samples: rewritten
        return False
    return then == now


def blame_index(source: Any, *, draws: int, timeout: float | None = None) -> Blame:
    """The line that made reading one index twice give different batches, after a failed
    index-stability check.

    Indices are read as :func:`check_index_stable` reads them (``0 ..
    draws-1``, then back). Two causes are looked for, the first named first:

    * stored data rewritten by reading: an array the source holds (``self.x``,
      an array at its module's top level) with at least twice a batch's rows
      (the data, not a buffer) that changes while an index is read a second
      time (a cache filled on first reads does not); its line is found as the
      other blames find theirs, by making the array read-only, then tracing;
    * state advanced per read: ``__getitem__`` is traced line by line while
      numbers held on the object (a counter), on its class or in its module,
      and random generators (its own, numpy's and Python's global ones) are
      watched; the first line that changes the same piece of state on two
      reads in a row is blamed (a lazy one-time set-up is not). A number is
      named before a generator: the check reseeds the generators it reaches
      before every read, so one advancing is rarely what made the reads differ.
    """
    obj = source.obj if isinstance(source, Source) else source
    if not is_indexable(obj):
        raise TypeError(
            "source must be an indexable batch source with __getitem__ and a length"
            f" (like keras.utils.PyDataset), got {type(obj).__qualname__}"
        )
    draws = validate.indices(draws)
    timeout = validate.timeout("timeout", timeout)
    length = batch_count(obj)
    count = draws if length is None else min(draws, length)
    if count < 1:
        return _cannot("the source has no batches to read (its length is 0)", "index")
    order = [*range(count), *reversed(range(count))]
    watch = _IndexWatch(obj, timeout)
    state = watch.run(order, count)
    rewritten = watch.stored.rewritten(watch.rows)
    if not rewritten:
        return state
    stored = _blame_stored(obj, rewritten, order[count:], timeout)
    return stored if stored.found or not state.found else state


def _blame_stored(
    obj: Any, arrays: list[tuple[str, np.ndarray]], indices: list[int], timeout: float | None
) -> Blame:
    """The line that rewrites ``arrays`` (held by ``obj``) while ``indices`` are read again."""

    def plan(one: _Pass) -> None:
        one.hold(None, tuple(arrays), group="stored data")
        for i in indices:
            one.label(i)
            one.step(functools.partial(obj.__getitem__, i))

    blame = _diagnose(
        plan,
        timeout=timeout,
        steps=f"indices {indices[0]}..{indices[-1]}",
        unit="index",
        what="the stored data",
    )
    if blame.why != "not reproduced":
        return blame
    names = ", ".join(name for name, _ in arrays[:MAX_SHOWN])
    return _cannot(
        f"{names} changed while indices were read a second time, but not when the diagnosis"
        f" pass read indices {indices[0]}..{indices[-1]} once more: the write depends on"
        " timing, or on how many times the source was read",
        "index",
    )


_MAX_STORED_ONE = 1 << 28
"""Bytes of one stored array watched at most, as the check's witness watches them."""


class _StoredData:
    """The arrays a source holds, copied as the second reads begin, and the first second
    read that changed each.

    Found as the check finds its witness (``held_by``: attributes a few levels
    deep, arrays at the top level of the source's module), once the first reads
    are done (a cache they made is found too); compared byte for byte after each
    read, not after each line, and no more once changed.
    """

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.arrays: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.changed: dict[str, int] = {}
        """Name -> the first read that changed it while reading an index a second time."""

    def start(self) -> None:
        total = 0
        try:
            found = held_by([("self", self.obj)]).arrays
        except Exception:  # an attribute that breaks when read: no stored data watched
            found = {}
        for name, held in found.items():
            try:
                array = as_array(held, name)  # a subclass (masked, memmap) as the data it holds
            except Exception:  # one numpy cannot view plainly: not watched
                continue
            size = array.nbytes
            if size > _MAX_STORED_ONE or total + size > _MAX_STORED or array.dtype.hasobject:
                continue
            self.arrays.append((name, array, np.array(array, copy=True)))
            total += size

    def compare(self, read_no: int) -> None:
        """Note which arrays the read just made changed."""
        for name, array, then in self.arrays:
            if name in self.changed:
                continue
            if not _unchanged(then, array):  # bytes first: a value compare only once changed
                self.changed[name] = read_no

    def rewritten(self, rows: int) -> list[tuple[str, np.ndarray]]:
        """The arrays a second read changed, with at least twice ``rows`` rows (the data,
        not a batch buffer), the first changed first."""
        chosen = sorted(
            (read_no, name)
            for name, read_no in self.changed.items()
            if any(n == name and len(a) >= 2 * rows for n, a, _ in self.arrays)
        )
        arrays = {name: array for name, array, _ in self.arrays}
        return [(name, arrays[name]) for _, name in chosen]


class _IndexWatch:
    """Reads indices under a line trace, noting after each line which state changed, and
    after each read which stored array did."""

    def __init__(self, obj: Any, timeout: float | None) -> None:
        self.obj = obj
        self.timeout = timeout
        self.caller = threading.get_ident()
        self.state = _State(obj)
        self.stored = _StoredData(obj)
        self.rows = 0
        """The most rows a batch read had."""
        self.read_no = 0
        self.index = 0
        self.last: dict[str, int] = {}  # state name -> the read number that last changed it
        self.first: dict[str, tuple[tuple[Frame, ...], int]] = {}  # its line then, and index
        self.found: tuple[str, tuple[str, ...]] | None = None
        """A number advanced on two reads in a row, and the other threads running then."""
        self.random: tuple[str, tuple[str, ...], int] | None = None
        """A generator advanced on two reads in a row, its threads, and that read."""
        self.noline: list[str] = []
        self.observer = _Observer(lambda: None)
        self.observer.on_point = self.point

    def point(self, point: Point) -> bool:
        if point is not None:
            self.state.adopt(point[0])
        changed = self.state.changed()
        if not changed:
            return False
        self.state.take(changed)
        for name in changed:
            if point is None:
                self.noline.append(name)
            elif self.last.get(name) == self.read_no - 1:  # advanced on two reads in a row
                mine = {self.caller, threading.get_ident()}
                threads = tuple(sorted(self.observer.foreign | set(_busy_threads(mine))))
                if name not in self.state.rngs:
                    self.found = (name, threads)
                    return True
                if self.random is None:  # keep looking for a number
                    self.random = (name, threads, self.read_no)
            elif self.last.get(name) != self.read_no:
                self.last[name] = self.read_no
                self.first[name] = (_stack(*point), self.index)
        return False

    def tracing(self) -> bool:
        """Still looking for state advanced per read? A number found ends it, and so does a
        read after a generator was found (a number advanced per read shows by then)."""
        if self.found is not None:
            return False
        return self.random is None or self.read_no <= self.random[2] + 1

    def run(self, order: list[int], count: int) -> Blame:
        tracer = _tracer(self.observer)
        try:
            for self.read_no, self.index in enumerate(order):
                again = self.read_no >= count  # reading an index a second time
                if self.read_no == count:
                    self.stored.start()
                trace = self.tracing()
                if not trace and again and (self.stored.changed or not self.stored.arrays):
                    break  # the state and the stored data are both told
                self.observer.lines = trace
                self.observer.pending = None
                failed = self.read(tracer)
                if failed is not None:
                    return failed
                if self.observer.error:
                    return _cannot(f"pitfalls could not compare: {self.observer.error}", "index")
                if again:
                    self.stored.compare(self.read_no)
        finally:
            self.observer.closed = True
            tracer.close()
        return self.blame(count)

    def read(self, tracer: _SetTrace | _Monitoring) -> Blame | None:
        index, obj = self.index, self.obj
        try:
            if self.timeout is None:
                batch = tracer.run(lambda: obj[index])
            else:
                batch = call_within(
                    lambda: tracer.run(lambda: obj[index]),
                    self.timeout,
                    f"return source[{index}]",
                )
        except TimeoutError as exc:
            return _cannot(f"the diagnosis pass timed out: {exc}", "index")
        except Exception as exc:
            return _cannot(
                f"the source raised {type(exc).__name__}: {exc} during the diagnosis pass",
                "index",
            )
        finally:
            self.observer.lines = False
        self.rows = max(self.rows, _rows_of(batch))
        return None

    def blame(self, count: int) -> Blame:
        found = self.found
        if found is None and self.random is not None:
            found = self.random[:2]
        if found is not None:
            name, threads = found
            if threads or self.observer.threads:
                return _cannot(
                    f"{name} advanced while other threads ran the source's code; blame"
                    " follows only the thread that reads, so no line can be named",
                    "index",
                )
            frames, index = self.first[name]
            return Blame(frames=frames, how="traced", batch=index, path=name, unit="index")
        if self.noline:
            return _cannot(
                f"{self.noline[0]} advanced while none of the source's Python lines ran"
                " (C code or another thread)",
                "index",
            )
        return _cannot(
            "no counter or random generator of the source advanced on two reads in a row"
            f" while indices 0..{count - 1} were read twice: its state is elsewhere (an"
            " iterator, a file, a C extension)",
            "index",
        )


def _rows_of(batch: Any) -> int:
    """Samples in a batch: the length of its first array with an axis (0 if none)."""
    try:
        for path, leaf in flatten(batch).leaves:
            array = as_array(leaf, path)
            if array.ndim:
                return len(array)
    except Exception:  # a batch that does not flatten: no rows known
        return 0
    return 0


# The state an indexable source may advance per read -------------------------------------


def _rng_state(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, np.random.BitGenerator):
        return value.state
    if isinstance(value, np.random.RandomState):
        return value.get_state(legacy=False)
    if isinstance(value, random.Random):
        return value.getstate()
    return None


_NUMBERS = (bool, int, float, complex, np.number, np.bool_)


def _collect(items: dict[str, Any], rngs: set[str], name: str, value: Any, depth: int) -> None:
    """Put ``value``'s numbers and RNG states into ``items`` by name (RNGs' names in ``rngs``)."""
    if isinstance(value, _NUMBERS):
        items[name] = value
        return
    rng = _rng_state(value)
    if rng is not None:
        items[name] = rng
        rngs.add(name)
    elif depth > 0 and isinstance(value, dict) and len(value) <= 64:
        for key, item in list(value.items()):
            _collect(items, rngs, f"{name}[{key!r}]", item, depth - 1)
    elif depth > 0 and isinstance(value, list) and len(value) <= 64:
        for i, item in enumerate(list(value)):
            _collect(items, rngs, f"{name}[{i}]", item, depth - 1)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if a is b:
        return True
    try:
        return bool(a == b) or (a != a and b != b)  # NaN is unchanged NaN
    except Exception:
        return False


class _State:
    """Numbers and random generators the source may advance per read, with their values."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        cls = type(obj)
        self.classes = [
            c
            for c in cls.__mro__
            if c is not object
            and _is_user_file(getattr(sys.modules.get(c.__module__), "__file__", None) or "<>")
        ]
        module = sys.modules.get(cls.__module__)
        self.module = (
            module
            if module is not None and _is_user_file(getattr(module, "__file__", None) or "<>")
            else None
        )
        self.rngs: set[str] = set()
        """The names that are random generators' states, not numbers."""
        self.extra: dict[str, Any] = {}
        """Generators the traced code reaches beyond the object: a closure's, another
        module's, by a name a person can read."""
        self.codes: set[CodeType] = set()
        self.values = self.read()

    def adopt(self, frame: FrameType) -> None:
        """Watch the generators that the code running in ``frame`` names from outside
        itself (its closure, its globals), the first time that code is seen."""
        code = frame.f_code
        if code in self.codes:
            return
        self.codes.add(code)
        where = qualname(code)
        found: dict[str, Any] = {}
        try:
            local = frame.f_locals
            for var in code.co_freevars:
                value = local.get(var)
                if _rng_state(value) is not None:
                    found[f"{where}'s {var}"] = value
            module = frame.f_globals.get("__name__", "")
            if self.module is None or module != self.module.__name__:
                for var in code.co_names:
                    value = frame.f_globals.get(var)
                    if _rng_state(value) is not None:
                        found[f"{module}.{var}"] = value
        except Exception:  # locals that cannot be read: nothing more watched
            return
        found = {name: value for name, value in found.items() if name not in self.values}
        if found:
            self.extra.update(found)
            items: dict[str, Any] = {}
            for name, value in found.items():
                _collect(items, self.rngs, name, value, 0)
            self.values.update(items)

    def read(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        try:
            attributes = dict(vars(self.obj))
        except TypeError:  # no __dict__ (slots)
            attributes = {}
        for name, value in attributes.items():
            _collect(items, self.rngs, f"source.{name}", value, 1)
        for c in self.classes:
            for name, value in list(vars(c).items()):
                if not name.startswith("__"):
                    _collect(items, self.rngs, f"{c.__qualname__}.{name}", value, 0)
        if self.module is not None:
            for name, value in list(vars(self.module).items()):
                if not name.startswith("__"):
                    _collect(items, self.rngs, f"{self.module.__name__}.{name}", value, 0)
        for name, value in self.extra.items():
            _collect(items, self.rngs, name, value, 0)
        items["numpy.random (global)"] = np.random.get_state(legacy=False)
        items["random (global)"] = random.getstate()
        self.rngs.update(("numpy.random (global)", "random (global)"))
        return items

    def changed(self) -> list[str]:
        now = self.read()
        return [
            name
            for name in now.keys() | self.values.keys()
            if name not in now or name not in self.values or not _same(now[name], self.values[name])
        ]

    def take(self, names: list[str]) -> None:
        now = self.read()
        for name in names:
            if name in now:
                self.values[name] = now[name]
            else:
                self.values.pop(name, None)
