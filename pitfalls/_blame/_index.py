"""Index blame: the write into stored data, or the state advanced per read, that makes
reading one index twice give different batches."""

from __future__ import annotations

import functools
import sys
from types import CodeType, FrameType, ModuleType
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls._blame._pass import (
    _MAX_STORED,
    NamedArrays,
    _cannot,
    _diagnose,
    _explain,
    _Held,
    _Outcome,
    _Pass,
    _run,
    _stored,
)
from pitfalls._blame._trace import Point
from pitfalls._blame._where import _stack, _whose
from pitfalls._compat import qualname
from pitfalls._frameworks import rngs
from pitfalls._report import MAX_SHOWN, Blame, Frame
from pitfalls._sources import Source
from pitfalls._tree import as_array, flatten


def blame_index(source: Any, *, draws: int, timeout: float | None = None) -> Blame:
    """The line that made reading one index twice give different batches, after a failed
    index-stability check.

    Indices are read as :func:`check_index_stable` reads them (``0 ..
    draws-1``, then back; ``draws`` is how many it read, at most the source's
    length). Two causes are looked for, the first named first:

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
    reads = _StateWatch(obj, draws, timeout=timeout)
    outcome = _run(lambda one: reads.read_twice(), reads)
    state = _explain(outcome, "index", _STATE_REASONS, name=outcome.path, last=draws - 1)
    rewritten = reads.rewritten()  # the arrays a second read changed
    if not rewritten:
        return state
    stored = _blame_stored(obj, rewritten, reads.order[draws:], timeout)
    return stored if stored.found or not state.found else state


_STATE_REASONS = ("state_threads", "state_unseen", "state_elsewhere")


def _blame_stored(
    obj: Any, arrays: NamedArrays, indices: list[int], timeout: float | None
) -> Blame:
    """The line that rewrites ``arrays`` (held by ``obj``) while ``indices`` are read again."""

    def plan(one: _Pass) -> None:
        one.watch(one.snap(None, tuple(arrays)))
        for i in indices:
            one.held[0].batch = i  # a change is reported as one of the index read
            one.step(functools.partial(obj.__getitem__, i))

    span = f"{indices[0]}..{indices[-1]}"
    outcome = _diagnose(plan, timeout=timeout)
    blame = _explain(outcome, "index", what="the stored data", steps=f"indices {span}")
    if blame.why != "not reproduced":
        return blame
    names = ", ".join(name for name, _ in arrays[:MAX_SHOWN])
    return _cannot("stored_not_again", "index", names=names, indices=span)


_MAX_STORED_ONE = 1 << 28
"""Bytes of one stored array watched at most, as the check's witness watches them."""


class _StateWatch(_Pass):
    """A read of indices, traced line by line while state advanced per read is looked for,
    noting after each line which number or generator changed; and the arrays the source
    stores, compared after each second read (not after each line: they may be large)."""

    def __init__(self, obj: Any, count: int, **options: Any) -> None:
        super().__init__(None, **options)
        self.obj = obj
        self.count = count
        self.order = [*range(count), *reversed(range(count))]  # each index, then each again
        self.state = _State(obj)
        self.last: dict[str, int] = {}  # state name -> the step that last changed it
        self.first: dict[str, tuple[tuple[Frame, ...], int]] = {}  # its line then, and index
        self.number: _Outcome | None = None  # a number advanced on two reads in a row
        self.random: _Outcome | None = None  # a generator advanced on two reads in a row
        self.noline: _Outcome | None = None  # state changed while no user line ran
        self.stored: dict[str, _Held] = {}
        self.changed: dict[str, int] = {}
        """Stored array name -> the first read that changed it while reading an index a
        second time."""
        self.rows = 0  # the most rows a batch read had

    def _traced(self, index: int) -> bool:
        """Still looking for state advanced per read (tracing) at read ``index``? A number
        found ends it, and so does a read after a generator was found (a number advanced
        per read shows by then)."""
        return self.number is None and (self.random is None or index <= self.random.step + 1)

    def on_point(self, point: Point) -> bool:
        read_no = self.steps - 1
        if point is not None:
            self.state.adopt(point[0])
        for name in self.state.advance():
            if point is None:
                self.noline = self.noline or _Outcome("noline", read_no, path=name)
            elif self.last.get(name) == read_no - 1:  # advanced on two reads in a row
                frames, index = self.first[name]
                found = _Outcome("found", read_no, frames, index, name, self._threads())
                if name not in self.state.rngs:
                    self.number = found
                    return True
                self.random = self.random or found  # and keep looking for a number
            elif self.last.get(name) != read_no:
                self.last[name] = read_no
                self.first[name] = (_stack(*point), self.order[read_no])
        return False

    def read_twice(self) -> None:
        """Read the indices in order until the state and the stored data are told; end on
        what the state watch found."""
        for read_no, index in enumerate(self.order):
            if read_no == self.count:
                self.watch_stored()
            stored_told = bool(self.changed) or not self.stored
            if read_no >= self.count and stored_told and not self._traced(read_no):
                break  # the state and the stored data are both told
            batch = self.step(functools.partial(self.obj.__getitem__, index))
            self.rows = max(self.rows, _rows_of(batch))
            for name, held in self.stored.items():
                if name not in self.changed and held.changed() is not None:
                    self.changed[name] = read_no
        raise self.number or self.random or self.noline or _Outcome("end", self.steps)

    def watch_stored(self) -> None:
        """Copy the arrays the source holds, as the second reads begin.

        Found as the check finds its witness (``held_by``: attributes a few levels
        deep, arrays at the top level of the source's module), once the first reads
        are done (a cache they made is found too).
        """
        total = 0
        for name, array in _stored([("self", self.obj)]):
            size = array.nbytes
            if size <= _MAX_STORED_ONE and total + size <= _MAX_STORED:
                self.stored[name] = _Held(None, ((name, array),))
                total += size

    def rewritten(self) -> NamedArrays:
        """The arrays a second read changed, with at least twice a batch's rows (the data,
        not a batch buffer), the first changed first."""
        arrays = {name: held.parts[0][1] for name, held in self.stored.items()}
        chosen = sorted((read_no, name) for name, read_no in self.changed.items())
        return [(name, arrays[name]) for _, name in chosen if len(arrays[name]) >= 2 * self.rows]


