"""Pitfall 1 as the article found it, then as a read-ahead consumer sees it.

The oracle throughout is ``fresh_per_yield`` with the same seed: every variant
draws the same numbers, so the fresh variant's batches are what the buggy ones
meant to yield.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import generators as gen
from pitfalls.reproductions.generators import (
    copy_on_yield,
    fresh_per_yield,
    fresh_vectorized,
    mean_target,
    shared_input_and_target_buffers,
    shared_input_buffer,
)

ALL = gen.BUGGY + gen.FIXED


def intended(batch_size: int, seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first n batches every variant means to yield."""
    return list(itertools.islice(fresh_per_yield(batch_size, seed=seed, form="pair"), n))


@pytest.mark.parametrize("variant", ALL, ids=lambda v: v.__name__)
def test_every_variant_draws_the_same_numbers(variant):
    # Copy each batch the moment it is yielded: then all variants agree.
    # The bug is not in the numbers but in the memory they are written to.
    as_yielded = [
        (x.copy(), y.copy()) for x, y in itertools.islice(variant(4, seed=7, form="pair"), 5)
    ]
    for (x, y), (ox, oy) in zip(as_yielded, intended(4, 7, 5)):
        np.testing.assert_array_equal(x, ox)
        np.testing.assert_array_equal(y, oy)


def test_print_next_next_shows_the_first_mean_beside_the_second_inputs():
    # The article: print(next(it), next(it)) printed ([[44., 2.]], [10.]) first,
    # and 10 is not the mean of 44 and 2. The first tuple is printed after the
    # second next() has refilled x.
    it = shared_input_buffer(1, seed=0, form="pair")
    (x1, y1), (x2, _) = next(it), next(it)
    (true_x1, true_y1), (true_x2, _) = intended(1, 0, 2)

    assert x1 is x2  # one buffer, yielded twice
    np.testing.assert_array_equal(x1, true_x2)  # shows the second batch's inputs
    np.testing.assert_array_equal(y1, true_y1)  # beside the first batch's mean
    assert not np.allclose(mean_target(x1), y1)
    assert np.allclose(mean_target(true_x1), y1)


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
def test_print_next_next_is_consistent_for_the_fixes(variant):
    it = variant(1, seed=0, form="pair")
    (x1, y1), (x2, y2) = next(it), next(it)
    assert x1 is not x2
    np.testing.assert_allclose(mean_target(x1), y1)
    np.testing.assert_allclose(mean_target(x2), y2)


def test_the_articles_fix_keeps_pairs_consistent_but_still_aliases():
    # "Converges by epoch 3", so the article called it the fix. Each pair stays
    # consistent because x and the mean are overwritten together...
    pitfalls.assert_targets_match(lambda: shared_input_and_target_buffers(8, seed=1), mean_target)
    # ...but every batch handed out is the same two buffers.
    with pytest.raises(
        pitfalls.AliasingError, match=r"inputs\[0\] in all 16 batches share one buffer"
    ):
        pitfalls.assert_generator_no_aliasing(lambda: shared_input_and_target_buffers(8, seed=1))


def test_shared_input_buffer_fails_both_checks():
    def source():
        return shared_input_buffer(8, seed=1)

    with pytest.raises(pitfalls.AliasingError, match=r"batch 0, inputs\[0\], after later draws"):
        pitfalls.assert_generator_no_aliasing(source)
    with pytest.raises(
        pitfalls.TargetMismatchError, match=r"matched when it was yielded but not after"
    ):
        pitfalls.assert_targets_match(source, mean_target)


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
@pytest.mark.parametrize("form", ["article", "pair"])
def test_fixed_variants_pass_both_checks(variant, form):
    def source():
        return variant(8, seed=1, form=form)

    pitfalls.assert_generator_no_aliasing(source)
    pitfalls.assert_targets_match(source, mean_target)


# A consumer that reads ahead ---------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 10])
def test_read_ahead_pairs_the_inputs_of_batch_i_plus_depth_with_the_targets_of_batch_i(depth):
    n = 30
    truth = intended(4, 3, n + depth)
    stream = pitfalls.read_ahead(shared_input_buffer(4, seed=3, form="pair"), depth)
    mismatched = 0
    for i, (x, y) in enumerate(itertools.islice(stream, n)):
        # Used the moment it is handed out, as a training step would: x was
        # already refilled by the draw of batch i + depth.
        np.testing.assert_array_equal(x, truth[i + depth][0])
        np.testing.assert_array_equal(y, truth[i][1])
        mismatched += not np.allclose(mean_target(x), y)
    assert mismatched == n  # a coincidence would need 4 equal means in a row


def test_read_ahead_of_the_articles_fix_never_hands_out_the_batch_it_yielded():
    depth, n = 2, 20
    truth = intended(4, 3, n + depth)
    stream = pitfalls.read_ahead(shared_input_and_target_buffers(4, seed=3, form="pair"), depth)
    for i, (x, y) in enumerate(itertools.islice(stream, n)):
        np.testing.assert_allclose(mean_target(x), y)  # consistent...
        np.testing.assert_array_equal(x, truth[i + depth][0])  # ...but not batch i


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
@pytest.mark.parametrize("depth", [0, 1, 10])
def test_read_ahead_of_fixed_variants_is_exactly_the_intended_stream(variant, depth):
    truth = intended(4, 3, 25)
    seen = itertools.islice(pitfalls.read_ahead(variant(4, seed=3, form="pair"), depth), 25)
    for (x, y), (tx, ty) in zip(seen, truth, strict=True):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)


def test_depth_zero_is_a_plain_loop_and_hides_the_bug():
    # Used at once, each batch is still intact: why the bug survives a quick look.
    truth = intended(4, 3, 20)
    seen = itertools.islice(pitfalls.read_ahead(shared_input_buffer(4, seed=3, form="pair"), 0), 20)
    for (x, y), (tx, ty) in zip(seen, truth):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)


def test_article_form_is_the_articles_nesting():
    xs, ys = next(shared_input_buffer(3, seed=0))
    assert isinstance(xs, list) and isinstance(ys, list)
    assert xs[0].shape == (3, 2) and ys[0].shape == (3, 1)
    x, y = next(fresh_vectorized(3, seed=0, form="pair"))
    assert x.shape == (3, 2) and y.shape == (3,)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size=0 must be >= 1"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int"),
        ({"batch_size": 2, "form": "keras"}, ValueError, "form must be 'article' or 'pair'"),
        (
            {"batch_size": 2, "seed": "0"},
            TypeError,
            "seed must be an int or a numpy.random.Generator",
        ),
    ],
)
def test_reproductions_reject_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        next(copy_on_yield(**kwargs))


def test_a_generator_seed_is_used_as_given():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    xa, _ = next(fresh_vectorized(4, seed=rng_a, form="pair"))
    xb, _ = next(fresh_per_yield(4, seed=rng_b, form="pair"))
    np.testing.assert_array_equal(xa, xb)
