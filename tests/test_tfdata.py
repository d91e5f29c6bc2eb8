"""tf.data: zero-copy decided by alignment, and the order pitfalls of shuffle.

``Dataset.from_generator`` turns each yielded numpy array into a tensor. When
the array's data starts on a 64-byte boundary, TensorFlow wraps that memory
instead of copying it (the mechanism of tensorflow/tensorflow#59729); numpy
promises only 16 bytes, so whether the article's reused buffer corrupts a
pipeline is the allocator's luck. ``zero_copy.placed`` allocates aligned or
unaligned on purpose, and ``prefetch=False`` turns tf.data's injected prefetch
off, so every case below happens every time.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import zero_copy

DATA = np.arange(64, dtype=np.float32).reshape(32, 2)


def mean(x):
    return np.asarray(x).mean(axis=1, keepdims=True)


def test_from_generator_wraps_an_aligned_buffer_and_copies_an_unaligned_one(tf):
    for aligned in (True, False):
        buffer = zero_copy.placed((4, 2), aligned=aligned)
        assert zero_copy.is_aligned(buffer) is aligned

        def refilled(buffer=buffer):
            for value in range(5):
                buffer[:] = value
                yield buffer

        spec = tf.TensorSpec((4, 2), tf.float32)
        tensors = list(tf.data.Dataset.from_generator(refilled, output_signature=spec))
        firsts = [float(t[0, 0]) for t in tensors]  # read after the generator finished
        # aligned: every tensor is the buffer, which holds the last batch; else copies
        assert firsts == ([4.0] * 5 if aligned else [0.0, 1.0, 2.0, 3.0, 4.0]), aligned


def test_tf_constant_and_from_tensor_slices_copy_even_an_aligned_buffer(tf):
    buffer = zero_copy.placed((8, 2), aligned=True)
    buffer[:] = 1.0
    constant = tf.constant(buffer)
    dataset = tf.data.Dataset.from_tensor_slices(buffer).batch(4)
    buffer[:] = 2.0
    assert float(constant[0, 0]) == 1.0
    assert float(next(iter(dataset))[0, 0]) == 1.0


@pytest.mark.parametrize(
    ("variant", "aligned", "caught"),
    [
        (zero_copy.from_generator_shared, True, True),
        (zero_copy.from_generator_shared, False, False),  # copied: harmless, by luck
        (zero_copy.from_generator_copied, True, False),
    ],
    ids=["shared-aligned", "shared-unaligned", "copied-aligned"],
)
def test_the_checkers_see_what_from_generator_shared(tf, variant, aligned, caught):
    if caught:
        with pytest.raises(pitfalls.AliasingError, match="share one buffer"):
            pitfalls.assert_generator_no_aliasing(variant(aligned=aligned), draws=4)
        with pytest.raises(pitfalls.TargetMismatchError, match="after later draws"):
            pitfalls.assert_targets_match(variant(aligned=aligned), mean, draws=4)
    else:
        pitfalls.assert_source(variant(aligned=aligned), mean, draws=4)


# Shuffling: where it sits decides whether epochs differ -----------------------------


def pipeline(tf, order):
    dataset = tf.data.Dataset.from_tensor_slices({"x": DATA, "y": DATA.mean(axis=1)})
    if order == "shuffle_then_cache":
        dataset = dataset.shuffle(32, seed=0).cache()  # the cache keeps epoch 1's order
    elif order == "cache_then_shuffle":
        dataset = dataset.cache().shuffle(32, seed=0)
    elif order == "shuffle_once":
        dataset = dataset.shuffle(32, seed=0, reshuffle_each_iteration=False)
    return dataset.batch(8)


@pytest.mark.parametrize("order", ["shuffle_then_cache", "shuffle_once"])
def test_a_shuffle_frozen_by_cache_or_by_its_flag_repeats_the_order(tf, order):
    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order"):
        pitfalls.assert_order_shuffled(pipeline(tf, order))
    pitfalls.assert_epoch_complete(pipeline(tf, order), DATA)  # complete, just never reordered


def test_cache_then_shuffle_reorders_every_epoch_and_passes_every_check(tf):
    reports = pitfalls.assert_source(
        pipeline(tf, "cache_then_shuffle"), lambda x: np.asarray(x).mean(axis=1), shuffled=True
    )
    assert [r.check for r in reports][-1] == "order_shuffled"
    pitfalls.assert_epoch_complete(pipeline(tf, "cache_then_shuffle"), DATA)
