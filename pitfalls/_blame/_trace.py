"""The two ways a write is caught where it runs: freezing (arrays made read-only) and
tracing the source's lines (``sys.monitoring`` on 3.12+, ``sys.settrace`` before)."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import numpy as np

from pitfalls._blame._where import _is_threading, _is_user, _user_frames

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
        self.frozen: list[np.ndarray] = []
        """In the order frozen: each after the arrays owning its memory, as restored."""
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
        for a in reversed(chain):  # the owner first
            if id(a) not in self._ids and a.flags.writeable:
                a.flags.writeable = False
                self._ids.add(id(a))
                self.frozen.append(a)

    def restore(self) -> None:
        """Make writeable again every array made read-only, owners before their views."""
        self.enabled = False
        failed = 0
        for a in self.frozen:
            try:
                a.flags.writeable = True
            except ValueError:
                failed += 1
        self.frozen, self._ids = [], set()
        if failed:
            raise RuntimeError(
                f"pitfalls could not make {failed} array(s) writeable again after"
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


class _Watcher:
    """The one callback layer of both tracers: turns their events into points. After each
    line of the user's code, :meth:`on_point` is called with the line that just ran and
    stops the comparing by returning True."""

    def __init__(self) -> None:
        self.lines = False
        """Are lines compared now?"""
        self.pending: Point = None
        self.threads = False
        """The source called into threading, queue, concurrent.futures, ..."""
        self.foreign: set[str] = set()
        """Other threads seen running the user's code (sys.monitoring only)."""
        self.closed = False
        self.error = ""
        """Why a comparison failed, if one did."""

    def on_point(self, point: Point) -> bool:
        """Compare after ``point``; True once done."""
        return False

    def on_threads(self) -> None:
        """The source started, woke or waits for another thread."""

    def call(self, frame: FrameType) -> bool:
        """A frame starts or resumes; True to trace its lines."""
        if self.closed:
            return False
        if not _is_user(frame.f_code):
            if not self.threads and _is_threading(frame) and any(_user_frames(frame.f_back)):
                self.threads = True
                self._safely(self.on_threads)
            return False
        if not self.lines:
            return False
        self.line(frame)
        return True

    def line(self, frame: FrameType) -> None:
        """A line of ``frame`` is about to run: the one pending has run."""
        if self.lines and not self.closed:
            self._safely(self._point)
            self.pending = (frame, frame.f_lineno)

    def leave(self, frame: FrameType) -> None:
        """``frame`` returns or yields: its caller's line is pending again."""
        if self.lines and not self.closed:
            self._safely(self._point)
            caller = frame.f_back
            user = caller is not None and _is_user(caller.f_code)
            self.pending = (caller, caller.f_lineno) if user and caller is not None else None

    def _point(self) -> None:
        if self.on_point(self.pending):
            self.lines = False

    def _safely(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # never let a failed comparison escape into the user's frame
            self.error = f"{type(exc).__name__}: {exc}"
            self.lines = False


class _SetTrace:
    """``sys.settrace`` in the thread that runs the source (Python < 3.12)."""

    def __init__(self, watcher: _Watcher) -> None:
        self.watcher = watcher
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
        if event == "call" and self.watcher.call(frame):
            self.traced.append(frame)
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self.watcher.closed:
            return None
        if event == "line":
            self.watcher.line(frame)
        elif event == "return":
            self.watcher.leave(frame)
        return self._local

    def close(self) -> None:
        pass


_MONITORING: Any = getattr(sys, "monitoring", None)
"""``sys.monitoring`` on Python 3.12+, else None."""


class _Monitoring:
    """``sys.monitoring`` (Python 3.12+): one tool id, events filtered to one thread."""

    def __init__(self, watcher: _Watcher, tool: int) -> None:
        self.watcher = watcher
        self.tool = tool
        self.ident = -1
        self.codes: set[CodeType] = set()
        self.events = _MONITORING.events
        self.handlers = {
            self.events.PY_START: self._start,
            self.events.PY_RESUME: self._start,
            self.events.PY_RETURN: self._return,
            self.events.PY_YIELD: self._return,
            self.events.LINE: self._line,
        }
        for event, handler in self.handlers.items():
            _MONITORING.register_callback(tool, event, handler)

    @classmethod
    def open(cls, watcher: _Watcher) -> _Monitoring | None:
        """The tracer on a free tool id, or None (no sys.monitoring, or no id free)."""
        for tool in (_MONITORING.PROFILER_ID, 5, 4, 3) if _MONITORING else ():
            if _MONITORING.get_tool(tool) is None:
                try:
                    _MONITORING.use_tool_id(tool, "pitfalls blame")
                except ValueError:  # taken meanwhile
                    continue
                return cls(watcher, tool)
        return None

    def run(self, fn: Callable[[], Any]) -> Any:
        self.ident = threading.get_ident()
        _MONITORING.set_events(self.tool, self.events.PY_START | self.events.PY_RESUME)
        try:
            return fn()
        finally:
            _MONITORING.set_events(self.tool, 0)

    def _mine(self, code: CodeType) -> bool:
        if threading.get_ident() == self.ident:
            return True
        if _is_user(code) and not self.watcher.closed:
            self.watcher.foreign.add(threading.current_thread().name)
        return False

    def _start(self, code: CodeType, offset: int) -> Any:
        if self._mine(code) and self.watcher.call(sys._getframe(1)) and code not in self.codes:
            lines = self.events.LINE | self.events.PY_RETURN | self.events.PY_YIELD
            _MONITORING.set_local_events(self.tool, code, lines)
            self.codes.add(code)

    def _line(self, code: CodeType, line: int) -> Any:
        if self._mine(code):
            self.watcher.line(sys._getframe(1))

    def _return(self, code: CodeType, offset: int, value: Any) -> Any:
        if self._mine(code):
            self.watcher.leave(sys._getframe(1))

    def close(self) -> None:
        _MONITORING.set_events(self.tool, 0)
        for code in self.codes:
            _MONITORING.set_local_events(self.tool, code, 0)
        for event in self.handlers:
            _MONITORING.register_callback(self.tool, event, None)
        _MONITORING.free_tool_id(self.tool)


def _tracer(watcher: _Watcher) -> _SetTrace | _Monitoring:
    return _Monitoring.open(watcher) or _SetTrace(watcher)
