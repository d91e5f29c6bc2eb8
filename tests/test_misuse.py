"""Misuse is refused up front, in words that say what to pass instead (a newcomer's trial
found each of these passing silently, or running until killed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls


def test_fit_style_data_is_refused_as_a_source_with_what_to_pass():
    x, y = np.zeros((10, 3)), np.zeros(10)
    for data in ((x, y), (x, y, np.ones(10))):
        with pytest.raises(TypeError, match=r"data, as fit\(x, y\) takes it") as info:
            pitfalls.check_source(data)
        assert "[(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]" in str(info.value)
    # a list of batches is a source, and so is a tuple of batches of other sizes
    assert pitfalls.check_source([(x[:5], y[:5]), (x[5:], y[5:])])[0].ok
    assert pitfalls.check_generator_no_aliasing((x[:4], x[4:]), draws=2).ok


@pytest.mark.parametrize("batch", [None, "text", (None, None), {"x": "a"}, []])
def test_batches_that_hold_no_array_are_refused(batch):
    with pytest.raises(ValueError, match="none of the 16 batches drawn holds an array"):
        pitfalls.check_generator_no_aliasing(lambda: itertools.repeat(batch))


def test_draws_has_an_upper_bound():
    with pytest.raises(ValueError, match=r"draws=1000000000 is more than 100,000"):
        pitfalls.check_generator_no_aliasing(lambda: itertools.repeat(np.zeros(2)), draws=10**9)

    class Indexed:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.full(2, float(i))

    with pytest.raises(ValueError, match=r"draws=200000 is more than 100,000"):
        pitfalls.check_index_stable(Indexed(), draws=200_000)
