"""Pitfall 2: a model output of shape ``(n,)`` against targets of shape ``(n, 1)``.

The article computes the mean exactly in a ``Lambda`` declared with
``output_shape=(1,)``. Without ``expand_dims`` it returns ``(n,)``; no error is
raised, and ``(n, 1) - (n,)`` broadcasts to ``(n, n)``: every target is compared
with every prediction. Keras 3's built-in losses now reshape first; the paths
below still broadcast on today's stack, each paired with its fix.

Keras and TensorFlow are imported inside the functions, never at import time.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mean_data(
    n: int, *, seed: int = 0, low: int = 0, high: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """The article's data: ``x`` of shape ``(n, 2)``, integers in ``[low, high)`` as
    float32, and their mean ``y`` of shape ``(n,)``."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if high <= low:
        raise ValueError(f"high={high} must be larger than low={low}")
    x = np.random.default_rng(seed).integers(low, high, size=(n, 2)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1]) / 2


# Models ----------------------------------------------------------------------------


def mean_model() -> Any:
    """FIXED: the article's network, ``Dense(1)`` on two inputs.

    Symptom: none; trained, it learns weights (0.5, 0.5) and bias 0.
    Output shape ``(n, 1)``, as declared.
    """
    import keras

    x = keras.Input(shape=(2,), name="x")
    return keras.Model(x, keras.layers.Dense(1)(x), name="mean_model")


def mean_of_columns_expanded(x: Any) -> Any:
    """The article's fixed ``calc_mean``: ``(x0 + x1) / 2`` with the feature axis kept."""
    from keras import ops

    return ops.expand_dims((x[:, 0] + x[:, 1]) / 2, -1)


def mean_of_columns(x: Any) -> Any:
    """The article's buggy ``calc_mean``: ``(x0 + x1) / 2``, shape ``(n,)``."""
    return (x[:, 0] + x[:, 1]) / 2


def lambda_mean_fixed() -> Any:
    """FIXED: the exact mean in a ``Lambda`` that returns what it declares.

    Symptom: none; loss 0.0, ``predict`` returns ``(n, 1)``.
    Fix in the article: ``K.expand_dims(res, -1)`` (``keras.ops`` in Keras 3).
    """
    import keras

    x = keras.Input(shape=(2,), name="x")
    y = keras.layers.Lambda(mean_of_columns_expanded, output_shape=(1,))(x)
    return keras.Model(x, y, name="lambda_mean_fixed")


def lambda_mean_buggy() -> Any:
    """BUGGY: the exact mean in a ``Lambda`` that declares ``(1,)`` and returns ``(n,)``.

    Symptom: no error; the article's loss was ~830 (Keras 2), and ``predict``
    returns ``[46.]`` instead of ``[[46.]]``. On Keras 3 ``loss="mse"`` reshapes
    and reports 0.0, while a ``Loss`` subclass still reports ~830.
    Cause: ``(n, 1) - (n,)`` broadcasts to ``(n, n)``.
    Fix: keep the feature axis (:func:`lambda_mean_fixed`).
    """
    import keras

    x = keras.Input(shape=(2,), name="x")
    y = keras.layers.Lambda(mean_of_columns, output_shape=(1,))(x)
    return keras.Model(x, y, name="lambda_mean_buggy")


# Loss path 1: a keras.losses.Loss subclass ------------------------------------------


