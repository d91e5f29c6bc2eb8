"""Randomness under control: reseed the RNGs a source draws from, see which it drew from.

The checks that compare two reads of a source (the same index twice, two
epochs) must not mistake random augmentation for a bug, nor let it hide one.
:class:`Randomness` makes each read under comparison start from the same
random state:

* before each read, :meth:`Randomness.control` reseeds, through their public
  APIs, Python's ``random``, numpy's global RNG, Keras', TensorFlow's and
  torch's global seeds when imported, the generators registered with
  :func:`register_random`, the generators the source holds or its code refers
  to (:func:`held_by`), and those reads were seen drawing from; then it calls
  the user's ``reseed(seed)`` hook for the rest;
* while a read runs, its calls are watched (``sys.monitoring`` on Python 3.12+,
  a profile hook before): a generator held anywhere (a closure, another
  module) whose methods two reads called is reseeded and watched from the
  next read on, and put back as it was before its first draw;
* it records which generators the read drew from (their state moved), so a
  check can say "random per read" with evidence; draws made only as an epoch
  starts (a permutation, a DataLoader's worker seed) are kept apart, as the
  epoch's order rather than augmentation;
* on exit every RNG it touched is put back as it was, Keras' and
  TensorFlow's global seeds included (TensorFlow's back to none at all).

What it cannot see: before Python 3.12, a numpy generator held outside the
source and its code's references (its methods, compiled, make no profile
events); draws made in C code (``map(rng.normal, ...)``) or in TensorFlow
ops, whose seeds were taken when their pipeline was built (see
:mod:`pitfalls._frameworks.tfdata`); pass ``reseed=`` or register the
generator for those. It also cannot tell a generator it cannot see from state
that changes per read (a counter); :func:`~pitfalls._written.stored_arrays`
and :func:`~pitfalls._written.changed_rows` give the checks another witness:
data written in place changes arrays the source holds (numpy arrays, torch
tensors, JAX arrays), randomness never does.
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

from pitfalls import _frameworks as frameworks
from pitfalls._frameworks import rngs
from pitfalls._frameworks.rngs import get_state, same_state
from pitfalls._words import say

_MAX_DEPTH = 4
_MAX_OBJECTS = 2000
_MAX_ITEMS = 64
_CODE_DEPTH = 2
"""The module globals code names are followed from the roots and what they hold directly
(their functions and methods), and from the functions those name; no further."""
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic, range)
_SKIP = (
    types.ModuleType,
    type,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)
# Finding what a source holds: one walk ---------------------------------------------


@dataclass
class Held:
    """The RNGs and arrays reachable from a source, by a name a person can read.

    ``arrays`` holds numpy arrays, torch tensors and JAX arrays as found (not
    copies): :func:`stored_arrays` reads their rows through :func:`as_numpy`.
    """

    rngs: dict[str, tuple[Any, str]]
    """Each generator with its kind (:func:`~pitfalls._frameworks.rngs.rng_kind`)."""
    arrays: dict[str, Any]
    keys: dict[str, Any] = field(default_factory=dict)
    """JAX PRNG keys: immutable, so they cannot be reseeded from outside; a source that
    draws from one is random in a way pitfalls can name but not control."""


def is_data(obj: Any) -> bool:
    """An RNG or an array (numpy, torch, JAX): what a module global is looked at for, and
    what an attribute's state is not (judged by its rows or its draws)."""
    rng = frameworks.rng_kind(obj) is not None
    return rng or isinstance(obj, np.ndarray) or frameworks.is_tensor(obj)


def _methods(obj: Any) -> list[Any]:
    """The functions an object's class (and its bases) defines: the code it runs."""
    return [
        f
        for cls in type(obj).__mro__[:-1]
        for f in vars(cls).values()
        if isinstance(f, types.FunctionType)
    ]


