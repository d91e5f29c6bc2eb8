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

In each worker the RNGs ``fn`` can reach are observed as the checks observe a
read (:mod:`pitfalls._randomness`): the global ones, the generators held by
what ``fn`` refers to (such as ``dataset.rng``), and those ``fn`` is seen
drawing from. Which moved tells what ``fn`` drew from; their states as first
found, which started in the same state in every worker (copied) or in
different ones (reseeded). A ``fn`` whose values never vary
cannot show a shared stream: the report is then inconclusive, not failed.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import queue
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._boundary import asserting, checker
from pitfalls._frameworks import rngs
from pitfalls._frameworks.rngs import same_state
from pitfalls._randomness import Randomness, code_names
from pitfalls._report import Cause, Finding, Location, Report, safe_repr
from pitfalls._sources import add_note, unwrapped
from pitfalls._tree import as_array, flatten
from pitfalls._words import say


@dataclass
class _Worker:
    """What one worker's calls of ``fn`` gave so far (sent after each call: the last one
    sent holds them all): a digest per call, the first call's first value, the RNG states
    as first found (before the first call, or their first draw), the RNGs its calls drew
    from."""

    id: int
    digests: list[bytes] = field(default_factory=list)
    first: Any = None
    before: dict[str, Any] = field(default_factory=dict)
    drew: set[str] = field(default_factory=set)


# In a worker: calling fn, watching the RNGs it draws from ------------------------------


def _digest(result: Any) -> tuple[bytes, Any]:
    """One call's result as a digest of its leaves (path, dtype, shape and values each, as
    a batch is flattened), and its first value."""
    parts, first = [], None
    for path, leaf in flatten(result).leaves:
        array = np.ascontiguousarray(as_array(leaf, path))
        if array.dtype.kind in "fc":  # compared as values: -0.0 is 0.0, every NaN alike
            array = np.where(np.isnan(array), np.nan, array + 0)
        data = pickle.dumps(array.tolist()) if array.dtype.hasobject else array.tobytes()
        parts += [f"{path} {array.dtype.str} {array.shape}".encode(), fingerprint.digest(data)]
        if first is None and array.size:
            first = array.ravel()[0]
    return fingerprint.digest(b"\0".join(parts)), first


Probe = Callable[[int], _Worker]
"""One call of ``fn`` in the worker of the id given: what its calls gave so far."""


def _probe(fn: Callable[[], Any], roots: list[tuple[str, Any]]) -> Probe:
    """Calls of ``fn`` in one worker (each forked worker has its own copy), observing the
    RNGs as a check observes a read (:class:`Randomness`): the global ones, those held by
    what ``fn`` refers to, and those ``fn`` is seen drawing from in two calls; each one's
    state, by name, as first found (before the first call, or its first draw), and which
    each call drew from (their state moved, or they were seen drawing)."""
    rnd = Randomness(roots, restore=False)
    worker = _Worker(-1)

    def call(worker_id: int) -> _Worker:
        if not rnd.rngs:  # after worker_init, which may replace a generator
            rnd.rescan()
        known = set(rnd.rngs)
        rnd.mark()
        digest, first = _digest(fn())
        worker.id = worker_id
        worker.first = worker.first if worker.digests else first
        worker.digests.append(digest)
        worker.drew.update([*rnd.drew(), *(name for name in rnd.rngs if name not in known)])
        worker.before = dict(rnd.first)
        return worker

    return call


def _forked(probe: Probe, worker_init: Any, worker_id: int, calls: int, out: Any) -> None:
    """A plain forked worker: ``worker_init``, then ``calls`` calls, each sent as it ends
    (an exception instead, noted, as itself where it pickles)."""
    try:
        if worker_init is not None:
            worker_init(worker_id)
        for _ in range(calls):
            out.put(probe(worker_id))
    except BaseException as exc:
        add_note(exc, f"pitfalls: raised by fn or worker_init in worker {worker_id}")
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        out.put(exc)


# Running the workers: plain forked processes, or a torch DataLoader's ------------------


def _timed_out(silent: list[int], timeout: float | None) -> TimeoutError:
    names = ", ".join(map(str, silent))
    plural = "s" if len(silent) > 1 else ""
    words = say("common", "worker_timeout", s=plural, names=names, timeout=f"{timeout:g}")
    return TimeoutError(words.text)


def _run_forked(
    probe: Probe, worker_init: Any, workers: int, calls: int, timeout: float | None
) -> Iterator[_Worker]:
    """The calls as plain forked workers send them; TimeoutError naming the workers still
    short of their calls ``timeout`` seconds after the fork."""
    import multiprocessing  # here, not at import: it costs import pitfalls ~10 ms

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    procs = [
        context.Process(target=_forked, args=(probe, worker_init, w, calls, out), daemon=True)
        for w in range(workers)
    ]
    sent = [0] * workers
    try:
        for p in procs:
            p.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while sum(sent) < workers * calls:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = out.get(timeout=wait)
            except queue.Empty:
                silent = [w for w in range(workers) if sent[w] < calls]
                raise _timed_out(silent, timeout) from None
            if isinstance(item, BaseException):
                raise item
            sent[item.id] += 1
            yield item
    finally:
        for p in procs:
            p.terminate()  # one that sent all its calls is exiting anyway
            p.join(timeout=1)
        out.close()


