"""PyTorch: loaders, datasets, tensors and generators, never importing torch."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls._frameworks.base import is_a, moved, private

_POOL = private("torch.utils.data.DataLoader._iterator")


def is_loader(obj: Any) -> bool:
    """A ``torch.utils.data.DataLoader`` (or a subclass)."""
    return is_a(obj, "torch.utils.data", "DataLoader")


def is_dataset(obj: Any) -> bool:
    """A ``torch.utils.data.Dataset`` (map-style or iterable)."""
    return is_a(obj, "torch.utils.data", "Dataset")


def is_iterable_dataset(obj: Any) -> bool:
    return is_a(obj, "torch.utils.data", "IterableDataset")


def is_tensor(obj: Any) -> bool:
    return is_a(obj, "torch", "Tensor")


def global_generator() -> Any:
    """torch's default generator, or None when torch is not imported."""
    torch = sys.modules.get("torch")
    return getattr(torch, "default_generator", None)


def workers(loader: Any) -> int:
    """A DataLoader's worker processes (0 for one that reads in this process, or no loader)."""
    if not is_loader(loader):
        return 0
    n = getattr(loader, "num_workers", 0)
    return n if isinstance(n, int) and n > 0 else 0


def persistent(loader: Any) -> bool:
    """A DataLoader that keeps its worker processes (and their copies of the dataset) from
    one epoch to the next."""
    return is_loader(loader) and getattr(loader, "persistent_workers", False) is True


def iterable_workers(loader: Any) -> int:
    """Worker processes of a DataLoader that each read an ``IterableDataset`` (else 0)."""
    n = workers(loader)
    return n if n > 1 and is_iterable_dataset(getattr(loader, "dataset", None)) else 0


def is_sequential(sampler: Any) -> bool:
    """A ``torch.utils.data.SequentialSampler``: indices in stored order."""
    return is_a(sampler, "torch.utils.data", "SequentialSampler")


def sampler_orders(loader: Any, limit: int = 100_000) -> tuple[list[int], list[int]] | None:
    """The indices a map-style DataLoader's sampler gives two epochs running (iterated
    twice now, as two epochs would: the caller puts back the generators it drew from),
    or None when it has none to give (an IterableDataset, a sampler that fails)."""
    if not is_loader(loader) or is_iterable_dataset(getattr(loader, "dataset", None)):
        return None
    sampler: Any = getattr(loader, "sampler", None)
    try:
        return tuple(  # type: ignore[return-value]
            [int(i) for _, i in zip(range(limit), iter(sampler))] for _ in range(2)
        )
    except Exception:  # a sampler of keys, or one that fails outside a loader: no evidence
        return None


def order_generators(loader: Any) -> list[Any]:
    """A DataLoader's generators that draw only orders and worker seeds: its own
    ``generator`` and its sampler's (``RandomSampler`` draws again as its epoch ends)."""
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    found = [getattr(obj, "generator", None) for obj in (loader, sampler, batch_sampler)]
    return [g for g in found if g is not None]


def pool(loader: Any) -> Any:
    """The worker pool a persistent DataLoader holds now (None if none)."""
    try:
        return loader._iterator
    except AttributeError as exc:
        if is_loader(loader):
            moved(_POOL, exc)
        return None


def stop_pool(loader: Any, before: Any) -> None:
    """Stop the workers of the pool the loader holds, when the check started it (it is not
    ``before``): left to the garbage collector, they may be shut down in a forked child."""
    started = pool(loader)
    if started is None or started is before:
        return
    try:
        started._shutdown_workers()
        loader._iterator = None
    except Exception as exc:
        moved(_POOL, exc)


def single_process(loader: Any) -> tuple[Any, int]:
    """(a copy of a DataLoader with worker processes, with ``num_workers=0``, its worker
    count); (None, 0) for anything else."""
    n = workers(loader)
    if not n:
        return None, 0
    try:
        dup: Any = copy.copy(loader)
        dup.num_workers = 0
        dup._iterator = None  # a persistent worker pool stays with the original
    except Exception:  # a subclass that refuses: diagnose the loader as it is
        return None, 0
    return dup, n