def code_names(code: types.CodeType) -> set[str]:
    """The global names a function's code (and the code nested in it: a lambda, a
    comprehension) loads."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return names


def _references(fn: Any, code: bool) -> Iterable[tuple[str, Any]]:
    """What ``fn``'s code refers to: its closure's variables (``inspect.getclosurevars``),
    and (``code``) the module globals it names that are RNGs, arrays or functions."""
    try:
        nonlocals = inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):  # not Python code, or a cell not yet filled
        return
    for key, value in nonlocals.items():
        yield f"{fn.__name__}()'s {key}", value
    scope = fn.__globals__ if code else {}
    for key in sorted(code_names(fn.__code__)) if code else ():
        value = scope.get(key)
        if is_data(value) or isinstance(value, types.FunctionType):
            yield f"{fn.__module__}.{key}", value


def _children(name: str, obj: Any, depth: int) -> Iterable[tuple[str, Any]]:
    code = depth < _CODE_DEPTH
    if isinstance(obj, dict):
        for key in list(obj)[:_MAX_ITEMS]:
            yield f"{name}[{key!r}]", obj[key]
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj[:_MAX_ITEMS]):
            yield f"{name}[{i}]", item
    elif isinstance(obj, types.GeneratorType):
        for key, value in inspect.getgeneratorlocals(obj).items():
            yield f"{obj.__name__}()'s {key}", value
    elif isinstance(obj, types.FunctionType):  # a factory: what its closure holds
        yield from _references(obj, code)
    elif isinstance(obj, functools.partial):
        where = f"{getattr(obj.func, '__name__', 'partial')}()"
        try:
            bound = inspect.signature(obj.func).bind_partial(*obj.args, **obj.keywords).arguments
        except (TypeError, ValueError):
            bound = {f"args[{i}]": arg for i, arg in enumerate(obj.args)} | obj.keywords
        for key, arg in bound.items():
            yield f"{where}'s {key}", arg
        yield from _references(obj.func, code)
    else:
        with contextlib.suppress(TypeError):
            attributes = vars(obj)
            for key in list(attributes)[: _MAX_ITEMS * 4]:
                if not key.startswith("__"):
                    yield f"{name}.{key}", attributes[key]
        for fn in _methods(obj) if code else ():
            yield from _references(fn, code)


def _nbytes(array: Any) -> int:
    try:
        return int(array.nbytes)
    except Exception:
        return 0


def held_by(roots: Iterable[tuple[str, Any]]) -> Held:
    """The RNGs and arrays (numpy, torch, JAX) reachable from ``roots`` (name, object).

    One walk, breadth first, up to a few levels and a few thousand objects: attributes,
    items of lists, tuples and dicts, a generator's local variables
    (``inspect.getgeneratorlocals``), a ``functools.partial``'s arguments, and what the
    code of the roots and of the objects they hold refers to (``inspect.getclosurevars``
    of a function, or of an object's methods: its closure's variables, and the module
    globals it names). Modules and classes are not entered.
    """
    found = Held({}, {})
    seen: set[int] = set()
    queue = [(name, obj, 0) for name, obj in roots]
    while queue and len(seen) < _MAX_OBJECTS:
        name, obj, depth = queue.pop(0)
        if id(obj) in seen or isinstance(obj, (*_ATOMS, *_SKIP)):
            continue
        seen.add(id(obj))
        if kind := frameworks.rng_kind(obj):
            found.rngs.setdefault(name, (obj, kind))
        elif isinstance(obj, np.ndarray):
            if obj.ndim >= 1 and obj.size and obj.dtype != object:
                found.arrays.setdefault(name, obj)
        elif frameworks.jax.is_key(obj):
            found.keys.setdefault(name, obj)
        elif frameworks.is_tensor(obj):  # a torch tensor written in place is as much a witness
            if len(obj.shape) >= 1 and obj.shape[0] and _nbytes(obj):
                found.arrays.setdefault(name, obj)
        elif depth < _MAX_DEPTH:
            queue.extend((child, value, depth + 1) for child, value in _children(name, obj, depth))
    return found


# Watching a read draw -------------------------------------------------------------


_RANDOM_SEED = random.Random.seed.__code__
"""The code of ``random.Random.seed``: called with None, it draws from the system."""

_KINDS: dict[type, str | None] = {}
"""The kind of generator each type of object seen in a call is (None: none)."""


def _kind(obj: Any) -> str | None:
    kind = _KINDS.get(type(obj), "")
    if kind == "":
        kind = _KINDS[type(obj)] = frameworks.rng_kind(obj)
    return kind


class _Watch:
    """What a read (its threads included) calls while it runs, from :meth:`start` to
    :meth:`stop`: the generators whose methods it called, and whether
    it drew fresh entropy from the system (``os.urandom``, ``random.Random.seed(None)``:
    a generator made without a seed)."""

    def __init__(self) -> None:
        self.drawn: dict[int, tuple[Any, str, Any]] = {}
        """By id: each generator drawn from, its kind and its state as first seen (before
        its first draw; None if it cannot be read)."""
        self.entropy = False

    def saw(self, owner: Any, kind: str) -> None:
        if id(owner) not in self.drawn:
            state = None
            with contextlib.suppress(Exception):
                state = get_state(owner, kind)
            self.drawn[id(owner)] = (owner, kind, state)

    def start(self) -> None:
        if self not in _WATCHES:
            if not _WATCHES:
                _observe(True)
            _WATCHES.append(self)

    def stop(self) -> None:
        if self in _WATCHES:
            _WATCHES.remove(self)
            if not _WATCHES:
                _observe(False)


_WATCHES: list[_Watch] = []
"""The watches running now: every call seen is told to each (a read within a read)."""


def _called(code: Any, offset: int, fn: Any, first: Any) -> None:
    """``fn`` was called (``first``: its first argument, when known; ``code`` and
    ``offset``: where, unused): a generator's method (bound, or called on ``first``) is a
    draw; ``os.urandom`` is fresh entropy. The callback of sys.monitoring's CALL event."""
    try:
        owner = getattr(fn, "__self__", None)
        if _kind(first) and getattr(type(first), getattr(fn, "__name__", ""), None) is fn:
            owner = first
        kind = _kind(owner)
    except Exception:  # an object whose attributes raise: no generator, and its call goes on
        return
    if kind is not None:
        for watch in _WATCHES:
            watch.saw(owner, kind)
    elif fn is os.urandom:
        for watch in _WATCHES:
            watch.entropy = True


