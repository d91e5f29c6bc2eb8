"""Do worker processes draw different random numbers?

A worker process made by ``fork`` starts with a copy of its parent's numpy
global RNG. Unless something reseeds it per worker, every worker draws the
same "random" augmentations (pytorch/pytorch#5059; Keras 3's PyDataset pool
passes no seed to its workers). This runs ``fn`` in several forked processes,
the way a pool of workers would, and compares what they drew.
"""

from __future__ import annotations

import pickle
import queue
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._report import Finding, Location, Report, SharedRngError
from pitfalls._sources import add_note
from pitfalls._tree import as_array


def _worker(
    fn: Callable[[], Any],
    worker_init: Callable[[int], Any] | None,
    worker_id: int,
    calls: int,
    out: Any,
) -> None:
    try:
        if worker_init is not None:
            worker_init(worker_id)
        values = [np.array(as_array(fn(), "fn()"), copy=True) for _ in range(calls)]
        out.put((worker_id, values, None))
    except BaseException as exc:  # reported in the parent, as itself where it pickles
        try:
            pickle.dumps(exc)
            error: BaseException = exc
        except Exception:
            error = RuntimeError(f"{type(exc).__name__}: {exc}")
        out.put((worker_id, None, error))


def _first(value: np.ndarray) -> Any:
    return value.ravel()[0] if value.size else None


def _collect(procs: list[Any], out: Any, timeout: float | None) -> dict[int, list[np.ndarray]]:
    """Each worker's values; TimeoutError naming the workers still silent at the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    results: dict[int, list[np.ndarray]] = {}
    while len(results) < len(procs):
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            worker_id, values, error = out.get(timeout=wait)
        except queue.Empty:
            silent = [w for w in range(len(procs)) if w not in results]
            names = ", ".join(map(str, silent))
            raise TimeoutError(
                f"worker{'s' if len(silent) > 1 else ''} {names} did not return within"
                f" timeout={timeout:g} s: fn or worker_init hangs in a forked process (a lock"
                " held at fork, a thread pool that did not survive the fork, a queue);"
                " the workers were terminated"
            ) from None
        if error is not None:
            add_note(error, f"pitfalls: raised by fn or worker_init in worker {worker_id}")
            raise error
        results[worker_id] = values
    return results


def check_worker_randomness(
    fn: Callable[[], Any],
    *,
    workers: int = 2,
    calls: int = 3,
    worker_init: Callable[[int], Any] | None = None,
    seed: int | None = 0,
    timeout: float | None = 60.0,
) -> Report:
    """Call ``fn()`` ``calls`` times in each of ``workers`` forked processes; fail on repeats.

    ``fn`` draws randomness as your pipeline does (an augmentation of a fixed
    input, say). ``worker_init(worker_id)``, if given, runs first in each
    worker, as a DataLoader's ``worker_init_fn`` or a pool initializer would.
    Fails when two workers produce the same sequence of values: they share
    one RNG stream. Before forking, numpy's global RNG is seeded with
    ``seed``, as reproducible training code does (``None``: fork with the
    state as it is); the caller's RNG state is restored afterwards. A worker
    that has not returned ``timeout`` seconds after the fork raises
    ``TimeoutError`` naming it. Needs the ``fork`` start method (Linux, macOS).
    """
    fn = validate.function("fn", fn)
    worker_init = validate.optional_function("worker_init", worker_init)
    workers = validate.integer(
        "workers", workers, minimum=2, why="two workers are needed to compare their draws"
    )
    calls = validate.integer("calls", calls, minimum=1)
    if seed is not None:
        seed = validate.seed("seed", seed)
    timeout = validate.timeout("timeout", timeout)
    import multiprocessing  # here, not at import: it costs import pitfalls ~10 ms

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("check_worker_randomness needs the 'fork' start method") from None
    saved = np.random.get_state()
    if seed is not None:
        np.random.seed(seed)
    out = context.Queue()
    procs = [
        context.Process(target=_worker, args=(fn, worker_init, w, calls, out), daemon=True)
        for w in range(workers)
    ]
    answered = False
    try:
        for p in procs:
            p.start()
        results = _collect(procs, out, timeout)
        answered = True
    finally:
        np.random.set_state(saved)
        for p in procs:
            if answered and p.is_alive():  # it has sent its values and is exiting
                p.join(timeout=0.5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1)
        out.close()
    findings = []
    for a in range(workers):
        for b in range(a + 1, workers):
            if all(
                np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
                for x, y in zip(results[a], results[b])
            ):
                findings.append(
                    Finding(
                        path=f"workers {a} and {b}",
                        mismatched=calls,
                        total=calls,
                        locations=(
                            Location(
                                (),
                                _first(results[a][0]),
                                _first(results[b][0]),
                            ),
                        ),
                        problem=f"drew the same {calls} values: one RNG stream, copied into both",
                    )
                )
    parameters: dict[str, Any] = {"workers": workers, "calls": calls, "seed": seed}
    if worker_init is not None:
        parameters["worker_init"] = worker_init
    return Report(
        check="worker_randomness",
        parameters=parameters,
        findings=tuple(findings),
        reason=(
            "Forked workers drew identical random numbers: each inherited its parent's RNG"
            " state and nothing reseeded it, so every worker repeats the same augmentations."
        ),
        hint=(
            "seed each worker differently: np.random.seed / default_rng from"
            " np.random.SeedSequence(seed).spawn(workers)[worker_id] in a worker_init_fn or"
            " pool initializer, or derive the RNG from the batch index."
        ),
        columns=("worker a, first value", "worker b"),
        summary=f"{workers} workers drew {workers} different sequences",
    )


def assert_worker_randomness(
    fn: Callable[[], Any],
    *,
    workers: int = 2,
    calls: int = 3,
    worker_init: Callable[[int], Any] | None = None,
    seed: int | None = 0,
    timeout: float | None = 60.0,
    msg: str | None = None,
) -> None:
    """Fail when forked workers draw the same randomness. See :func:`check_worker_randomness`."""
    __tracebackhide__ = True
    report = check_worker_randomness(
        fn,
        workers=workers,
        calls=calls,
        worker_init=worker_init,
        seed=seed,
        timeout=timeout,
    )
    if not report.ok:
        raise SharedRngError(report, msg)
