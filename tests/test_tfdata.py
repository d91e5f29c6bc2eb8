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

import contextlib

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


# Shuffling: where it sits decides whether epochs differ -----------------------------


def pipeline(tf, order):
    dataset = tf.data.Dataset.from_tensor_slices({"x": DATA, "y": DATA.mean(axis=1)})
    if order == "shuffle_then_cache":
        dataset = dataset.shuffle(32, seed=0).cache()  # the cache keeps epoch 1's order
    elif order == "cache_then_shuffle":
        dataset = dataset.cache().shuffle(32, seed=0)
    elif order == "shuffle_once":
        dataset = dataset.shuffle(32, seed=0, reshuffle_each_iteration=False)
    elif order == "batch_then_shuffle":
        return dataset.batch(8).shuffle(4, seed=0)  # whole batches reordered, never remade
    return dataset.batch(8)


@pytest.mark.parametrize("order", ["shuffle_then_cache", "shuffle_once"])
def test_a_shuffle_frozen_by_cache_or_by_its_flag_repeats_the_order(tf, order):
    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order"):
        pitfalls.assert_order_shuffled(pipeline(tf, order))
    pitfalls.assert_epoch_complete(pipeline(tf, order), DATA)  # complete, just never reordered


def test_a_shuffle_after_batch_reorders_whole_batches_only(tf):
    report = pitfalls.check_order_shuffled(pipeline(tf, "batch_then_shuffle"))
    assert report.cause is pitfalls.Cause.SAME_BATCHES, str(report)
    assert ".shuffle() before .batch()" in report.hint


def test_cache_then_shuffle_reorders_every_epoch_and_passes_every_check(tf):
    reports = pitfalls.assert_source(
        pipeline(tf, "cache_then_shuffle"), lambda x: np.asarray(x).mean(axis=1), shuffled=True
    )
    assert [r.check for r in reports][-1] == "order_shuffled"
    pitfalls.assert_epoch_complete(pipeline(tf, "cache_then_shuffle"), DATA)


# Random ops in a pipeline: seeded when it is built ------------------------------------


def flipped(tf, *, shuffle=False, parallel=False):
    """A factory: a pipeline of DATA with a random flip of each row in a map (the sum of a
    row, its target, does not change with the flip), shuffled before the map or not."""

    def flip(x, y):
        return tf.where(tf.random.uniform(()) < 0.5, tf.reverse(x, [0]), x), y

    def build():
        dataset = tf.data.Dataset.from_tensor_slices((DATA, DATA.sum(axis=1)))
        if shuffle:
            dataset = dataset.shuffle(32)
        calls = tf.data.AUTOTUNE if parallel else None
        return dataset.map(flip, num_parallel_calls=calls).batch(8)

    return build


def test_a_random_map_is_judged_without_a_reseed_hook(tf):
    """Bug: the map's random op takes its seed when the pipeline is built, before pitfalls
    reseeded anything: none, so TensorFlow drew fresh ones every epoch and a correct
    pipeline failed epoch_repeatable. Built again under a seed, each epoch replays it."""
    pitfalls.assert_epoch_repeatable(flipped(tf))
    report = pitfalls.check_order_shuffled(flipped(tf))  # nothing shuffles it: caught
    assert report.status == "failed"
    assert report.reason == (
        "Every epoch visits the samples in the same order: the pipeline has no shuffle()."
    )
    assert report.hint.startswith("shuffle after cache() and before batch()")


@pytest.mark.parametrize("parallel", [False, True], ids=["map", "parallel-map"])
def test_a_shuffle_before_a_random_map_passes_both_epoch_checks(tf, parallel):
    """Bug: shuffled anew each epoch, every sample met other random numbers in epoch 2, so
    epoch_repeatable failed and order_shuffled could not judge. Rebuilt under the same seed,
    the pipeline gives epoch 1 again; its targets, which the flip keeps, show the order.
    A parallel map is read on one thread, where it draws in element order."""
    report = pitfalls.check_epoch_repeatable(flipped(tf, shuffle=True, parallel=parallel))
    assert report.ok, str(report)
    assert "built again under the same seed gave epoch 1's 32 samples" in report.summary
    pitfalls.assert_order_shuffled(flipped(tf, shuffle=True, parallel=parallel))


