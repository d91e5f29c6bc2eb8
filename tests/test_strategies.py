"""pitfalls.strategies: building blocks for a user's own property tests.

That ``import pitfalls`` loads neither this module nor hypothesis is checked in a
fresh interpreter, with the frameworks, by tests/test_public_api.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import pitfalls
from pitfalls import strategies


@given(strategies.batch_sizes(max_size=8))
def test_batch_sizes_stay_in_range(n):
    assert 1 <= n <= 8


@given(strategies.batches(dtype=np.int16, features=(3, 2), batch_size=st.just(4)))
def test_batches_have_the_asked_shape_and_dtype(x):
    assert x.shape == (4, 3, 2) and x.dtype == np.int16


@given(strategies.broadcasting_pairs(max_batch=16))
def test_every_broadcasting_pair_broadcasts_and_is_caught(pair):
    a, b = pair
    assert a != b
    np.broadcast_shapes(a, b)  # numpy accepts it: the bug would be silent
    with pytest.raises(pitfalls.BroadcastError):
        pitfalls.assert_no_broadcast(np.zeros(a), np.zeros(b))


def test_broadcasting_pairs_include_the_articles_case_at_batch_size_one():
    found = set()

    @given(strategies.broadcasting_pairs(min_batch=1, max_batch=1))
    def collect(pair):
        found.add(pair)

    collect()
    assert ((1,), (1, 1)) in found and ((1, 1), (1,)) in found


@given(strategies.batch_sources(strategies.batches(batch_size=st.integers(1, 4))))
def test_sources_fail_the_checker_exactly_when_reused_memory_changes(source):
    report = pitfalls.check_generator_no_aliasing(source, draws=len(source.arrays))
    if not source.reuses_memory:
        assert report.ok, source
    else:
        # a reused array holds the last batch written into it: flagged iff that differs
        slots = source.slots
        last = {i % slots: a for i, a in enumerate(source.arrays)}
        expected = tuple(
            i
            for i, a in enumerate(source.arrays)
            if not np.array_equal(a, last[i % slots], equal_nan=a.dtype.kind in "fc")
        )
        assert report.bad_batches == expected, source


@given(
    strategies.batch_sources(
        target_fn=lambda x: x.sum(axis=1), reuse=("one_buffer",), min_batches=3
    )
)
def test_read_ahead_of_a_reused_buffer_pairs_later_inputs_with_earlier_targets(source):
    depth = 1
    with np.errstate(over="ignore"):  # huge floats may sum to inf: data, not a mistake
        for i, (x, y) in enumerate(pitfalls.read_ahead(source(), depth)):
            j = min(i + depth, len(source.arrays) - 1)  # the buffer holds batch i + depth
            np.testing.assert_array_equal(x, source.arrays[j])
            np.testing.assert_array_equal(y, source.arrays[i].sum(axis=1))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: strategies.batch_sizes(min_size=5, max_size=2),
            "min_size=5 is larger than max_size=2",
        ),
        (lambda: strategies.batch_sizes(min_size=0), "min_size=0 must be at least 1"),
        (lambda: strategies.batches(features=(2, -1)), r"features\[1\]=-1 must be at least 0"),
        (lambda: strategies.batches(batch_size=4), "batch_size=4 must be a strategy"),
        (
            lambda: strategies.broadcasting_pairs(min_batch=3, max_batch=1),
            "min_batch=3 is larger than max_batch=1",
        ),
        (
            lambda: strategies.batch_sources(reuse=("shared",)),
            r"reuse=\('shared',\) must be a non-empty selection",
        ),
        (lambda: strategies.batch_sources(max_slots=1), "max_slots=1 must be at least 2"),
        (lambda: strategies.batch_sources(target_fn=3), "target_fn=3 must be callable"),
    ],
)
def test_bad_arguments_fail_when_the_strategy_is_made(make, message):
    with pytest.raises(InvalidArgument, match=message):
        make()