def mse_loss_subclass_buggy() -> Any:
    """BUGGY: a ``keras.losses.Loss`` subclass written as the textbook formula.

    Symptom: with the buggy Lambda's ``(n,)`` output and ``(n, 1)`` targets the
    loss is ~830 on inputs in [0, 100) (the article's number), though the model
    is exact. Cause: a subclass's ``call`` gets the shapes as they are; Keras
    reshapes only for its built-in losses. Fix: align the shapes first
    (:func:`mse_loss_subclass_fixed`).
    """
    import keras
    from keras import ops

    class BroadcastingMSE(keras.losses.Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            return ops.mean(ops.square(y_true - y_pred), axis=-1)

    return BroadcastingMSE(name="broadcasting_mse")


def mse_loss_subclass_fixed() -> Any:
    """FIXED: the same subclass, reshaping ``y_true`` to ``y_pred``'s shape first.

    Symptom: none; the exact model's loss is 0.0. A reshape, not a squeeze,
    so that a real mismatch in size still raises.
    """
    import keras
    from keras import ops

    class AlignedMSE(keras.losses.Loss):
        def call(self, y_true: Any, y_pred: Any) -> Any:
            y_true = ops.reshape(y_true, ops.shape(y_pred))
            return ops.mean(ops.square(y_true - y_pred), axis=-1)

    return AlignedMSE(name="aligned_mse")


# Loss path 2: a tf.GradientTape training loop ----------------------------------------


def _train_with_tape(
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
    learning_rate: float,
    seed: int,
    history: list[float] | None,
) -> Any:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = mean_model()
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_variables)  # a graph loop cannot create its variables
    xs, ys = tf.constant(x), tf.constant(y)

    @tf.function
    def train() -> Any:  # every step in one graph call: no Python between steps
        losses = tf.TensorArray(ys.dtype, size=steps, element_shape=())
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(ys - model(xs)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            losses = losses.write(step, loss)
        return losses.stack()

    losses = train()
    if history is not None:
        history.extend(float(loss) for loss in losses.numpy())
    return model


def gradient_tape_buggy(
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int = 300,
    learning_rate: float = 0.1,
    seed: int = 0,
    history: list[float] | None = None,
) -> Any:
    """BUGGY: a hand-written loop, targets ``(n,)`` against outputs ``(n, 1)``.

    Symptom: the loss falls and plateaus; the mean model ends near weights
    (0.32, 0.31) and bias 12.6 instead of (0.5, 0.5) and 0: it learned to
    predict the batch's average. Cause: ``tf.square(y - model(x))`` is
    ``(n, n)``. Fix: ``y.reshape(-1, 1)`` (:func:`gradient_tape_fixed`).
    Returns the trained mean model; ``history``, if given, gets each step's loss.
    """
    return _train_with_tape(x, y, steps, learning_rate, seed, history)


def gradient_tape_fixed(
    x: np.ndarray,
    y: np.ndarray,
    *,
    steps: int = 300,
    learning_rate: float = 0.1,
    seed: int = 0,
    history: list[float] | None = None,
) -> Any:
    """FIXED: the same loop with the targets reshaped to ``(n, 1)``.

    Symptom: none; weights approach (0.5, 0.5) and bias 0.
    """
    return _train_with_tape(x, np.reshape(y, (-1, 1)), steps, learning_rate, seed, history)


# Loss path 3: evaluating in numpy ---------------------------------------------------


def numpy_mse_buggy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """BUGGY: ``np.mean((y - model.predict(x)) ** 2)`` with ``y`` of shape ``(n,)``.

    Symptom: an MSE far from the truth (keras-team/keras#14627). Cause:
    ``predict`` returns ``(n, 1)``; the difference is ``(n, n)``. Fix: reshape
    ``y`` to the prediction's shape (:func:`numpy_mse_fixed`).
    """
    return float(np.mean((y - model.predict(x, verbose=0)) ** 2))


def numpy_mse_fixed(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """FIXED: the same, with ``y`` reshaped to the prediction's shape first."""
    pred = model.predict(x, verbose=0)
    return float(np.mean((np.reshape(y, pred.shape) - pred) ** 2))


# Where Keras 3 rescues you ------------------------------------------------------------


def keras_mse(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Keras 3's built-in ``loss="mse"``: evaluate ``model`` on ``(x, y)`` as one batch.

    Keras 3 calls ``squeeze_or_expand_to_same_rank`` before a built-in loss, so
    the buggy Lambda's ``(n,)`` against ``(n, 1)`` targets gives the right 0.0
    here, unlike Keras 2 in the article. The suite pins this.
    """
    model.compile(loss="mse")
    return float(model.test_on_batch(x, np.reshape(y, (-1, 1))))


def loss_subclass_mse(model: Any, loss: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Evaluate ``model`` with a ``Loss`` object on one full batch, targets ``(n, 1)``."""
    model.compile(loss=loss)
    return float(model.test_on_batch(x, np.reshape(y, (-1, 1))))


PAIRS = (
    (lambda_mean_buggy, lambda_mean_fixed),
    (mse_loss_subclass_buggy, mse_loss_subclass_fixed),
    (gradient_tape_buggy, gradient_tape_fixed),
    (numpy_mse_buggy, numpy_mse_fixed),
)
"""Each buggy reproduction beside its fix, with identical signatures."""
