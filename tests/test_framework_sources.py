"""Batches of framework tensors, read through the array interface.

They run with numpy alone, on a stand-in that behaves like a CPU torch tensor
made by ``torch.from_numpy``: it shares memory with a numpy buffer. The real
frameworks, which CI installs, are in test_torch.py, test_jax.py,
test_tfdata.py, test_huggingface.py and test_keras.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls


class SharedTensor:
    """Like torch.from_numpy(buf): a tensor object viewing a numpy buffer."""

    def __init__(self, buffer):
        self._buffer = buffer

    def __array__(self, dtype=None, copy=None):
        return self._buffer if dtype is None else self._buffer.astype(dtype)

    @property
    def shape(self):
        return self._buffer.shape


def tensors_over_one_buffer():
    buf = np.zeros((4, 2), dtype=np.float32)
    rng = np.random.default_rng(0)
    while True:
        buf[:] = rng.normal(size=buf.shape)
        yield SharedTensor(buf), SharedTensor(buf.sum(axis=1))  # new objects, same memory


def fresh_tensors():
    rng = np.random.default_rng(0)
    while True:
        x = rng.normal(size=(4, 2)).astype(np.float32)
        yield SharedTensor(x), SharedTensor(x.sum(axis=1))


def test_new_tensor_objects_over_one_buffer_are_still_aliasing():
    with pytest.raises(pitfalls.AliasingError, match=r"batch 0, inputs, after later draws"):
        pitfalls.assert_generator_no_aliasing(tensors_over_one_buffer)
    with pytest.raises(pitfalls.TargetMismatchError, match="after later draws"):
        pitfalls.assert_targets_match(tensors_over_one_buffer, lambda x: np.asarray(x).sum(axis=1))


def test_fresh_tensors_pass():
    pitfalls.assert_generator_no_aliasing(fresh_tensors)
    pitfalls.assert_targets_match(fresh_tensors, lambda x: np.asarray(x).sum(axis=1))


def test_tensor_shapes_are_read_without_numpy_conversion():
    pitfalls.assert_no_broadcast(SharedTensor(np.zeros((3, 1))), np.zeros((3, 1)))
    with pytest.raises(pitfalls.BroadcastError):
        pitfalls.assert_no_broadcast(SharedTensor(np.zeros(3)), np.zeros((3, 1)))
