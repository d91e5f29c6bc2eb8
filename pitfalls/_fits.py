"""Can a model fit data it can represent? A seeded, budgeted training run (Keras)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from pitfalls._report import Finding, FitError, Report

DEFAULT_STEPS = 300
DEFAULT_LEARNING_RATE = 1.0


def _positive(name: str, value: Any, *, integer: bool = False) -> Any:
    number = isinstance(value, (int, np.integer)) or (
        not integer and isinstance(value, (float, np.floating))
    )
    if isinstance(value, bool) or not number:
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name}={value!r} must be > 0")
    return int(value) if integer else float(value)


def _data(data: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError("data must be a pair (x, y) of arrays")
    x, y = (np.asarray(part) for part in data)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"data must be (x, y) with the same number of rows, at least one;"
            f" got x of shape {x.shape} and y of shape {y.shape}"
        )
    return x, y


def _fresh_model(model_or_builder: Any, keras: Any) -> Any:
    if isinstance(model_or_builder, keras.Model):
        # keras' own clone: same architecture, fresh weights; the user's model is untouched.
        # Layers without weights (a Lambda of a plain function) are shared, not rebuilt:
        # nothing of theirs can train, and their functions need not be registered.
        def clone_layer(layer: Any) -> Any:
            return layer.__class__.from_config(layer.get_config()) if layer.weights else layer

        try:
            # An uncompiled view of the same graph, so the clone does not inherit (and
            # need to deserialize) the user's compile settings: we compile our own.
            graph = keras.Model(model_or_builder.inputs, model_or_builder.outputs)
            return keras.models.clone_model(graph, clone_function=clone_layer)
        except Exception as exc:
            raise TypeError(
                f"cannot clone {type(model_or_builder).__qualname__} with fresh weights"
                f" ({type(exc).__name__}: {exc}); pass a zero-argument function that builds it"
            ) from exc
    if callable(model_or_builder):
        model = model_or_builder()
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"model_or_builder returned {type(model).__qualname__}, not a keras.Model"
            )
        return model
    raise TypeError(
        "model_or_builder must be a keras.Model or a zero-argument callable building one,"
        f" got {type(model_or_builder).__qualname__}"
    )


def check_fits(
    model_or_builder: Any,
    data: Any,
    *,
    max_loss: float,
    steps: int = DEFAULT_STEPS,
    batch_size: int | None = None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    loss: Any = "mse",
    seed: int = 0,
) -> Report:
    """Train a fresh copy of the model for ``steps`` steps and compare its loss with ``max_loss``.

    The budget is explicit and the run deterministic: Keras' seeds are set to
    ``seed``, the model is built by ``model_or_builder()`` or cloned from the
    given model with fresh weights (the model you pass is never trained), and
    it is trained with Adam at ``learning_rate`` on ``data = (x, y)`` in its
    order, ``batch_size`` rows a step (default: all rows, full-batch), all
    ``steps`` steps in one compiled call (``steps_per_execution``). The final
    loss is ``model.evaluate(x, y)`` with the same ``loss``.

    Defaults fit the article's mean model, ``Dense(1)`` on integers in
    ``[0, 100)``, from MSE ~2,500 to below 1e-4 in 300 full-batch steps, in
    well under a second after tracing: the inputs are uncentred, so the
    problem is badly conditioned, and the article's rmsprop at 1e-3 needs
    thousands of steps; Adam's per-weight step size at a large learning rate
    does not mind.
    """
    max_loss = _positive("max_loss", max_loss)
    steps = _positive("steps", steps, integer=True)
    learning_rate = _positive("learning_rate", learning_rate)
    if batch_size is not None:
        batch_size = _positive("batch_size", batch_size, integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    x, y = _data(data)

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    model = _fresh_model(model_or_builder, keras)
    rows = len(x) if batch_size is None else min(batch_size, len(x))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=loss, steps_per_execution=steps
    )
    if rows == len(x):
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(rows)
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        initial = float(model.evaluate(x, y, batch_size=rows, verbose=0))
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        final = float(model.evaluate(x, y, batch_size=rows, verbose=0))
    if any("does not have any trainable weights" in str(w.message) for w in caught):
        notes.append(
            "Note: the model has no trainable weights; only its fixed function was judged."
        )

    loss_name = getattr(loss, "__name__", None) or getattr(loss, "name", None) or str(loss)
    params = (
        f"max_loss={max_loss:g}, steps={steps}, batch_size={rows},"
        f" learning_rate={learning_rate:g}, loss={loss_name}, seed={seed}"
    )
    findings: tuple[Finding, ...] = ()
    if not final <= max_loss:  # NaN fails too
        findings = (
            Finding(
                None,
                "loss",
                f"after {steps} steps",
                0,
                0,
                (),
                f"{final:.6g} > max_loss={max_loss:g} (it started at {initial:.6g})",
            ),
        )
    return Report(
        "fits",
        params,
        0,
        findings,
        reason=(
            "The model did not fit data it should be able to fit: the training signal is"
            " broken (inputs paired with other targets, a (n,) against (n, 1) loss"
            " broadcasting to (n, n), a wrong rule), or the budget is too small."
        ),
        hint=(
            "check the data with assert_targets_match and assert_generator_no_aliasing and"
            " the shapes with assert_prediction_shape and assert_no_broadcast; if they pass,"
            " raise steps or learning_rate."
        ),
        notes=tuple(notes),
        summary=f"loss {initial:.6g} -> {final:.6g} <= {max_loss:g} after {steps} steps",
        measured=(("initial_loss", initial), ("final_loss", final)),
    )


def assert_fits(
    model_or_builder: Any,
    data: Any,
    *,
    max_loss: float,
    steps: int = DEFAULT_STEPS,
    batch_size: int | None = None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    loss: Any = "mse",
    seed: int = 0,
    msg: str | None = None,
) -> None:
    """Fail unless a fresh copy of the model trains below ``max_loss`` within the budget.

    See :func:`check_fits` for the training run. Needs Keras 3 on TensorFlow
    (the ``tf`` extra). Raises :class:`FitError`; ``msg`` is appended.
    """
    __tracebackhide__ = True
    report = check_fits(
        model_or_builder,
        data,
        max_loss=max_loss,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        loss=loss,
        seed=seed,
    )
    if not report.ok:
        raise FitError(report, msg)
