"""Models and training loops of ``pitfalls demo``; Keras and TensorFlow imported on call.

Each trainer (:class:`KerasFit`, :class:`TapeLoop`, :class:`TfKerasFit`) trains
the article's ``Dense(1)`` mean model on a batch source and counts, where the
optimizer sees them, the batches whose inputs no longer give their targets. A
trainer is built and traced once, then reset to the same start for each run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from pitfalls._demo.config import DemoConfig
from pitfalls._readahead import read_ahead
from pitfalls.reproductions import epochs as epoch_variants
from pitfalls.reproductions import shapes

ARTICLE_POINT = (73.0, 57.0)
"""The article predicts 49.65 here with its buggy generator; the mean is 65."""

OnEpoch = Callable[[int], None]
"""Called with the 1-based epoch as each epoch begins."""


class Fit(NamedTuple):
    """One run's measurements, as :class:`~pitfalls._demo.results.TrainingRun` holds them."""

    losses: tuple[float, ...]
    mismatched: int
    batches: int
    prediction: float


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points to the null device inside the block, Python's and C's alike.

    TensorFlow's C++ start-up lines (absl's "All log messages before
    absl::InitializeLog()", oneDNN's and CUDA's notices) are written before any
    setting of its logging is read: TF_CPP_MIN_LOG_LEVEL, ABSL_MIN_LOG_LEVEL and
    GLOG_minloglevel leave them (TensorFlow 2.21). An import error is raised as
    usual after the block, when stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_keras() -> Any:
    """Keras 3 on TensorFlow, with TensorFlow's logs quiet (set before its import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # its C++ logs after start-up
    with stderr_silenced():
        import keras
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices are not for a learner
    return keras


def counting_mean_model(keras: Any) -> Any:
    """The article's Dense(1), counting inside ``train_step`` the batches whose inputs
    no longer give their targets: the count is what the optimizer actually saw."""
    from keras import ops

    class CountingMeanModel(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.mismatched = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="mismatched"
            )
            self.seen = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="seen"
            )

        def call(self, x: Any) -> Any:
            return self.dense(x)

        def train_step(self, data: Any) -> Any:
            x, y = data
            rule = (x[:, 0] + x[:, 1]) / 2
            bad = ops.any(ops.abs(rule - ops.reshape(y, (-1,))) > 1e-6)
            self.mismatched.assign_add(ops.cast(bad, "int32"))
            self.seen.assign_add(1)
            return super().train_step(data)

    return CountingMeanModel()


def predict_point(model: Any) -> float:
    """The model's output for :data:`ARTICLE_POINT`."""
    return float(np.asarray(model(np.array([ARTICLE_POINT], dtype=np.float32))).ravel()[0])


def epoch_callback(base: type, on_epoch: OnEpoch) -> Any:
    """A callback of Keras 3's or tf_keras' ``Callback`` class calling ``on_epoch``."""

    class OnEpochBegin(base):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            on_epoch(epoch + 1)

    return OnEpochBegin()


class _Start:
    """A model's and its optimizer's starting state, restored before each run.

    Every run then starts from the same weights and optimizer state, as a
    fresh model built under the same seed would, without tracing its step
    again (tracing, not training, is most of a short run's time).
    """

    def __init__(self, model: Any, optimizer: Any) -> None:
        optimizer.build(model.trainable_variables)
        self.model, self.optimizer = model, optimizer
        self.weights = model.get_weights()
        self.slots = [np.copy(v.numpy()) for v in optimizer.variables]

    def restore(self) -> None:
        self.model.set_weights(self.weights)
        for variable, value in zip(self.optimizer.variables, self.slots):
            variable.assign(value)


class KerasFit:
    """Keras 3 ``model.fit`` on a generator or a PyDataset (tf.data, prefetch, peeked batches)."""

    def __init__(self, keras: Any, config: DemoConfig) -> None:
        keras.utils.set_random_seed(config.seed)
        self.keras, self.config = keras, config
        self.model = counting_mean_model(keras)
        self.model(np.zeros((1, 2), dtype=np.float32))  # build
        self.model.compile(loss="mse", optimizer=keras.optimizers.RMSprop(config.learning_rate))
        self.start = _Start(self.model, self.model.optimizer)

    def __call__(self, batches: Any, on_epoch: OnEpoch) -> Fit:
        self.start.restore()
        history = self.model.fit(
            batches,
            steps_per_epoch=self.config.steps,
            epochs=self.config.epochs,
            verbose=0,
            shuffle=False,
            callbacks=[epoch_callback(self.keras.callbacks.Callback, on_epoch)],
        )
        return Fit(
            losses=tuple(float(v) for v in history.history["loss"]),
            mismatched=int(self.model.mismatched.numpy()),
            batches=int(self.model.seen.numpy()),
            prediction=predict_point(self.model),
        )


