"""Beyond the article: targets computed in integers.

What is seen. Bright pairs of pixels get dark targets, ``(200 + 100) // 2 == 22``;
or a model whose loss never falls below 1/16, a quarter off on every sample. The targets
were computed in the inputs' integer dtype: uint8 addition wraps at 256 before
the division, and ``//`` floors every odd sum.

The invariant. Every yielded target is the exact mean of its inputs, the rule
``targets.mean_target`` computes in float64; ``assert_targets_match`` compares
each batch against it when yielded, and says why integers went wrong.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import targets
from tests.lessons import Pitfall, best_mean_model, buggy, examples, fixed, teaches

PITFALL = Pitfall(
    title="5. targets computed in integers",
    invariant="every yielded target is the exact (float) mean of its inputs",
    read_more="docs/explanation/pitfalls.md#beyond-the-article-the-pitfalls-next-door",
    pairs=targets.PAIRS,
)


@pytest.mark.parametrize("variant", buggy(*(b for b, _ in targets.PAIRS)))
def test_integer_arithmetic_breaks_the_rule_when_the_batch_is_yielded(variant):
    with pytest.raises(pitfalls.TargetMismatchError) as caught:
        pitfalls.assert_targets_match(variant, targets.mean_target)
    print(caught.value)  # a note names the dtype that wrapped or the // that floored
    report = caught.value.report
    assert report.cause is Cause.TARGETS_MISMATCH
    assert {f.when for f in report.findings} == {"when yielded"}  # no aliasing involved
    assert len(report.notes) == 1  # the note naming the integer arithmetic


@teaches("buggy", targets.uint8_pixels_buggy)
def test_a_uint8_sum_wraps_past_255():
    x, y = next(targets.uint8_pixels_buggy(256, seed=0))
    wrapped = x.astype(int).sum(axis=1) > 255
    assert wrapped.any()
    np.testing.assert_array_equal(y[wrapped], (x[wrapped].astype(int).sum(axis=1) - 256) // 2)


@pytest.mark.parametrize("variant", fixed(*(f for _, f in targets.PAIRS)))
@examples(5)
@given(seed=st.integers(0, 2**32 - 1), batch_size=st.integers(1, 64))
def test_widening_first_keeps_every_target_exact(variant, seed, batch_size):
    x, y = next(variant(batch_size, seed=seed))
    np.testing.assert_array_equal(y, targets.mean_target(x))
    pitfalls.assert_targets_match(lambda: variant(batch_size, seed=seed), targets.mean_target)


@pytest.mark.parametrize(
    "variant", buggy(targets.integer_division_buggy) + fixed(targets.integer_division_fixed)
)
def test_floored_targets_leave_the_best_model_a_quarter_off_on_every_sample(variant):
    weights, bias, mse = best_mean_model(*next(variant(100_000, seed=0)))
    np.testing.assert_allclose(weights, [0.5, 0.5], atol=1e-3)
    if variant is targets.integer_division_buggy:
        assert bias == pytest.approx(-0.25, abs=0.01)  # half the odd sums lost 0.5
        assert mse == pytest.approx(1 / 16, rel=0.01)  # 0.25 off, every sample
    else:
        assert abs(bias) < 1e-9 and mse < 1e-20  # the mean itself
