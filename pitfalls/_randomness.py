"""Randomness under control: reseed every RNG a source can draw from, see which it drew from.

The checks that compare two reads of a source (the same index twice, two
epochs) must not mistake random augmentation for a bug, nor let it hide one.
:class:`Randomness` makes each read under comparison start from the same
random state:

* before each read, :meth:`Randomness.control` reseeds Python's ``random``,
  numpy's global RNG, Keras' global seed when Keras is already imported,
  TensorFlow's (``tf.random.set_seed``) when it is, torch's when torch is,
  every random generator the source holds (a ``numpy.random.Generator``,
  ``RandomState``, ``random.Random``, ``torch.Generator``, Keras
  ``SeedGenerator`` or ``tf.random.Generator`` found in its attributes, a few
  levels deep, in a generator's local variables, or at its module's top
  level; TensorFlow's global Generator once made), and calls the user's
  ``reseed(seed)`` hook for the rest;
* it records which of those the read drew from (their state moved), so a
  check can say "random per read" with evidence; draws made only as an epoch
  starts (a permutation, a DataLoader's worker seed) are kept apart, as the
  epoch's order rather than augmentation;
* on exit every RNG it touched is put back as it was, Keras' and
  TensorFlow's global seeds included (TensorFlow's back to none at all).

What it cannot see: a generator held elsewhere (a closure, another module)
and the seeds TensorFlow ops took when their pipeline was built (see
:mod:`pitfalls._frameworks.tfdata`); pass ``reseed=`` (or, for tf.data, a factory) for
those. It also cannot tell a random generator it cannot see from state that
changes per read (a counter); :func:`stored_arrays` and :func:`changed_rows`
give the checks another witness: data written in place changes arrays the
source holds (numpy arrays, torch tensors, JAX arrays), randomness never does.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import random
import sys
import threading
import types
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks

_MAX_DEPTH = 4
_MAX_OBJECTS = 2000
_MAX_ITEMS = 64
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, range)
_SKIP = (
    types.ModuleType,
    type,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)


def _get(obj: Any, kind: str) -> Any:
    if kind == "numpy Generator":
        return obj.bit_generator.state
    if kind == "numpy RandomState":
        return obj.get_state(legacy=False)
    if kind == "random.Random":
        return obj.getstate()
    if kind == "torch.Generator":
        return obj.get_state().clone()
    return np.array(obj.state.numpy())  # Keras' SeedGenerator, TF's Generator: a variable


def _set(obj: Any, kind: str, state: Any) -> None:
    if kind == "numpy Generator":
        obj.bit_generator.state = state
    elif kind == "numpy RandomState":
        obj.set_state(state)
    elif kind == "random.Random":
        obj.setstate(state)
    elif kind == "torch.Generator":
        obj.set_state(state)
    else:
        obj.state.assign(state)


_SEEDED: dict[tuple[Any, int], Any] = {}
"""The state an RNG has right after seeding, by (its type, the seed): read once, reused.

Only for seedings whose result depends on the seed alone: a numpy bit
generator made from it, and ``seed()`` of an exact ``RandomState`` or
``random.Random`` (which also clears their cached Gaussian). Reading a state
costs more than a read of most sources (50 us for numpy's global RNG)."""
_MAX_SEEDED = 1024


def _seeded_state(key: tuple[Any, int], read: Callable[[], Any]) -> Any:
    state = _SEEDED.get(key)
    if state is None:
        if len(_SEEDED) >= _MAX_SEEDED:
            _SEEDED.clear()
        state = _SEEDED[key] = read()
    return state


def _seed(obj: Any, kind: str, seed: int) -> Any:
    """Seed ``obj``; return its state now (as :func:`_get` reads it) when known, else None."""
    if kind == "numpy Generator":
        bits = type(obj.bit_generator)
        state = _seeded_state((bits, seed), lambda: bits(seed).state)
        obj.bit_generator.state = state
        return state
    if kind in ("numpy RandomState", "random.Random"):
        obj.seed(seed)
        if type(obj) not in (np.random.RandomState, random.Random):
            return None  # a subclass may seed otherwise: read it
        return _seeded_state((type(obj), seed), lambda: _get(obj, kind))
    if kind == "torch.Generator":
        obj.manual_seed(seed)
    elif kind == "tf.random.Generator":
        obj.reset_from_seed(seed)
    else:
        obj.state.assign(np.array([seed, 0], dtype=obj.state.numpy().dtype))
    return None


_PLAIN = (int, str, type(None))


def _same(a: Any, b: Any) -> bool:
    if type(a) in _PLAIN and type(b) in _PLAIN:  # most of a state's fields
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(value, b[key]) for key, value in a.items())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        try:
            return bool(a == b)  # Python's random state: ints only, compared in C
        except ValueError:  # arrays inside: element by element
            return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__array__") or hasattr(b, "__array__"):
        try:
            x, y = np.asarray(a), np.asarray(b)
            if x.dtype == y.dtype and x.dtype.kind in "iu":  # integers: equal values, equal bytes
                return x.shape == y.shape and x.tobytes() == y.tobytes()
            return bool(np.array_equal(x, y))
        except Exception:
            return False
    return bool(a == b)


