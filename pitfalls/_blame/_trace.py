"""The two ways a write is caught where it runs: freezing (arrays made read-only) and
tracing the source's lines (``sys.settrace``)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from types import FrameType
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
            if a.flags.writeable:  # not frozen already, by the user or by us
                a.flags.writeable = False
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
        self.frozen = []
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
    for node in _chain(exc):
        if isinstance(node, (ValueError, TypeError, BufferError)) and _REFUSED.search(str(node)):
            return node
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its cause (or else its context), and theirs, each once."""
    seen = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        node = node.__cause__ or node.__context__


# Tracing ------------------------------------------------------------------------------

Point = tuple[FrameType, int] | None
"""The line that ran since the previous trace event: its frame and line; None when the
code that ran was not the user's."""


class _Watcher:
    """The tracer, ``sys.settrace`` in the thread that runs the source, and its one
    callback layer: turns trace events into points. After each line of the user's code,
    :meth:`on_point` is called with the line that just ran and stops the comparing by
    returning True. One mechanism on every Python version: the trace function in place
    (a debugger's, coverage's) is put back after each step, and another thread's writes
    are told by the threads the pass sees running, not by tracing them."""

    def __init__(self) -> None:
        self.lines = False
        """Are lines compared now?"""
        self.pending: Point = None
        self.threads = False
        """The source called into threading, queue, concurrent.futures, ..."""
        self.closed = False
        self.error = ""
        """Why a comparison failed, if one did."""
        self.traced: list[FrameType] = []
        self.freezer: _Freezer | None = None
        """What is frozen, made writeable again once the source calls into threading: a
        thread of the source must never meet a frozen array."""

    def on_point(self, point: Point) -> bool:
        """Compare after ``point``; True once done."""
        return False

    def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, traced in the thread that calls it."""
        previous = sys.gettrace()
        sys.settrace(self._call)
        try:
            return fn()
        finally:
            sys.settrace(previous)
            for frame in self.traced:  # no stale local tracer left on a suspended generator
                frame.f_trace = None
            self.traced.clear()

    def _call(self, frame: FrameType, event: str, arg: Any) -> Any:
        """A frame starts or resumes: its lines are traced when it is the user's."""
        if event != "call" or self.closed:
            return None
        if not _is_user(frame.f_code):
            if not self.threads and _is_threading(frame) and any(_user_frames(frame.f_back)):
                self.threads = True
                if self.freezer is not None:
                    self._safely(self.freezer.restore)
            return None
        if not self.lines:
            return None
        self.traced.append(frame)
        return self._local(frame, "line", arg)

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        """A line of ``frame`` is about to run, or ``frame`` returns or yields: the line
        pending has run, and that line, or the caller's, is pending now."""
        if self.closed:
            return None
        if self.lines and event in ("line", "return"):
            self._safely(self._point)
            where = frame if event == "line" else frame.f_back
            user = where is not None and _is_user(where.f_code)
            self.pending = (where, where.f_lineno) if user and where is not None else None
        return self._local

    def _point(self) -> None:
        if self.on_point(self.pending):
            self.lines = False

    def _safely(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # never let a failed comparison escape into the user's frame
            self.error = f"{type(exc).__name__}: {exc}"
            self.lines = False
