"""read_ahead: a consumer with a prefetch buffer, in one thread and a fixed order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitfalls import check_source, check_targets_match, read_ahead
from pitfalls.reproductions.generators import mean_target, shared_input_buffer


class CountingSource:
    """Yields 0, 1, 2, ... and counts how many items have been drawn."""

    def __init__(self, n):
        self.n = n
        self.drawn = 0

    def __iter__(self):
        for i in range(self.n):
            self.drawn += 1
            yield i


@given(n=st.integers(0, 40), depth=st.integers(0, 12))
def test_order_is_kept_and_nothing_is_lost(n, depth):
    assert list(read_ahead(CountingSource(n), depth)) == list(range(n))


@given(n=st.integers(1, 40), depth=st.integers(0, 12))
def test_batch_i_is_handed_out_after_batch_i_plus_depth_was_drawn(n, depth):
    source = CountingSource(n)
    for i in read_ahead(source, depth):
        assert source.drawn == min(i + depth + 1, n)


def test_depth_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="depth=-1 must be at least 0"):
        read_ahead([], -1)
    with pytest.raises(TypeError, match="depth must be an int, got float"):
        read_ahead([], 1.5)
    with pytest.raises(TypeError, match="source must be"):
        read_ahead(3, 1)


# What the targets check makes of a read-ahead ---------------------------------------------


def read_ahead_of(depth):
    """The article's shared-input generator as a consumer with a prefetch buffer sees it:
    by the time batch i is handed out, the source has refilled x with batch i + depth."""
    return lambda: read_ahead(shared_input_buffer(8, seed=0, form="pair"), depth)


READ_AHEAD_REASON = (
    "Targets differ from target_fn(inputs) on batches as they were yielded because their"
    " inputs were already overwritten with other batches' data"
)


@pytest.mark.parametrize("depth", [1, 3])
def test_inputs_overwritten_before_they_were_compared_are_named_a_read_ahead(depth):
    """Bug: the DataLoader-workers and tf.data-prefetch cases read "another rule ...
    np.expand_dims for a Dense(1) head": the targets were right, the inputs had been
    overwritten by the batches read ahead of them."""
    report = check_targets_match(read_ahead_of(depth), mean_target, draws=6)
    assert {f.when for f in report.findings} == {"when yielded"}
    assert report.reason.startswith(READ_AHEAD_REASON)
    (note,) = [n for n in report.notes if n.startswith("Read-ahead:")]
    assert f"the inputs of batches 0, 1, 2 held the data of batches {depth}, {depth + 1}," in note
    assert report.hint.startswith("allocate new arrays for every batch")


def test_check_source_points_the_targets_report_at_the_failed_aliasing_check():
    aliasing, targets = check_source(read_ahead_of(1), mean_target, draws=6)
    assert aliasing.status == targets.status == "failed"
    assert targets.reason.startswith(READ_AHEAD_REASON)
    assert targets.notes[0].startswith(
        "Aliasing: generator_no_aliasing failed on the same source (5 of 6 batches changed"
    )


def wrong_rule_and_refilled():
    """A wrong rule (+1) and a refilled buffer: two bugs, and no read-ahead."""
    r = np.random.default_rng(0)
    x = np.zeros((4, 2))
    while True:
        x[:] = r.normal(size=x.shape)
        yield x, x.mean(axis=1) + 1


def test_inputs_rewritten_after_a_mismatch_say_so_and_aliasing_comes_first():
    report = check_targets_match(wrong_rule_and_refilled, mean_target, draws=4)
    assert report.reason.startswith(
        "Targets differ from target_fn(inputs) on batches as they were yielded, and the"
        " inputs of 3 of these batches changed again after later draws: the source writes"
        " into batches it has handed out"
    )
    assert report.hint.endswith(
        "Then check the targets again: a mismatch left then is in the rule itself."
    )
    _, via_source = check_source(wrong_rule_and_refilled, mean_target, draws=4)
    assert "and generator_no_aliasing failed on the same source:" in via_source.reason
    assert via_source.hint.startswith("fix what generator_no_aliasing reports first")
