"""Which code is the user's, the frames a blame names, and the other threads and
processes that may have written instead."""

from __future__ import annotations

import linecache
import os
import site
import sys
import sysconfig
import threading
from types import CodeType, FrameType, TracebackType
from typing import Any

from pitfalls._compat import qualname
from pitfalls._report import Frame

# Which code is the user's --------------------------------------------------------------

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # pitfalls/
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


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    try:
        attributes = vars(obj)
    except TypeError:  # no __dict__
        return []
    return [(k, v) for k, v in list(attributes.items())[:256] if not k.startswith("__")]