def _moved(obj: Any, kind: str, then: Any) -> bool:
    """Has ``obj``'s state changed since it was ``then`` (a state :func:`_get` read)?"""
    return not _same(then, _get(obj, kind))


# Finding what a source holds ------------------------------------------------------


_EMPTY = object()


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not yet filled
        return _EMPTY


@dataclass
class Held:
    """The RNGs and arrays reachable from a source, by a name a person can read.

    ``arrays`` holds numpy arrays, torch tensors and JAX arrays as found (not
    copies): :func:`stored_arrays` reads their rows through :func:`as_numpy`.
    """

    rngs: dict[str, Any]
    arrays: dict[str, Any]
    keys: dict[str, Any] = field(default_factory=dict)
    """JAX PRNG keys: immutable, so they cannot be reseeded from outside; a source that
    draws from one is random in a way pitfalls can name but not control."""


def _children(name: str, obj: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key in list(obj)[:_MAX_ITEMS]:
            yield f"{name}[{key!r}]", obj[key]
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj[:_MAX_ITEMS]):
            yield f"{name}[{i}]", item
    elif isinstance(obj, types.GeneratorType):
        frame = obj.gi_frame
        if frame is not None:
            where = f"{obj.gi_code.co_name}()"
            for key, value in frame.f_locals.items():
                yield f"{where}'s {key}", value
    elif isinstance(obj, types.FunctionType):  # a factory: what its closure holds
        where = f"{obj.__name__}()"
        for var, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            contents = _cell(cell)
            if contents is not _EMPTY:
                yield f"{where}'s {var}", contents
    elif isinstance(obj, functools.partial):
        where = f"{getattr(obj.func, '__name__', 'partial')}()"
        try:
            bound = inspect.signature(obj.func).bind_partial(*obj.args, **obj.keywords).arguments
        except (TypeError, ValueError):
            bound = {f"args[{i}]": arg for i, arg in enumerate(obj.args)} | obj.keywords
        for key, arg in bound.items():
            yield f"{where}'s {key}", arg
    else:
        try:
            attributes = vars(obj)
        except TypeError:
            return
        for key in list(attributes)[: _MAX_ITEMS * 4]:
            if not key.startswith("__"):
                yield f"{name}.{key}", attributes[key]


def _nbytes(array: Any) -> int:
    try:
        return int(array.nbytes)
    except Exception:
        return 0


