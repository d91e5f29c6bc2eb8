"""Beyond the article: what happens between epochs.

Each function takes the stored dataset ``data`` (an array of samples), a
batch size and a seed, and yields ``(x, y)`` batches; ``y`` is the row sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def scaled_in_place(data: np.ndarray, batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """BUGGY: one epoch, scaling each batch by ``x /= 255`` on a slice of ``data``.

    Symptom: the first epoch trains on pixels in [0, 1], the second on
    [0, 1/255], the third on nearly zero: the loss curve jumps at each epoch.
    Cause: ``data[i:j]`` is a view; the in-place division writes the stored
    dataset. Fix: ``x = data[i:j] / 255`` (:func:`scaled_copy`).
    """
    for i in range(0, len(data) - batch_size + 1, batch_size):
        x = data[i : i + batch_size]
        x /= 255.0
        yield x, x.reshape(len(x), -1).sum(axis=1)


def scaled_copy(data: np.ndarray, batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """FIXED: ``x = data[i:j] / 255`` makes a new array; ``data`` is never written."""
    for i in range(0, len(data) - batch_size + 1, batch_size):
        x = data[i : i + batch_size] / 255.0
        yield x, x.reshape(len(x), -1).sum(axis=1)


def same_order_every_epoch(
    data: np.ndarray, batch_size: int = 32, *, seed: int = 0
) -> Iterator[Any]:
    """BUGGY: an endless generator visiting ``data`` in its stored order every epoch.

    Symptom: a dataset sorted by class trains on one class at a time, epoch
    after epoch; ``fit(generator, shuffle=True)`` only warns. Cause: Keras
    cannot shuffle a generator. Fix: permute each epoch
    (:func:`reshuffled_every_epoch`).
    """
    while True:
        for i in range(0, len(data) - batch_size + 1, batch_size):
            x = data[i : i + batch_size].copy()
            yield x, x.reshape(len(x), -1).sum(axis=1)


def reshuffled_every_epoch(
    data: np.ndarray, batch_size: int = 32, *, seed: int = 0
) -> Iterator[Any]:
    """FIXED: a new permutation of ``data`` every epoch, from a seeded generator."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(data))
        for i in range(0, len(data) - batch_size + 1, batch_size):
            x = data[order[i : i + batch_size]]
            yield x, x.reshape(len(x), -1).sum(axis=1)


PAIRS = (
    (scaled_in_place, scaled_copy),
    (same_order_every_epoch, reshuffled_every_epoch),
)