def _rows_of(batch: Any) -> int:
    """Samples in a batch: the length of its first array with an axis (0 if none)."""
    try:
        arrays = (as_array(leaf, path) for path, leaf in flatten(batch).leaves)
        return next((len(array) for array in arrays if array.ndim), 0)
    except Exception:  # a batch that does not flatten: no rows known
        return 0


# The state an indexable source may advance per read -------------------------------------

_NUMBERS = (bool, int, float, complex, np.number, np.bool_)


def _user_module(module: ModuleType | None) -> bool:
    return module is not None and _whose(getattr(module, "__file__", None) or "<>") == "user"


class _State:
    """Numbers and random generators the source may advance per read, with their values."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        cls = type(obj)
        modules = [(c, sys.modules.get(c.__module__)) for c in cls.__mro__[:-1]]
        self.classes = [c for c, module in modules if _user_module(module)]
        module = sys.modules.get(cls.__module__)
        self.module = module if _user_module(module) else None
        self.rngs: dict[str, str] = {}  # the names that are random generators, and their kinds
        self.extra: dict[str, Any] = {}
        """Generators the traced code reaches beyond the object: a closure's, another
        module's, by a name a person can read."""
        self.codes: set[CodeType] = set()
        self.values = self.read()

    def _collect(self, items: dict[str, Any], name: str, value: Any, depth: int) -> None:
        """Put ``value``'s numbers and generators' states into ``items`` by name."""
        kind = frameworks.rng_kind(value)
        if isinstance(value, _NUMBERS):
            items[name] = value
        elif kind is not None:
            items[name] = rngs.get_state(value, kind)
            self.rngs[name] = kind
        elif depth > 0 and isinstance(value, (dict, list)) and len(value) <= 64:
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in list(pairs):  # an int index reads the same through repr
                self._collect(items, f"{name}[{key!r}]", item, depth - 1)

    def adopt(self, frame: FrameType) -> None:
        """Watch the generators that the code running in ``frame`` names from outside
        itself (its closure, its globals), the first time that code is seen."""
        code = frame.f_code
        if code in self.codes:
            return
        self.codes.add(code)
        found: dict[str, Any] = {}
        try:
            for var in code.co_freevars:
                found[f"{qualname(code)}'s {var}"] = frame.f_locals.get(var)
            module = frame.f_globals.get("__name__", "")
            if self.module is None or module != self.module.__name__:
                for var in code.co_names:
                    found[f"{module}.{var}"] = frame.f_globals.get(var)
        except Exception:  # locals that cannot be read: nothing more watched
            return
        for name, value in found.items():
            if name not in self.values and frameworks.rng_kind(value) is not None:
                self.extra[name] = value
                self._collect(self.values, name, value, 0)

    def read(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        try:
            attributes = dict(vars(self.obj))
        except TypeError:  # no __dict__ (slots)
            attributes = {}
        for name, value in attributes.items():
            self._collect(items, f"source.{name}", value, 1)
        scopes: list[tuple[str, Any]] = [(c.__qualname__, c) for c in self.classes]
        if self.module is not None:
            scopes.append((self.module.__name__, self.module))
        for where, scope in scopes:
            for name, value in list(vars(scope).items()):
                if not name.startswith("__"):
                    self._collect(items, f"{where}.{name}", value, 0)
        for name, value in self.extra.items():
            self._collect(items, name, value, 0)
        self._collect(items, "numpy.random (global)", frameworks.numpy_global(), 0)
        self._collect(items, "random (global)", frameworks.python_global(), 0)
        return items

    def _same(self, name: str, now: dict[str, Any]) -> bool:
        if name not in now or name not in self.values:
            return False
        a, b = now[name], self.values[name]
        if name in self.rngs:
            return rngs.same_state(a, b)
        return bool(a == b) or (a != a and b != b)  # NaN is unchanged NaN

    def advance(self) -> list[str]:
        """The names whose value changed since the last call, their new values taken."""
        now = self.read()
        changed = [name for name in now.keys() | self.values.keys() if not self._same(name, now)]
        self.values = now
        return changed
