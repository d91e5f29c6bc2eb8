"""Do worker processes draw different random numbers?

A worker process made by ``fork`` starts with a copy of its parent's memory,
every RNG state included. Unless something reseeds an RNG per worker, every
worker draws the same "random" augmentations from it (pytorch/pytorch#5059;
Keras 3's PyDataset pool passes no seed to its workers). This runs ``fn`` in
several forked processes and compares what they drew.

Two kinds of workers are modelled:

* plain forked processes, as a ``multiprocessing`` pool or Keras' PyDataset
  pool makes them: nothing is reseeded unless ``worker_init`` does it;
* a torch DataLoader's workers, when a torch Dataset is involved (``fn`` is
  one, ``dataset=`` names one, or ``fn`` refers to exactly one): ``fn`` runs
  in the workers of a real ``DataLoader`` over that dataset, which seeds
  Python's ``random``, torch's and (recent torch) numpy's global RNGs per
  worker and gives ``get_worker_info()`` its id, seed and dataset copy, so a
  ``worker_init_fn`` written for DataLoader is tested as it will run.

In each worker the RNGs ``fn`` can reach (the global ones, and generators held
by what ``fn`` refers to, such as ``dataset.rng``) are read before the first
call and after each call: the report says which ``fn`` drew from, and which
started in the same state in every worker (copied) or in different ones
(reseeded). A ``fn`` whose values never vary cannot show a shared stream: the
report is then inconclusive, not failed.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import pickle
import queue
import random
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._boundary import asserting
from pitfalls._frameworks.rngs import get_state
from pitfalls._randomness import _globals, code_names, global_rngs_kept, held_by
from pitfalls._report import Cause, Finding, Location, Report, safe_repr
from pitfalls._sources import add_note
from pitfalls._tree import as_array, flatten
from pitfalls._words import say

Values = tuple[tuple[str, np.ndarray], ...]
"""One call's result: its leaves (path, a private copy), as a batch is flattened."""


# In a worker: calling fn and reading the RNGs it can reach ---------------------------


def _values(result: Any) -> Values:
    return tuple(
        (path, np.array(as_array(leaf, path), copy=True)) for path, leaf in flatten(result).leaves
    )


def _plain(state: Any) -> Any:
    """An RNG state as picklable plain data (a torch tensor as its bytes)."""
    if hasattr(state, "numpy") and not isinstance(state, np.ndarray):
        return np.asarray(state.numpy()).tobytes()
    return state


class _Probe:
    """Calls ``fn`` in one worker; notes the state of each RNG it can reach, by name, before
    the first call and after each call (digests: equal states, equal digests)."""

    def __init__(self, fn: Callable[[], Any], roots: list[tuple[str, Any]]) -> None:
        self.fn = fn
        self.roots = roots
        self.rngs: dict[str, tuple[Any, str]] | None = None
        self.before: dict[str, bytes] = {}

    def _find(self) -> dict[str, tuple[Any, str]]:
        found = dict(_globals())
        try:
            held = held_by(self.roots).rngs
        except Exception:  # an attribute that breaks when read: the globals only
            held = {}
        for name, obj in held.items():
            kind = frameworks.rng_kind(obj)
            if kind is not None and all(obj is not seen for seen, _ in found.values()):
                found[name] = (obj, kind)
        return found

    def digests(self) -> dict[str, bytes]:
        if self.rngs is None:
            self.rngs = self._find()  # after worker_init, which may replace a generator
        out = {}
        for name, (obj, kind) in self.rngs.items():
            try:
                state = pickle.dumps(_plain(get_state(obj, kind)))
            except Exception:  # a state that cannot be read: not watched
                continue
            out[name] = fingerprint.digest(state)
        return out

    def call(self) -> tuple[Values, dict[str, bytes], dict[str, bytes]]:
        """(fn()'s values, the RNG digests before the first call, the digests after this one)."""
        if self.rngs is None:
            self.before = self.digests()
        values = _values(self.fn())
        return values, self.before, self.digests()