def held_by(roots: Iterable[tuple[str, Any]]) -> Held:
    """The RNGs and arrays (numpy, torch, JAX) reachable from ``roots`` (name, object).

    Attributes, items of lists, tuples and dicts, a generator's local
    variables and a ``functools.partial``'s arguments are followed, up to a
    few levels and a few thousand objects; modules, classes and functions are
    not entered. For each root that is an instance of a class defined outside
    numpy, Keras and the standard library, the RNGs and arrays bound at the
    top level of that class's module are included too.
    """
    found = Held({}, {})
    seen: set[int] = set()
    queue: list[tuple[str, Any, int]] = []
    for name, obj in roots:
        queue.append((name, obj, 0))
        module = _user_module(obj)
        if module is not None:
            for key, value in list(vars(module).items()):
                if not key.startswith("_") and (
                    frameworks.rng_kind(value)
                    or isinstance(value, np.ndarray)
                    or frameworks.is_tensor(value)
                ):
                    queue.append((f"{module.__name__}.{key}", value, _MAX_DEPTH))
    visited = 0
    while queue and visited < _MAX_OBJECTS:
        name, obj, depth = queue.pop(0)
        if id(obj) in seen or isinstance(obj, (*_ATOMS, *_SKIP)):
            continue
        seen.add(id(obj))
        visited += 1
        if frameworks.rng_kind(obj):
            found.rngs.setdefault(name, obj)
            continue
        if isinstance(obj, np.ndarray):
            if obj.ndim >= 1 and obj.size and obj.dtype != object:
                found.arrays.setdefault(name, obj)
            continue
        if frameworks.jax.is_key(obj):
            found.keys.setdefault(name, obj)
            continue
        if frameworks.is_tensor(obj):  # a torch tensor written in place is as much a witness
            if len(obj.shape) >= 1 and obj.shape[0] and _nbytes(obj):
                found.arrays.setdefault(name, obj)
            continue
        if depth < _MAX_DEPTH:
            queue.extend((child, value, depth + 1) for child, value in _children(name, obj))
    return found


_LIBRARIES = ("numpy", "keras", "tensorflow", "torch", "jax", "builtins", "functools")


def _user_module(obj: Any) -> types.ModuleType | None:
    if isinstance(obj, types.GeneratorType):
        name = obj.gi_frame.f_globals.get("__name__") if obj.gi_frame is not None else None
    elif isinstance(obj, types.FunctionType):
        name = obj.__module__
    elif isinstance(obj, functools.partial):
        return _user_module(obj.func)
    elif isinstance(obj, (list, tuple, dict, *_ATOMS)):
        return None
    else:
        name = type(obj).__module__
    if not name or name.startswith(_LIBRARIES) or name in sys.builtin_module_names:
        return None
    if name.startswith("pitfalls") and not name.startswith("pitfalls.reproductions"):
        return None
    return sys.modules.get(name)


# Seeding, observing, restoring ------------------------------------------------------


_REGISTERED: list[Any] = []
"""Generators registered with :func:`register_random`, in order (held: numpy's cannot be
referred to weakly)."""


def register_random(rng: Any) -> Any:
    """Have every check reseed, watch and put back ``rng``, as its own.

    For a generator pitfalls cannot find on the source (in a closure, another module, a
    library's state): registered, it is seeded alike before the reads a check compares,
    so augmentation drawn from it no longer hides the comparison, and it is put back
    after each check. ``rng`` is a ``numpy.random.Generator`` or ``RandomState``, a
    ``random.Random``, a ``torch.Generator``, a ``tf.random.Generator`` or a Keras
    ``SeedGenerator``; anything else is a TypeError. Returns ``rng``, so that it can
    wrap the line that makes it; registering one twice is registering it once. (As
    hypothesis' ``register_random`` and pytest-randomly's seeders; ``reseed=`` does
    the same for one check.)
    """
    if frameworks.rng_kind(rng) is None:
        raise TypeError(
            "register_random takes a random generator (numpy Generator or RandomState,"
            " random.Random, torch.Generator, tf.random.Generator, keras SeedGenerator);"
            f" got {type(rng).__qualname__}"
        )
    if not any(r is rng for r in _REGISTERED):
        _REGISTERED.append(rng)
    return rng


def _globals() -> dict[str, tuple[Any, str]]:
    """The global RNGs, by name: Python's, numpy's, torch's and TensorFlow's (if made)."""
    out: dict[str, tuple[Any, str]] = {
        "random (global)": (frameworks.python_global(), "random.Random"),
        "np.random (global)": (frameworks.numpy_global(), "numpy RandomState"),
    }
    torch = frameworks.torch.global_generator()
    if torch is not None:
        out["torch (global)"] = (torch, "torch.Generator")
    tf = frameworks.tensorflow.global_generator()
    if tf is not None:
        out["tf.random.get_global_generator()"] = (tf, "tf.random.Generator")
    for i, rng in enumerate(_REGISTERED):
        kind = frameworks.rng_kind(rng)
        assert kind is not None  # checked as it was registered
        out[f"registered {kind} #{i + 1}"] = (rng, kind)
    return out