def _seeding(frame: types.FrameType) -> None:
    """``random.Random.seed`` starts in ``frame``: with None, it draws from the system."""
    if frame.f_locals.get("a", 0) is None:
        for watch in _WATCHES:
            watch.entropy = True


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    if event == "c_call":
        _called(None, 0, arg, None)
    elif event == "call" and frame.f_code is _RANDOM_SEED:
        _seeding(frame)


def _on_seed(code: types.CodeType, offset: int) -> None:
    _seeding(sys._getframe(1))


_MONITORING: Any = getattr(sys, "monitoring", None)
"""``sys.monitoring`` (Python 3.12+), or None."""
_TOOLS = (3, 4)
"""The sys.monitoring tool ids no tool claims by convention (debuggers, coverage and
profilers take 0-2, optimizers 5): the first one free is taken while a read is watched."""
_SAVED: list[Any] = []
"""What :func:`_observe` replaced: the sys.monitoring tool id it took, or the profile
hooks there were."""


def _observe(on: bool) -> None:
    """Start (or stop) telling the watches what is called.

    Through ``sys.monitoring`` (Python 3.12+), whose CALL event gives the callable and
    its first argument for every call Python code makes: a numpy generator's compiled
    methods are seen too. Before 3.12 (or with every tool id taken) through a profile
    hook, of this thread and threads started since (a read under a timeout runs in a
    helper thread), which sees C functions called but not numpy's compiled methods: only
    ``random.Random``'s draws.
    """
    monitoring = _MONITORING
    if not on and isinstance(_SAVED[0], int):
        monitoring.set_events(_SAVED[0], 0)
        monitoring.set_local_events(_SAVED[0], _RANDOM_SEED, 0)
        monitoring.free_tool_id(_SAVED[0])
    elif not on:
        sys.setprofile(_SAVED[0])
        threading.setprofile(_SAVED[1])
    elif monitoring is not None and None in map(monitoring.get_tool, _TOOLS):
        tool = next(t for t in _TOOLS if monitoring.get_tool(t) is None)
        monitoring.use_tool_id(tool, "pitfalls")
        events = monitoring.events
        monitoring.register_callback(tool, events.CALL, _called)
        monitoring.register_callback(tool, events.PY_START, _on_seed)
        monitoring.set_local_events(tool, _RANDOM_SEED, events.PY_START)
        monitoring.set_events(tool, events.CALL)
        _SAVED[:] = [tool]
    else:
        _SAVED[:] = [sys.getprofile(), threading.getprofile()]
        sys.setprofile(_profile)
        threading.setprofile(_profile)


# Seeding, observing, restoring ------------------------------------------------------