@dataclass(frozen=True)
class _Worker:
    """What one worker sent back."""

    values: list[Values]
    before: dict[str, bytes]
    after: dict[str, bytes]


def _forked(
    probe: _Probe,
    worker_init: Callable[[int], Any] | None,
    worker_id: int,
    calls: int,
    out: Any,
) -> None:
    try:
        if worker_init is not None:
            worker_init(worker_id)
        values: list[Values] = []
        before: dict[str, bytes] = {}
        after: dict[str, bytes] = {}
        for _ in range(calls):
            value, before, after = probe.call()
            values.append(value)
        out.put((worker_id, _Worker(values, before, after), None))
    except BaseException as exc:  # reported in the parent, as itself where it pickles
        out.put((worker_id, None, _picklable(exc)))


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# Plain forked workers -----------------------------------------------------------------


def _collect(procs: list[Any], out: Any, timeout: float | None) -> dict[int, _Worker]:
    """Each worker's results; TimeoutError naming the workers still silent at the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    results: dict[int, _Worker] = {}
    while len(results) < len(procs):
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            worker_id, result, error = out.get(timeout=wait)
        except queue.Empty:
            silent = [w for w in range(len(procs)) if w not in results]
            raise _timed_out(silent, timeout) from None
        if error is not None:
            add_note(error, f"pitfalls: raised by fn or worker_init in worker {worker_id}")
            raise error
        results[worker_id] = result
    return results


def _timed_out(silent: list[int], timeout: float | None) -> TimeoutError:
    names = ", ".join(map(str, silent))
    return TimeoutError(
        f"worker{'s' if len(silent) > 1 else ''} {names} did not return within"
        f" timeout={timeout:g} s: fn or worker_init hangs in a forked process (a lock"
        " held at fork, a thread pool that did not survive the fork, a queue);"
        " the workers were terminated"
    )


def _run_forked(
    probe: _Probe,
    worker_init: Callable[[int], Any] | None,
    workers: int,
    calls: int,
    timeout: float | None,
) -> dict[int, _Worker]:
    import multiprocessing  # here, not at import: it costs import pitfalls ~10 ms

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("check_worker_randomness needs the 'fork' start method") from None
    out = context.Queue()
    procs = [
        context.Process(target=_forked, args=(probe, worker_init, w, calls, out), daemon=True)
        for w in range(workers)
    ]
    answered = False
    try:
        for p in procs:
            p.start()
        results = _collect(procs, out, timeout)
        answered = True
    finally:
        for p in procs:
            if answered and p.is_alive():  # it has sent its values and is exiting
                p.join(timeout=0.5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1)
        out.close()
    return results


# A torch DataLoader's workers ----------------------------------------------------------


def _run_torch(
    probe: _Probe,
    dataset: Any,
    worker_init: Callable[[int], Any] | None,
    workers: int,
    calls: int,
    seed: int | None,
    timeout: float | None,
) -> dict[int, _Worker]:
    def collate(samples: list[Any]) -> tuple[int, Values, dict[str, bytes], dict[str, bytes]]:
        return (frameworks.torch.worker_id(), *probe.call())  # fn called once per batch

    loader = frameworks.torch.worker_loader(
        dataset, collate, workers, workers * calls, worker_init, seed, timeout
    )
    got: dict[int, list[tuple[Values, dict[str, bytes], dict[str, bytes]]]] = {}
    received = 0
    try:
        for worker_id, values, before, after in loader:
            got.setdefault(int(worker_id), []).append((values, before, after))
            received += 1
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "timed out" in str(exc):  # due from this one
            raise _timed_out([received % workers], timeout) from None
        add_note(exc, "pitfalls: raised by fn or worker_init in a DataLoader worker")
        raise
    return {
        w: _Worker([v for v, _, _ in items], items[0][1], items[-1][2])
        for w, items in sorted(got.items())
    }


# What fn refers to ---------------------------------------------------------------------


_NOT_DATA = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def _referents(fn: Any) -> list[tuple[str, Any]]:
    """What ``fn`` refers to, by the name it uses: a partial's arguments, a bound method's
    object, a closure's variables, the globals its code loads (not modules, classes or
    functions), and a callable object itself."""
    out: list[tuple[str, Any]] = []
    while isinstance(fn, functools.partial):
        out += [(f"argument {i}", arg) for i, arg in enumerate(fn.args)]
        out += list(fn.keywords.items())
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    if owner is not None:
        out.append((type(owner).__name__, owner))
    try:
        out += list(inspect.getclosurevars(fn).nonlocals.items())
    except TypeError:  # not a function: a callable object, whose attributes may hold one
        if owner is None and not isinstance(fn, _NOT_DATA):
            out.append((type(fn).__name__, fn))
    scope = getattr(fn, "__globals__", {})
    code = getattr(fn, "__code__", None)
    names = sorted(code_names(code)) if isinstance(code, types.CodeType) else []
    out += [(name, scope[name]) for name in names if name in scope]
    unique: dict[int, tuple[str, Any]] = {}
    for name, value in out:
        if not isinstance(value, _NOT_DATA):
            unique.setdefault(id(value), (name, value))
    return list(unique.values())


def _asks_worker_info(worker_init: Any) -> bool:
    """Does ``worker_init``'s code call ``get_worker_info()``, which DataLoader workers answer?"""
    while isinstance(worker_init, functools.partial):
        worker_init = worker_init.func
    code = getattr(worker_init, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    return "get_worker_info" in code_names(code) | set(code.co_freevars)


def _map_style(value: Any) -> bool:
    cls = type(value)
    plain = (list, tuple, dict, str, bytes, np.ndarray)
    return hasattr(cls, "__getitem__") and hasattr(cls, "__len__") and not isinstance(value, plain)


def _served(referents: list[tuple[str, Any]], worker_init: Any) -> Any:
    """The dataset DataLoader workers would serve, from what ``fn`` refers to: the one torch
    Dataset, or (when ``worker_init`` asks for ``get_worker_info()``, written for DataLoader)
    the one object read by index; None for plain forked workers."""
    found = [(n, v) for n, v in referents if frameworks.torch.is_dataset(v)]
    asks = _asks_worker_info(worker_init)
    if not found and asks:
        found = [(n, v) for n, v in referents if _map_style(v)]
    if len(found) == 1:
        return found[0][1]
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise ValueError(
            f"fn refers to {len(found)} datasets ({names}): pass dataset=, the one the"
            " DataLoader workers serve"
        )
    if asks:
        raise ValueError(
            "worker_init calls get_worker_info(), which only a DataLoader's workers answer,"
            " and fn refers to no dataset: pass dataset= (the Dataset your DataLoader"
            " serves) to run fn in DataLoader workers"
        )
    return None


# The check -----------------------------------------------------------------------------


def _same(a: list[Values], b: list[Values]) -> bool:
    return all(_same_call(x, y) for x, y in zip(a, b))


def _same_call(x: Values, y: Values) -> bool:
    if len(x) != len(y):
        return False
    for (px, ax), (py, ay) in zip(x, y):
        if px != py or ax.shape != ay.shape or ax.dtype != ay.dtype:
            return False
        if not np.array_equal(ax, ay, equal_nan=ax.dtype.kind in "fc"):
            return False
    return True


def _first(values: Values) -> Any:
    for _, array in values:
        if array.size:
            return array.ravel()[0]
    return None


_SPOKEN = {
    "random (global)": "Python's random",
    "np.random (global)": "numpy's global RNG",
    "torch (global)": "torch's global RNG",
}


def _names(names: list[str]) -> str:
    """RNG names as a person reads them, joined: ``numpy's global RNG and dataset.rng``."""
    shown = [_SPOKEN.get(name, name) for name in names]
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _starts(results: dict[int, _Worker], names: list[str]) -> tuple[list[str], list[str]]:
    """(names in the same state at every worker's first call, names in different ones)."""
    copied: list[str] = []
    reseeded: list[str] = []
    for name in names:
        states = {w.before.get(name) for w in results.values()}
        if None in states:
            continue
        (copied if len(states) == 1 else reseeded).append(name)
    return copied, reseeded


def check_worker_randomness(
    fn: Any,
    *,
    workers: int = 2,
    calls: int = 3,
    worker_init: Callable[[int], Any] | None = None,
    seed: int | None = 0,
    timeout: float | None = 60.0,
    dataset: Any = None,
) -> Report:
    """Call ``fn()`` ``calls`` times in each of ``workers`` forked processes; fail on repeats.

    ``fn`` draws randomness as your pipeline does (an augmentation of a fixed
    input, say). ``worker_init(worker_id)``, if given, runs first in each
    worker, as a DataLoader's ``worker_init_fn`` or a pool initializer would.
    Fails when two workers produce the same sequence of values: they share
    one RNG stream. Inconclusive when no worker's values vary from call to
    call: a constant cannot show whether the workers share a stream.

    With a torch Dataset (``dataset=``; ``fn`` itself, whose first sample
    each call reads; the one Dataset ``fn`` refers to; or the one object
    ``fn`` reads by index when ``worker_init`` calls ``get_worker_info()``),
    the workers are a real ``DataLoader``'s (``num_workers=workers``,
    ``worker_init_fn=worker_init``, ``generator`` seeded with ``seed``):
    ``get_worker_info()`` gives each its id, seed and copy of the dataset,
    and the RNGs DataLoader reseeds per worker are reseeded (the report's
    notes say which). Otherwise they are plain forked processes, as a
    process pool or Keras' PyDataset makes: nothing is reseeded.

    Before forking, Python's, numpy's and (if imported) torch's global RNGs
    are seeded with ``seed``, as reproducible training code does (``None``:
    fork with the states as they are); the caller's states are restored
    afterwards. A worker that has not returned ``timeout`` seconds after the
    fork raises ``TimeoutError`` naming it. Needs the ``fork`` start method
    (Linux, macOS).
    """
    if frameworks.torch.is_dataset(fn):
        if dataset is not None and dataset is not fn:
            raise ValueError("fn is a torch Dataset: leave dataset= out, or pass a function as fn")
        dataset, fn = fn, frameworks.torch.first_sample(fn)
    elif not callable(fn):
        raise TypeError(f"fn must be callable (or a torch Dataset), got {validate.got(fn)}")
    if dataset is not None and (
        isinstance(dataset, (str, bytes))
        or not (hasattr(type(dataset), "__getitem__") or hasattr(type(dataset), "__iter__"))
    ):
        raise TypeError(
            "dataset must be the Dataset your DataLoader serves (read by index or"
            f" iterated), got {validate.got(dataset)}"
        )
    worker_init = validate.optional_function("worker_init", worker_init)
    workers = validate.integer(
        "workers", workers, minimum=2, why="two workers are needed to compare their draws"
    )
    calls = validate.integer("calls", calls, minimum=1)
    if seed is not None:
        seed = validate.seed("seed", seed)
    timeout = validate.timeout("timeout", timeout)
    referents = _referents(fn)
    if dataset is None:
        dataset = _served(referents, worker_init)
    if dataset is not None and frameworks.torch.dataset_class() is None:
        try:
            import torch.utils.data  # noqa: F401  (asked for: DataLoader workers)
        except ImportError:
            raise ValueError(
                "dataset= runs the workers as a torch DataLoader's, and torch is not"
                " installed: pip install torch, or leave dataset= out for plain forked workers"
            ) from None
    roots = ([("dataset", dataset)] if dataset is not None else []) + [
        item for item in referents if item[1] is not dataset
    ]
    probe = _Probe(fn, roots)
    with _seeded(seed):
        if dataset is None:
            results = _run_forked(probe, worker_init, workers, calls, timeout)
        else:
            results = _run_torch(probe, dataset, worker_init, workers, calls, seed, timeout)
    return _report(results, workers, calls, seed, worker_init, dataset)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed the global RNGs before forking; put the caller's states back afterwards."""
    with global_rngs_kept():
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
            torch = sys.modules.get("torch")
            if torch is not None and hasattr(torch, "manual_seed"):
                torch.manual_seed(seed)
        yield


def _report(
    results: dict[int, _Worker],
    workers: int,
    calls: int,
    seed: int | None,
    worker_init: Callable[[int], Any] | None,
    dataset: Any,
) -> Report:
    ids = sorted(results)
    findings = []
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if _same(results[a].values, results[b].values):
                findings.append(
                    Finding(
                        path=f"workers {a} and {b}",
                        mismatched=calls,
                        total=calls,
                        locations=(
                            Location(
                                (),
                                _first(results[a].values[0]),
                                _first(results[b].values[0]),
                            ),
                        ),
                        problem=f"drew the same {calls} values: one RNG stream, copied into both",
                    )
                )
    drew = sorted(
        {
            name
            for w in results.values()
            for name, state in w.after.items()
            if w.before.get(name, state) != state
        }
    )
    varies = any(not _same_call(w.values[0], v) for w in results.values() for v in w.values[1:])
    parameters: dict[str, Any] = {"workers": workers, "calls": calls, "seed": seed}
    if worker_init is not None:
        parameters["worker_init"] = worker_init
    if dataset is not None:
        parameters["dataset"] = type(dataset).__name__
    inconclusive = ""
    if findings and not varies and (calls > 1 or not drew):
        inconclusive = _constant(results, calls, drew)
        findings = []
    kind = "torch" if dataset is not None else None
    words = say("worker_randomness", Cause.SHARED_RNG, kind)
    return Report(
        check="worker_randomness",
        cause=Cause.NO_DRAWS if inconclusive else Cause.SHARED_RNG,
        parameters=parameters,
        findings=tuple(findings),
        inconclusive=inconclusive,
        reason=words.text,
        hint=words.hint,
        notes=tuple(_notes(results, drew, dataset, workers, bool(findings))),
        columns=("worker a, first value", "worker b"),
        summary=say("worker_randomness", "passed", workers=workers).text,
    )


def _notes(
    results: dict[int, _Worker], drew: list[str], dataset: Any, workers: int, failed: bool
) -> list[str]:
    notes = []
    if dataset is not None:
        everything = sorted({name for w in results.values() for name in w.before})
        global_names = [n for n in everything if n.endswith(" (global)")]
        _, reseeded = _starts(results, global_names)
        seeded = (
            f" {_names(reseeded)} started in a different state in each worker (reseeded per worker)"
            if reseeded
            else " no global RNG differed between workers"
        )
        notes.append(
            f"Workers: {workers} processes of a torch DataLoader over"
            f" {type(dataset).__name__}, with get_worker_info() set and DataLoader's"
            f" seeding:{seeded}."
        )
    if drew:
        copied, reseeded = _starts(results, drew)
        same = "started in the same state in every worker (copied at the fork)"
        other = "in a different state in each worker (reseeded)"
        text = f"Randomness: fn drew from {_names(drew)}"
        if copied and reseeded:
            text += f": {_names(copied)} {same}, {_names(reseeded)} started {other}"
        elif copied:
            text += f", which {same}"
        elif reseeded:
            text += f", which started {other}"
        notes.append(text + ".")
    if failed and dataset is None and "torch" in sys.modules:
        reseeds = [name for name in drew if name.endswith(" (global)")]
        if reseeds:
            notes.append(
                f"If these workers are a torch DataLoader's: it reseeds {_names(reseeds)} per"
                " worker, which plain forked processes do not; pass dataset= (your Dataset)"
                " to run fn in DataLoader workers."
            )
    return notes


def _constant(results: dict[int, _Worker], calls: int, drew: list[str]) -> str:
    try:
        shown = safe_repr(_first(results[min(results)].values[0]))
    except Exception:
        shown = "[repr failed]"
    kind = None if drew else "constant" if calls > 1 else "one_call"
    each = f"on each of its {calls} calls" if calls > 1 else "on its call"
    return say(
        "worker_randomness", Cause.NO_DRAWS, kind, drew=_names(drew), shown=shown, each=each
    ).text


assert_worker_randomness = asserting(check_worker_randomness)