class Randomness:
    """Reseed alike before each read under comparison; restore everything on exit.

    ``roots`` says where to look for the source's own RNGs (``[("self",
    obj)]``, an iterator, a factory). ``hook`` is the user's ``reseed(seed)``.
    Use as a context manager; call :meth:`control` before each read and
    :meth:`drew` after it.
    """

    def __init__(
        self,
        roots: Iterable[tuple[str, Any]],
        hook: Callable[[int], Any] | None = None,
        *,
        restore: bool = True,
    ) -> None:
        self.roots = list(roots)
        self.hook = hook
        self.restore = restore
        self.rngs: dict[str, tuple[Any, str]] = {}
        self._original: dict[int, tuple[Any, str, Any]] = {}
        self._after_seed: dict[str, Any] = {}
        self.seen: Counter[str] = Counter()
        """How many reads drew from each RNG, by name."""
        self.at_start: Counter[str] = Counter()
        """RNGs drawn from only as an epoch started (``drew(at_start=True)``), by name:
        a permutation, a loader's worker seeds; no evidence of randomness per read."""
        self.orders: set[int] = set()
        """Ids of RNGs that only ever draw orders (a DataLoader's ``generator``, which its
        sampler also draws from as the epoch ends): their draws count as at_start."""
        self.reads = 0
        self._bits: set[int] = set()
        self._shared = False
        """Do two of the RNGs share a numpy bit generator (seeding one moves the other)?"""

    def __enter__(self) -> Randomness:
        for name, (obj, kind) in _globals().items():
            self._remember(name, obj, kind)
        tf = frameworks.tensorflow
        self._keras_state = tf.seeds() if tf.keras() or tf.tensorflow() else None
        self.rescan()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.restore:
            _put_back(self._original.values(), self._keras_state)

    def _remember(self, name: str, obj: Any, kind: str) -> None:
        if id(obj) in self._original:
            return
        try:
            self._original[id(obj)] = (obj, kind, _get(obj, kind))
        except Exception:  # a state that cannot be read: neither reseeded nor watched
            return
        self.rngs[name] = (obj, kind)
        bits = obj
        if kind == "numpy Generator":
            bits = obj.bit_generator
        elif kind == "numpy RandomState":
            bits = getattr(obj, "_bit_generator", obj)
        self._shared = self._shared or id(bits) in self._bits
        self._bits.add(id(bits))

    def add_root(self, name: str, obj: Any) -> None:
        """Look for RNGs in ``obj`` too (an iterator made for an epoch)."""
        self.roots.append((name, obj))
        self.rescan()

    def rescan(self) -> None:
        """Find the RNGs the roots hold now (a generator's locals appear once it runs), and
        global ones made since (TensorFlow's global Generator, made when first used)."""
        for name, (obj, kind) in _globals().items():
            self._remember(name, obj, kind)
        for name, obj in held_by(self.roots).rngs.items():
            self._remember(name, obj, frameworks.rng_kind(obj) or "")

    def control(self, seed: int) -> None:
        """Reseed every RNG with ``seed`` (Keras and the hook too), before a read."""
        tf = frameworks.tensorflow
        if (tf.keras() or tf.tensorflow()) and self._keras_state is None:
            self._keras_state = tf.seeds()
        tf.seed(seed)
        ops = tf.op_seeds()
        if ops is not None:  # made anew by set_seed: watched from here, put back with the seed
            self.rngs[TF_OPS] = (ops, "random.Random")
        seeded = {name: _seed(obj, kind, seed) for name, (obj, kind) in self.rngs.items()}
        if self.hook is not None:
            self.hook(seed)
        if self.hook is not None or self._shared:
            self.mark()  # the hook, or another RNG over the same bits, may have moved one
            return
        self._after_seed = {
            name: _get(obj, kind) if seeded[name] is None else seeded[name]
            for name, (obj, kind) in self.rngs.items()
        }

    def states(self) -> list[tuple[Any, str, Any]]:
        """Every watched RNG with its state now, for :meth:`put_back`."""
        return _states(self.rngs.values())

    @staticmethod
    def put_back(states: list[tuple[Any, str, Any]]) -> None:
        """The states :meth:`states` took, set again: a read reseeded for comparison leaves
        the generators where training would find them (its draws undone, not replaced)."""
        _put_back(states, None)

    def mark(self) -> None:
        """Remember every RNG's state now, for :meth:`drew` (without reseeding: to watch)."""
        self._after_seed = {name: _get(obj, kind) for name, (obj, kind) in self.rngs.items()}

    def drew(self, *, at_start: bool = False) -> tuple[str, ...]:
        """The RNGs whose state moved since :meth:`control` or :meth:`mark`: what was drawn from.

        ``at_start``: the read started an epoch (``iter()`` and its first batch),
        whose draws may be the epoch's permutation or a loader's worker seeds
        rather than augmentation; they are kept apart, in :attr:`at_start`, until
        :meth:`per_read` says they were drawn per read after all.
        """
        moved = tuple(
            name
            for name, (obj, kind) in self.rngs.items()
            if name in self._after_seed and _moved(obj, kind, self._after_seed[name])
        )
        for name in moved:
            order = at_start or id(self.rngs[name][0]) in self.orders
            (self.at_start if order else self.seen)[name] += 1
        self.reads += 1
        return moved

    def per_read(self) -> None:
        """Count the draws made as epochs started as draws per read (an epoch of one batch)."""
        self.seen.update(self.at_start)
        self.at_start.clear()

    @property
    def random(self) -> bool:
        """Did any read draw from an RNG (or did the user say so, with a hook)?

        Draws made only as epochs started do not count: reseeded alike, a
        permutation or a DataLoader's worker seed is no augmentation.
        """
        return bool(self.seen) or self.hook is not None

    def note(self, *, natural: bool = False) -> str:
        """One line for a report: which RNGs the reads drew from, and how they were held
        (``natural``: epochs read as training reads them, nothing reseeded between them)."""
        drawn = self.seen + self.at_start
        if not drawn and self.hook is None:
            return ""
        names = [
            name if name in self.seen else f"{name} (as epochs started)"
            for name, _ in drawn.most_common()
        ]
        if self.hook is not None:
            names.append(f"your reseed={getattr(self.hook, '__name__', 'hook')}")
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        if natural:
            return (
                f"Randomness: the source drew from {shown}; the epochs were read as training"
                " reads them, nothing reseeded between them, and every generator was put"
                " back afterwards."
            )
        return (
            f"Randomness: the source drew from {shown}; every read compared was made"
            " after reseeding them alike, and they were put back afterwards."
        )


