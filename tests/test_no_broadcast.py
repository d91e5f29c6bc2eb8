"""assert_no_broadcast and strict_loss: (n,) against (n, 1) is (n, n), loudly.

numpy only; test_shape_pitfall.py runs the same checks on Keras models.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pitfalls import BroadcastError, assert_no_broadcast, check_no_broadcast, strict_loss


def test_the_articles_shapes_fail_and_name_the_n_by_n_result():
    y_true, y_pred = np.zeros((8, 1)), np.zeros(8)
    with pytest.raises(
        BroadcastError, match=r"broadcasts to \(8, 8\): 64 elements where 8 were meant"
    ):
        assert_no_broadcast(y_true, y_pred)


def test_batch_size_one_hides_the_bug_by_count_but_not_from_the_check():
    # (1, 1) - (1,) has one element, as meant: the loss is even right, by luck.
    y_true, y_pred = np.array([[3.0]]), np.array([5.0])
    assert np.mean((y_true - y_pred) ** 2) == 4.0
    report = check_no_broadcast(y_true, y_pred)
    assert not report.ok
    assert "equal only because a size is 1" in report.findings[0].problem


def test_equal_shapes_pass_and_unknown_sizes_match_anything():
    assert_no_broadcast(np.zeros((4, 1)), np.zeros((4, 1)))
    assert_no_broadcast([[1.0], [2.0]], np.zeros((2, 1)))  # nested lists

    class Symbolic:  # like a KerasTensor: batch size unknown
        shape = (None, 1)

    assert_no_broadcast(Symbolic(), np.zeros((4, 1)))
    assert not check_no_broadcast(Symbolic(), np.zeros(4)).ok  # rank still differs


def test_shapes_that_cannot_broadcast_are_reported_too():
    report = check_no_broadcast(np.zeros(3), np.zeros(4))
    assert (
        report.findings[0].problem
        == "shapes (3,) and (4,) do not broadcast: the operation would raise"
    )


def test_ragged_lists_are_misuse():
    with pytest.raises(ValueError, match="y_true has no shape"):
        check_no_broadcast([[1, 2], [3]], np.zeros(2))


@pytest.mark.parametrize(
    "value, got", [("abc", "str 'abc'"), (None, "None"), ({"y": 1}, "dict {'y': 1}")]
)
def test_a_string_none_or_dict_is_misuse_not_a_scalar(value, got):
    """Bug: numpy reads "abc" (and None, and a dict) as a 0-d array, so a typo "failed"."""
    with pytest.raises(TypeError, match=rf"^y_pred must be an array, a tensor .*; got {got}$"):
        check_no_broadcast(np.zeros(2), value)


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=5))
def test_broadcastable_pairs_fail_exactly_when_shapes_differ(shapes):
    a, b = shapes.input_shapes
    report = check_no_broadcast(np.zeros(a), np.zeros(b))
    assert report.ok is (a == b)
    if a != b:  # the message names what numpy itself would produce
        assert f"broadcasts to {np.broadcast_shapes(a, b)}" in str(report)


@given(hnp.array_shapes(min_dims=0, max_dims=3), hnp.array_shapes(min_dims=0, max_dims=3))
def test_pairs_numpy_cannot_broadcast_are_reported_as_raising(a, b):
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        assert "do not broadcast" in str(check_no_broadcast(np.zeros(a), np.zeros(b)))
    else:
        assume(False)


# strict_loss: a strict mode for hand-written losses -----------------------------------


@strict_loss
def mse(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2)


def test_strict_loss_raises_where_the_plain_loss_broadcasts():
    y, pred = np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [3.0]])
    assert mse.__wrapped__(y, pred) == pytest.approx(4 / 3)  # wrong, silently: truth is 0
    with pytest.raises(BroadcastError, match="raised by strict_loss around mse"):
        mse(y, pred)
    assert mse(y[:, None], pred) == 0.0
    assert mse(y_pred=pred, y_true=y[:, None]) == 0.0  # keywords too


def test_strict_loss_on_a_method_skips_self():
    class Loss:
        @strict_loss
        def call(self, y_true, y_pred):
            return float(np.mean((y_true - y_pred) ** 2))

    assert Loss().call(np.zeros((2, 1)), np.ones((2, 1))) == 1.0
    with pytest.raises(BroadcastError):
        Loss().call(np.zeros(2), np.ones((2, 1)))


def test_strict_loss_on_a_callable_object():
    class Scaled:
        def __call__(self, y_true, y_pred):
            return float(np.sum(y_true - y_pred))

    strict = strict_loss(Scaled())
    assert strict(np.ones(2), np.zeros(2)) == 2.0
    with pytest.raises(BroadcastError):
        strict(np.ones(2), np.zeros((2, 1)))


def test_strict_loss_needs_a_callable():
    with pytest.raises(TypeError, match="strict_loss wraps a loss function, got int"):
        strict_loss(3)


@given(n=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_numpy_evaluation_with_n_against_n_1_is_wrong_unless_n_is_1(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 100, size=n).astype(np.float64)
    pred = (y + rng.normal(scale=0.01, size=n))[:, None]  # a good model's (n, 1) output
    truth = sum((y[i] - pred[i, 0]) ** 2 for i in range(n)) / n  # one pair at a time
    silently = np.mean((y - pred) ** 2)  # (n,) - (n, 1) -> (n, n)
    if n == 1:
        assert silently == pytest.approx(truth)  # the bug hides at batch size 1...
    else:
        assume(np.ptp(y) > 0)
        assert silently > truth  # ...and inflates the error otherwise
    with pytest.raises(BroadcastError):  # the check does not depend on n
        assert_no_broadcast(y, pred)
