"""Pitfall 1 on the real stack: Keras 3 (tests marked ``keras_backend`` on every backend).

Only the deterministic part of Keras' behaviour is asserted. ``fit`` on a
generator first keeps two batches in a list to infer their spec
(``peek_and_restore``), so with a re-yielded buffer the first batch trained on
is never the first batch yielded, whatever the prefetch thread does. What
happens later depends on thread timing and is left to ``pitfalls demo``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import generators as gen
from pitfalls.reproductions.generators import mean_target

STEPS = 12


def intended(batch_size, seed, n):
    return list(itertools.islice(gen.fresh_per_yield(batch_size, seed=seed, form="pair"), n))


@pytest.fixture(scope="module")
def recorder(tf, keras):
    """A compiled Dense(1) model whose (traced) train step keeps each (x, y) it received.

    Built and traced once for the fits below: between fits its weights move on,
    but what a step receives depends on the generator alone, and only that is
    asserted. ``tf.py_function`` copies each batch out as the step runs, as an
    eager step would, without running every step eagerly.
    """
    seen = []

    def keep(x, y):
        seen.append((x.numpy(), y.numpy()))

    class Recording(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            tf.py_function(keep, [x, y], [])  # what this step received
            return super().train_step(data)

    keras.utils.set_random_seed(0)
    model = Recording()
    model.compile(loss="mse", optimizer="rmsprop")
    return model, seen


def fit_and_record(recorder, generator, steps=STEPS):
    model, seen = recorder
    seen.clear()
    model.fit(generator, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return list(seen)


def test_fit_never_trains_on_the_first_batch_the_shared_input_generator_yielded(recorder):
    seen = fit_and_record(recorder, gen.shared_input_buffer(8, seed=0, form="pair"), steps=3)
    truth = intended(8, 0, 2)
    x0, y0 = seen[0]
    np.testing.assert_array_equal(y0, truth[0][1])  # batch 0's targets...
    assert not np.array_equal(x0, truth[0][0])  # ...beside inputs overwritten before the step
    assert not np.allclose(mean_target(x0), y0)


def test_fit_never_trains_on_the_first_batch_of_the_articles_fix_either(recorder):
    seen = fit_and_record(
        recorder, gen.shared_input_and_target_buffers(8, seed=0, form="pair"), steps=3
    )
    first_yielded = intended(8, 0, 1)[0][0]
    assert not np.array_equal(seen[0][0], first_yielded)


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
def test_fit_trains_on_exactly_the_intended_batches_of_the_fixed_generators(recorder, variant):
    seen = fit_and_record(recorder, variant(8, seed=0, form="pair"))
    assert len(seen) == STEPS
    for (x, y), (tx, ty) in zip(seen, intended(8, 0, STEPS)):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)


@pytest.mark.keras_backend
def test_only_keras_on_tensorflow_rejects_the_articles_list_batches(keras):
    # Pinned per backend: Keras 2's fit_generator took `yield [x], [y]`; Keras 3 on
    # TensorFlow hands the spec to tf.data, which wants tuples. JAX and torch take
    # the lists (with a warning). If either changes, Keras changed.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="rmsprop")

    def fit():
        return model.fit(
            gen.fresh_per_yield(8, seed=0, form="article"),
            steps_per_epoch=1,
            epochs=1,
            verbose=0,
            shuffle=False,
        )

    if keras.backend.backend() == "tensorflow":
        with pytest.raises(TypeError, match="output_signature"):
            fit()
    else:  # trains, with a warning that the inputs are a list
        with pytest.warns(UserWarning, match="structure of `inputs` doesn't match"):
            assert np.isfinite(fit().history["loss"][-1])


# keras.utils.PyDataset as a source ------------------------------------------------


@pytest.fixture(scope="module")
def datasets(keras):  # PyDataset is plain Python: the same on every backend
    class BufferOnSelf(keras.utils.PyDataset):
        """Fills one preallocated batch per __getitem__: the Sequence-era idiom."""

        def __init__(self, data, batch_size=4):
            super().__init__()
            self.data, self.batch_size = data, batch_size
            self.x = np.empty((batch_size, data.shape[1]))

        def __len__(self):
            return len(self.data) // self.batch_size

        def __getitem__(self, i):
            np.copyto(self.x, self.data[i * self.batch_size : (i + 1) * self.batch_size])
            return self.x, self.x.mean(axis=1)

    class Fresh(BufferOnSelf):
        def __getitem__(self, i):
            x = self.data[i * self.batch_size : (i + 1) * self.batch_size].copy()
            return x, x.mean(axis=1)

    class ShufflesInPlace(Fresh):
        def __getitem__(self, i):  # views: harmless until data is written
            x = self.data[i * self.batch_size : (i + 1) * self.batch_size]
            return x, x.mean(axis=1)

        def on_epoch_end(self):
            np.random.default_rng(0).shuffle(self.data)

    return BufferOnSelf, Fresh, ShufflesInPlace


@pytest.mark.keras_backend
def test_pydataset_with_a_buffer_on_self_fails(datasets):
    buffer_on_self, _, _ = datasets
    data = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(pitfalls.AliasingError, match="share one buffer"):
        pitfalls.assert_generator_no_aliasing(buffer_on_self(data))
    with pytest.raises(pitfalls.TargetMismatchError, match="after later draws"):
        pitfalls.assert_targets_match(buffer_on_self(data), lambda x: x.mean(axis=1))


@pytest.mark.keras_backend
def test_pydataset_returning_fresh_batches_passes(datasets):
    _, fresh, _ = datasets
    data = np.random.default_rng(0).normal(size=(40, 2))
    before = data.copy()
    pitfalls.assert_generator_no_aliasing(fresh(data))
    pitfalls.assert_targets_match(fresh(data), lambda x: x.mean(axis=1))
    np.testing.assert_array_equal(data, before)


@pytest.mark.keras_backend
def test_pydataset_shuffling_in_place_at_epoch_end_fails_across_the_epoch(datasets):
    _, _, shuffles = datasets
    data = np.random.default_rng(0).normal(size=(24, 2))  # 6 batches: 16 draws cross 2 epochs
    with pytest.raises(pitfalls.AliasingError, match="views into one array"):
        pitfalls.assert_generator_no_aliasing(shuffles(data))


def test_a_tf_data_dataset_of_tensors_is_a_source(tf):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, x.mean(axis=1))).batch(4)
    pitfalls.assert_generator_no_aliasing(dataset)
    pitfalls.assert_targets_match(dataset, lambda inputs: np.asarray(inputs).mean(axis=1))