def _run_torch(
    probe: Probe,
    dataset: Any,
    worker_init: Any,
    workers: int,
    calls: int,
    seed: int | None,
    timeout: float | None,
) -> Iterator[_Worker]:
    """The calls as a DataLoader's workers return them, one per (empty) batch."""
    loader = frameworks.torch.worker_loader(
        dataset,
        lambda _: probe(frameworks.torch.worker_id()),
        workers,
        workers * calls,
        worker_init,
        seed,
        timeout,
    )
    received = 0
    try:
        for item in loader:
            received += 1
            yield item
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "timed out" in str(exc):  # due from this one
            raise _timed_out([received % workers], timeout) from None
        add_note(exc, "pitfalls: raised by fn or worker_init in a DataLoader worker")
        raise


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
    code = getattr(unwrapped(worker_init)[0], "__code__", None)
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


def _names(names: list[str]) -> str:
    """RNG names as a person reads them, joined: ``numpy's global RNG and dataset.rng``."""
    shown = [say("common", "rng_name", name, name=name).text for name in names]
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _starts(results: dict[int, _Worker], names: list[str]) -> tuple[list[str], list[str]]:
    """(names in the same state at every worker's first call, names in different ones)."""
    copied: list[str] = []
    reseeded: list[str] = []
    for name in names:
        states = [w.before[name] for w in results.values() if name in w.before]
        if len(states) < len(results):
            continue
        same = all(same_state(states[0], state) for state in states[1:])
        (copied if same else reseeded).append(name)
    return copied, reseeded


@checker  # the caller's global RNGs put back afterwards
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

    Before forking, the global RNGs (Python's, numpy's, and torch's and
    TensorFlow's once made) are seeded with ``seed``, as reproducible training
    code does (``None``: fork with the states as they are); the caller's states
    are restored afterwards. A worker that has not returned ``timeout`` seconds
    after the fork raises ``TimeoutError`` naming it. Needs the ``fork`` start
    method (Linux, macOS).
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
    import multiprocessing  # here, not at import: it costs import pitfalls ~10 ms

    if "fork" not in multiprocessing.get_all_start_methods():
        raise ValueError("check_worker_randomness needs the 'fork' start method")
    referents = _referents(fn)
    if dataset is None:
        dataset = _served(referents, worker_init)
    roots = [("dataset", dataset), *(item for item in referents if item[1] is not dataset)]
    probe = _probe(fn, roots)
    parameters: dict[str, Any] = {"workers": workers, "calls": calls, "seed": seed}
    if worker_init is not None:
        parameters["worker_init"] = worker_init
    for obj, kind in rngs.global_rngs().values():
        if seed is not None:
            rngs.seed(obj, kind, seed)
    if dataset is None:
        run = _run_forked(probe, worker_init, workers, calls, timeout)
    else:
        parameters["dataset"] = type(dataset).__name__
        run = _run_torch(probe, dataset, worker_init, workers, calls, seed, timeout)
    last = {worker.id: worker for worker in run}  # each worker's last: all its calls
    return _report(dict(sorted(last.items())), dataset, parameters)


def _report(results: dict[int, _Worker], dataset: Any, parameters: dict[str, Any]) -> Report:
    ids, calls = sorted(results), parameters["calls"]
    findings = [
        Finding(
            path=f"workers {a} and {b}",
            mismatched=calls,
            total=calls,
            locations=(Location((), results[a].first, results[b].first),),
            problem=f"drew the same {calls} values: one RNG stream, copied into both",
        )
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
        if results[a].digests == results[b].digests
    ]
    drew = sorted(set().union(*(w.drew for w in results.values())))
    varies = any(len(set(w.digests)) > 1 for w in results.values())
    inconclusive = ""
    if findings and not varies and (calls > 1 or not drew):
        kind = None if drew else "constant" if calls > 1 else "one_call"
        fields = {"drew": _names(drew), "shown": safe_repr(results[ids[0]].first), "calls": calls}
        inconclusive = say("worker_randomness", Cause.NO_DRAWS, kind, **fields).text
        findings = []
    words = say("worker_randomness", Cause.SHARED_RNG, "torch" if dataset is not None else None)
    return Report(
        check="worker_randomness",
        cause=Cause.NO_DRAWS if inconclusive else Cause.SHARED_RNG,
        parameters=parameters,
        findings=tuple(findings),
        inconclusive=inconclusive,
        reason=words.text,
        hint=words.hint,
        notes=tuple(_notes(results, drew, dataset, parameters["workers"], bool(findings))),
        columns=("first value, first worker", "second worker"),
        summary=say("worker_randomness", "passed", workers=parameters["workers"]).text,
    )


def _notes(
    results: dict[int, _Worker], drew: list[str], dataset: Any, workers: int, failed: bool
) -> list[str]:
    """What the workers were, and which RNGs fn drew from, each copied or reseeded."""

    def note(kind: str, **fields: Any) -> str:
        return say("worker_randomness", "note", kind, **fields).text

    notes = []
    if dataset is not None:
        names = sorted({name for w in results.values() for name in w.before})
        _, reseeded = _starts(results, [n for n in names if n.endswith(" (global)")])
        notes.append(
            note(
                "dataloader" if reseeded else "dataloader_unseeded",
                workers=workers,
                dataset=type(dataset).__name__,
                reseeded=_names(reseeded),
            )
        )
    if drew:
        copied, reseeded = _starts(results, drew)
        kind = "drew"
        if copied:
            kind += "_copied"
        if reseeded:
            kind += "_reseeded"
        notes.append(
            note(kind, drew=_names(drew), copied=_names(copied), reseeded=_names(reseeded))
        )
    reseeds = [name for name in drew if name.endswith(" (global)")]
    if failed and dataset is None and reseeds and "torch" in sys.modules:
        notes.append(note("not_dataloader", reseeds=_names(reseeds)))
    return notes


assert_worker_randomness = asserting(check_worker_randomness)
