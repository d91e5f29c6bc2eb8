"""Beyond the article: one batch source shared by several workers.

Threads that share an iterator's position must claim a batch in one step. A
read-modify-write split in two lets a second worker move the position in
between: one batch is delivered twice and its neighbour never. To show it
without depending on thread timing, each source's ``next`` is written as
steps, and :func:`round_robin` plays two workers taking turns step by step:
what a thread switch at the worst moment does, every time.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np

Steps = Generator[None, None, Any]


class SharedPositionBatches:
    """BUGGY: batches of ``data`` from a shared position, advanced then read back.

    Symptom: with several workers, some batches arrive twice and others never,
    silently; the epoch still has the right length. Cause: ``position += 1``
    then ``data[position - 1]`` reads shared state twice, so another worker's
    advance in between shifts this worker's batch. Fix: claim the index under
    a lock, once (:class:`LockedPositionBatches`).
    """

    def __init__(self, data: np.ndarray, batch_size: int = 8) -> None:
        self.data, self.batch_size, self.position = data, batch_size, 0

    def steps(self) -> Steps:
        self.position += 1
        yield  # a thread switch here lets another worker advance too
        i = self.position - 1
        yield
        return self.data[i * self.batch_size : (i + 1) * self.batch_size].copy()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return _run(self.steps())


class LockedPositionBatches(SharedPositionBatches):
    """FIXED: the index is claimed under a lock, in one step; the copy happens outside it."""

    def __init__(self, data: np.ndarray, batch_size: int = 8) -> None:
        super().__init__(data, batch_size)
        self.lock = threading.Lock()

    def steps(self) -> Steps:
        with self.lock:
            i = self.position
            self.position += 1
        yield
        return self.data[i * self.batch_size : (i + 1) * self.batch_size].copy()


def _run(steps: Steps) -> Any:
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


def round_robin(source: SharedPositionBatches, batches: int, workers: int = 2) -> list[Any]:
    """Deliver ``batches`` batches from ``workers`` workers that take turns step by step.

    Deterministic: each worker's ``next`` is suspended after every step and
    the workers resume in turn, the interleaving a preemptive scheduler may pick.
    """
    delivered: list[Any] = []
    while len(delivered) < batches:
        count = min(workers, batches - len(delivered))
        running: list[Steps | None] = [source.steps() for _ in range(count)]
        results: list[Any] = [None] * len(running)
        while any(r is not None for r in running):
            for w, steps in enumerate(running):
                if steps is None:
                    continue
                try:
                    next(steps)
                except StopIteration as done:
                    results[w] = done.value
                    running[w] = None
        delivered += results
    return delivered


# Worker processes and numpy's global RNG -------------------------------------------


def augment_with_global_rng(x: np.ndarray) -> np.ndarray:
    """An augmentation drawing from numpy's global RNG, as many pipelines do."""
    return x + np.random.normal(scale=0.1, size=x.shape)


def inherit_parent_rng(worker_id: int) -> None:
    """BUGGY worker initializer: does nothing, so forked workers keep the parent's RNG.

    Symptom: every worker applies the same "random" augmentations, so an
    epoch holds each augmentation once per worker. Cause: ``fork`` copies the
    global RNG state; Keras 3's PyDataset pool passes no seed (random_seed=None)
    and PyTorch before 1.9 did not reseed numpy. Fix: seed per worker
    (:func:`seed_per_worker`).
    """


def seed_per_worker(worker_id: int) -> None:
    """FIXED worker initializer: a distinct, reproducible stream per worker."""
    seed = np.random.SeedSequence(0).spawn(worker_id + 1)[worker_id]
    np.random.seed(seed.generate_state(1)[0])


PAIRS = (
    (SharedPositionBatches, LockedPositionBatches),
    (inherit_parent_rng, seed_per_worker),
)
