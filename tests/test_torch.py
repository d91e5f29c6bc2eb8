"""PyTorch's DataLoader, checked as a user would check theirs.

First, correct loaders nobody here wrote (``TensorDataset``, default collate,
``shuffle=True``, a dict ``collate_fn``): every check passes. Then the
pitfalls PyTorch users report, reproduced buggy and fixed in
:mod:`pitfalls.reproductions.loaders`, each caught by the checker that fits,
for the right reason. Loaders with ``num_workers=2`` fork two processes
(about 0.1 s each here); they are few, and seeded through the loader's
``generator``, so every run delivers the same batches.
"""

from __future__ import annotations

import gc
import multiprocessing

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import loaders

DATA = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _one_intra_op_thread(torch):
    # On a busy 2-core machine torch's thread pool turns a BatchNorm1d forward of
    # 8 rows from 0.1 ms into 100 ms; these tensors are tiny, one thread is plenty.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _shut_down_lingering_workers():
    # Until checkers let go of the loaders they stop reading (see the last test), a
    # failed check keeps its workers alive in a reference cycle; collect it here, at
    # a safe moment, not inside another loader's next batch (a 20 s stall).
    yield
    if multiprocessing.active_children():
        gc.collect()


def row_means(x):
    return np.asarray(x).mean(axis=1)


@pytest.fixture(scope="module")
def tensor_dataset(torch):
    from torch.utils.data import TensorDataset

    return TensorDataset(torch.from_numpy(DATA), torch.from_numpy(row_means(DATA)))


def seeded(torch, seed=0):
    return torch.Generator().manual_seed(seed)


# Correct loaders: no false alarm -------------------------------------------------


def test_a_shuffled_map_style_loader_passes_every_check(torch, tensor_dataset):
    from torch.utils.data import DataLoader

    loader = DataLoader(tensor_dataset, batch_size=8, shuffle=True, generator=seeded(torch))
    batch = next(iter(loader))
    assert type(batch) is list and len(batch) == 2  # default collate: [inputs, targets]
    reports = pitfalls.assert_source(loader, row_means, draws=8, shuffled=True)
    assert [r.check for r in reports] == [
        "generator_no_aliasing",
        "targets_match",
        "epoch_repeatable",
        "order_shuffled",
    ]
    pitfalls.assert_epoch_complete(loader, DATA)


