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
    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order"):
        pitfalls.assert_order_shuffled(lambda: shuffled.iter(batch_size=8))
    epochs = itertools.count()  # the fix: shuffle again every epoch, with the epoch's seed
    pitfalls.assert_order_shuffled(lambda: dataset.shuffle(seed=next(epochs)).iter(batch_size=8))


def test_a_torch_dataloader_over_a_dataset_yields_dicts_of_tensors(hf_datasets, torch):
    table = {"x": DATA, "label": row_means(DATA)}
    loader = torch.utils.data.DataLoader(
        hf_datasets.Dataset.from_dict(table).with_format("torch"), batch_size=8
    )
    assert set(next(iter(loader))) == {"x", "label"}
    pitfalls.assert_source(loader, row_means, draws=4)  # "label" holds the targets
    pitfalls.assert_epoch_complete(loader, DATA)
