"""Hugging Face ``datasets``: dict batches, read by their ``"y"`` / ``"label"`` keys.

``Dataset.iter(batch_size=)`` yields a dict per batch (numpy arrays with
``with_format("numpy")``); passed to a ``DataLoader`` with the torch format,
the default collate makes dicts of tensors. Both are read by the one batch
convention: targets under ``"y"``, ``"label"``, ``"labels"``, ``"target"`` or
``"targets"``, the other keys being the inputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls

DATA = np.arange(64, dtype=np.float32).reshape(32, 2)


def row_means(x):
    return np.asarray(x).mean(axis=1)


@pytest.fixture(scope="module")
def dataset(hf_datasets):
    table = {"x": DATA, "y": row_means(DATA)}
    return hf_datasets.Dataset.from_dict(table).with_format("numpy")


def test_dataset_iter_passes_every_check(dataset):
    batch = next(dataset.iter(batch_size=8))
    assert set(batch) == {"x", "y"} and batch["x"].shape == (8, 2)
    reports = pitfalls.assert_source(lambda: dataset.iter(batch_size=8), row_means, draws=4)
    assert [r.check for r in reports] == ["generator_no_aliasing", "targets_match"]
    pitfalls.assert_epoch_repeatable(lambda: dataset.iter(batch_size=8))
    pitfalls.assert_epoch_complete(lambda: dataset.iter(batch_size=8), DATA)
    with pytest.raises(pitfalls.TargetMismatchError, match=r"batch\['y'\]"):
        pitfalls.assert_targets_match(lambda: dataset.iter(batch_size=8), np.sum, draws=2)


def test_shuffled_once_every_epoch_has_the_same_order(dataset):
    shuffled = dataset.shuffle(seed=0)  # an indices mapping, fixed once
    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order") as e:
        pitfalls.assert_order_shuffled(lambda: shuffled.iter(batch_size=8))
    # The fix in the dataset's own terms (it was a hand-written generator's permutation).
    assert e.value.report.hint == (
        "shuffle anew for every epoch with the epoch as seed:"
        " dataset.shuffle(seed=epoch).iter(batch_size=...); for an IterableDataset, call"
        " dataset.set_epoch(epoch) before each epoch; through torch, DataLoader(dataset,"
        " shuffle=True)."
    )
    epochs = itertools.count()  # the fix: shuffle again every epoch, with the epoch's seed
    pitfalls.assert_order_shuffled(lambda: dataset.shuffle(seed=next(epochs)).iter(batch_size=8))


def test_an_iterable_dataset_reshuffles_only_when_told_its_epoch(hf_datasets):
    """Bug: pitfalls reseeded the generator an IterableDataset copies at every iteration
    with a new seed per epoch, faking the new order set_epoch alone gives: passed. A
    generator the source never draws from keeps the first epoch's seed."""
    table = hf_datasets.Dataset.from_dict({"x": DATA, "y": row_means(DATA)})
    stream = table.to_iterable_dataset(num_shards=4).shuffle(seed=0, buffer_size=8)
    stream = stream.with_format("numpy")
    report = pitfalls.check_order_shuffled(lambda: stream.iter(batch_size=8))
    assert report.status == "failed"
    assert "call dataset.set_epoch(epoch) before each epoch" in report.hint

    class Epochs:  # the fix: a new epoch for every iteration
        epoch = 0

        def __iter__(self):
            self.epoch += 1
            stream.set_epoch(self.epoch)
            return stream.iter(batch_size=8)

    pitfalls.assert_order_shuffled(Epochs())


def test_a_torch_dataloader_over_a_dataset_yields_dicts_of_tensors(hf_datasets, torch):
    table = {"x": DATA, "label": row_means(DATA)}
    loader = torch.utils.data.DataLoader(
        hf_datasets.Dataset.from_dict(table).with_format("torch"), batch_size=8
    )
    assert set(next(iter(loader))) == {"x", "label"}
    pitfalls.assert_source(loader, row_means, draws=4)  # "label" holds the targets
    pitfalls.assert_epoch_complete(loader, DATA)


def test_to_tf_dataset_reshuffles_and_the_check_does_not_destroy_the_dataset(hf_datasets, tf):
    """Two bugs. A check left TensorFlow's global seed set, after which to_tf_dataset's
    permutation (a random op drawn once per epoch) repeated: the same check passed, then
    failed. And pitfalls let go of the pipelines it built, whose garbage collection makes
    datasets delete the data of a dataset already in numpy format: the user's own."""
    import gc

    from tensorflow.python.eager import context

    table = hf_datasets.Dataset.from_dict({"x": DATA, "label": np.arange(32)})
    table = table.with_format("numpy")  # to_tf_dataset then reads this very object

    def batches():
        return table.to_tf_dataset(batch_size=16, columns="x", label_cols="label", shuffle=True)

    ctx = context.context()
    kept = ctx._seed, getattr(ctx, "_rng", None)
    ctx._seed = None  # as in a fresh process (TensorFlow has no public way to unset it)
    if hasattr(ctx, "_rng"):
        del ctx._rng
    try:
        assert [pitfalls.check_order_shuffled(batches).status for _ in range(2)] == ["passed"] * 2
    finally:
        ctx._seed, ctx._rng = kept
    # Built under a global seed (the suite's seed fixture sets one), its seeded random op
    # draws the same permutation every epoch: a true failure, named as such.
    report = pitfalls.check_order_shuffled(batches)
    assert report.status == "failed" and "took fixed seeds when it was built" in report.reason
    gc.collect()
    assert table.num_rows == 32 and table[0]["label"] == 0  # still readable