@contextlib.contextmanager
def unseeded():
    """TensorFlow without a global seed, as in a fresh process (the suite's seed fixture
    sets one, through Keras, as the test body starts). TensorFlow has no public way to
    unset it, hence ``_seed``."""
    from tensorflow.python.eager import context

    ctx = context.context()
    kept = ctx._seed, getattr(ctx, "_rng", None)
    ctx._seed = None
    if hasattr(ctx, "_rng"):
        del ctx._rng  # never seeded: TensorFlow makes it at the first set_seed
    try:
        yield ctx
    finally:
        ctx._seed, ctx._rng = kept


def test_a_random_pipeline_passed_built_asks_for_its_factory(tf):
    """Its random ops took their seeds (none) when the user built it: out of reach, so the
    verdict is "could not judge" with what to pass, never a failure of a correct pipeline.
    (Built under tf.random.set_seed, every epoch replays its numbers: that passes.)"""
    with unseeded():
        report = pitfalls.check_epoch_repeatable(flipped(tf)())
    assert report.status == "inconclusive"
    assert report.inconclusive == (
        "The tf.data pipeline draws in TensorFlow random ops (RandomUniform), and epoch 2"
        " holds other samples than epoch 1: its ops took their seeds when it was built (none"
        " at all without tf.random.set_seed: fresh ones at every iteration), which no"
        " reseeding afterwards reaches. Pass a factory that builds the pipeline (lambda:"
        " make_dataset()), so that pitfalls builds it under a fixed seed, or check with the"
        " augmentation turned off."
    )


def test_checks_leave_tensorflows_global_seed_as_they_found_it(tf):
    """Bug: a check left TensorFlow's global seed set (None -> 8): afterwards a random op in
    a pipeline drew the same numbers every epoch (Hugging Face's to_tf_dataset(shuffle=True)
    stopped reshuffling), and the same check gave another verdict the second time."""
    with unseeded() as ctx:
        pitfalls.check_order_shuffled(flipped(tf, shuffle=True))
        pitfalls.check_epoch_repeatable(flipped(tf, shuffle=True))
        assert ctx._seed is None
        noisy = tf.data.Dataset.range(8).map(lambda i: tf.random.uniform(()))
        assert list(noisy.as_numpy_iterator()) != list(noisy.as_numpy_iterator())
        tf.random.set_seed(5)  # a seed the user set comes back as it was, the same state
        seeded = ctx._seed, ctx._rng, ctx._rng.getstate()
        pitfalls.check_epoch_repeatable(flipped(tf))

        def eager():  # each eager random op takes its op seed from TensorFlow's sequence
            while True:
                yield tf.random.uniform((2,)).numpy(), np.zeros(2)

        pitfalls.check_generator_no_aliasing(eager, draws=2)
        assert (ctx._seed, ctx._rng, ctx._rng.getstate()) == seeded


def test_drop_remainder_is_named_as_the_cause_of_an_incomplete_epoch(tf):
    slices = tf.data.Dataset.from_tensor_slices(DATA)
    shuffled = slices.shuffle(32).batch(5, drop_remainder=True)  # other samples left out
    assert pitfalls.check_epoch_complete(shuffled, DATA).status == "passed"  # each epoch
    dataset = slices.batch(5, drop_remainder=True)  # the same 2, never trained on
    report = pitfalls.check_epoch_complete(dataset, DATA)
    assert [(f.when, f.mismatched) for f in report.findings] == [("dropped", 32 % 5)]
    assert report.reason == (
        "An epoch did not deliver every sample: its last, partial batch was dropped (batch(...,"
        " drop_remainder=True)), so the samples past the last whole batch are never trained on"
        " in an epoch (other ones each epoch, when it shuffles)."
    )
    assert report.hint.startswith("keep the last, smaller batch: dataset.batch(batch_size)")


