"""Do worker processes draw different random numbers?

A worker process made by ``fork`` starts with a copy of its parent's numpy
global RNG. Unless something reseeds it per worker, every worker draws the
same "random" augmentations (pytorch/pytorch#5059; Keras 3's PyDataset pool
passes no seed to its workers). This runs ``fn`` in several forked processes,
the way a pool of workers would, and compares what they drew.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls._report import Finding, Report, WorkerRandomnessError
from pitfalls._tree import as_array


def _worker(
    fn: Callable[[], Any],
    worker_init: Callable[[int], Any] | None,
    worker_id: int,
    draws: int,
    out: Any,
) -> None:
    try:
        if worker_init is not None:
            worker_init(worker_id)
        values = [np.array(as_array(fn(), "fn()"), copy=True) for _ in range(draws)]
        out.put((worker_id, values, None))
    except BaseException as exc:  # reported in the parent
        out.put((worker_id, None, f"{type(exc).__name__}: {exc}"))


def _first(value: np.ndarray) -> Any:
    return value.ravel()[0] if value.size else None


def check_worker_randomness(
    fn: Callable[[], Any],
    *,
    workers: int = 2,
    draws: int = 3,
    worker_init: Callable[[int], Any] | None = None,
    seed_parent: int | None = 0,
    timeout: float = 60.0,
) -> Report:
    """Run ``fn()`` ``draws`` times in each of ``workers`` forked processes; fail on repeats.

    ``fn`` draws randomness as your pipeline does (an augmentation of a fixed
    input, say). ``worker_init(worker_id)``, if given, runs first in each
    worker, as a DataLoader's ``worker_init_fn`` or a pool initializer would.
    Fails when two workers produce the same sequence of values: they share
    one RNG stream. Before forking, numpy's global RNG is seeded with
    ``seed_parent``, as reproducible training code does (``None``: fork with
    the state as it is); the caller's RNG state is restored afterwards. Needs
    the ``fork`` start method (Linux, macOS).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__qualname__}")
    if worker_init is not None and not callable(worker_init):
        raise TypeError(f"worker_init must be callable, got {type(worker_init).__qualname__}")
    for name, value in (("workers", workers), ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1")
    if workers < 2:
        raise ValueError(f"workers={workers} must be at least 2 to compare workers")
    import multiprocessing  # here, not at import: it costs import pitfalls ~10 ms

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        raise ValueError("check_worker_randomness needs the 'fork' start method") from None
    saved = np.random.get_state()
    if seed_parent is not None:
        np.random.seed(seed_parent)
    out = context.Queue()
    procs = [
        context.Process(target=_worker, args=(fn, worker_init, w, draws, out), daemon=True)
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    results: dict[int, list[np.ndarray]] = {}
    try:
        for _ in procs:
            worker_id, values, error = out.get(timeout=timeout)
            if error is not None:
                raise RuntimeError(f"fn or worker_init raised in worker {worker_id}: {error}")
            results[worker_id] = values
    finally:
        np.random.set_state(saved)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    findings = []
    for a in range(workers):
        for b in range(a + 1, workers):
            if all(
                np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
                for x, y in zip(results[a], results[b])
            ):
                findings.append(
                    Finding(
                        None,
                        f"workers {a} and {b}",
                        "",
                        draws,
                        draws,
                        (
                            (
                                tuple(),
                                results[a][0].ravel()[:1].tolist(),
                                results[b][0].ravel()[:1].tolist(),
                            ),
                        ),
                        f"drew the same {draws} values: one RNG stream, copied into both",
                    )
                )
    return Report(
        "worker_randomness",
        f"workers={workers}, draws={draws}, seed_parent={seed_parent}"
        + ("" if worker_init is None else f", worker_init={getattr(worker_init, '__name__', '?')}"),
        0,
        tuple(findings),
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
    draws: int = 3,
    worker_init: Callable[[int], Any] | None = None,
    seed_parent: int | None = 0,
    timeout: float = 60.0,
    msg: str | None = None,
) -> None:
    """Fail when forked workers draw the same randomness. See :func:`check_worker_randomness`."""
    __tracebackhide__ = True
    report = check_worker_randomness(
        fn,
        workers=workers,
        draws=draws,
        worker_init=worker_init,
        seed_parent=seed_parent,
        timeout=timeout,
    )
    if not report.ok:
        raise WorkerRandomnessError(report, msg)
