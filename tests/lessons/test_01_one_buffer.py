"""Pitfall 1: a batch generator that re-yields one numpy buffer.

What was seen. The article's network only has to learn the mean of two integers,
yet with its first generator the loss stalled near 415 after 100 epochs, and
``print(next(it), next(it))`` printed the inputs ``[[44, 2]]`` beside the target
``[10]``: 10 is not their mean. The generator allocated ``x`` once and refilled it
in place, so the first batch, still held when the second was drawn, already
showed the second batch's inputs beside its own targets.

The invariant. A batch, once yielded, never changes: its targets stay the mean of
its inputs across successive ``next()`` calls, for as long as a consumer holds it.
Keras' queue, tf.data's ``prefetch`` and a DataLoader's workers all hold batches
while drawing the next ones; ``pitfalls.read_ahead`` does the same in one thread,
in a fixed order, so the lesson never depends on timing.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import generators as gen
from tests.lessons import Pitfall, best_mean_model, buggy, examples, fixed, teaches

PITFALL = Pitfall(
    title="1. a generator re-yields one buffer",
    invariant="a yielded batch never changes: its targets stay the mean of its inputs"
    " while later next() calls run",
    read_more="docs/explanation/pitfalls.md#pitfall-1-a-generator-that-re-yields-one-numpy-buffer",
    pairs=gen.PAIRS,
)

batch_sizes = st.integers(1, 8)
seeds = st.integers(0, 2**32 - 1)
depths = st.integers(0, 4)  # how many batches the consumer draws ahead of the one it trains on


def held(variant, batch_size, seed, depth, n=6):
    """The ``n`` batches of an epoch as a consumer reading ``depth`` ahead trains on them:
    each copied the moment it is handed out, as a training step reads it then."""
    epoch = itertools.islice(variant(batch_size, seed=seed, form="pair"), n)
    return [(x.copy(), y.copy()) for x, y in pitfalls.read_ahead(epoch, depth)]


def intended(batch_size, seed, n=6):
    """What every variant means to yield: the same numbers, each batch its own memory."""
    return list(itertools.islice(gen.fresh_per_yield(batch_size, seed=seed, form="pair"), n))


def targets_are_means(batches):
    return all(np.array_equal(y, gen.mean_target(x)) for x, y in batches)


@teaches("buggy", gen.shared_input_buffer)
def test_what_the_article_printed():
    it = gen.shared_input_buffer(1, seed=0, form="pair")
    (x1, y1), (x2, _) = next(it), next(it)  # print(next(it), next(it)) holds both
    (_, true_y1), (true_x2, _) = intended(1, seed=0, n=2)

    assert x1 is x2  # one buffer, yielded twice
    np.testing.assert_array_equal(x1, true_x2)  # the first batch shows the second's inputs
    np.testing.assert_array_equal(y1, true_y1)  # beside its own target
    assert not np.array_equal(gen.mean_target(x1), y1)  # which is not their mean


@pytest.mark.parametrize("variant", fixed(*gen.FIXED))
@examples(10)
@given(batch_size=batch_sizes, seed=seeds, depth=depths)
def test_a_fixed_generators_batches_keep_their_targets_however_far_ahead_it_is_read(
    variant, batch_size, seed, depth
):
    batches = held(variant, batch_size, seed, depth)
    assert targets_are_means(batches)
    for (x, y), (ox, oy) in zip(batches, intended(batch_size, seed)):
        np.testing.assert_array_equal(x, ox)  # and they are the batches meant
        np.testing.assert_array_equal(y, oy)


@teaches("buggy", gen.shared_input_buffer)
def test_one_batch_of_read_ahead_is_enough_to_break_the_shared_buffer():
    # Hypothesis searches for a consumer that sees a target beside the wrong inputs, and
    # shrinks it to the simplest: one sample per batch, one batch read ahead. A plain loop
    # (depth 0) never sees it, which is why the bug is silent in a notebook.
    batch_size, _, depth = find(
        st.tuples(batch_sizes, seeds, depths),
        lambda case: not targets_are_means(held(gen.shared_input_buffer, *case)),
        settings=settings(database=None, derandomize=True),
    )
    assert (batch_size, depth) == (1, 1)
    assert targets_are_means(held(gen.shared_input_buffer, 4, seed=0, depth=0))


@teaches("buggy", gen.shared_input_and_target_buffers)
def test_the_articles_fix_keeps_pairs_consistent_but_hands_out_the_newest_batch():
    # The article's "fix" overwrote the targets together with the inputs: every pair a
    # consumer trains on is consistent, and it is always the batch drawn last. Reading two
    # ahead, an epoch of six batches trains on batches 2, 3, 4, 5, 5, 5.
    batches = held(gen.shared_input_and_target_buffers, 4, seed=1, depth=2)
    assert targets_are_means(batches)
    meant = [x.tobytes() for x, _ in intended(4, seed=1)]
    trained = [meant.index(x.tobytes()) for x, _ in batches]
    assert trained == [2, 3, 4, 5, 5, 5]


@pytest.mark.parametrize("variant", buggy(*gen.BUGGY))
def test_the_aliasing_checker_catches_both_buggy_generators(variant):
    with pytest.raises(pitfalls.AliasingError) as caught:
        pitfalls.assert_generator_no_aliasing(lambda: variant(8, seed=1))
    print(caught.value)  # -rP shows it: the line that refilled the buffer, and the fix
    assert caught.value.report.cause is Cause.BATCH_CHANGED


@pytest.mark.parametrize("variant", fixed(*gen.FIXED))
def test_the_fixed_generators_pass_both_checkers(variant):
    pitfalls.assert_generator_no_aliasing(lambda: variant(8, seed=1))
    pitfalls.assert_targets_match(lambda: variant(8, seed=1), gen.mean_target)


@teaches("buggy", gen.shared_input_buffer)
def test_the_targets_checker_sees_the_shared_buffer_only_after_later_draws():
    report = pitfalls.check_targets_match(
        lambda: gen.shared_input_buffer(8, seed=1), gen.mean_target
    )
    print(report)
    # right when yielded, wrong once later draws refilled the buffer: a changed batch
    assert {f.when for f in report.findings} == {"after later draws"}
    assert report.cause is Cause.BATCH_CHANGED


@pytest.mark.parametrize("variant", buggy(gen.shared_input_buffer) + fixed(*gen.FIXED))
def test_what_a_read_ahead_consumer_trains_on_fits_only_with_the_fixes(variant):
    # the best the mean model can do on what the consumer trained on (least squares)
    batches = held(variant, 32, seed=0, depth=2, n=20)
    _, _, mse = best_mean_model(*map(np.concatenate, zip(*batches)))
    if variant is gen.shared_input_buffer:
        assert mse > 100  # no linear model fits targets beside other batches' inputs
    else:
        assert mse < 1e-12  # the mean itself: weights (0.5, 0.5), bias 0