class TapeLoop:
    """A ``tf.GradientTape`` loop fed through :func:`read_ahead`: deterministic."""

    def __init__(self, keras: Any, config: DemoConfig) -> None:
        import tensorflow as tf

        keras.utils.set_random_seed(config.seed)
        self.config = config
        self.model = model = shapes.mean_model()
        optimizer = keras.optimizers.RMSprop(config.learning_rate)
        self.start = _Start(model, optimizer)

        @tf.function(reduce_retracing=True, autograph=False)  # no Python control flow to convert
        def step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(y - model(x)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        self.step = step

    def __call__(self, batches: Iterator[Any], on_epoch: OnEpoch) -> Fit:
        self.start.restore()
        config = self.config
        stream = read_ahead(batches, config.depth)
        losses, mismatched = [], 0
        for epoch in range(config.epochs):
            on_epoch(epoch + 1)
            total = 0.0
            for _ in range(config.steps):
                x, y = next(stream)
                mismatched += not np.allclose((x[:, 0] + x[:, 1]) / 2, y)
                total += float(self.step(x.astype(np.float32), y.reshape(-1, 1).astype(np.float32)))
            losses.append(total / config.steps)
        return Fit(
            tuple(losses), mismatched, config.epochs * config.steps, predict_point(self.model)
        )


class TfKerasFit:
    """tf_keras (Keras 2) ``fit`` with ``workers=1, max_queue_size=10``, as the article ran.

    tf_keras 2.21 starts its queue (``GeneratorEnqueuer``) only for ``workers > 1``:
    with one worker, tf.data reads the generator on demand and no batch waits in a queue.
    """

    def __init__(self, config: DemoConfig) -> None:
        import tensorflow as tf
        import tf_keras

        tf_keras.utils.set_random_seed(config.seed)
        self.tf_keras, self.config = tf_keras, config
        self.counts = {"mismatched": 0, "seen": 0}
        counts = self.counts

        def tally(bad: Any) -> None:
            counts["mismatched"] += bool(bad)
            counts["seen"] += 1

        class Counting(tf_keras.Model):
            def train_step(self, data: Any) -> Any:
                x, y = data
                bad = tf.reduce_any(tf.abs((x[:, 0] + x[:, 1]) / 2 - tf.reshape(y, (-1,))) > 1e-6)
                tf.py_function(tally, [bad], [])
                return super().train_step(data)

        x_in = tf_keras.Input((2,))
        self.model = Counting(x_in, tf_keras.layers.Dense(1)(x_in))
        self.model.compile(loss="mse", optimizer=tf_keras.optimizers.RMSprop(config.learning_rate))
        self.start = _Start(self.model, self.model.optimizer)

    def __call__(self, batches: Any, on_epoch: OnEpoch) -> Fit:
        self.start.restore()
        self.counts.update(mismatched=0, seen=0)
        history = self.model.fit(
            batches,
            steps_per_epoch=self.config.steps,
            epochs=self.config.epochs,
            verbose=0,
            workers=1,
            max_queue_size=10,
            callbacks=[epoch_callback(self.tf_keras.callbacks.Callback, on_epoch)],
        )
        return Fit(
            losses=tuple(float(v) for v in history.history["loss"]),
            mismatched=self.counts["mismatched"],
            batches=self.counts["seen"],
            prediction=predict_point(self.model),  # a call: predict would build a dataset
        )


def fit_tape_shapes(
    train: Callable[..., Any], x: np.ndarray, y: np.ndarray, *, epochs: int, steps: int, seed: int
) -> tuple[Any, tuple[float, ...]]:
    """Pitfall 2's GradientTape loop (``shapes.gradient_tape_buggy`` or ``_fixed``):
    the trained model and its mean loss per epoch (``steps`` split into ``epochs``)."""
    history: list[float] = []
    model = train(x, y, steps=steps, seed=seed, history=history)
    return model, tuple(float(np.mean(c)) for c in np.array_split(history, epochs))


def tape_weights(model: Any) -> tuple[float, float, float]:
    """(w0, w1, bias) of the mean model's Dense(1)."""
    kernel, bias = model.layers[1].get_weights()
    return float(kernel[0, 0]), float(kernel[1, 0]), float(bias[0])


# Beyond the article: what the optimizer sees across epochs --------------------------

PROBE_EPOCHS, PROBE_STEPS, PROBE_BATCH = 3, 4, 8


def pixels(seed: int) -> np.ndarray:
    """The stored dataset of the epoch-means probe: 0-255 pixels as float32."""
    size = (PROBE_STEPS * PROBE_BATCH, 4, 4)
    return np.random.default_rng(seed).integers(0, 256, size=size).astype(np.float32)


def numbered() -> np.ndarray:
    """The stored dataset of the order probe: sample k holds 16k..16k+15."""
    n = PROBE_STEPS * PROBE_BATCH * 16
    return np.arange(n, dtype=np.float32).reshape(PROBE_STEPS * PROBE_BATCH, 4, 4)


class EpochProbe:
    """Keras 3 ``fit`` of Dense(1) on flattened 4x4 inputs, keeping every input batch
    its ``train_step`` received: what the optimizer saw, epoch by epoch.

    Built and traced once; every run starts from the same weights.
    """

    def __init__(self, keras: Any, seed: int) -> None:
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        self.seed = seed
        seen: list[np.ndarray] = []
        self.seen = seen

        def keep(x: Any) -> None:
            seen.append(x.numpy())

        class Probe(keras.Model):
            def __init__(self) -> None:
                super().__init__()
                self.flat = keras.layers.Flatten()
                self.dense = keras.layers.Dense(1)

            def call(self, x: Any) -> Any:
                return self.dense(self.flat(x))

            def train_step(self, data: Any) -> Any:
                tf.py_function(keep, [data[0]], [])
                return super().train_step(data)

        self.keras, self.model = keras, Probe()
        self.model(np.zeros((1, 4, 4), dtype=np.float32))  # build
        self.model.compile(loss="mse", optimizer="sgd", jit_compile=False)
        self.start = _Start(self.model, self.model.optimizer)

    def _fit(self, source: Any, **options: Any) -> list[np.ndarray]:
        self.start.restore()
        self.seen.clear()
        self.model.fit(source, epochs=PROBE_EPOCHS, verbose=0, **options)
        return list(self.seen)

    def epoch_means(self, variant: str) -> tuple[float, ...]:
        """Mean input per epoch of ``fit(PyDataset)`` whose batches are ``variant``'s
        scaling (``scaled_in_place`` or ``scaled_copy``) of slices of one stored dataset."""
        data, scale = pixels(self.seed), getattr(epoch_variants, variant)

        keras: Any = self.keras

        class Pixels(keras.utils.PyDataset):
            def __len__(self) -> int:
                return PROBE_STEPS

            def __getitem__(self, i: int) -> Any:
                return next(scale(data[i * PROBE_BATCH : (i + 1) * PROBE_BATCH], PROBE_BATCH))

        seen = self._fit(Pixels(), shuffle=False)
        epochs = [seen[e * PROBE_STEPS : (e + 1) * PROBE_STEPS] for e in range(PROBE_EPOCHS)]
        return tuple(float(np.mean(batches)) for batches in epochs)

    def first_samples(self, variant: str) -> tuple[tuple[int, ...], bool]:
        """The first sample per epoch of ``fit(generator, shuffle=True)`` on ``variant``
        (``same_order_every_epoch`` or ``reshuffled_every_epoch``), and whether Keras
        warned that it ignores ``shuffle``."""
        source = getattr(epoch_variants, variant)(numbered(), PROBE_BATCH, seed=self.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen = self._fit(source, steps_per_epoch=PROBE_STEPS, shuffle=True)
        warned = any("shuffle=True" in str(w.message) for w in caught)
        firsts = tuple(int(seen[e * PROBE_STEPS][0, 0, 0]) // 16 for e in range(PROBE_EPOCHS))
        return firsts, warned
