"""Pitfall 1's reproductions as code: same numbers, both forms, bad arguments refused.

The story (what the article saw, the invariant under read-ahead, the checkers catching
it) is the lesson ``tests/lessons/test_01_one_buffer.py``. The oracle here is ``fresh_per_yield`` with the same seed: every variant
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


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
@pytest.mark.parametrize("form", ["article", "pair"])
def test_fixed_variants_pass_both_checks(variant, form):
    def source():
        return variant(8, seed=1, form=form)

    pitfalls.assert_generator_no_aliasing(source)
    pitfalls.assert_targets_match(source, mean_target)


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
