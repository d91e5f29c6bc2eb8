"""Batches of framework tensors, read through the array interface.

Most run everywhere with a stand-in that behaves like a CPU torch tensor made
by ``torch.from_numpy``: it shares memory with a numpy buffer. The real torch
tests run where torch is installed (it is optional and not in CI's install);
TensorFlow's are in test_keras.py.
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


# Real torch, where installed -------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is optional; install it to run these")


def torch_dataset(torch, reuse):
    class Buffered(torch.utils.data.Dataset):
        def __init__(self):
            self.data = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
            self.buf = np.empty((8, 2), dtype=np.float32)

        def __len__(self):
            return 8

        def __getitem__(self, i):
            rows = self.data[8 * i : 8 * i + 8]
            if not reuse:
                return torch.from_numpy(rows.copy())
            self.buf[:] = rows
            return torch.from_numpy(self.buf)  # shares self.buf's memory

    return Buffered()


def test_a_dataloader_without_collation_passes_a_reused_buffer_through(torch):
    # batch_size=None turns off collation: the tensor is the dataset's buffer.
    loader = torch.utils.data.DataLoader(torch_dataset(torch, reuse=True), batch_size=None)
    with pytest.raises(pitfalls.AliasingError, match="share one buffer"):
        pitfalls.assert_generator_no_aliasing(lambda: iter(loader), draws=8)


def test_default_collation_copies_and_so_hides_the_reuse(torch):
    loader = torch.utils.data.DataLoader(torch_dataset(torch, reuse=True), batch_size=2)
    pitfalls.assert_generator_no_aliasing(lambda: iter(loader), draws=4)


def test_a_dataloader_of_fresh_tensors_passes_and_shapes_are_checked(torch):
    loader = torch.utils.data.DataLoader(torch_dataset(torch, reuse=False), batch_size=None)
    pitfalls.assert_generator_no_aliasing(lambda: iter(loader), draws=8)
    with pytest.raises(pitfalls.BroadcastError, match=r"broadcasts to \(8, 8\)"):
        pitfalls.assert_no_broadcast(torch.zeros(8), torch.zeros(8, 1))
