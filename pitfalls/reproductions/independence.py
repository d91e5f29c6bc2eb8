"""Beyond the article: a sample's output that depends on the rest of its batch.

Keras and TensorFlow are imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batchnorm_model(seed: int = 0) -> Any:
    """``Dense(4) -> BatchNormalization -> Dense(1)`` on two inputs."""
    import keras

    keras.utils.set_random_seed(seed)
    x = keras.Input(shape=(2,))
    h = keras.layers.Dense(4)(x)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(x, keras.layers.Dense(1)(h), name="batchnorm_model")


def _numpy(output: Any) -> np.ndarray:
    import keras  # any backend: a torch tensor that requires grad, a jax array

    return np.asarray(keras.ops.convert_to_numpy(output))


def predict_in_training_mode(model: Any, x: np.ndarray) -> np.ndarray:
    """BUGGY: per-sample predictions from ``model(x, training=True)``.

    Symptom: a sample's prediction changes with the other samples in its batch,
    so evaluation depends on batch size and order, and a batch of one is
    normalised to nothing. Cause: BatchNormalization in training mode uses the
    batch's own mean and variance. Fix: ``training=False``
    (:func:`predict_in_inference_mode`).
    """
    return _numpy(model(x, training=True))


def predict_in_inference_mode(model: Any, x: np.ndarray) -> np.ndarray:
    """FIXED: ``model(x, training=False)``: BatchNormalization uses its moving statistics,
    so each prediction depends on its own sample alone."""
    return _numpy(model(x, training=False))


PAIRS = ((predict_in_training_mode, predict_in_inference_mode),)
