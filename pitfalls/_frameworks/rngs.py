"""Random generators of every framework: the global ones, and reading, setting and seeding
a generator's state through its library's public API, by its kind (:func:`rng_kind`)."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls._frameworks import tensorflow, torch
from pitfalls._frameworks.base import is_a, numpy_global, python_global

_FRAMEWORK_RNGS = (
    ("torch", "Generator", "torch.Generator"),
    ("keras", "random.SeedGenerator", "keras SeedGenerator"),
    ("tensorflow", "random.Generator", "tf.random.Generator"),
)
"""The generators of the frameworks: (module, class path, kind), looked up once imported."""


def rng_kind(obj: Any) -> str | None:
    """What sort of random generator ``obj`` is, or None."""
    if isinstance(obj, np.random.Generator):
        return "numpy Generator"
    if isinstance(obj, np.random.RandomState):
        return "numpy RandomState"
    if isinstance(obj, random.Random):
        return "random.Random"
    return next((kind for module, path, kind in _FRAMEWORK_RNGS if is_a(obj, module, path)), None)


def global_rngs() -> dict[str, tuple[Any, str]]:
    """The global generators, by name: Python's, numpy's, torch's and TensorFlow's (once
    made), each with its kind."""
    found = {
        "random (global)": (python_global(), "random.Random"),
        "np.random (global)": (numpy_global(), "numpy RandomState"),
        "torch (global)": (torch.global_generator(), "torch.Generator"),
        "tf.random.get_global_generator()": (tensorflow.global_generator(), "tf.random.Generator"),
    }
    return {name: (obj, kind) for name, (obj, kind) in found.items() if obj is not None}


def get_state(obj: Any, kind: str) -> Any:
    """``obj``'s state now (a copy where the library hands out a view; torch's and the
    frameworks' variables as numpy arrays: plain data, sent as such between processes)."""
    if kind == "numpy Generator":
        return obj.bit_generator.state
    if kind == "numpy RandomState":
        return obj.get_state(legacy=False)
    if kind == "random.Random":
        return obj.getstate()
    if kind == "torch.Generator":
        return obj.get_state().numpy()  # a new tensor's memory
    return np.array(obj.state.numpy())  # Keras' SeedGenerator, TF's Generator: a variable


def set_state(obj: Any, kind: str, state: Any) -> None:
    if kind == "numpy Generator":
        obj.bit_generator.state = state
    elif kind == "numpy RandomState":
        obj.set_state(state)
    elif kind == "random.Random":
        obj.setstate(state)
    elif kind == "torch.Generator":
        obj.set_state(sys.modules["torch"].from_numpy(state))
    else:
        obj.state.assign(state)


def states(generators: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """Each (generator, kind)'s state now, by name; one that cannot be read is left out."""
    out = {}
    for name, (obj, kind) in generators.items():
        with contextlib.suppress(Exception):
            out[name] = get_state(obj, kind)
    return out


def put_back(generators: dict[str, tuple[Any, str]], saved: dict[str, Any]) -> None:
    """The states :func:`states` read, set again, by name; one that cannot be is left."""
    for name, state in saved.items():
        with contextlib.suppress(Exception):
            obj, kind = generators[name]
            set_state(obj, kind, state)


_SEEDED: dict[tuple[Any, ...], Any] = {}
"""The state an RNG has right after seeding, by (its type, the seed): read once, reused.

Only for seedings whose result depends on the seed alone: a numpy bit generator made from
it, ``seed()`` of an exact ``RandomState`` or ``random.Random`` (which also clears
their cached Gaussian), and a ``tf.random.Generator``'s ``reset_from_seed`` (keyed by its
algorithm too). Reading a state costs more than a read of most sources (50 us for
numpy's global RNG); ``reset_from_seed`` runs a dozen eager ops, 4 ms here right after
``tf.random.set_seed`` emptied TensorFlow's kernel cache, where assigning its result
takes 0.9 ms."""
_MAX_SEEDED = 1024


def _seeded_state(key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
    state = _SEEDED.get(key)
    if state is None:
        if len(_SEEDED) >= _MAX_SEEDED:
            _SEEDED.clear()
        state = _SEEDED[key] = read()
    return state


def seed(obj: Any, kind: str, seed: int) -> Any:
    """Seed ``obj``; return its state now (as :func:`get_state` reads it) when known, else
    None."""
    if kind == "numpy Generator":
        bits = type(obj.bit_generator)
        state = _seeded_state((bits, seed), lambda: bits(seed).state)
        obj.bit_generator.state = state
        return state
    if kind in ("numpy RandomState", "random.Random"):
        obj.seed(seed)
        if type(obj) not in (np.random.RandomState, random.Random):
            return None  # a subclass may seed otherwise: read it
        return _seeded_state((type(obj), seed), lambda: get_state(obj, kind))
    if kind == "tf.random.Generator":
        if type(obj) is not sys.modules["tensorflow"].random.Generator:
            obj.reset_from_seed(seed)  # a subclass may seed otherwise: read it
            return None
        state = _seeded_state((type(obj), obj.algorithm, seed), lambda: _reset(obj, seed))
        obj.state.assign(state)
        return state
    if kind == "torch.Generator":
        obj.manual_seed(seed)
    else:
        obj.state.assign(np.array([seed, 0], dtype=obj.state.numpy().dtype))
    return None


def _reset(generator: Any, seed: int) -> Any:
    """The state ``reset_from_seed(seed)`` gives a ``tf.random.Generator``."""
    generator.reset_from_seed(seed)
    return get_state(generator, "tf.random.Generator")


_PLAIN = (int, str, type(None))


def same_state(a: Any, b: Any) -> bool:
    """Are two states :func:`get_state` read equal (compared as cheaply as each part allows)?"""
    if type(a) in _PLAIN and type(b) in _PLAIN:  # most of a state's fields
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(value, b[key]) for key, value in a.items())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        try:
            return bool(a == b)  # Python's random state: ints only, compared in C
        except ValueError:  # arrays inside: element by element
            return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if hasattr(a, "__array__") or hasattr(b, "__array__"):
        try:
            x, y = np.asarray(a), np.asarray(b)
            if x.dtype == y.dtype and x.dtype.kind in "iu":  # integers: equal values, equal bytes
                return x.shape == y.shape and x.tobytes() == y.tobytes()
            return bool(np.array_equal(x, y))
        except Exception:
            return False
    return bool(a == b)
