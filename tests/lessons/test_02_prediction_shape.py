"""Pitfall 2: a model output of shape ``(n,)`` against targets of shape ``(n, 1)``.

What was seen. The article computes the mean exactly, in a ``Lambda`` layer, and
still reports a loss near 830. Without ``expand_dims`` the layer returns ``(n,)``
though it declares ``(1,)``; nothing raises, and ``(n, 1) - (n,)`` broadcasts to
``(n, n)``: every target is compared with every prediction. For an exact model
that loss is ``2 Var(y)``, 833.25 for means of integers in ``[0, 100)``.

The invariant. Predictions have shape ``(n, 1)``, the shape of the targets, for
every batch size ``n``; a loss then compares each sample with its own target, and
the mean model, trained, reaches a near-zero MSE.

Keras 3's built-in ``loss="mse"`` reshapes before it compares, so the article's
830 no longer shows there; it still shows in a ``Loss`` subclass, a GradientTape
loop and a numpy evaluation, the three buggy paths below.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import shapes
from tests.lessons import Pitfall, buggy, examples, fixed, teaches

PITFALL = Pitfall(
    title="2. predictions (n,) against targets (n, 1)",
    invariant="predictions have shape (n, 1) for every batch size n, and the fixed mean"
    " model trains to a near-zero MSE",
    read_more="docs/explanation/pitfalls.md#pitfall-2-an-output-of-shape-n-against-targets-n-1",
    pairs=shapes.PAIRS,
)


def two_var(y):
    """What an exact model scores when every target meets every prediction: 2 Var(y)."""
    return float(np.mean((y[:, None] - y[None, :]) ** 2))


@pytest.fixture(scope="module")
def models(keras):
    keras.utils.set_random_seed(0)
    return {
        "lambda_mean_buggy": shapes.lambda_mean_buggy(),
        "lambda_mean_fixed": shapes.lambda_mean_fixed(),
        "mean_model": shapes.mean_model(),  # the trainable model: Dense(1) on the two inputs
    }


@pytest.fixture(scope="module")
def fits(keras):
    """One training per loss, shared by the tests that read it: the mean model (outputs
    (n, 1)), 2000 Adam steps on 64 samples with targets (n,), under each loss subclass."""
    x, y = shapes.mean_data(64)
    return {
        loss.__name__: pitfalls.check_fits(shapes.mean_model, x, y, max_loss=1e-3, loss=loss())
        for loss in (shapes.mse_loss_subclass_buggy, shapes.mse_loss_subclass_fixed)
    }, y


@teaches("buggy", shapes.lambda_mean_buggy)  # its (n,) output...
@teaches("buggy", shapes.mse_loss_subclass_buggy)  # ...meets a loss that does not reshape
def test_what_the_article_saw_an_exact_model_scoring_830(models):
    x, y = shapes.mean_data(4096, seed=0)
    loss = shapes.loss_subclass_mse(
        models["lambda_mean_buggy"], shapes.mse_loss_subclass_buggy(), x, y
    )
    assert loss == pytest.approx(two_var(y), rel=1e-5)  # every target against every output
    assert loss == pytest.approx(833.25, rel=0.05)  # 2 Var of a mean of two U[0, 100) integers


@pytest.mark.parametrize("make", [*fixed(shapes.lambda_mean_fixed), shapes.mean_model])
@examples(2)
@given(n=st.integers(2, 64))
@example(n=1)  # batch size 1, where a shape bug hides by count
def test_the_fixed_models_predict_n_by_1_for_every_batch_size(models, make, n):
    model = models[make.__name__]  # built once, by the module's fixture
    x, _ = shapes.mean_data(n, seed=n)
    assert model.predict_on_batch(x).shape == (n, 1)
    pitfalls.assert_prediction_shape(model, x)


@pytest.mark.parametrize("make", buggy(shapes.lambda_mean_buggy))
def test_the_buggy_lambda_declares_n_by_1_and_predicts_n(models, make):
    model = models[make.__name__]
    x, y = shapes.mean_data(5)
    assert model.output_shape == (None, 1)  # what it declares...
    assert model.predict_on_batch(x).shape == (5,)  # ...is not what it returns
    np.testing.assert_allclose(model.predict_on_batch(x), y, rtol=1e-6)  # the values are right
    with pytest.raises(pitfalls.PredictionShapeError) as caught:
        pitfalls.assert_prediction_shape(model, x)
    print(caught.value)
    assert caught.value.report.cause is Cause.PREDICTION_SHAPE


@pytest.mark.parametrize(
    "loss", buggy(shapes.mse_loss_subclass_buggy) + fixed(shapes.mse_loss_subclass_fixed)
)
def test_a_loss_subclass_broadcasts_unless_it_reshapes(models, loss):
    x, y = shapes.mean_data(16, seed=3)
    scored = shapes.loss_subclass_mse(models["lambda_mean_buggy"], loss(), x, y)
    if loss is shapes.mse_loss_subclass_fixed:
        assert scored == pytest.approx(0.0, abs=1e-3)  # the model computes the mean exactly
    else:
        assert scored == pytest.approx(two_var(y), rel=1e-5)


@teaches("buggy", shapes.lambda_mean_buggy)
def test_the_broadcast_is_caught_before_it_mixes_samples(models):
    x, y = shapes.mean_data(8)
    predicted = models["lambda_mean_buggy"].predict_on_batch(x)
    with pytest.raises(pitfalls.BroadcastError) as caught:
        pitfalls.assert_no_broadcast(y[:, None], predicted)  # y_true (8, 1), y_pred (8,)
    print(caught.value)
    assert caught.value.report.cause is Cause.BROADCAST


@pytest.mark.parametrize(
    "loss", buggy(shapes.mse_loss_subclass_buggy) + fixed(shapes.mse_loss_subclass_fixed)
)
def test_the_mean_model_trains_to_zero_only_with_the_fixed_loss(fits, loss):
    reports, y = fits
    report = reports[loss.__name__]
    final = dict(report.measured)["final_loss"]
    if loss is shapes.mse_loss_subclass_fixed:
        assert report.ok and final < 1e-6  # near-zero MSE: the mean itself was learned
    else:
        print(report)
        assert report.cause is Cause.UNDERFIT
        # each output is compared with every target: the best the model can do is predict
        # the batch's average for everyone, which scores Var(y), and it got there
        assert final == pytest.approx(np.var(y), rel=1e-3)


@pytest.mark.parametrize(
    "train", buggy(shapes.gradient_tape_buggy) + fixed(shapes.gradient_tape_fixed)
)
def test_a_gradient_tape_loop_learns_the_mean_only_with_n_by_1_targets(tf, train):
    x, y = shapes.mean_data(256, seed=0)
    model = train(x, y)
    weights, bias = model.layers[1].get_weights()
    mse = float(np.mean((np.asarray(model(x)).ravel() - y) ** 2))
    if train is shapes.gradient_tape_fixed:
        np.testing.assert_allclose(weights.ravel(), [0.5, 0.5], atol=0.01)
        assert abs(bias[0]) < 1.0 and mse < 0.5  # the mean, after 300 steps
    else:  # pulled toward predicting the batch's average for everyone
        assert np.all(np.abs(weights.ravel() - 0.5) > 0.1) and bias[0] > 5.0
        assert mse > 50  # over a hundred times the fixed loop's


@pytest.mark.parametrize("evaluate", buggy(shapes.numpy_mse_buggy) + fixed(shapes.numpy_mse_fixed))
def test_a_numpy_evaluation_is_right_only_with_reshaped_targets(models, evaluate):
    x, y = shapes.mean_data(32, seed=5)
    mse = evaluate(models["lambda_mean_fixed"], x, y)  # an exact model: the truth is 0
    if evaluate is shapes.numpy_mse_fixed:
        assert mse == pytest.approx(0.0, abs=1e-6)
    else:
        assert mse == pytest.approx(two_var(y), rel=1e-4)
