"""Keras 3 on every backend: the Keras-facing checkers give the same verdicts.

Every test here is marked ``keras_backend``: the README's test command runs it
on TensorFlow, and CI runs it once more under ``KERAS_BACKEND=jax`` and
``KERAS_BACKEND=torch`` (``pytest -m keras_backend``). ``assert_fits``,
``assert_prediction_shape`` and the pitfall-2 reproductions are run per
backend in test_shape_pitfall.py, ``assert_batch_independent`` on
BatchNormalization and on the ``Loss`` subclass in test_batch_independence.py,
under the same marker.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import shapes, zero_copy

pytestmark = pytest.mark.keras_backend


def test_the_backend_is_the_one_asked_for(keras):
    import os

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


def test_strict_loss_stops_fit_at_the_first_step_on_every_backend(keras):
    from keras import ops

    class StrictMSE(keras.losses.Loss):
        @pitfalls.strict_loss
        def call(self, y_true, y_pred):
            return ops.mean(ops.square(y_true - y_pred), axis=-1)

    def fit(targets):
        model = shapes.mean_model()
        model.compile(optimizer="adam", loss=StrictMSE())
        return model.fit(x, targets, batch_size=16, epochs=1, verbose=0)

    x, y = shapes.mean_data(16)
    # (n,) targets against (n, 1) outputs: traced (TensorFlow, JAX) or run (torch), it raises
    with pytest.raises(pitfalls.BroadcastError, match=r"y_true=\((None|16),\), y_pred="):
        fit(y)
    assert np.isfinite(fit(y[:, None]).history["loss"][-1])


def test_fit_tears_only_the_peeked_batch_of_an_unaligned_shared_buffer(keras):
    # Keras keeps the first two batches in a list to infer their spec, so the buffer
    # is refilled under the first: torn on every backend. An unaligned buffer is
    # copied as it is converted, so nothing else tears. (Aligned: see test_tfdata.py.)
    assert zero_copy.keras_fit_mismatches(aligned=False, steps=4, batch_size=8) == 1
