"""assert_targets_match: the invariant "targets == target_fn(inputs)", now and later."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pitfalls import TargetMismatchError, assert_targets_match, check_targets_match
from pitfalls.reproductions.generators import fresh_vectorized, mean_target, shared_input_buffer


def mean_of_pair(x):
    return x.mean(axis=1)


def uint8_pixels_with_wrapping_mean():
    r = np.random.default_rng(0)
    while True:
        x = r.integers(0, 256, size=(8, 2), dtype=np.uint8)
        yield x, (x[:, 0] + x[:, 1]) // 2  # uint8 + uint8 wraps past 255


def integer_division_target():
    r = np.random.default_rng(0)
    while True:
        x = r.integers(0, 100, size=(8, 2))
        yield x, (x[:, 0] + x[:, 1]) // 2  # floors 38.5 to 38


def test_integer_overflow_fails_when_yielded():
    with pytest.raises(TargetMismatchError, match="when yielded") as excinfo:
        assert_targets_match(
            uint8_pixels_with_wrapping_mean, lambda x: x.astype(np.int64).sum(axis=1) // 2
        )
    assert "integer" in str(excinfo.value) and "overflow" in str(excinfo.value)


def test_integer_division_fails_when_yielded_and_names_the_elements():
    report = check_targets_match(integer_division_target, mean_of_pair)
    assert not report.ok
    first = report.findings[0]
    assert (first.batch, first.path, first.when) == (0, "targets", "when yielded")
    for index, expected, actual in first.locations:  # only the odd sums differ
        assert expected - actual == 0.5 and index[0] < 8


def test_shape_n_against_n_1_is_a_finding_not_a_broadcast():
    def source():
        while True:
            x = np.ones((4, 2))
            yield x, x.mean(axis=1)  # (4,)

    report = check_targets_match(source, lambda x: x.mean(axis=1, keepdims=True))
    assert report.findings[0].problem == "shape (4,), but target_fn gives (4, 1)"


def test_shared_input_fails_only_after_later_draws():
    report = check_targets_match(lambda: shared_input_buffer(8, seed=2), mean_target)
    assert {f.when for f in report.findings} == {"after later draws"}
    assert report.bad_batches == tuple(range(15))  # the last one was not overwritten yet
    assert "another batch's targets" in report.reason


def test_sample_weights_are_allowed_and_ignored():
    def source():
        for x, y in fresh_vectorized(4, seed=0, form="pair"):
            yield x, y, np.ones(4)

    assert_targets_match(source, mean_target)


def test_nested_targets_are_paired_in_order():
    def source():
        r = np.random.default_rng(0)
        while True:
            x = r.normal(size=(3, 2))
            yield {"x": x}, {"sum": x.sum(axis=1), "max": x.max(axis=1)}

    assert_targets_match(
        source, lambda inp: {"sum": inp["x"].sum(axis=1), "max": inp["x"].max(axis=1)}
    )


@pytest.mark.parametrize(("noise", "passes"), [(1e-9, True), (1e-3, False)])
def test_rtol_decides_what_is_close(noise, passes):
    def source():
        r = np.random.default_rng(0)
        while True:
            x = r.uniform(1, 2, size=(4, 2))
            yield x, x.mean(axis=1) * (1 + noise)

    assert check_targets_match(source, mean_of_pair, rtol=1e-6).ok is passes


def test_atol_allows_absolute_slack_near_zero():
    def source():
        while True:
            x = np.zeros((4, 2))
            yield x, np.full(4, 1e-9)

    assert not check_targets_match(source, mean_of_pair).ok
    assert check_targets_match(source, mean_of_pair, atol=1e-8).ok


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target_fn": "mean"}, TypeError, "target_fn must be callable, got str"),
        ({"rtol": -1.0}, ValueError, r"rtol=-1.0 must be at least 0"),
        ({"atol": float("nan")}, ValueError, r"atol=nan must be a finite number"),
        ({"rtol": "1e-6"}, TypeError, "rtol must be a number, got str"),
        ({"draws": 1}, ValueError, "draws=1 must be at least 2"),
    ],
)
def test_misuse_raises_a_clear_error(kwargs, error, match):
    args = {"source": lambda: fresh_vectorized(4, form="pair"), "target_fn": mean_target, **kwargs}
    with pytest.raises(error, match=match):
        assert_targets_match(**args)


def test_a_batch_without_targets_is_misuse():
    with pytest.raises(
        ValueError,
        match=r"batch 0 is a ndarray, with no targets to check: check_targets_match needs"
        r" batches of \(inputs, targets\[, sample_weights\]\) as a tuple or list, a dict with"
        r" a 'y', 'label', 'labels', 'target' or 'targets' key, or unpack=",
    ):
        assert_targets_match(lambda: iter([np.zeros(2)] * 20), mean_of_pair)


def test_target_fn_nested_unlike_the_targets_is_misuse():
    with pytest.raises(
        ValueError,
        match=r"target_fn returned 2 array\(s\) for batch 0, but the batch's targets hold 1",
    ):
        assert_targets_match(lambda: fresh_vectorized(4, form="pair"), lambda x: [x[:, 0], x[:, 1]])


def test_an_error_in_target_fn_keeps_its_type_and_says_which_batch():
    def boom(x):
        raise KeyError("no such column")

    with pytest.raises(KeyError) as excinfo:
        assert_targets_match(lambda: fresh_vectorized(4, form="pair"), boom)
    if sys.version_info >= (3, 11):
        assert excinfo.value.__notes__ == [
            "pitfalls: raised by target_fn on the inputs of batch 0 (when yielded)"
        ]


def test_msg_is_appended():
    with pytest.raises(TargetMismatchError) as excinfo:
        assert_targets_match(integer_division_target, mean_of_pair, msg="pipeline v2")
    assert str(excinfo.value).splitlines()[-1] == "pipeline v2"
