"""Beyond the article: what changes between epochs.

What is seen. A loss curve that jumps at every epoch boundary; a model that
learns one class at a time, epoch after epoch. Two generators cause them:

* ``x = data[i:j]; x /= 255`` scales a *view* of the stored dataset, so every
  epoch divides the dataset by 255 once more: epoch 2 trains on pixels in
  ``[0, 1/255]``.
* a generator that walks the dataset in its stored order every epoch: Keras
  cannot shuffle a generator, and ``fit(shuffle=True)`` only warns.

The invariants. Reading an epoch leaves the dataset as it was, so epoch 2 holds
the samples epoch 1 held; and two consecutive epochs, read as training reads
them, come in different orders.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import epochs
from tests.lessons import Pitfall, buggy, examples, fixed

PITFALL = Pitfall(
    title="4. data rewritten or never reshuffled",
    invariant="an epoch leaves the stored data as it was, and the next epoch comes in another"
    " order",
    read_more="docs/explanation/pitfalls.md#beyond-the-article-the-pitfalls-next-door",
    pairs=epochs.PAIRS,
)

seeds = st.integers(0, 2**32 - 1)
batch_sizes = st.sampled_from([8, 16, 32])


def images(seed=0, n=64):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 4, 4)).astype(np.float32)


def one_epoch(variant, data, batch_size):
    """The samples of one epoch, each copied as training reads it."""
    return np.concatenate([x.copy() for x, _ in variant(data, batch_size)])


@pytest.mark.parametrize("variant", buggy(epochs.scaled_in_place) + fixed(epochs.scaled_copy))
@examples(5)
@given(seed=seeds, batch_size=batch_sizes)
def test_only_scaling_a_copy_keeps_epoch_two_equal_to_epoch_one(variant, seed, batch_size):
    data = images(seed)
    first, second = one_epoch(variant, data, batch_size), one_epoch(variant, data, batch_size)
    if variant is epochs.scaled_in_place:
        np.testing.assert_allclose(second, first / 255, rtol=1e-6)  # divided once more
    else:
        np.testing.assert_array_equal(second, first)
        np.testing.assert_array_equal(data, images(seed))  # the stored data untouched


@pytest.mark.parametrize("variant", buggy(epochs.scaled_in_place))
def test_the_epoch_checker_catches_the_write_into_the_stored_data(variant):
    with pytest.raises(pitfalls.EpochChangedError) as caught:
        pitfalls.assert_epoch_repeatable(functools.partial(variant, images(), 16))
    print(caught.value)  # names the line that wrote: x /= 255.0
    assert caught.value.report.cause is Cause.STORED_DATA_WRITTEN


@pytest.mark.parametrize("variant", fixed(epochs.scaled_copy))
def test_the_epoch_checker_passes_the_copy(variant):
    data = images()
    pitfalls.assert_epoch_repeatable(functools.partial(variant, data, 16))
    np.testing.assert_array_equal(data, images())


@pytest.mark.parametrize("variant", buggy(epochs.same_order_every_epoch))
def test_a_generator_in_stored_order_repeats_its_order(variant):
    with pytest.raises(pitfalls.OrderNotShuffledError) as caught:
        pitfalls.assert_order_shuffled(functools.partial(variant, images(), 16), steps_per_epoch=4)
    print(caught.value)
    assert caught.value.report.cause is Cause.SAME_ORDER


@pytest.mark.parametrize("variant", fixed(epochs.reshuffled_every_epoch))
@examples(5)
@given(seed=seeds)
def test_a_generator_that_permutes_every_epoch_is_shuffled(variant, seed):
    source = functools.partial(variant, images(), 16, seed=seed)
    pitfalls.assert_order_shuffled(source, steps_per_epoch=4)
    pitfalls.assert_epoch_repeatable(source, steps_per_epoch=4)  # same samples, new order
