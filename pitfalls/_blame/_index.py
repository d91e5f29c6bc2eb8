"""Index blame: the write into stored data, or the state advanced per read, that makes
reading one index twice give different batches."""

from __future__ import annotations

import functools
import random
import sys
import threading
from types import CodeType, FrameType
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._blame._pass import (
    _MAX_STORED,
    _cannot,
    _diagnose,
    _Pass,
    _unchanged,
)
from pitfalls._blame._trace import (
    Point,
    _Monitoring,
    _Observer,
    _SetTrace,
    _tracer,
)
from pitfalls._blame._where import (
    _busy_threads,
    _is_user_file,
    _stack,
)
from pitfalls._compat import qualname
from pitfalls._randomness import held_by
from pitfalls._report import MAX_SHOWN, Blame, Frame
from pitfalls._sources import Source, batch_count, call_within, is_indexable
from pitfalls._tree import (
    as_array,
    flatten,
)


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
        return _cannot("no_batches", "index")
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
    steps = f"{indices[0]}..{indices[-1]}"
    return _cannot("stored_not_again", "index", names=names, indices=steps)


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
                    return _cannot("not_compared", "index", error=self.observer.error)
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
            return _cannot("timed_out", "index", error=exc)
        except Exception as exc:
            return _cannot("raised", "index", error=f"{type(exc).__name__}: {exc}")
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
                return _cannot("state_threads", "index", name=name)
            frames, index = self.first[name]
            return Blame(frames=frames, how="traced", batch=index, path=name, unit="index")
        if self.noline:
            return _cannot("state_unseen", "index", name=self.noline[0])
        return _cannot("state_elsewhere", "index", last=count - 1)


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
