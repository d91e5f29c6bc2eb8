"""Pitfall 1: a batch generator that re-yields one numpy buffer.

The article's network learns the mean of two integers in ``[0, 100)``. Its
generators differ only in where memory is allocated. Each takes the batch size,
an explicit ``seed`` (an int or a ``numpy.random.Generator``) and the output
``form``: ``"article"`` yields the article's ``[x], [y]`` with ``y`` of shape
``(n, 1)``, as Keras 2's ``fit_generator`` took it; ``"pair"`` yields
``(x, y)`` with ``y`` of shape ``(n,)``, as in the article's
``print(next(it), next(it))`` demonstration. Keras 3's ``fit`` on TensorFlow
rejects lists inside a generator's batches (``tf.data`` wants tuples), so
feed it the pair form; its ``mse`` reshapes ``(n,)`` targets.

With equal seeds every variant draws the same numbers in the same order: the
bug is never in the numbers, only in the memory they are written to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

Form = Literal["article", "pair"]
Seed = int | np.random.Generator


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


def _checked(batch_size: Any, form: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if form not in ("article", "pair"):
        raise ValueError(f"form must be 'article' or 'pair', got {form!r}")


def _batch(x: np.ndarray, mean: np.ndarray, form: Form) -> Any:
    if form == "article":
        return [x], [np.expand_dims(mean, -1)]  # a view: aliasing survives the reshape
    return x, mean


def shared_input_buffer(
    batch_size: int = 64, *, seed: Seed = 0, form: Form = "article"
) -> Iterator[Any]:
    """BUGGY. The article's first generator.

    Symptom: with Keras' fit the loss stalls (~415 after 100 epochs in the
    article) and (73, 57) is predicted as 49.65, not 65.
    Cause: ``x`` is allocated once and refilled in place, while the mean is
    fresh; a consumer holding batch i when batch i+1 is drawn sees i+1's inputs
    with i's targets.
    Fix: allocate ``x`` inside the loop (:func:`fresh_per_yield`).
    """
    _checked(batch_size, form)
    rng = _rng(seed)
    x = np.zeros((batch_size, 2))
    while True:
        for i in range(batch_size):
            x[i, 0] = rng.integers(0, 100)
            x[i, 1] = rng.integers(0, 100)
        mean = (x[:, 0] + x[:, 1]) / 2
        yield _batch(x, mean, form)


def shared_input_and_target_buffers(
    batch_size: int = 64, *, seed: Seed = 0, form: Form = "article"
) -> Iterator[Any]:
    """BUGGY, though the article calls it the fix.

    Symptom: trains well in the article (loss 0.003 by epoch 3), yet every batch
    a consumer holds turns into the newest batch: read-ahead trains on repeated
    batches, and a consumer that reads in the middle of a refill sees a torn one.
    Cause: both ``x`` and ``mean`` are allocated once and overwritten together,
    so pairs stay consistent while every yield aliases the same two buffers.
    Fix: allocate both inside the loop (:func:`fresh_per_yield`).
    """
    _checked(batch_size, form)
    rng = _rng(seed)
    x = np.zeros((batch_size, 2))
    mean = np.zeros((batch_size,))
    while True:
        for i in range(batch_size):
            x[i, 0] = rng.integers(0, 100)
            x[i, 1] = rng.integers(0, 100)
        mean[:] = (x[:, 0] + x[:, 1]) / 2
        yield _batch(x, mean, form)


def fresh_per_yield(
    batch_size: int = 64, *, seed: Seed = 0, form: Form = "article"
) -> Iterator[Any]:
    """FIXED: the article's first correction.

    Symptom: none; the mean model converges.
    Cause of the fix: ``x = np.zeros(...)`` moved inside ``while True``, so every
    batch owns its memory.
    Cost: one allocation per batch, negligible next to a training step.
    """
    _checked(batch_size, form)
    rng = _rng(seed)
    while True:
        x = np.zeros((batch_size, 2))
        for i in range(batch_size):
            x[i, 0] = rng.integers(0, 100)
            x[i, 1] = rng.integers(0, 100)
        mean = (x[:, 0] + x[:, 1]) / 2
        yield _batch(x, mean, form)


def copy_on_yield(batch_size: int = 64, *, seed: Seed = 0, form: Form = "article") -> Iterator[Any]:
    """FIXED: the article's second correction.

    Symptom: none; the mean model converges.
    Cause of the fix: the buffer is still refilled in place, but ``np.copy(x)``
    is yielded, so what the consumer holds is never written again.
    Cost: one copy per batch.
    """
    _checked(batch_size, form)
    rng = _rng(seed)
    x = np.zeros((batch_size, 2))
    while True:
        for i in range(batch_size):
            x[i, 0] = rng.integers(0, 100)
            x[i, 1] = rng.integers(0, 100)
        mean = (x[:, 0] + x[:, 1]) / 2
        yield _batch(np.copy(x), mean, form)


def fresh_vectorized(
    batch_size: int = 64, *, seed: Seed = 0, form: Form = "article"
) -> Iterator[Any]:
    """FIXED and fast: one vectorized draw per batch, no Python loop per row.

    Symptom: none. The same numbers as the loop variants for the same seed
    (numpy's Generator draws ``integers(size=(n, 2))`` in row-major order).
    Cause of the fix: ``rng.integers(...)`` returns a new array every batch.
    """
    _checked(batch_size, form)
    rng = _rng(seed)
    while True:
        x = rng.integers(0, 100, size=(batch_size, 2)).astype(np.float64)
        mean = (x[:, 0] + x[:, 1]) / 2
        yield _batch(x, mean, form)


def mean_target(inputs: Any) -> Any:
    """The rule every variant's targets follow, for ``assert_targets_match``.

    ``[x]`` (the article form's inputs) gives ``[mean as (n, 1)]``; a bare ``x``
    (the pair form's) gives the mean as ``(n,)``.
    """
    if isinstance(inputs, (list, tuple)):
        return [np.expand_dims((x[:, 0] + x[:, 1]) / 2, -1) for x in inputs]
    return (inputs[:, 0] + inputs[:, 1]) / 2


PAIRS = (
    (shared_input_buffer, fresh_per_yield),
    (shared_input_and_target_buffers, copy_on_yield),
    (shared_input_buffer, fresh_vectorized),
)
"""(buggy, fixed) pairs, as in every reproduction module; a bug may have several fixes."""
BUGGY = tuple(dict.fromkeys(buggy for buggy, _ in PAIRS))
"""Variants that alias memory they have yielded, in order."""
FIXED = tuple(dict.fromkeys(fixed for _, fixed in PAIRS))
"""Variants whose batches own their memory, in order."""


# The same pitfall in a keras.utils.PyDataset, read by Keras' worker threads -------


def pydataset_shared_buffer(
    batch_size: int = 64, *, seed: Seed = 0, batches: int = 200, workers: int = 2
) -> Any:
    """BUGGY. The pitfall in a ``keras.utils.PyDataset``: a buffer kept on ``self``.

    Symptom: with ``workers > 1`` Keras' threads fill the one buffer for
    several indices at once and queue references to it, so trained batches are
    torn, repeated, or paired with another index's targets.
    Cause: ``__getitem__`` writes ``self.x`` in place and returns it.
    Fix: return a new array per call (:func:`pydataset_fresh`).
    Needs Keras; ``batches`` per epoch, drawn from a fixed table.
    """
    return _pydataset(batch_size, seed, batches, workers, reuse=True)


def pydataset_fresh(
    batch_size: int = 64, *, seed: Seed = 0, batches: int = 200, workers: int = 2
) -> Any:
    """FIXED: the same PyDataset returning a new array from every ``__getitem__``.

    Symptom: none, with any number of workers.
    """
    return _pydataset(batch_size, seed, batches, workers, reuse=False)


def _pydataset(batch_size: int, seed: Seed, batches: int, workers: int, reuse: bool) -> Any:
    import keras

    _checked(batch_size, "pair")
    table = _rng(seed).integers(0, 100, size=(batches * batch_size, 2)).astype(np.float64)

    class MeanBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=10)
            self.x = np.zeros((batch_size, 2))

        def __len__(self) -> int:
            return batches

        def __getitem__(self, i: int) -> Any:
            rows = table[i * batch_size : (i + 1) * batch_size]
            if reuse:
                self.x[:] = rows
                x = self.x
            else:
                x = rows.copy()
            return x, (x[:, 0] + x[:, 1]) / 2

    return MeanBatches()
