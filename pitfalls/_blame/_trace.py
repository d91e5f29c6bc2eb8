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

from pitfalls._blame._where import (
    _is_threading,
    _is_user,
    _user_on_stack,
)

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
