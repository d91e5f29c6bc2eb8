"""assert_batch_independent: sample i's output must not move when sample j changes.

The check knows no shapes: it catches the (n, n) broadcast at the loss level
and batch-mixing layers alike, by perturbing one sample at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pitfalls
from pitfalls import BatchDependenceError, assert_batch_independent, check_batch_independent
from pitfalls.reproductions import independence, shapes


def per_sample_mse(y_true, y_pred):
    """A textbook per-sample loss: mean over the last axis, as Keras' Loss.call returns."""
    return np.mean((y_true - y_pred) ** 2, axis=-1)


@given(st.integers(2, 32), st.integers(0, 2**32 - 1), st.booleans())
def test_n_against_n_1_mixes_samples_either_way_round(n, seed, targets_flat):
    rng = np.random.default_rng(seed)
    flat, column = rng.normal(size=n), rng.normal(size=(n, 1))
    y_true, y_pred = (flat, column) if targets_flat else (column, flat)
    with pytest.raises(BatchDependenceError):
        assert_batch_independent(per_sample_mse, y_true, y_pred)


@given(st.integers(2, 32), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_matching_shapes_keep_samples_apart(n, features, seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.normal(size=(n, features)), rng.normal(size=(n, features))
    assert_batch_independent(per_sample_mse, y_true, y_pred, max_perturbed=32)


def test_the_article_and_the_gradient_tape_orientations_both_fail():
    y = np.arange(8.0)
    with pytest.raises(
        BatchDependenceError,
        match=r"y_pred\[0\], perturbed: changing it moved the outputs of 7 / 7",
    ):
        assert_batch_independent(per_sample_mse, y[:, None], y)  # (n, 1) targets, (n,) outputs
    report = check_batch_independent(per_sample_mse, y, y[:, None])  # (n,) targets, (n, 1) outputs
    assert not report.ok and {f.path.split("[")[0] for f in report.findings} == {
        "y_true"
    }  # the targets mix


def test_normalising_over_the_batch_mixes_samples_and_a_row_function_does_not():
    x = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(BatchDependenceError):
        assert_batch_independent(lambda a: (a - a.mean(axis=0)) / a.std(axis=0), x)
    assert_batch_independent(lambda a: a / np.linalg.norm(a, axis=1, keepdims=True), x)


def test_integer_inputs_are_perturbed_within_range():
    tokens = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert_batch_independent(lambda t: t.sum(axis=1), tokens)
    with pytest.raises(BatchDependenceError):
        assert_batch_independent(lambda t: t.sum(axis=1) + t.sum(), tokens)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check_batch_independent(3, np.zeros(3)), TypeError, "fn must be callable"),
        (
            lambda: check_batch_independent(np.sum, np.zeros(3)),
            ValueError,
            r"returned shape \(\) for a batch of 3",
        ),
        (
            lambda: check_batch_independent(lambda x: x, np.zeros(1)),
            ValueError,
            "at least 2 samples",
        ),
        (
            lambda: check_batch_independent(lambda x: x, np.zeros(3), max_perturbed=0),
            ValueError,
            "max_perturbed=0",
        ),
        (
            lambda: check_batch_independent(lambda x: x, np.zeros(3), rtol=-1.0),
            ValueError,
            "rtol=-1.0",
        ),
        (lambda: check_batch_independent(lambda x: x), TypeError, "pass fn's arguments after it"),
        (
            lambda: check_batch_independent(lambda x: (x, x), np.zeros(3)),
            ValueError,
            "fn returned several outputs",
        ),
        (
            lambda: check_batch_independent(lambda x: object(), np.zeros(3)),
            TypeError,
            "fn returned object, which numpy cannot read",
        ),
        (
            lambda: check_batch_independent(lambda x: x, np.array(["a", "b", "c"])),
            TypeError,
            "cannot perturb an array of dtype <U1",
        ),
    ],
)
def test_misuse(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_an_error_raised_by_fn_says_which_call_raised_it():
    def fn(x):
        if x[1] != 0:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError, match="boom") as raised:
        check_batch_independent(fn, np.zeros(3))
    assert "pitfalls: raised by fn on the batch with x[1] perturbed" in raised.value.__notes__


def test_boolean_inputs_are_perturbed_by_flipping():
    mask = np.array([[True, False], [False, False], [True, True]])
    assert_batch_independent(lambda m: m.sum(axis=1), mask)
    with pytest.raises(BatchDependenceError, match=r"mask\[1\], perturbed"):  # row 1 flipped
        assert_batch_independent(lambda mask: mask.sum(axis=1) + mask.sum(), mask)


def test_a_function_without_a_signature_names_its_arguments_by_position():
    report = check_batch_independent(np.add, np.ones(3), np.ones(3))  # a ufunc: no signature
    assert report.ok
    report = check_batch_independent(lambda a, b: a + b.sum(), np.ones(3), np.ones(3))
    assert [f.path for f in report.findings] == [f"b[{j}]" for j in range(3)]


# On Keras --------------------------------------------------------------------------


@pytest.mark.keras_backend
def test_batchnorm_in_training_mode_mixes_samples_and_inference_does_not(keras):
    model = independence.batchnorm_model()
    x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")  # 5 eager calls a check
    with pytest.raises(BatchDependenceError, match="training=True"):
        assert_batch_independent(model, x, training=True)
    assert_batch_independent(model, x, training=False)
    with pytest.raises(BatchDependenceError):
        assert_batch_independent(lambda a: independence.predict_in_training_mode(model, a), x)
    assert_batch_independent(lambda a: independence.predict_in_inference_mode(model, a), x)


@pytest.mark.keras_backend
def test_the_loss_subclass_is_caught_without_knowing_shapes(keras):
    _, y = shapes.mean_data(8)
    y_true = y[:, None]  # (n, 1) targets, as compile passes them
    buggy, fixed = shapes.mse_loss_subclass_buggy(), shapes.mse_loss_subclass_fixed()
    # the buggy Lambda's (n,) output against (n, 1) targets, per sample via Loss.call
    with pytest.raises(BatchDependenceError):
        assert_batch_independent(buggy.call, y_true, y)
    assert_batch_independent(buggy.call, y_true, y[:, None])  # the fixed Lambda's (n, 1)
    assert_batch_independent(fixed.call, y_true, y[:, None])


def test_the_gradient_tape_loss_is_caught_on_tensors(keras):
    import tensorflow as tf

    def tape_loss(y_true, y_pred):  # per-sample form of the loop's loss
        return tf.reduce_mean(tf.square(y_true - y_pred), axis=-1)

    _, y = shapes.mean_data(8)
    pred = tf.constant(y[:, None])
    with pytest.raises(BatchDependenceError, match=r"y_true\[0\]"):
        assert_batch_independent(tape_loss, tf.constant(y), pred)  # targets (n,)
    assert_batch_independent(tape_loss, tf.constant(y[:, None]), pred)
    assert pitfalls.check_batch_independent(tape_loss, tf.constant(y[:, None]), pred).ok