def test_without_shuffle_every_epoch_has_the_same_order(torch, tensor_dataset):
    """The fix is named in DataLoader terms (it was a hand-written loader's __iter__)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(tensor_dataset, batch_size=8)  # shuffle=False, the default
    pitfalls.assert_epoch_repeatable(loader)
    with pytest.raises(
        pitfalls.OrderNotShuffledError, match="epoch 2 repeats epoch 1's order of all 64 samples"
    ):
        pitfalls.assert_order_shuffled(loader)
    assert str(pitfalls.check_order_shuffled(loader)).splitlines() == [
        "order_shuffled(steps_per_epoch=8) failed",
        "Every epoch visits the samples in the same order: its SequentialSampler visits the"
        " indices in stored order (shuffle=False, the default).",
        "Findings:",
        "  sample order, epoch 2: epoch 2 repeats epoch 1's order of all 64 samples",
        "Randomness: the source drew from torch (global) (as epochs started); the epochs were"
        " read as training reads them, nothing reseeded between them, and every generator was"
        " put back afterwards.",
        "Hint: pass shuffle=True to the DataLoader (with generator=torch.Generator()"
        ".manual_seed(seed), made once, for a reproducible order), or give a custom sampler a"
        " torch.Generator made once in __init__ and return iter(torch.randperm(n,"
        " generator=self.generator).tolist()) from __iter__.",
    ]


def test_drop_last_is_named_as_the_cause_of_an_incomplete_epoch(torch, tensor_dataset):
    """Bug: 64 samples in batches of 10, the last 4 dropped, were blamed on workers sharing
    an iterator without a lock. Exactly the remainder missing, nothing twice: drop_last."""
    from torch.utils.data import DataLoader

    def loader(drop_last, shuffle=False):
        return DataLoader(
            tensor_dataset,
            batch_size=10,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=seeded(torch),
        )

    # Shuffled, each epoch leaves out other samples: every one is trained on across epochs.
    shuffled = pitfalls.check_epoch_complete(loader(True, shuffle=True), DATA)
    assert shuffled.status == "passed", str(shuffled)
    assert "drop_last convention" in shuffled.summary
    # In stored order, the same 4 samples are left out of every epoch: never trained on.
    report = pitfalls.check_epoch_complete(loader(True), DATA)
    assert [(f.when, f.mismatched) for f in report.findings] == [("dropped", 64 % 10)]
    text = str(report).splitlines()
    assert text[0] == "epoch_complete(steps_per_epoch=6, samples=64) failed"
    assert text[1] == (
        "An epoch did not deliver every sample: its last, partial batch was dropped"
        " (DataLoader(drop_last=True)), so the samples past the last whole batch are never"
        " trained on in an epoch (other ones each epoch, when it shuffles)."
    )
    assert text[-1] == (
        "Hint: keep the last, smaller batch: DataLoader(..., drop_last=False), the default; or"
        " make the dataset's length a multiple of batch_size if every batch must be full."
    )
    pitfalls.assert_epoch_complete(loader(False), DATA)


def test_epoch_complete_puts_back_every_rng_it_drew_from(torch, tensor_dataset):
    """Bug: check_epoch_complete left torch's and numpy's global generators advanced (a
    shuffling DataLoader draws its permutation from torch's), unlike every other check."""
    import random

    from torch.utils.data import DataLoader

    def states():
        return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()

    before = states()
    loader = DataLoader(tensor_dataset, batch_size=8, shuffle=True)  # torch's global RNG
    pitfalls.assert_epoch_complete(loader, DATA)
    after = states()
    assert torch.equal(before[0], after[0])
    assert np.array_equal(before[1], after[1]) and before[2] == after[2]


# Data written in place, behind a DataLoader ------------------------------------------


def stored_tensor_datasets(torch):
    """A map-style Dataset normalising in place (the bug) or on a copy, and one whose
    samples drift with a counter of its reads."""
    from torch.utils.data import Dataset

    class Normalised(Dataset):
        def __init__(self, x, in_place):
            self.x, self.in_place = x, in_place

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            row = self.x[i]  # a view of the stored tensor
            if self.in_place:
                row -= 0.5  # writes self.x: every epoch shifts it once more
            else:
                row = row - 0.5  # a new tensor
            return row, row.sum()

    class Counting(Normalised):
        reads = 0

        def __getitem__(self, i):
            self.reads += 1
            return self.x[i] + self.reads, self.x[i].sum()

    return Normalised, Counting


def test_a_tensor_written_in_place_behind_a_dataloader_fails_naming_it(torch):
    """Bug: the stored-data witness read numpy arrays only, and the DataLoader's per-epoch
    seed draw passed for augmentation: the torch twin of x /= 255 was "inconclusive"."""
    from torch.utils.data import DataLoader

    normalised, _ = stored_tensor_datasets(torch)

    def loader(in_place):
        return lambda: DataLoader(normalised(torch.from_numpy(DATA.copy()), in_place), batch_size=8)

    before = torch.get_rng_state()
    report = pitfalls.check_epoch_repeatable(loader(in_place=True))
    assert report.status == "failed", str(report)
    # every read, the blame pass's too, put back (a DataLoader draws its seed from torch's)
    assert torch.equal(torch.get_rng_state(), before)
    assert "Stored data written while reading: self.dataset.x (64 of 64 rows)." in report.notes
    assert report.hint.startswith("transform a copy inside the Dataset's __getitem__")
    pitfalls.assert_epoch_repeatable(loader(in_place=False))


def test_index_stable_names_a_stored_tensor_written_in_place(torch):
    """Bug: a Dataset writing its torch tensor in place was judged "state that changes per
    call": the witness of written data read numpy arrays only."""
    normalised, _ = stored_tensor_datasets(torch)
    report = pitfalls.check_index_stable(normalised(torch.from_numpy(DATA.copy()), True), draws=2)
    assert report.status == "failed"
    assert report.notes[0] == "Stored data written while reading: self.x (1 of 64 rows)."
    assert report.reason.startswith("Reading the same index twice gave different batches because")


def test_a_shuffled_loader_over_a_dataset_that_ignores_its_index_is_named_so(torch):
    """Bug (a real project's Dataset): __getitem__ walked a counter, ignoring idx, behind
    DataLoader(shuffle=True); the order repeats, and the report blamed the sampler ("draws
    it from the same seed"), whose order does change. The sampler's two orders are the
    evidence: they differ, so the index is what __getitem__ ignores."""
    from torch.utils.data import DataLoader, Dataset

    class Counting(Dataset):
        def __init__(self):
            self.x = torch.arange(32, dtype=torch.float32).reshape(16, 2)
            self.i = 0

        def __len__(self):
            return 16

        def __getitem__(self, idx):
            self.i = (self.i + 1) % 16
            return self.x[self.i]

    report = pitfalls.check_order_shuffled(
        lambda: DataLoader(Counting(), batch_size=4, shuffle=True)
    )
    assert report.cause == pitfalls.Cause.SAME_ORDER
    assert "does not serve the index it is given" in report.reason
    assert report.hint.startswith("return the sample at idx from __getitem__")


def test_a_dataset_that_counts_its_reads_fails_behind_a_dataloader(torch):
    """Bug: a DataLoader draws from torch's generator as every epoch starts (its workers'
    base seed; RandomSampler its permutation), taken as random augmentation, so a stateful
    Dataset was "inconclusive", never failed. Draws as an epoch starts are its order."""
    from torch.utils.data import DataLoader

    _, counting = stored_tensor_datasets(torch)
    for shuffle in (False, True):
        report = pitfalls.check_epoch_repeatable(
            lambda shuffle=shuffle: DataLoader(
                counting(torch.from_numpy(DATA), False), batch_size=8, shuffle=shuffle
            )
        )
        assert report.status == "failed", str(report)
        assert "torch (global) (as epochs started)" in report.notes[-1]


def test_a_collate_fn_returning_a_dict_is_read_by_its_keys(torch, tensor_dataset):
    from torch.utils.data import DataLoader

    def as_dict(samples):
        return {
            "features": torch.stack([x for x, _ in samples]),
            "label": torch.stack([y for _, y in samples]),
        }

    loader = DataLoader(tensor_dataset, batch_size=8, collate_fn=as_dict)
    pitfalls.assert_source(loader, row_means, draws=8)  # the dict's "label" is the targets
    pitfalls.assert_epoch_complete(loader, DATA)
    with pytest.raises(pitfalls.TargetMismatchError, match=r"batch\['label'\]"):
        pitfalls.assert_targets_match(loader, lambda x: 2 * row_means(x), draws=8)


def test_torch_from_numpy_shares_the_buffer_and_torch_tensor_copies(torch):
    def batches(share):
        buffer = np.zeros((8, 2), dtype=np.float32)
        rng = np.random.default_rng(0)
        while True:
            buffer[:] = rng.normal(size=buffer.shape)
            x = torch.from_numpy(buffer) if share else torch.tensor(buffer)
            yield x, x.mean(dim=1)  # the targets are a new tensor either way

    with pytest.raises(pitfalls.AliasingError, match="share one buffer"):
        pitfalls.assert_generator_no_aliasing(lambda: batches(share=True), draws=4)
    with pytest.raises(pitfalls.TargetMismatchError, match="after later draws"):
        pitfalls.assert_targets_match(lambda: batches(share=True), row_means, draws=4)
    pitfalls.assert_source(lambda: batches(share=False), row_means, draws=4)


def test_a_loader_shorter_than_draws_is_read_into_its_next_epoch(torch, tensor_dataset):
    # A user's first call, with the defaults: 16 draws from a loader of 8 batches.
    # Like Keras' PyDataset, a re-iterable source with a length should be read on
    # into its next epoch (iter() again), not rejected as too short.
    from torch.utils.data import DataLoader

    loader = DataLoader(tensor_dataset, batch_size=8, shuffle=True, generator=seeded(torch))
    pitfalls.assert_source(loader, row_means, shuffled=True)


# The pitfalls PyTorch users report -----------------------------------------------


def test_an_iterable_dataset_is_read_whole_by_every_worker(torch):
    # pytorch/pytorch#30599: with two workers, each sample twice per epoch
    with pytest.raises(
        pitfalls.EpochIncompleteError, match="64 extra deliveries of 64 samples"
    ) as excinfo:
        pitfalls.assert_epoch_complete(loaders.iterable_unsharded(DATA, num_workers=2), DATA)
    assert [f.when for f in excinfo.value.report.findings] == ["duplicated"]  # nothing else
    # ...and named as what it is, with the fix in torch's terms (it was a missing Lock)
    assert excinfo.value.report.reason == (
        "An epoch delivered samples more than once: each of the DataLoader's 2 worker"
        " processes iterates its own copy of the IterableDataset, so, unsharded, every worker"
        " yields the whole stream."
    )
    assert excinfo.value.report.hint.startswith(
        "shard the stream in __iter__ with torch.utils.data.get_worker_info()"
    )
    pitfalls.assert_epoch_complete(loaders.iterable_sharded(DATA, num_workers=2), DATA)
    # the bug needs workers: in the main process the unsharded stream is right
    pitfalls.assert_epoch_complete(loaders.iterable_unsharded(DATA, num_workers=0), DATA)


def test_samples_augmented_in_worker_processes_cannot_be_judged_complete(torch):
    """Bug: noise added in two worker processes, where pitfalls sees no draw, read as 64
    samples dropped and 64 strangers "from a source shared without a lock"."""
    elsewhere, here = (  # draws in two other processes, then in this one: neither judged
        pitfalls.check_epoch_complete(loaders.rng_seeded_per_worker(DATA, num_workers=n), DATA)
        for n in (2, 0)
    )
    assert elsewhere.inconclusive.startswith(
        "The DataLoader reads in 2 worker processes, whose random draws pitfalls cannot watch"
    )
    assert here.inconclusive.startswith("The source is random per read (it drew from")
    assert "read in this process (num_workers=0), it drew from self.dataset.rng" in (
        elsewhere.inconclusive
    )

    # Augmented, a dropped last batch is counted and said, but which samples it left out,
    # and whether other ones each epoch (shuffle=True), cannot be told: no evidence.
    noisy = loaders.NoisyRows(DATA[:60])
    dropping = pitfalls.check_epoch_complete(
        lambda: torch.utils.data.DataLoader(noisy, batch_size=8, shuffle=True, drop_last=True),
        DATA[:60],
    )
    assert dropping.status == "inconclusive" and dropping.cause is pitfalls.Cause.AUGMENTED_SAMPLES
    assert dropping.inconclusive.startswith(
        "The epoch delivered 56 of the 60 samples, in 7 full batches of 8: its last, partial"
        " batch of 4 was left out (the drop_last convention)."
    )

    # A collate_fn that pads with zero rows draws nothing: judged, workers or not.
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.dataloader import default_collate

    def padded(rows):
        x, y = default_collate(rows)
        return torch.cat([x, torch.zeros(8 - len(x), 2)]), y

    for n in (2, 0):
        loader = DataLoader(
            TensorDataset(torch.from_numpy(DATA[:60]), torch.zeros(60)),
            batch_size=8,
            num_workers=n,
            collate_fn=padded,
        )
        report = pitfalls.check_epoch_complete(loader, DATA[:60])
        assert report.status == "failed", str(report)
        assert report.reason.startswith("An epoch delivered samples that are not rows of dataset")


def test_the_iterable_loaders_pass_the_batch_checks_and_say_they_have_no_length(torch):
    loader = loaders.iterable_sharded(DATA, num_workers=0)
    with pytest.raises(TypeError):
        len(loader)  # an IterableDataset without __len__: the DataLoader's __len__ raises
    reports = pitfalls.assert_source(loader, row_means, draws=8, epochs=True)
    assert [r.check for r in reports][-1] == "epoch_repeatable"


def test_persistent_workers_never_see_the_epoch_set_on_the_dataset(torch):
    # pytorch/pytorch#97326: set_epoch in the main process, workers keep their copy
    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order"):
        pitfalls.assert_order_shuffled(loaders.epoch_on_dataset(DATA, num_workers=2))
    fixed = loaders.epoch_in_shared_memory(DATA, num_workers=2)
    pitfalls.assert_order_shuffled(fixed)
    pitfalls.assert_epoch_complete(fixed, DATA)  # the third epoch is complete too
    # without workers the dataset object is the one being read, and the bug vanishes
    pitfalls.assert_order_shuffled(loaders.epoch_on_dataset(DATA, num_workers=0))


def test_a_check_that_reads_an_epoch_to_its_end_lets_go_of_the_loader(torch):
    """Bug: the StopIteration ending an epoch, raised in the helper thread that bounds each
    read by its timeout, stayed in a dict that thread's frame and the caller's held, and its
    traceback held both frames: a reference cycle kept the loader and a persistent loader's
    worker processes alive until the garbage collector ran. That collection took the
    queues' feeder threads first, so the workers never got their stop signal: the shutdown
    waited 5 s for each (10 s at the teardown of the test above)."""
    gc.disable()  # only reference counting frees: deterministic
    try:
        before = loader_iterators()
        loader = loaders.epoch_in_shared_memory(DATA, num_workers=2)
        pitfalls.assert_order_shuffled(loader)
        pitfalls.assert_epoch_complete(loader, DATA)
        del loader
        alive = sum(not any(o is old for old in before) for o in loader_iterators())
        del before
    finally:
        gc.enable()
    assert alive == 0


def test_persistent_workers_keep_their_copies_of_the_dataset_out_of_reach(torch):
    """Bug: with persistent_workers=True, a Dataset's own generator, reseeded per worker
    (the fix pitfalls recommends), goes on from epoch to epoch in the workers where it
    cannot be reseeded: a correct loader failed "nothing pitfalls can see explains it".
    An in-place write there is found by the blame's read in this process; the workers the
    check's factories started are stopped when it returns."""
    from torch.utils.data import DataLoader

    normalised, _ = stored_tensor_datasets(torch)
    running = len(multiprocessing.active_children())

    def in_place():
        dataset = normalised(torch.from_numpy(DATA.copy()), in_place=True)
        return DataLoader(dataset, batch_size=8, num_workers=2, persistent_workers=True)

    written = pitfalls.check_epoch_repeatable(in_place)
    assert written.status == "failed" and written.blame.found
    assert "the DataLoader's 2 persistent worker processes keep their copies" in written.reason
    assert written.hint.startswith("transform a copy inside the Dataset's __getitem__")

    made = []  # kept alive here, as a reference cycle would keep them until collected

    def augmenting():
        made.append(loaders.rng_seeded_per_worker(DATA, persistent_workers=True))
        return made[-1]

    augmented = pitfalls.check_epoch_repeatable(augmenting)
    assert augmented.status == "inconclusive"
    assert "Check with persistent_workers=False" in augmented.inconclusive

    class Unlabelled(loaders.NoisyRows):  # every sample noised, no target to tell them by
        def __getitem__(self, i):
            return super().__getitem__(i)[0], np.float32(0)

    def shuffled():
        return DataLoader(
            Unlabelled(DATA),
            batch_size=8,
            shuffle=True,
            num_workers=2,
            persistent_workers=True,
            worker_init_fn=loaders.reseed_dataset_rng,
        )

    order = pitfalls.check_order_shuffled(shuffled)
    assert order.status == "inconclusive" and "2 persistent worker processes" in order.inconclusive
    assert made and len(multiprocessing.active_children()) == running  # workers stopped

    # A factory that hands back your own loader leaves its running pool alone.
    yours = loaders.rng_seeded_per_worker(DATA, persistent_workers=True)
    list(yours)  # its workers start, and persist
    pool = yours._iterator
    pitfalls.check_epoch_repeatable(lambda: yours)
    assert yours._iterator is pool and len(multiprocessing.active_children()) == running + 2
    pool._shutdown_workers()  # yours to stop: here, so that no later test sees them


def noise_by_worker(loader):
    """One epoch's augmentation noise, grouped by worker (batch i comes from worker i % 2)."""
    noise = [np.asarray(x) - DATA[4 * i : 4 * i + 4] for i, (x, _) in enumerate(loader)]
    return noise[0::2], noise[1::2]


def test_a_numpy_generator_made_in_init_is_copied_into_every_worker(torch):
    worker_0, worker_1 = noise_by_worker(loaders.rng_copied_into_workers(DATA))
    for a, b in zip(worker_0, worker_1):
        np.testing.assert_allclose(a, b, atol=1e-6)  # same "random" noise, batch for batch
    worker_0, worker_1 = noise_by_worker(loaders.rng_seeded_per_worker(DATA))
    assert not any(np.allclose(a, b, atol=1e-3) for a, b in zip(worker_0, worker_1))
    # the mechanism, without a DataLoader: forked copies of one Generator draw alike
    dataset = loaders.NoisyRows(DATA)
    with pytest.raises(pitfalls.SharedRngError, match="workers 0 and 1"):
        pitfalls.assert_worker_randomness(lambda: dataset[0][0])


def test_batch_size_none_over_a_buffer_on_the_dataset_aliases(torch):
    with pytest.raises(pitfalls.AliasingError, match="share one buffer"):
        pitfalls.assert_generator_no_aliasing(loaders.buffer_on_dataset(DATA), draws=4)
    with pytest.raises(pitfalls.TargetMismatchError, match="after later draws"):
        pitfalls.assert_targets_match(loaders.buffer_on_dataset(DATA), row_means, draws=4)
    pitfalls.assert_source(loaders.fresh_tensor_per_batch(DATA), row_means, draws=8)
    # collation stacks batches into a new tensor: the same dataset, batched, is safe
    from torch.utils.data import DataLoader

    collated = DataLoader(loaders.BatchRows(DATA, 8, reuse=True), batch_size=2)
    pitfalls.assert_generator_no_aliasing(collated, draws=4)


def loader_iterators():
    return [o for o in gc.get_objects() if type(o).__name__ == "_MultiProcessingDataLoaderIter"]


@pytest.fixture(scope="module")
def collated_into_one_buffer(torch):
    """The aliasing check of a collate_fn reusing its tensor, two workers: (the error it
    raised, how many of the loader's iterators it left alive). Run once for the two
    tests that read it: the check and its diagnosis passes fork two workers each."""
    gc.disable()  # only reference counting frees: deterministic
    try:
        before = loader_iterators()
        with pytest.raises(pitfalls.AliasingError) as excinfo:
            pitfalls.assert_generator_no_aliasing(loaders.collate_into_one_buffer(DATA), draws=8)
        alive = sum(not any(o is old for old in before) for o in loader_iterators())
        del before
    finally:
        gc.enable()
    return excinfo.value, alive


def test_a_collate_fn_reusing_its_tensor_aliases_even_across_processes(collated_into_one_buffer):
    # Each worker's buffer goes to shared memory when first sent: the main process
    # holds views of it, and the worker refills it for its next batch.
    error, _ = collated_into_one_buffer
    assert "2 buffers, reused in turn" in str(error)


# Tensors the checkers must read --------------------------------------------------


def test_bfloat16_batches_are_read(torch):
    # Mixed-precision pipelines yield bfloat16, which numpy cannot read directly.
    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, 2, generator=g).to(torch.bfloat16)
            yield x, x.float().mean(dim=1)

    pitfalls.assert_generator_no_aliasing(batches, draws=4)


