"""Beyond the article: PyTorch's DataLoader, the pitfalls its users report.

What is seen. Each comes from PyTorch's issue tracker: an epoch twice as long as
the dataset; every epoch in the same order though ``set_epoch`` is called; each
worker adding the same "random" noise; batches that turn into later batches.
Each DataLoader worker is a forked copy of the dataset, and collation and
shared memory decide what is copied:

* an ``IterableDataset`` is iterated whole by every worker unless it shards
  itself with ``get_worker_info()``;
* ``set_epoch`` writes the epoch on the main process's dataset, which persistent
  workers never see again;
* a ``numpy.random.Generator`` made in ``__init__`` is copied, state and all,
  into every worker (PyTorch reseeds only the global RNGs);
* ``batch_size=None`` hands out the dataset's own buffer, and a ``collate_fn``
  that writes into one tensor it keeps hands out that tensor, every batch.

The invariants. An epoch delivers every sample exactly once; consecutive epochs
come in different orders; workers draw different numbers; a batch handed out
never changes.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import loaders
from tests.lessons import Pitfall, buggy, fixed

PITFALL = Pitfall(
    title="8. PyTorch DataLoader workers",
    invariant="every sample once per epoch, a new order each epoch, a stream per worker,"
    " batches that never change",
    read_more="docs/how-to/pytorch.md",
    pairs=loaders.PAIRS,
)

DATA = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)


def row_means(x):
    return np.asarray(x).mean(axis=1)


@pytest.mark.parametrize(
    "make", buggy(loaders.iterable_unsharded) + fixed(loaders.iterable_sharded)
)
def test_an_iterable_dataset_is_read_once_per_epoch_only_when_sharded(torch, make):
    report = pitfalls.check_epoch_complete(make(DATA, num_workers=2), DATA)
    PITFALL.expect(report, make, Cause.SAMPLES_TWICE)  # each of 2 workers yields the whole stream


@pytest.mark.parametrize(
    "make", buggy(loaders.epoch_on_dataset) + fixed(loaders.epoch_in_shared_memory)
)
def test_persistent_workers_see_the_epoch_only_in_shared_memory(torch, make):
    report = pitfalls.check_order_shuffled(make(DATA, num_workers=2))
    PITFALL.expect(report, make, Cause.SAME_ORDER)


@pytest.mark.parametrize(
    "make", buggy(loaders.rng_copied_into_workers) + fixed(loaders.rng_seeded_per_worker)
)
def test_a_generator_made_in_init_must_be_reseeded_in_each_worker(torch, make):
    loader = make(DATA)
    dataset = loader.dataset  # the workers' copies of it augment each sample they read
    report = pitfalls.check_worker_randomness(
        lambda: dataset[0][0], worker_init=loader.worker_init_fn, dataset=dataset
    )
    PITFALL.expect(report, make, Cause.SHARED_RNG)


@pytest.mark.parametrize(
    "make",
    buggy(loaders.buffer_on_dataset, loaders.collate_into_one_buffer)
    + fixed(loaders.fresh_tensor_per_batch, loaders.collate_fresh),
)
def test_a_batch_handed_out_never_changes(torch, make):
    report = pitfalls.check_generator_no_aliasing(make(DATA), draws=8)
    PITFALL.expect(report, make, Cause.BATCH_CHANGED)
    if report.ok:  # a fix: its targets right, and read again, each epoch the same
        pitfalls.assert_targets_match(make(DATA), row_means, draws=8)
        pitfalls.assert_epoch_repeatable(make(DATA))