TF_OPS = "TensorFlow's random ops (eager)"
"""The name, in reports, of the sequence of op seeds TensorFlow's eager random ops take
once a global seed is set (``tf.random.uniform``, ``tf.image.random_crop`` called in a
``__getitem__``): it moves with each such op."""


@contextlib.contextmanager
def global_rngs_kept() -> Iterator[None]:
    """Python's, numpy's and torch's global RNGs, TensorFlow's global Generator and the
    Keras and TensorFlow global seeds as they are now, put back on exit: whatever a check
    drew or seeded (a factory building its pipeline, the reads, a blame pass, a training)."""
    saved = _states(_globals().values())
    seeds = frameworks.tensorflow.seeds()
    try:
        yield
    finally:
        _put_back(saved, seeds)


def _states(rngs: Iterable[tuple[Any, str]]) -> list[tuple[Any, str, Any]]:
    """Each (RNG, kind) with its state now; one whose state cannot be read is left out."""
    out = []
    for obj, kind in rngs:
        with contextlib.suppress(Exception):
            out.append((obj, kind, _get(obj, kind)))
    return out


def _put_back(saved: Iterable[tuple[Any, str, Any]], seeds: dict[str, Any] | None) -> None:
    """Each RNG's state as remembered, then Keras' and TensorFlow's seeds (if recorded)."""
    for obj, kind, state in saved:
        with contextlib.suppress(Exception):  # one that cannot be put back is left
            _set(obj, kind, state)
    if seeds is not None:
        frameworks.tensorflow.put_back(seeds)


# Stored data: written in place or not? ----------------------------------------------


@dataclass(frozen=True)
class Change:
    """A stored array whose rows changed: its name, rows no longer there, rows in all."""

    name: str
    changed: int
    rows: int


