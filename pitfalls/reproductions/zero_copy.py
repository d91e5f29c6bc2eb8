"""Beyond the article: zero-copy, decided by where numpy put the buffer.

A framework that turns a numpy array into a tensor may wrap its memory instead
of copying it. TensorFlow does so when the data starts on a 64-byte boundary
(``EIGEN_MAX_ALIGN_BYTES``) and copies otherwise (tensorflow/tensorflow#59729);
``jax.device_put`` on CPU shares an aligned float32 or integer buffer too
(jax-ml/jax#37830). numpy promises only 16 bytes: measured here (numpy 2.4,
glibc), about one small array in four starts on a 64-byte boundary, and a
large one (allocated by ``mmap``) never does. So the article's generator,
which refills one buffer, is harmless or corrupting under ``tf.data`` and
Keras 3's ``fit`` depending on where the allocator put ``x``.

:func:`placed` allocates on purpose, aligned or 16 bytes past a boundary, so
each behaviour reproduces every time. TensorFlow, Keras and JAX are imported
inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

ALIGNMENT = 64
"""Bytes: TensorFlow's (Eigen's) alignment, above which it wraps numpy memory without a copy."""


def placed(shape: tuple[int, ...], *, aligned: bool, dtype: Any = np.float32) -> np.ndarray:
    """A zeroed array whose data starts on a 64-byte boundary, or 16 bytes past one.

    Made as a view into an over-allocated ``uint8`` array: ``aligned=False``
    gives numpy's guaranteed minimum (16 bytes), never 64.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + 2 * ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT + (0 if aligned else 16)
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def is_aligned(array: np.ndarray) -> bool:
    """Does the array's data start on a 64-byte boundary?"""
    return bool(array.ctypes.data % ALIGNMENT == 0)


