"""Which code is the user's, the frames a blame names, and the other threads and
processes that may have written instead."""

from __future__ import annotations

import functools
import linecache
import os
import sys
import sysconfig
import threading
import traceback
from collections.abc import Iterator
from types import CodeType, FrameType, TracebackType

from pitfalls._compat import qualname
from pitfalls._report import Frame

# Which code is the user's --------------------------------------------------------------


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _libraries() -> tuple[str, ...]:
    """The directories of the standard library and of installed packages (site-packages,
    a distribution's dist-packages, the user's site directory), each ending in a separator."""
    paths = sysconfig.get_paths()
    dirs = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    dirs += [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    return tuple(sorted({_norm(d) + os.sep for d in dirs if d}))


_LIBRARIES = _libraries()
_PACKAGE = _norm(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep
_LESSONS = _PACKAGE + "reproductions" + os.sep


@functools.cache
def _whose(filename: str) -> str:
    """Whose code a file is: ``"ours"`` (pitfalls, the edge of the source's frames; its
    reproductions are the user's), ``"library"`` (the standard library, anything
    installed, a frozen or compiled module's frame) or ``"user"``."""
    # <frozen ...>, <string>, <__array_function__ internals>; a compiled module's frame
    # (numpy/random/_generator.pyx)
    if filename.startswith("<") or not (os.path.isabs(filename) or os.path.exists(filename)):
        return "library"
    path = _norm(filename)
    if path.startswith(_LESSONS):
        return "user"
    if path.startswith(_PACKAGE):
        return "ours"
    return "library" if path.startswith(_LIBRARIES) else "user"


def _is_user(code: CodeType) -> bool:
    return _whose(code.co_filename) == "user"


def _user_frames(frame: FrameType | None, whole: bool = False) -> Iterator[FrameType]:
    """The user's frames among ``frame`` and its callers, innermost first, up to pitfalls'
    own code (``whole``: the whole stack)."""
    while frame is not None:
        whose = _whose(frame.f_code.co_filename)
        if whose == "ours" and not whole:
            return
        if whose == "user":
            yield frame
        frame = frame.f_back


def _frame(code: CodeType, line: int) -> Frame:
    return Frame(
        file=code.co_filename,
        line=line,
        function=qualname(code),
        code=linecache.getline(code.co_filename, line).strip(),
    )


def _stack(frame: FrameType, line: int) -> tuple[Frame, ...]:
    """The frames a blame names: ``frame`` (at ``line``), then its user callers."""
    callers = [_frame(f.f_code, f.f_lineno) for f in _user_frames(frame.f_back)]
    return (_frame(frame.f_code, line), *callers)


def _user_tracebacks(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    """The frames of a traceback in the user's code, with their lines, innermost (the
    raising line) first."""
    return [(f, line) for f, line in traceback.walk_tb(tb) if _is_user(f.f_code)][::-1]


# Other threads and processes -----------------------------------------------------------

_WAITS = {
    "threading": {"start", "join", "wait", "wait_for", "acquire", "release", "set", "notify"},
    "queue": {"get", "put", "join", "task_done"},
    "concurrent": {"submit", "map", "result", "wait", "as_completed"},
    "multiprocessing": {"start", "join", "get", "put", "recv", "map", "imap", "starmap", "apply"},
}
"""Functions that start, wake or wait for another thread: a sign that another thread may be
the one writing (creating a lock, as numpy's random generators do, is not)."""


def _is_threading(frame: FrameType) -> bool:
    package = str(frame.f_globals.get("__name__", "")).split(".", 1)[0]
    return frame.f_code.co_name in _WAITS.get(package, ())


def _idle(frame: FrameType) -> bool:
    """Is a thread whose innermost frame is ``frame`` blocked until another thread wakes it?

    ``Condition.wait()`` without a timeout (under ``Event.wait``, ``Queue.get``,
    ``Future.result``, ...) and ``Thread.join()`` are; a wait with a timeout is
    a poll, and a thread in the user's own code may be writing.
    """
    # Thread.join() waits in a helper of threading's own before 3.13 and in C from 3.13:
    # the public join(timeout=None) is found among the threading frames on top either way.
    f: FrameType | None = frame
    while f is not None and f.f_globals.get("__name__") == "threading":
        if f.f_code.co_name in ("wait", "join") and f.f_locals.get("timeout") is None:
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
            if ident not in exclude and not _idle(frame) and any(_user_frames(frame, True)):
                busy.append(names.get(ident, f"thread {ident}"))
    finally:
        # This thread's own frame is among them: holding it in a local of that very
        # frame is a reference cycle, which keeps every frame below it (the source
        # and its iterators, a DataLoader's workers) alive until the collector runs.
        del stacks
        frame = None  # type: ignore[assignment]
    return busy


def _children_alive() -> int:
    """How many child processes of this one are running (a DataLoader's workers, a pool).

    Read from ``multiprocessing`` only when something has imported it: a source
    that never did started no worker process through it.
    """
    try:
        return len(sys.modules["multiprocessing"].active_children())
    except Exception:  # not imported, an interpreter shutting down, a child table rebuilt
        return 0