def test_bfloat16_targets_get_bfloat16s_tolerance(torch):
    """numpy reads a bfloat16 tensor as float32: the tolerance must come from the tensor's
    own dtype, or bfloat16 rounding (about 1 part in 256) fails as a mismatch."""

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, 8, generator=g)
            yield x, x.mean(dim=1).to(torch.bfloat16)

    report = pitfalls.check_targets_match(batches, row_means, draws=4)
    assert report.ok and report.parameters["rtol"] == 1.6e-2


def test_tensors_that_require_grad_are_read(torch):
    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, 2, generator=g, requires_grad=True)
            yield x, x.mean(dim=1)

    pitfalls.assert_source(batches, lambda x: x.mean(dim=1), draws=4)


def test_a_torch_model_is_checked_for_batch_independence(torch):
    # fn(*args) as written: a torch module gets torch tensors, as in its training loop
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    x = torch.randn(8, 2, generator=seeded(torch))
    with pytest.raises(pitfalls.BatchDependenceError):
        pitfalls.assert_batch_independent(net.train(), x)  # batch statistics mix samples
    pitfalls.assert_batch_independent(net.eval(), x)


# strict_loss on torch ------------------------------------------------------------


@pitfalls.strict_loss
def mse(y_true, y_pred):
    return ((y_true - y_pred) ** 2).mean()


def test_strict_loss_on_torch_tensors_and_under_autograd(torch):
    pred = torch.zeros(8, 1, requires_grad=True)
    with pytest.raises(pitfalls.BroadcastError, match=r"y_true=\(8,\), y_pred=\(8, 1\)"):
        mse(torch.zeros(8), pred)
    mse(torch.ones(8, 1), pred).backward()
    np.testing.assert_allclose(pred.grad.numpy(), np.full((8, 1), -2 / 8))


def test_a_failed_check_lets_go_of_the_loaders_iterator(collated_into_one_buffer):
    # A check that stops before the loader's iterator is exhausted must drop it, and
    # its workers then shut down at once. Kept alive by a reference cycle, they are
    # shut down by the garbage collector at some later moment, measured here as
    # 10-20 s stalls inside other loaders' batches (and errors printed by forked
    # workers that inherited the iterator). The fixture counts, with the collector
    # off, the iterators that outlived the failed check (and its diagnosis passes).
    error, alive = collated_into_one_buffer
    assert not error.report.ok
    assert alive == 0