_REGISTERED: list[tuple[Any, str]] = []
"""Generators registered with :func:`register_random`, in order, with their kinds (held:
numpy's cannot be referred to weakly)."""


def register_random(rng: Any) -> Any:
    """Have every check reseed, watch and put back ``rng``, as its own.

    For a generator pitfalls cannot find on the source nor see drawing (a numpy generator
    in another module before Python 3.12, one drawn from by C code, a library's state):
    registered, it is seeded alike before the reads a check compares,
    so augmentation drawn from it no longer hides the comparison, and it is put back
    after each check. ``rng`` is a ``numpy.random.Generator`` or ``RandomState``, a
    ``random.Random``, a ``torch.Generator``, a ``tf.random.Generator`` or a Keras
    ``SeedGenerator``; anything else is a TypeError. Returns ``rng``, so that it can
    wrap the line that makes it; registering one twice is registering it once. (As
    hypothesis' ``register_random`` and pytest-randomly's seeders; ``reseed=`` does
    the same for one check.)
    """
    kind = frameworks.rng_kind(rng)
    if kind is None:
        raise TypeError(
            "register_random takes a random generator (numpy Generator or RandomState,"
            " random.Random, torch.Generator, tf.random.Generator, keras SeedGenerator);"
            f" got {type(rng).__qualname__}"
        )
    if not any(r is rng for r, _ in _REGISTERED):
        _REGISTERED.append((rng, kind))
    return rng


def _globals() -> dict[str, tuple[Any, str]]:
    """The global RNGs, by name (Python's, numpy's, torch's, TensorFlow's once made), and
    the registered ones."""
    out = frameworks.rngs.global_rngs()
    for i, (rng, kind) in enumerate(_REGISTERED):
        out[f"registered {kind} #{i + 1}"] = (rng, kind)
    return out


