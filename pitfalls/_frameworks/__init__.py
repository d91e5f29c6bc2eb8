"""What pitfalls knows of the frameworks, in one place (as Keras keeps its data adapters).

The rest of the package asks this layer questions ("is this a DataLoader? which library
made this array? what sort of generator is this?") and never names a framework's class
itself. Nothing here imports a framework: an object of a framework's type exists only once
the user has imported it, so each question looks the class up in ``sys.modules`` and tests
with ``isinstance``. Each private API is used behind one small function in the module of
its framework, registered in :data:`PRIVATE`, with a contract test
(``tests/test_framework_contracts.py``) that fails when a release moves it; at run time a
moved one is said once in a warning, never passed over silently.

One module per framework: :mod:`.torch`, :mod:`.tensorflow` (TensorFlow and Keras),
:mod:`.tfdata` (tf.data pipelines), :mod:`.jax`, :mod:`.hf` (Hugging Face ``datasets``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pitfalls._frameworks import hf, jax, rngs, tensorflow, tfdata, torch
from pitfalls._frameworks.base import PRIVATE, is_a, numpy_global, private, python_global
from pitfalls._frameworks.rngs import rng_kind

__all__ = ["PRIVATE", "numpy_global", "python_global", "rng_kind", "rngs"]
"""What this package re-exports (its own functions, and its modules, are reached as attributes)."""

_TORCH_ITERATOR = private("torch.utils.data.dataloader._BaseDataLoaderIter")


def library_of(obj: Any) -> str | None:
    """The library whose loader ``obj`` is (or whose iterator): ``"torch"`` (a DataLoader,
    a Dataset), ``"tf.data"``, ``"hf"`` (Hugging Face datasets), ``"keras"`` (a
    PyDataset), ``"keras image iterator"`` (``ImageDataGenerator.flow``'s), or None."""
    if torch.is_loader(obj) or torch.is_dataset(obj):
        return "torch"
    if is_a(obj, "torch.utils.data.dataloader", "_BaseDataLoaderIter"):
        return "torch"
    if tfdata.is_dataset(obj) or is_a(obj, "tensorflow", "data.Iterator"):
        return "tf.data"
    if hf.is_dataset(obj) or hf.is_iteration(obj):
        return "hf"
    if tensorflow.is_image_iterator(obj):  # a PyDataset too, in Keras 3
        return "keras image iterator"
    if tensorflow.is_pydataset(obj):
        return "keras"
    return None


def array_library(leaf: Any) -> str:
    """Which library made an array: ``"torch"``, ``"jax"``, ``"tensorflow"`` or
    ``"numpy"`` (anything else)."""
    if torch.is_tensor(leaf):
        return "torch"
    if jax.is_array(leaf):
        return "jax"
    if tensorflow.is_tensor(leaf):
        return "tensorflow"
    return "numpy"


def tensor_like(array: np.ndarray, original: Any) -> Any:
    """``array`` as the kind of tensor ``original`` is (a torch tensor on its device, a
    TensorFlow tensor, a JAX array, in its dtype); numpy as it is."""
    library = array_library(original)
    if library == "torch":
        return torch.tensor_like(array, original)
    if library == "tensorflow":
        return tensorflow.tensor_like(array, original)
    if library == "jax":
        return jax.tensor_like(array, original)
    return array


def is_tensor(obj: Any) -> bool:
    """A torch tensor or a JAX array (not a key): data a source may hold, with a sample axis."""
    return torch.is_tensor(obj) or (jax.is_array(obj) and not jax.is_key(obj))


def as_numpy(array: Any) -> np.ndarray | None:
    """A held array's contents as numpy, a view where the library gives one (a torch
    tensor bit for bit); None when it cannot be read: no witness then."""
    if torch.is_tensor(array):
        out = torch.as_array(array, bits=True)
    else:  # numpy's own, or a JAX array (a copy)
        try:
            out = np.asarray(array)
        except Exception:  # a deleted (donated) JAX array
            return None
    return out if out is None or out.dtype != object else None


def framework_loader(obj: Any) -> bool:
    """Is ``obj`` a loader a framework made itself (a DataLoader or its iterator, a tf.data
    pipeline, a Hugging Face dataset, a Keras image iterator), whose own bookkeeping
    changes as it is read? A Dataset or PyDataset the user wrote is not one."""
    library = library_of(obj)
    return library not in (None, "keras") and not torch.is_dataset(obj)