def shared_buffer_batches(
    batch_size: int = 8, *, aligned: bool, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The article's first generator (``x`` refilled in place, the mean fresh), ``x`` placed.

    Yields ``(x, y)``: ``x`` of shape ``(batch_size, 2)``, integers in
    ``[0, 100)`` as float32, in one buffer from :func:`placed`; ``y`` their
    mean, shape ``(batch_size, 1)``, a new array each time.
    """
    rng = np.random.default_rng(seed)
    x = placed((batch_size, 2), aligned=aligned)
    while True:
        x[:] = rng.integers(0, 100, size=x.shape)
        yield x, ((x[:, 0] + x[:, 1]) / 2)[:, None]


def _copied_batches(
    batch_size: int, aligned: bool, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for x, y in shared_buffer_batches(batch_size, aligned=aligned, seed=seed):
        yield np.copy(x), y


# tf.data.Dataset.from_generator ------------------------------------------------------


def _from_generator(batches: Any, batch_size: int, prefetch: bool) -> Any:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec((batch_size, 2), tf.float32),
            tf.TensorSpec((batch_size, 1), tf.float32),
        ),
    )
    if prefetch:
        return dataset
    options = tf.data.Options()  # the generator runs only when a batch is asked for
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    return dataset.with_options(options)


def from_generator_shared(
    batch_size: int = 8, *, aligned: bool = True, seed: int = 0, prefetch: bool = False
) -> Any:
    """BUGGY: ``tf.data.Dataset.from_generator`` over the article's reused buffer.

    Symptom: with an aligned buffer, every tensor already taken from the
    dataset changes into the newest batch; with an unaligned one, none does.
    Cause: TensorFlow wraps 64-byte aligned numpy memory in the tensor instead
    of copying it, and the generator then refills that memory. Fix: yield
    ``np.copy(x)`` (:func:`from_generator_copied`); alignment is luck, not a fix.
    ``prefetch=False`` turns tf.data's injected prefetch off, so the generator
    runs only when a batch is asked for (deterministic); ``True`` keeps it,
    as Keras' ``fit`` does.
    """
    return _from_generator(
        lambda: shared_buffer_batches(batch_size, aligned=aligned, seed=seed), batch_size, prefetch
    )


def from_generator_copied(
    batch_size: int = 8, *, aligned: bool = True, seed: int = 0, prefetch: bool = False
) -> Any:
    """FIXED: the same, yielding ``np.copy(x)``: each tensor owns (or shares unwritten) memory.

    Symptom: none, aligned or not.
    """
    return _from_generator(lambda: _copied_batches(batch_size, aligned, seed), batch_size, prefetch)


# jax.device_put ------------------------------------------------------------------------


def device_put_shared(
    batch_size: int = 8, *, aligned: bool = True, seed: int = 0
) -> Iterator[tuple[Any, Any]]:
    """BUGGY: a JAX input pipeline that ``jax.device_put``\\ s the article's reused buffer.

    Symptom: with an aligned float32 buffer on CPU, every array already
    yielded turns into the newest batch, though JAX arrays are immutable.
    Cause: on CPU ``device_put`` wraps an aligned numpy buffer without copying
    (``may_alias=False`` did not change that here). Fix: ``jnp.array(x)``,
    which copies (:func:`device_put_copied`).
    """
    import jax

    for x, y in shared_buffer_batches(batch_size, aligned=aligned, seed=seed):
        yield jax.device_put(x), jax.device_put(y)


def device_put_copied(
    batch_size: int = 8, *, aligned: bool = True, seed: int = 0
) -> Iterator[tuple[Any, Any]]:
    """FIXED: ``jnp.array(x)`` copies the buffer into memory JAX owns.

    Symptom: none, aligned or not.
    """
    import jax.numpy as jnp

    for x, y in shared_buffer_batches(batch_size, aligned=aligned, seed=seed):
        yield jnp.array(x), jnp.array(y)


# Keras 3's fit, on any backend -----------------------------------------------------------


def keras_fit_mismatches(aligned: bool, steps: int, *, batch_size: int = 64, seed: int = 0) -> int:
    """Train on :func:`shared_buffer_batches` with Keras 3's ``fit``; count torn batches.

    Counted inside the training step, by a metric: a batch is torn when its
    targets are not the mean of the inputs the step received. The model is the
    exact mean (``Dense(1)`` with weights 0.5, 0.5, bias 0, learning rate 0),
    so only the data can tear. Runs on the configured Keras backend.

    Measured here (Keras 3.15; TensorFlow 2.21, JAX 0.10, torch 2.13 on CPU):
    unaligned, exactly 1 on every backend: the first batch, which ``fit`` keeps
    in a list with the second to infer shapes, so the buffer is refilled
    under it. Aligned, on TensorFlow most batches (tf.data prefetches while
    the step holds a tensor over the buffer), on JAX a few (the step runs
    asynchronously on memory ``device_put`` shared); both counts depend on
    thread timing and change from run to run. On torch always 1: the
    ``DataLoader`` Keras builds has no workers and the step finishes before
    the next batch is drawn.
    """
    import keras
    from keras import ops

    class TornBatches(keras.metrics.Metric):
        def __init__(self) -> None:
            super().__init__(name="torn")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            torn = ops.any(ops.abs(y_true - y_pred) > 1e-3)
            self.count.assign_add(ops.cast(torn, self.count.dtype))

        def result(self) -> Any:
            return ops.convert_to_tensor(self.count)

    keras.utils.set_random_seed(seed)
    x = keras.Input((2,))
    exact = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant(0.5), bias_initializer="zeros"
    )
    model = keras.Model(x, exact(x))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", metrics=[TornBatches()])
    history = model.fit(
        shared_buffer_batches(batch_size, aligned=aligned, seed=seed),
        steps_per_epoch=steps,
        epochs=1,
        verbose=0,
        shuffle=False,
    )
    return round(history.history["torn"][-1])


PAIRS = (
    (from_generator_shared, from_generator_copied),
    (device_put_shared, device_put_copied),
)
"""Each buggy reproduction beside its fix, with identical signatures."""