class Randomness:
    """Reseed alike before each read under comparison; restore everything on exit.

    ``roots`` says where to look for the source's own RNGs (``[("self",
    obj)]``, an iterator, a factory). ``hook`` is the user's ``reseed(seed)``.
    Use as a context manager; call :meth:`control` (or :meth:`mark`) before each
    read and :meth:`drew` after it: the read between them is watched.
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
        self.first: dict[str, Any] = {}
        """Each RNG's state as first found, by name (when looked for, or for one seen
        drawing, before its first draw): what it is put back to on exit."""
        self._after_seed: dict[str, Any] = {}
        self.seen: Counter[str] = Counter()
        """How many reads drew from each RNG, by name."""
        self.at_start: Counter[str] = Counter()
        """RNGs drawn from only as an epoch started (``drew(at_start=True)``), by name:
        a permutation, a loader's worker seeds; no evidence of randomness per read."""
        self.orders: set[int] = set()
        """Ids of RNGs that only ever draw orders (a DataLoader's ``generator``, which its
        sampler also draws from as the epoch ends): their draws count as at_start."""
        self._bits: set[int] = set()
        self._shared = False
        """Do two of the RNGs share a numpy bit generator (seeding one moves the other)?"""
        self._watch = _Watch()
        self.found_drawing = 0
        """How many generators were taken on as reads were seen drawing from them: the
        reads before were not made under their control."""
        self._sighted: dict[int, tuple[Any, Any]] = {}
        """Generators not found on the source that an earlier read was seen drawing from:
        one seen in a second read is held across reads, and controlled from then on."""

    def __enter__(self) -> Randomness:
        self._keras_state = frameworks.tensorflow.seeds() if self._tf() else None
        self.rescan()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._watch.stop()
        if self.restore:
            rngs.put_back(self.rngs, self.first)
            if self._keras_state is not None:
                frameworks.tensorflow.put_back(self._keras_state)

    @staticmethod
    def _tf() -> bool:
        return bool(frameworks.tensorflow.keras() or frameworks.tensorflow.tensorflow())

    def _remember(self, name: str, obj: Any, kind: str, state: Any = None) -> None:
        """Reseed, watch and put back ``obj`` (of ``kind``) as ``name`` from now on, to
        ``state`` (its state now if None)."""
        if any(known is obj for known, _ in self.rngs.values()):
            return
        try:
            state = get_state(obj, kind) if state is None else state
        except Exception:  # a state that cannot be read: neither reseeded nor watched
            return
        self.first[name] = state
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
        for name, (obj, kind) in {**_globals(), **held_by(self.roots).rngs}.items():
            self._remember(name, obj, kind)

    def control(self, seed: int) -> None:
        """Reseed every RNG with ``seed`` (Keras and the hook too), before a read."""
        self._watch.stop()
        tf = frameworks.tensorflow
        if self._tf() and self._keras_state is None:
            self._keras_state = tf.seeds()
        tf.seed(seed)
        ops = tf.op_seeds()
        if ops is not None:  # made anew by set_seed: watched from here, put back with the seed
            self.rngs[TF_OPS] = (ops, "random.Random")
        seeded = {
            name: frameworks.rngs.seed(obj, kind, seed) for name, (obj, kind) in self.rngs.items()
        }
        if self.hook is not None:
            self.hook(seed)
        # the hook, or another RNG over the same bits, may have moved one: read them all
        self.mark({} if self.hook is not None or self._shared else seeded)

    def mark(self, known: dict[str, Any] | None = None) -> None:
        """Remember every RNG's state now, for :meth:`drew` (without reseeding: to watch;
        ``known``: states just set, by name, None for one to read)."""
        self._watch.stop()
        known = known or {}
        self._after_seed = {
            name: get_state(obj, kind) if known.get(name) is None else known[name]
            for name, (obj, kind) in self.rngs.items()
        }
        self._watch.start()

    def drew(self, *, at_start: bool = False) -> tuple[str, ...]:
        """The RNGs whose state moved since :meth:`control` or :meth:`mark`: what was drawn from.

        ``at_start``: the read started an epoch (``iter()`` and its first batch),
        whose draws may be the epoch's permutation or a loader's worker seeds
        rather than augmentation; they are kept apart, in :attr:`at_start`, until
        :meth:`per_read` says they were drawn per read after all.
        """
        self._watch.stop()
        moved = tuple(
            name
            for name, (obj, kind) in self.rngs.items()
            if name in self._after_seed
            and not same_state(self._after_seed[name], get_state(obj, kind))
        )
        for name in moved:
            order = at_start or id(self.rngs[name][0]) in self.orders
            (self.at_start if order else self.seen)[name] += 1
        self._sight()
        return moved

    def _sight(self) -> None:
        """Take on the generators the read was seen drawing from that an earlier read drew
        from too: held somewhere across reads (a closure, another module), not made per read."""
        known = {id(obj) for obj, _ in self.rngs.values()}
        for key, (obj, kind, state) in self._watch.drawn.items():
            if key in self._sighted and key not in known:
                first = self._sighted[key][1]  # put back as it was before its first draw
                self._remember(f"{kind} #{len(self.rngs) + 1} (seen drawing)", obj, kind, first)
                self.found_drawing += 1
            elif len(self._sighted) < _MAX_ITEMS:
                self._sighted.setdefault(key, (obj, state))
        self._watch.drawn.clear()

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
        kind = "randomness_natural" if natural else "randomness"
        return say("common", "note", kind, shown=shown).text


TF_OPS = "TensorFlow's random ops (eager)"
"""The name, in reports, of the sequence of op seeds TensorFlow's eager random ops take
once a global seed is set (``tf.random.uniform``, ``tf.image.random_crop`` called in a
``__getitem__``): it moves with each such op."""


@contextlib.contextmanager
def global_rngs_kept() -> Iterator[None]:
    """Python's, numpy's and torch's global RNGs, TensorFlow's global Generator and the
    Keras and TensorFlow global seeds as they are now, put back on exit: whatever a check
    drew or seeded (a factory building its pipeline, the reads, a blame pass, a training)."""
    found = _globals()
    saved = rngs.states(found)
    seeds = frameworks.tensorflow.seeds()
    try:
        yield
    finally:
        rngs.put_back(found, saved)
        frameworks.tensorflow.put_back(seeds)


def fresh_entropy(read: Callable[[], Any]) -> bool:
    """Run ``read`` watched: did it draw fresh entropy from the system?

    A generator made without a seed (``np.random.default_rng()``, ``RandomState()``,
    ``random.Random()``) is a new object no reseeding reaches and no state of a watched
    generator moves for: it is seen as it draws from the operating system, through
    ``os.urandom`` or ``random.Random.seed(None)``. A report says so in the words of
    ``words.toml``'s ``[common.fresh_entropy]``.
    """
    watch = _Watch()
    watch.start()
    try:
        read()
    finally:
        watch.stop()
    return watch.entropy
