"""read_ahead: a consumer with a prefetch buffer, in one thread and a fixed order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitfalls import read_ahead


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
    with pytest.raises(ValueError, match="depth=-1 must be >= 0"):
        read_ahead([], -1)
    with pytest.raises(TypeError, match="depth must be an int, got float"):
        read_ahead([], 1.5)
    with pytest.raises(TypeError, match="source must be"):
        read_ahead(3, 1)
