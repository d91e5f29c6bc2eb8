"""The framework layer's contracts: each private API pitfalls uses, and each detection,
against the installed release. A release that moves one fails here, by name, instead of
a check going quietly blind (at run time a moved API is said once, in a warning)."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from pitfalls import _frameworks as frameworks
from pitfalls._frameworks import base
from pitfalls._words import entry


def test_every_private_api_is_registered_with_what_it_is_for():
    assert set(frameworks.PRIVATE) == {
        "torch.utils.data.DataLoader._iterator",
        "torch.utils.data.dataloader._BaseDataLoaderIter",
        "keras.src.backend.common.global_state",
        "tensorflow.python.eager.context.context()._seed/_rng",
        "tensorflow.python.ops.stateful_random_ops.global_generator",
        "tf.data.Dataset._as_serialized_graph",
        "datasets.Dataset._TF_DATASET_REFS",
        "keras.src.legacy.preprocessing.image.Iterator",
    }
    generic = entry("common", "private")["text"]  # what each is for, in words.toml
    assert all(entry("common", "private", name)["text"] != generic for name in frameworks.PRIVATE)


def test_a_moved_private_api_is_said_once_in_a_warning():
    name = frameworks.tensorflow._TF_CONTEXT
    base._WARNED.discard(name)
    with pytest.warns(RuntimeWarning, match="context") as caught:
        base.moved(name, AttributeError("_rng"))
        base.moved(name, AttributeError("_rng"))
    assert len(caught) == 1
    assert "watched and put back exactly" in str(caught[0].message)  # what it was for
    base._WARNED.discard(name)


def test_python_and_numpy_global_generators_are_the_module_functions_own():
    state = random.getstate(), np.random.get_state()
    try:
        frameworks.python_global().seed(3)
        frameworks.numpy_global().seed(3)
        drawn = random.random(), np.random.random()
        random.seed(3)
        np.random.seed(3)
        assert (random.random(), np.random.random()) == drawn
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])


def test_nothing_is_told_as_a_framework_object_by_its_name():
    class DataLoader:  # a user's class with a framework's name is no framework's
        pass

    DataLoader.__module__ = "torch.utils.data"
    assert frameworks.library_of(DataLoader()) is None
    assert not frameworks.torch.is_loader(DataLoader())
    assert frameworks.rng_kind(DataLoader()) is None


def test_torch(torch):
    from torch.utils.data import DataLoader, IterableDataset, TensorDataset

    data = TensorDataset(torch.arange(8.0))
    loader = DataLoader(data, batch_size=2, num_workers=1, persistent_workers=True)
    assert frameworks.library_of(loader) == "torch" and frameworks.library_of(data) == "torch"
    assert frameworks.library_of(iter(DataLoader(data))) == "torch"  # _BaseDataLoaderIter
    assert frameworks.torch.persistent(loader) and frameworks.torch.workers(loader) == 1
    assert frameworks.torch.pool(loader) is None  # the attribute is there, no pool yet
    next(iter(loader))
    pool = frameworks.torch.pool(loader)
    assert pool is not None
    frameworks.torch.stop_pool(loader, before=None)
    assert frameworks.torch.pool(loader) is None
    copy, workers = frameworks.torch.single_process(loader)
    assert (copy.num_workers, workers) == (0, 1) and loader.num_workers == 1

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(4))

    assert frameworks.torch.iterable_workers(DataLoader(Stream(), num_workers=2)) == 2
    assert frameworks.rng_kind(torch.Generator()) == "torch.Generator"
    assert frameworks.torch.global_generator() is torch.default_generator
    t = torch.arange(4, dtype=torch.bfloat16)
    assert frameworks.torch.as_array(t, bits=True).dtype == np.int16  # bit for bit
    assert frameworks.torch.as_array(t).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert frameworks.array_library(t) == "torch"
    like = frameworks.tensor_like(np.ones(4), t)
    assert isinstance(like, torch.Tensor) and like.dtype == t.dtype and like.device == t.device
    assert frameworks.torch.is_sequential(DataLoader(data).sampler)
    assert not frameworks.torch.is_sequential(DataLoader(data, shuffle=True).sampler)
    state = torch.get_rng_state()
    torch.manual_seed(0)
    first, second = frameworks.torch.sampler_orders(DataLoader(data, shuffle=True))
    torch.set_rng_state(state)
    assert sorted(first) == sorted(second) == list(range(8)) and first != second
    assert frameworks.torch.sampler_orders(DataLoader(Stream())) is None


def test_tensorflow_and_keras(keras, tf, monkeypatch):
    assert frameworks.rng_kind(keras.random.SeedGenerator(1)) == "keras SeedGenerator"
    assert frameworks.rng_kind(tf.random.Generator.from_seed(1)) == "tf.random.Generator"
    assert frameworks.array_library(tf.constant([1.0])) == "tensorflow"
    like = frameworks.tensor_like(np.ones(2), tf.constant([1, 2], tf.int32))
    assert tf.is_tensor(like) and like.dtype == tf.int32
    saved = frameworks.tensorflow.seeds()
    try:
        frameworks.tensorflow.seed(7)
        ops = frameworks.tensorflow.op_seeds()
        assert isinstance(ops, random.Random)  # the op-seed sequence, once a seed is set
        first = ops.getstate()
        tf.random.uniform(())  # an eager random op takes the next op seed
        assert ops.getstate() != first
        from keras.src.backend.common import global_state

        assert global_state.get_global_attribute("global_random_seed") == 7
    finally:
        frameworks.tensorflow.put_back(saved)
    assert frameworks.tensorflow.seeds() == saved
    # TensorFlow's global generator, made here and unmade after the test: left made, every
    # later check in the session would reseed and read it around each read (5x slower)
    from tensorflow.python.ops import stateful_random_ops

    monkeypatch.setattr(stateful_random_ops, "global_generator", None)
    assert frameworks.tensorflow.global_generator() is None  # none made: none watched
    tf.random.get_global_generator()  # made by the user: now watched
    assert frameworks.tensorflow.global_generator() is tf.random.get_global_generator()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return np.zeros((1, 1)), np.zeros(1)

    assert frameworks.library_of(Batches()) == "keras"
    # Keras 3's legacy ImageDataGenerator, public only under keras._tf_keras
    from keras._tf_keras.keras.preprocessing.image import ImageDataGenerator

    flow = ImageDataGenerator().flow(np.zeros((4, 2, 2, 1)), np.zeros(4), batch_size=2)
    assert frameworks.library_of(flow) == "keras image iterator"


def test_tf_data(tf):
    dataset = (
        tf.data.Dataset.range(8)
        .shuffle(8)
        .map(lambda x: x + tf.random.uniform((), 0, 1, tf.int64))
        .batch(3, drop_remainder=True)
    )
    graph = frameworks.tfdata.graph(dataset)  # through _as_serialized_graph
    assert graph is not None and graph.shuffles == 1 and graph.reshuffles
    assert graph.drops_remainder and graph.random_ops
    assert frameworks.library_of(dataset) == "tf.data"
    assert frameworks.library_of(iter(dataset)) == "tf.data"


def test_jax(jax):
    key = jax.random.key(0)
    assert frameworks.jax.is_key(key) and not frameworks.is_tensor(key)
    legacy = jax.random.PRNGKey(0)  # a plain uint32 array: data, not told by a name
    assert not frameworks.jax.is_key(legacy) and frameworks.is_tensor(legacy)
    assert frameworks.array_library(jax.numpy.zeros(2)) == "jax"
    like = frameworks.tensor_like(np.ones(2), jax.numpy.zeros(2, jax.numpy.int32))
    assert isinstance(like, jax.Array) and like.dtype == jax.numpy.int32
    assert isinstance(frameworks.tensor_like(np.ones(2), np.zeros(2)), np.ndarray)


def test_hugging_face(hf_datasets):
    data = hf_datasets.Dataset.from_dict({"x": [1, 2, 3]})
    assert frameworks.library_of(data) == "hf"
    assert frameworks.library_of(data.iter(batch_size=2)) == "hf"
    assert isinstance(hf_datasets.Dataset._TF_DATASET_REFS, (set, list, type(frozenset())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no moved-API warning
        frameworks.tfdata.keep_if_from_hf(object())