def as_array(tensor: Any, *, bits: bool = False) -> np.ndarray | None:
    """A tensor's contents as numpy: a view of a CPU tensor (read through ``detach()``),
    a copy of one on a device, float32 for a dtype numpy lacks (bfloat16, exactly widened);
    None for anything else.

    ``bits``: a CPU tensor's memory bit for bit (bfloat16 as its 16-bit pattern), a view
    where torch gives one; None on a device (a copy would show nothing).
    """
    if not is_tensor(tensor):
        return None
    try:
        t = tensor.detach()
        if t.device.type != "cpu" and bits:
            return None
        try:
            return np.asarray(t.cpu().numpy())
        except TypeError:  # bfloat16 and other dtypes numpy has no name for
            if not bits:
                return np.asarray(t.float().cpu().numpy())
            int16 = sys.modules["torch"].int16  # its bits, 2 bytes each
            return np.asarray(t.view(int16).numpy()) if t.element_size() == 2 else None
    except Exception:  # a sparse or meta tensor: no witness
        return None


def tensor_like(array: np.ndarray, original: Any) -> Any:
    """``array`` as a tensor of ``original``'s dtype and device."""
    return sys.modules["torch"].as_tensor(array, dtype=original.dtype, device=original.device)


# Running a function in a DataLoader's worker processes (check_worker_randomness) -------


def worker_loader(
    dataset: Any,
    collate: Callable[[list[Any]], Any],
    workers: int,
    batches: int,
    worker_init: Callable[[int], Any] | None,
    seed: int | None,
    timeout: float | None,
) -> Any:
    """A DataLoader over ``dataset`` whose ``workers`` forked workers each call ``collate``
    on empty batches (``batches`` in all; the dataset itself is not read), with
    ``worker_init_fn=worker_init`` and its ``generator`` seeded with ``seed``. A
    ValueError when torch is not installed (the workers were asked for with ``dataset=``)."""
    try:
        import torch
        from torch.utils.data import DataLoader
    except ImportError:
        raise ValueError(
            "dataset= runs the workers as a torch DataLoader's, and torch is not"
            " installed: pip install torch, or leave dataset= out for plain forked workers"
        ) from None
    return DataLoader(
        _as_map_style(dataset),
        batch_sampler=[[] for _ in range(batches)],
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=worker_init,
        generator=None if seed is None else torch.Generator().manual_seed(seed),
        multiprocessing_context="fork",
        timeout=0 if timeout is None else timeout,
    )


def worker_id() -> int:
    """The id of the DataLoader worker this runs in (-1 in none)."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return -1 if info is None else int(info.id)


def first_sample(dataset: Any) -> Callable[[], Any]:
    """What a worker reads first: ``dataset[0]``, or an IterableDataset's first item."""
    if is_iterable_dataset(dataset):
        return lambda: next(iter(dataset))
    return lambda: dataset[0]


def _as_map_style(dataset: Any) -> Any:
    """``dataset`` as DataLoader may read it by (empty) batches of indices: itself, or for
    an ``IterableDataset`` a map-style stand-in whose attributes are the dataset's own, so
    a ``worker_init_fn`` setting ``get_worker_info().dataset.start`` sets the real one
    (never indexed: every batch is empty, and DataLoader does not ask its length)."""
    from torch.utils.data import Dataset

    if not is_iterable_dataset(dataset):
        return dataset

    class StandIn(Dataset):
        def __init__(self, target: Any) -> None:
            object.__setattr__(self, "_target", target)

        def __getattr__(self, name: str) -> Any:
            return getattr(object.__getattribute__(self, "_target"), name)

        def __setattr__(self, name: str, value: Any) -> None:
            setattr(object.__getattribute__(self, "_target"), name, value)

    return StandIn(dataset)