Stored = dict[str, tuple[Any, Counter[bytes]]]
"""Arrays a source holds, by name: the object itself (found again by identity, never by its
name: a name rebound to a new array is no write) and the multiset of its rows."""


def stored_arrays(held: Held, min_rows: int) -> Stored:
    """The arrays held with at least ``min_rows`` rows (the data, not a batch's buffer), of
    any size, with their rows' digests."""
    out = {}
    for name, array in held.arrays.items():
        if len(array) >= min_rows:
            rows = frameworks.as_numpy(array)
            if rows is not None:
                out[name] = (array, fingerprint.row_multiset(rows))
    return out


def changed_rows(before: Stored) -> tuple[Change, ...]:
    """The arrays of ``before`` (the same objects) whose rows are no longer that multiset."""
    changes = []
    for name, (array, digests) in before.items():
        rows = frameworks.as_numpy(array)
        if rows is None:
            continue
        now = fingerprint.row_multiset(rows)
        if now != digests:
            lost = sum((digests - now).values())
            changes.append(Change(name, lost, sum(digests.values())))
    return tuple(changes)


# Fresh entropy: generators made without a seed during a read -------------------------


FRESH_ENTROPY = (
    "drew fresh entropy from the operating system (os.urandom): a generator made inside"
    " the read without a seed (np.random.default_rng(), random.Random()), which no"
    " reseeding reaches"
)
"""How a report says what :func:`fresh_entropy` saw."""

_RANDOM_SEED = random.Random.seed.__code__
"""The code of ``random.Random.seed``: called with None, it draws from the system."""


def fresh_entropy(read: Callable[[], Any]) -> bool:
    """Run ``read`` under a profile hook: did it draw fresh entropy from the system?

    A generator made without a seed (``np.random.default_rng()``, ``RandomState()``,
    ``random.Random()``) is a new object no reseeding reaches and no state of a watched
    generator moves for: it is seen as it draws from the operating system, through
    ``os.urandom`` or ``random.Random.seed(None)``.
    """
    found: list[bool] = []

    def hook(frame: types.FrameType, event: str, arg: Any) -> None:
        if found:
            return
        if (event == "c_call" and arg is os.urandom) or (
            event == "call" and frame.f_code is _RANDOM_SEED and frame.f_locals.get("a", 0) is None
        ):
            found.append(True)

    old, old_threads = sys.getprofile(), threading.getprofile()
    sys.setprofile(hook)
    threading.setprofile(hook)  # a read under a timeout runs in a helper thread
    try:
        read()
    finally:
        sys.setprofile(old)
        threading.setprofile(old_threads)
    return bool(found)


# The source's own state: what a read changed on it ------------------------------------


def _token(value: Any) -> Any:
    """What of an attribute a read could change that is neither data nor an RNG: a scalar's
    value, a container's length, which object is bound (None: not watched)."""
    if isinstance(value, _ATOMS):
        return ("value", value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return ("len", len(value))
    if (
        isinstance(value, (np.ndarray, *_SKIP))
        or frameworks.rng_kind(value)
        or frameworks.is_tensor(value)
    ):
        return None  # data is judged by its rows, randomness by its draws
    if callable(value):
        return None
    return ("object", id(value))


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    try:
        return list(vars(obj).items())[: _MAX_ITEMS * 4]
    except TypeError:
        return []


def source_state(root: Any) -> dict[str, Any]:
    """The state of the user's own objects a source is made of: the source itself and the
    objects its attributes hold (a DataLoader's ``dataset``), each a user-defined class's
    instance, their attributes by :func:`_token`. Two snapshots around a read tell what
    the read changed (``self.calls``): a source whose batches drift with its state."""
    out: dict[str, Any] = {}
    objects = [("self", root)] + [(f"self.{k}", v) for k, v in _attributes(root)]
    for name, obj in objects:
        if _user_module(obj) is None or isinstance(obj, (*_ATOMS, *_SKIP)):
            continue
        for key, value in _attributes(obj):
            token = _token(value)
            if token is not None:
                out[f"{name}.{key}"] = token
    return out


def state_changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Attributes whose token differs between two :func:`source_state` snapshots."""
    return [name for name in after if name in before and before[name] != after[name]]