def test_a_tf_random_generator_the_source_holds_is_reseeded(tf):
    """Bug: a tf.random.Generator on the dataset (self.gen) was no RNG pitfalls knew: its
    noise looked like state that changes per call, and a correct dataset failed."""

    class Noisy:
        def __init__(self):
            self.gen = tf.random.Generator.from_seed(1)

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return DATA[16 * i : 16 * i + 16] + self.gen.normal((16, 2)).numpy()

        def on_epoch_end(self):
            pass

    for check in (pitfalls.check_index_stable, pitfalls.check_epoch_repeatable):
        report = check(Noisy())
        assert report.ok, str(report)
        assert "the source drew from self.gen" in report.notes[-1]


def test_a_tf_random_generator_is_seeded_by_one_assign_once_its_seed_was_seen(tf, monkeypatch):
    """Waste: every read under comparison reseeded each tf.random.Generator through
    reset_from_seed, a dozen eager ops (4 ms here, right after tf.random.set_seed emptied
    TensorFlow's kernel cache): with TensorFlow's global generator made, a check of a small
    dataset took 5x as long. The state a seed gives is made once, then assigned."""
    from pitfalls._frameworks import rngs

    monkeypatch.setattr(rngs, "_SEEDED", {})
    reset, made = tf.random.Generator.reset_from_seed, []

    def counted(generator, seed):  # type: ignore[no-untyped-def]
        made.append(seed)
        return reset(generator, seed)

    monkeypatch.setattr(tf.random.Generator, "reset_from_seed", counted)
    first, second = tf.random.Generator.from_seed(1), tf.random.Generator.from_seed(2)
    for generator in (first, second, first):
        state = rngs.seed(generator, "tf.random.Generator", 5)
        np.testing.assert_array_equal(state, generator.state.numpy())  # what it set, said
        np.testing.assert_array_equal(state, tf.random.Generator.from_seed(5).state.numpy())
    assert made == [5]


def test_eager_tensorflow_augmentation_in_a_pydataset_is_seen_and_reseeded(tf, keras):
    """Bug: tf.image.random_crop called in __getitem__ drew from nothing pitfalls watched, so
    a correct, shuffled PyDataset failed epoch_repeatable ("nothing pitfalls can see explains
    it"). The op seeds TensorFlow's eager ops take are now watched and reseeded; the same
    dataset normalising its stored images in place still fails."""
    images = np.random.default_rng(8).uniform(0, 1, (32, 6, 6, 1)).astype(np.float32)

    class Cropped(keras.utils.PyDataset):
        def __init__(self, in_place=False):
            super().__init__()
            self.images, self.in_place = images.copy(), in_place
            self.order, self.rng = np.arange(32), np.random.default_rng(0)

        def __len__(self):
            return 4

        def __getitem__(self, i):
            rows = self.images[self.order[i * 8 : (i + 1) * 8]]
            if self.in_place:
                self.images[self.order[i * 8 : (i + 1) * 8]] = rows * 0.5  # the bug
            x = tf.image.random_crop(rows, (8, 4, 4, 1)).numpy()
            return x, x.mean(axis=(1, 2, 3))

        def on_epoch_end(self):
            self.rng.shuffle(self.order)

    report = pitfalls.check_epoch_repeatable(Cropped)
    assert report.ok, str(report)
    assert "TensorFlow's random ops (eager)" in report.notes[-1]
    assert pitfalls.check_index_stable(Cropped).ok
    assert pitfalls.check_epoch_repeatable(lambda: Cropped(in_place=True)).status == "failed"


def test_targets_taken_before_a_random_map_are_named_as_taken_before_the_augmentation(tf):
    """Bug: a pipeline labelling each row by its first column, then flipping rows in a
    map, got the hint for a wrong formula: the random op drew where no RNG pitfalls
    watches moves. The graph's random ops now name the augmentation."""

    def flip(x, y):
        return tf.where(tf.random.uniform(()) < 0.5, tf.reverse(x, [0]), x), y

    def build():
        pairs = tf.data.Dataset.from_tensor_slices((DATA, DATA[:, 0]))  # the bug: label first
        return pairs.map(flip).batch(8)

    report = pitfalls.check_targets_match(build, lambda x: np.asarray(x)[:, 0], draws=4)
    assert not report.ok
    assert report.hint.startswith("compute the targets from the augmented inputs you yield")
    assert any(
        n.startswith("Randomness: the tf.data pipeline draws in TensorFlow random ops")
        for n in report.notes
    )
