"""Beyond the article: PyTorch's ``DataLoader``, the pitfalls its users report.

Every reproduction takes ``(data, *, batch_size, num_workers, seed)``, where
``data`` holds one sample per row (float32, shape ``(n, features)``), and
returns what a training loop iterates: a ``torch.utils.data.DataLoader``, or,
for the per-epoch state, an :class:`Epochs` whose every ``iter()`` is the next
epoch. A batch is PyTorch's default ``[inputs, targets]`` (a list), the
targets being each row's mean, so the checkers read it by the batch
convention. ``seed`` seeds the loader's ``generator``: the worker seeds, and
so every run, are reproducible.

torch is imported inside the functions; importing this module does not import
it. The ``IterableDataset`` subclasses are made on first use (they need torch)
and live in this module, so that spawned workers can unpickle them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

_STREAMS = ("Stream", "ShardedStream", "EpochStream", "SharedEpochStream")


def __getattr__(name: str) -> Any:  # the IterableDataset subclasses, made when first needed
    if name in _STREAMS:
        _define_streams()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stream(name: str) -> Any:
    return __getattr__(name)


def _define_streams() -> None:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class Stream(IterableDataset):
        """The rows of ``data`` in order, as ``(row, row.mean())`` samples."""

        def __init__(self, data: np.ndarray) -> None:
            self.data = data

        def rows(self) -> Any:
            return range(len(self.data))

        def __iter__(self) -> Iterator[Any]:
            for i in self.rows():
                yield self.data[i], self.data[i].mean()

    class ShardedStream(Stream):
        """Each worker reads every ``num_workers``-th row, from its own id."""

        def rows(self) -> Any:
            info = get_worker_info()
            if info is None:  # num_workers=0: the main process reads everything
                return range(len(self.data))
            return range(info.id, len(self.data), info.num_workers)

    class EpochStream(Stream):
        """Shuffled anew each epoch from ``seed`` and the epoch set by ``set_epoch``; sharded."""

        def __init__(self, data: np.ndarray, seed: int = 0) -> None:
            super().__init__(data)
            self.seed, self.epoch = seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def current_epoch(self) -> int:
            return self.epoch

        def rows(self) -> Any:
            order = np.random.default_rng([self.seed, self.current_epoch()])
            rows = order.permutation(len(self.data))
            info = get_worker_info()
            return rows if info is None else rows[info.id :: info.num_workers]

    class SharedEpochStream(EpochStream):
        """The epoch lives in shared memory, which forked and spawned workers map too."""

        def __init__(self, data: np.ndarray, seed: int = 0) -> None:
            super().__init__(data, seed)
            self.shared = torch.zeros((), dtype=torch.int64).share_memory_()

        def set_epoch(self, epoch: int) -> None:
            self.shared.fill_(epoch)

        def current_epoch(self) -> int:
            return int(self.shared)

    for cls in (Stream, ShardedStream, EpochStream, SharedEpochStream):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
        globals()[cls.__name__] = cls


def _loader(dataset: Any, seed: int, **options: Any) -> Any:
    """A ``DataLoader`` whose ``generator`` is seeded: reproducible worker seeds and order."""
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(dataset, generator=torch.Generator().manual_seed(seed), **options)


# An IterableDataset under several workers (pytorch/pytorch#30599) -------------------


def iterable_unsharded(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Any:
    """BUGGY: an ``IterableDataset`` that yields every row, read by ``num_workers`` workers.

    Symptom: with two workers each sample arrives twice per epoch and the epoch
    is twice as long; nothing warns (pytorch/pytorch#30599). Cause: each
    worker gets its own copy of the dataset and iterates all of it; PyTorch
    splits indices among workers only for map-style datasets. Fix: shard by
    ``torch.utils.data.get_worker_info()`` in ``__iter__`` (:func:`iterable_sharded`).
    """
    return _loader(
        _stream("Stream")(data),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
    )


def iterable_sharded(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Any:
    """FIXED: each worker yields the rows ``worker_id, worker_id + num_workers, ...``.

    Symptom: none; every sample exactly once per epoch (batches interleave the workers).
    """
    return _loader(
        _stream("ShardedStream")(data),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
    )


# Per-epoch state under persistent_workers=True (pytorch/pytorch#97326) ---------------


class Epochs:
    """A training loop's epochs over ``loader``: each ``iter()`` is the next epoch.

    As a loop over epochs does: ``loader.dataset.set_epoch(epoch)``, then
    ``iter(loader)``. Checkers that read two epochs call ``iter`` twice.
    """

    def __init__(self, loader: Any) -> None:
        self.loader, self.epoch = loader, 0

    def __iter__(self) -> Iterator[Any]:
        self.loader.dataset.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


def epoch_on_dataset(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Epochs:
    """BUGGY: ``set_epoch`` writes the epoch on the dataset; the workers are persistent.

    Symptom: every epoch repeats the first one's order (and its augmentation),
    though the loop calls ``set_epoch`` every epoch (pytorch/pytorch#97326).
    Cause: with ``persistent_workers=True`` each worker keeps the copy of the
    dataset it got when it started; an attribute set later in the main process
    never reaches it. Fix: keep per-epoch state in shared memory
    (:func:`epoch_in_shared_memory`), in the sampler (which runs in the main
    process), or drop ``persistent_workers``.
    """
    loader = _loader(
        _stream("EpochStream")(data, seed),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    return Epochs(loader)


def epoch_in_shared_memory(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Epochs:
    """FIXED: the epoch is a tensor in shared memory (``share_memory_()``), read by the workers.

    Symptom: none; each epoch has its own order, workers stay persistent.
    """
    loader = _loader(
        _stream("SharedEpochStream")(data, seed),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    return Epochs(loader)


# A numpy Generator made in __init__, copied into every worker -----------------------


class NoisyRows:
    """A map-style dataset: row i plus Gaussian noise from the dataset's own ``self.rng``."""

    def __init__(self, data: np.ndarray, seed: int = 0) -> None:
        self.data, self.rng = data, np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[np.ndarray, Any]:
        x = self.data[i]
        noise = self.rng.normal(scale=0.1, size=x.shape).astype(x.dtype)
        return x + noise, x.mean()


def reseed_dataset_rng(worker_id: int) -> None:
    """A ``worker_init_fn``: give this worker's copy of the dataset its own RNG.

    ``info.seed`` is PyTorch's seed for this worker: distinct per worker, new
    every epoch (drawn from the loader's ``generator``), reproducible.
    """
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info is not None:
        dataset: Any = info.dataset  # this worker's copy
        dataset.rng = np.random.default_rng(info.seed)


def rng_copied_into_workers(
    data: np.ndarray,
    *,
    batch_size: int = 4,
    num_workers: int = 2,
    seed: int = 0,
    persistent_workers: bool = False,
) -> Any:
    """BUGGY: the augmentation draws from ``np.random.default_rng(seed)`` made in ``__init__``.

    Symptom: every worker adds the same noise: worker 1's k-th batch is
    augmented exactly as worker 0's k-th batch, so an epoch holds each
    "random" augmentation ``num_workers`` times. Cause: each worker gets a copy
    of the dataset, its Generator's state included; PyTorch reseeds torch,
    ``random`` and numpy's global RNG in each worker, never a Generator you
    own. Fix: reseed it per worker in ``worker_init_fn`` from
    ``get_worker_info().seed`` (:func:`rng_seeded_per_worker`).
    """
    return _loader(
        NoisyRows(data, seed),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=persistent_workers,
    )


def rng_seeded_per_worker(
    data: np.ndarray,
    *,
    batch_size: int = 4,
    num_workers: int = 2,
    seed: int = 0,
    persistent_workers: bool = False,
) -> Any:
    """FIXED: ``worker_init_fn=reseed_dataset_rng`` gives each worker its own stream.

    Symptom: none; workers augment differently, and differently every epoch
    (``persistent_workers=True``: each worker's stream goes on across epochs).
    """
    return _loader(
        NoisyRows(data, seed),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=reseed_dataset_rng,
        persistent_workers=persistent_workers,
    )


# batch_size=None over a buffer kept on the dataset ---------------------------------


class BatchRows:
    """A dataset of whole batches: index i is rows ``i * batch_size ...`` as a tensor pair."""

    def __init__(self, data: np.ndarray, batch_size: int, reuse: bool) -> None:
        self.data, self.batch_size, self.reuse = data, batch_size, reuse
        self.buffer = np.empty((batch_size, *data.shape[1:]), dtype=data.dtype)

    def __len__(self) -> int:
        return len(self.data) // self.batch_size

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        rows = self.data[i * self.batch_size : (i + 1) * self.batch_size]
        if self.reuse:
            np.copyto(self.buffer, rows)
            x = torch.from_numpy(self.buffer)  # shares the buffer's memory
        else:
            x = torch.from_numpy(rows.copy())
        return x, x.mean(dim=1)


def buffer_on_dataset(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 0, seed: int = 0
) -> Any:
    """BUGGY: ``batch_size=None`` over a dataset that refills one buffer per batch.

    Symptom: every batch a consumer still holds turns into the newest one:
    inputs from batch i+k beside batch i's targets (the article's first
    pitfall, in PyTorch). Cause: ``batch_size=None`` turns collation, which
    copies, off; ``torch.from_numpy`` shares the buffer. Fix: return fresh
    memory per batch (:func:`fresh_tensor_per_batch`).
    """
    return _loader(
        BatchRows(data, batch_size, reuse=True),
        seed,
        batch_size=None,
        num_workers=num_workers,
    )


def fresh_tensor_per_batch(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 0, seed: int = 0
) -> Any:
    """FIXED: each batch is a tensor over its own copy of the rows.

    Symptom: none.
    """
    return _loader(
        BatchRows(data, batch_size, reuse=False),
        seed,
        batch_size=None,
        num_workers=num_workers,
    )


# A collate_fn that reuses its output tensor ----------------------------------------


class Rows:
    """A map-style dataset: ``(row, row.mean())`` for row i of ``data``."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[np.ndarray, Any]:
        return self.data[i], self.data[i].mean()


class CollateIntoBuffer:
    """A ``collate_fn`` stacking the samples' inputs into one preallocated tensor."""

    def __init__(self, reuse: bool) -> None:
        self.reuse = reuse
        self.buffer: Any = None

    def __call__(self, samples: list[tuple[np.ndarray, Any]]) -> list[Any]:
        import torch

        x = torch.from_numpy(np.stack([s[0] for s in samples]))
        y = torch.tensor(np.array([s[1] for s in samples]))
        if not self.reuse:
            return [x, y]
        if self.buffer is None or self.buffer.shape != x.shape:
            self.buffer = torch.empty_like(x)
        self.buffer.copy_(x)
        return [self.buffer, y]


def collate_into_one_buffer(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Any:
    """BUGGY: a ``collate_fn`` that writes every batch into one tensor it keeps.

    Symptom: batches already handed out change, even with worker processes:
    after an epoch every batch from worker w holds w's last batch. Cause:
    with ``num_workers=0`` the loop gets the buffer itself; with workers,
    sending a tensor to the main process moves its storage to shared memory,
    so the main process gets a view of the worker's buffer, which the worker
    refills for its next batch. Fix: allocate in ``collate_fn``
    (:func:`collate_fresh`).
    """
    return _loader(
        Rows(data),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=CollateIntoBuffer(reuse=True),
    )


def collate_fresh(
    data: np.ndarray, *, batch_size: int = 8, num_workers: int = 2, seed: int = 0
) -> Any:
    """FIXED: the same ``collate_fn`` allocating a new tensor per batch.

    Symptom: none.
    """
    return _loader(
        Rows(data),
        seed,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=CollateIntoBuffer(reuse=False),
    )


PAIRS = (
    (iterable_unsharded, iterable_sharded),
    (epoch_on_dataset, epoch_in_shared_memory),
    (rng_copied_into_workers, rng_seeded_per_worker),
    (buffer_on_dataset, fresh_tensor_per_batch),
    (collate_into_one_buffer, collate_fresh),
)
"""Each buggy reproduction beside its fix, with identical signatures."""
