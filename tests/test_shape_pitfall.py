"""Pitfall 2 on Keras 3: a Lambda that returns (n,) where it declares (1,).

Tests marked ``keras_backend`` run on every Keras backend (CI runs them once
more under ``KERAS_BACKEND=jax`` and ``torch``): the same shapes, the same
broadcast in a ``Loss`` subclass, the same verdicts from ``assert_fits``. The
GradientTape loop is TensorFlow's own. Models are built once per module
(building is the slow part). The oracle for
every loss is numpy, one pair at a time or the closed form of the (n, n)
broadcast: mean over i, j of (y_i - y_j)^2 = 2 Var(y) for an exact model.

Each Keras call costs a data pipeline or a trace, so the hypothesis tests run
few examples: batch size 1 explicitly, then the simplest batch of 2 to 64 and
one more (drawn afresh under ``--hypothesis-profile=explore``). ``assert_fits``
trains for its default 2000 steps where the verdict is about that budget.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import pitfalls
from pitfalls.reproductions import shapes

batch_sizes = st.integers(min_value=2, max_value=64)  # and n=1 in every test's @example
ranges = st.tuples(st.integers(-1000, 1000), st.integers(1, 1000)).map(
    lambda t: (t[0], t[0] + t[1])
)
seeds = st.integers(0, 2**32 - 1)
few = settings(max_examples=2)  # each example runs Keras: the @example and two drawn


@pytest.fixture(scope="module")
def models(keras):
    keras.utils.set_random_seed(0)
    return {
        "mean_model": shapes.mean_model(),
        "lambda_mean_fixed": shapes.lambda_mean_fixed(),
        "lambda_mean_buggy": shapes.lambda_mean_buggy(),
    }


def broadcast_mse(y):
    """What an exact model scores when (n, 1) targets meet (n,) outputs: 2 Var(y)."""
    return float(np.mean((y[:, None] - y[None, :]) ** 2))


# Shapes ---------------------------------------------------------------------------


@pytest.mark.keras_backend
@few
@given(n=batch_sizes, bounds=ranges, seed=seeds)
@example(n=1, bounds=(0, 100), seed=0)  # batch size 1, where shape bugs hide by count
def test_fixed_models_predict_n_by_1(models, n, bounds, seed):
    x, _ = shapes.mean_data(n, seed=seed, low=bounds[0], high=bounds[1])
    for name in ("mean_model", "lambda_mean_fixed"):
        report = pitfalls.check_prediction_shape(models[name], x)
        assert report.ok and report.summary == f"model.predict(x) returned ({n}, 1)"


@pytest.mark.keras_backend
@few
@given(n=batch_sizes, bounds=ranges, seed=seeds)
@example(n=1, bounds=(0, 100), seed=0)  # batch size 1, where shape bugs hide by count
def test_the_buggy_lambda_declares_n_by_1_and_predicts_n(models, n, bounds, seed):
    model = models["lambda_mean_buggy"]
    x, y = shapes.mean_data(n, seed=seed, low=bounds[0], high=bounds[1])
    assert model.output_shape == (None, 1)  # what it declares...
    with pytest.raises(  # ...is not what predict returns: [46.], not [[46.]]
        pitfalls.PredictionShapeError,
        match=rf"model.predict\(x\) returned shape \({n},\), expected \({n}, 1\)",
    ):
        pitfalls.assert_prediction_shape(model, x)
    pred = model.predict_on_batch(x)  # the same step as predict, without its data pipeline
    assert pred.shape == (n,)
    np.testing.assert_allclose(pred, y, rtol=1e-6)  # the values are exact


@pytest.mark.keras_backend
def test_an_explicit_expected_shape_overrides_the_declared_one(models):
    x, _ = shapes.mean_data(40)  # predict runs batches of 32 and 8, then concatenates
    pitfalls.assert_prediction_shape(models["lambda_mean_buggy"], x, expected=(40,))
    pitfalls.assert_prediction_shape(models["mean_model"], x, expected=(None, 1))
    with pytest.raises(pitfalls.PredictionShapeError, match=r"returned shape \(40, 1\)"):
        pitfalls.assert_prediction_shape(models["mean_model"], x, expected=(40,))


@pytest.mark.keras_backend
def test_named_outputs_are_checked_one_by_one(keras):
    """A functional model with a dict of outputs: each output against its declared shape."""
    inputs = keras.Input((2,))
    head = keras.layers.Dense(1)(inputs)
    flat = keras.layers.Lambda(lambda t: t[:, 0], output_shape=(2,))(inputs)  # declares 2
    model = keras.Model(inputs, {"mean": head, "flat": flat})
    report = pitfalls.check_prediction_shape(model, np.zeros((3, 2), dtype="float32"))
    assert report.parameters["declared"] == "[(None, 2), (None, 1)]"  # sorted by name
    assert [(f.path, f.problem) for f in report.findings] == [
        ("prediction['flat']", "model.predict(x) returned shape (3,), expected (3, 2)")
    ]


@pytest.mark.keras_backend
def test_prediction_shape_misuse(models):
    x, _ = shapes.mean_data(4)
    with pytest.raises(TypeError, match="expected must be a shape tuple"):
        pitfalls.assert_prediction_shape(models["mean_model"], x, expected=[4, 1.5])
    with pytest.raises(ValueError, match="declares no output_shape: pass expected="):
        pitfalls.assert_prediction_shape(lambda inputs: inputs[:, :1], x)
    pitfalls.assert_prediction_shape(lambda inputs: inputs[:, :1], x, expected=(4, 1))


# Loss path 1: a Loss subclass --------------------------------------------------------


@pytest.mark.keras_backend
@few
@given(n=batch_sizes, bounds=ranges, seed=seeds)
@example(n=1, bounds=(0, 100), seed=0)  # batch size 1, where shape bugs hide by count
def test_a_loss_subclass_broadcasts_and_its_fix_does_not(models, n, bounds, seed):
    x, y = shapes.mean_data(n, seed=seed, low=bounds[0], high=bounds[1])
    buggy = shapes.loss_subclass_mse(
        models["lambda_mean_buggy"], shapes.mse_loss_subclass_buggy(), x, y
    )
    fixed = shapes.loss_subclass_mse(
        models["lambda_mean_buggy"], shapes.mse_loss_subclass_fixed(), x, y
    )
    assert buggy == pytest.approx(broadcast_mse(y), rel=1e-5, abs=1e-3)  # wrong, exactly so
    assert fixed == pytest.approx(0.0, abs=1e-3)  # the model is exact


@pytest.mark.keras_backend
def test_the_articles_830_reproduces_with_a_loss_subclass(models):
    # E[(y_i - y_j)^2] = 2 Var(mean of two integers in [0, 100)) = 2 * 9999/24 = 833.25
    x, y = shapes.mean_data(4096, seed=0)
    loss = shapes.loss_subclass_mse(
        models["lambda_mean_buggy"], shapes.mse_loss_subclass_buggy(), x, y
    )
    assert loss == pytest.approx(broadcast_mse(y), rel=1e-5)
    assert loss == pytest.approx(833.25, rel=0.05)  # the article: ~830


@pytest.mark.keras_backend
def test_strict_loss_turns_the_subclass_broadcast_into_an_error(keras, models):
    from keras import ops

    class StrictMSE(keras.losses.Loss):
        @pitfalls.strict_loss
        def call(self, y_true, y_pred):
            return ops.mean(ops.square(y_true - y_pred), axis=-1)

    x, y = shapes.mean_data(8)
    with pytest.raises(pitfalls.BroadcastError, match=r"y_true=\(8, 1\), y_pred=\(8,\)"):
        shapes.loss_subclass_mse(models["lambda_mean_buggy"], StrictMSE(), x, y)
    assert shapes.loss_subclass_mse(models["lambda_mean_fixed"], StrictMSE(), x, y) == 0.0


# Where Keras 3 rescues you -----------------------------------------------------------


@pytest.mark.keras_backend
@few
@given(n=batch_sizes, seed=seeds)
@example(n=1, seed=0)
def test_keras_3_builtin_mse_reshapes_so_the_buggy_lambda_scores_zero(models, n, seed):
    # Pinned: the article saw ~830 here on Keras 2. If Keras stops reshaping,
    # this fails and the README's table must change.
    x, y = shapes.mean_data(n, seed=seed)
    assert shapes.keras_mse(models["lambda_mean_buggy"], x, y) == pytest.approx(0.0, abs=1e-3)


# Loss path 2: a GradientTape loop ---------------------------------------------------


# Loss path 3: numpy evaluation ---------------------------------------------------


@pytest.mark.keras_backend
@few
@given(n=st.integers(2, 64), seed=seeds)
def test_numpy_evaluation_is_wrong_with_n_targets_and_right_when_reshaped(models, n, seed):
    model = models["lambda_mean_fixed"]  # exact: the true MSE is 0
    x, y = shapes.mean_data(n, seed=seed)
    pred = model.predict_on_batch(x)  # (n, 1), as predict returns it
    truth = sum((y[i] - pred[i, 0]) ** 2 for i in range(n)) / n
    assert shapes.numpy_mse_fixed(model, x, y) == pytest.approx(truth, abs=1e-6)
    assert shapes.numpy_mse_buggy(model, x, y) == pytest.approx(
        broadcast_mse(y), rel=1e-4, abs=1e-3
    )
    with pytest.raises(pitfalls.BroadcastError):
        pitfalls.assert_no_broadcast(y, pred)


def test_tensorflow_tensors_are_checked_too(tf):
    pitfalls.assert_no_broadcast(tf.zeros((3, 1)), tf.ones((3, 1)))
    with pytest.raises(pitfalls.BroadcastError, match=r"broadcasts to \(3, 3\)"):
        pitfalls.assert_no_broadcast(tf.zeros((3, 1)), tf.ones((3,)))


@pytest.mark.keras_backend
def test_backend_tensors_are_checked_on_every_backend(keras):
    # keras.ops makes the backend's own tensors: tf.Tensor, jax.Array, torch.Tensor
    pitfalls.assert_no_broadcast(keras.ops.zeros((3, 1)), keras.ops.ones((3, 1)))
    with pytest.raises(pitfalls.BroadcastError, match=r"broadcasts to \(3, 3\)"):
        pitfalls.assert_no_broadcast(keras.ops.zeros((3, 1)), keras.ops.ones((3,)))


# Fitting: the same verdicts on every backend ----------------------------------------


@pytest.mark.keras_backend
def test_a_broadcasting_loss_cannot_fit_and_says_why(keras):
    x, y = shapes.mean_data(64)  # each step computes the (n, n) broadcast: n = 64 is enough
    with pytest.raises(
        pitfalls.UnderfitError, match=r"loss, after 2000 steps: .* > max_loss=0.001"
    ) as excinfo:
        pitfalls.assert_fits(
            shapes.mean_model, x, y, max_loss=1e-3, loss=shapes.mse_loss_subclass_buggy()
        )
    assert "assert_no_broadcast" in str(excinfo.value)
    # Every prediction is compared with every target: the best a model can do is
    # predict their mean for everyone, which scores Var(y). It got there.
    final = dict(excinfo.value.report.measured)["final_loss"]
    assert final == pytest.approx(np.var(y), rel=1e-3)


@pytest.mark.keras_backend
def test_the_mean_model_fits_with_a_wide_margin_and_yours_is_not_trained(models):
    # The same loss fits once the targets have the model's shape: then it is the
    # textbook MSE (measured: on every backend this run is loss="mse"'s, to the bit).
    x, y = shapes.mean_data(256, seed=1)
    model = models["mean_model"]
    before = [w.copy() for w in model.get_weights()]
    rngs = random.getstate(), np.random.get_state()
    report = pitfalls.check_fits(
        model, x, y[:, None], max_loss=1e-3, loss=shapes.mse_loss_subclass_buggy()
    )
    # it seeds the training (keras.utils.set_random_seed), then puts your RNGs back
    assert random.getstate() == rngs[0]
    np.testing.assert_equal(np.random.get_state(), rngs[1])
    measured = dict(report.measured)
    assert report.ok and report.parameters["steps"] == 2000  # the default budget
    assert measured["initial_loss"] > 1.0  # fresh weights, far from the mean...
    assert measured["final_loss"] < 1e-6  # ...then a thousand times below max_loss
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)  # a clone was trained, not yours


@pytest.mark.keras_backend
def test_the_fixed_lambda_fits_trivially(keras):
    x, y = shapes.mean_data(64)
    # steps=1: with no weights to train, the budget cannot change the verdict
    report = pitfalls.check_fits(shapes.lambda_mean_fixed, x, y[:, None], max_loss=1e-6, steps=1)
    assert report.ok and report.notes == (
        "Note: the model has no trainable weights; only its fixed function was judged.",
    )


@pytest.mark.keras_backend
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_loss": 0}, ValueError, "max_loss=0.0 must be above 0"),
        ({"max_loss": float("nan")}, ValueError, "max_loss=nan must be a finite number"),
        ({"max_loss": "1e-3"}, TypeError, "max_loss must be a number, got str '1e-3'"),
        ({"max_loss": 1e-3, "steps": 0}, ValueError, "steps=0 must be at least 1"),
        ({"max_loss": 1e-3, "steps": 2.5}, TypeError, "steps must be an int"),
        ({"max_loss": 1e-3, "learning_rate": -1}, ValueError, "learning_rate=-1.0 must be above 0"),
        ({"max_loss": 1e-3, "y": np.zeros(2)}, ValueError, "same number of rows"),
        ({"max_loss": 1e-3, "model": 3}, TypeError, "model must be a keras.Model"),
        ({"max_loss": 1e-3, "model": lambda: 3}, TypeError, "returned int, not a keras.Model"),
        ({"max_loss": 1e-3, "model": lambda x: x}, TypeError, r"<lambda>\(x\) needs arguments"),
    ],
)
def test_fits_misuse(keras, kwargs, error, match):
    x, y = shapes.mean_data(4)
    args = {"model": shapes.mean_model, "x": x, "y": y, **kwargs}
    with pytest.raises(error, match=match):
        pitfalls.assert_fits(args.pop("model"), args.pop("x"), args.pop("y"), **args)


@pytest.mark.keras_backend
def test_fits_message(keras):
    x, y = shapes.mean_data(64)
    with pytest.raises(pitfalls.UnderfitError) as excinfo:
        pitfalls.assert_fits(
            shapes.lambda_mean_buggy,
            x,
            y[:, None],
            max_loss=1e-3,
            steps=5,
            loss=shapes.mse_loss_subclass_buggy(),
            msg="mean model",
        )
    lines = str(excinfo.value).splitlines()
    expected = [
        r"fits\(max_loss=0.001, steps=5, batch_size=64, learning_rate=1, loss=broadcasting_mse,"
        r" seed=0\) failed",
        r"The model did not fit data it should be able to fit: the training signal is broken"
        r" \(inputs paired with other targets, a \(n,\) against \(n, 1\) loss broadcasting to"
        r" \(n, n\), a wrong rule\), or the budget is too small\.",
        r"Findings:",
        r"  loss, after 5 steps: (\d+\.\d+) > max_loss=0.001 \(it started at \1\)",
        r"Note: the model has no trainable weights; only its fixed function was judged\.",
        r"Hint: check the data with assert_targets_match and assert_generator_no_aliasing and"
        r" the shapes with assert_prediction_shape and assert_no_broadcast; if they pass, raise"
        r" steps or learning_rate\.",
        r"mean model",
    ]
    assert len(lines) == len(expected)
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    loss = float(re.fullmatch(expected[3], lines[3]).group(1))
    assert loss == pytest.approx(broadcast_mse(y), rel=1e-4)
