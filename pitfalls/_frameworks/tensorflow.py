"""TensorFlow and Keras: tensors, generators and global seeds, never importing either.

Seeding TensorFlow and Keras the way ``keras.utils.set_random_seed`` does, without
importing what is not imported yet, and putting every seed back exactly, needs three
private APIs: Keras' global state (its seed and seed generator), TensorFlow's eager
context (its global seed and the ``random.Random`` that derives eager ops' seeds from it)
and TensorFlow's global ``tf.random.Generator`` read without making one.
"""

from __future__ import annotations

import sys
from typing import Any

from pitfalls._frameworks.base import is_a, moved, private

_KERAS_STATE = private("keras.src.backend.common.global_state")
_TF_CONTEXT = private("tensorflow.python.eager.context.context()._seed/_rng")
_TF_GLOBAL_GENERATOR = private("tensorflow.python.ops.stateful_random_ops.global_generator")
_KERAS_LEGACY_ITERATOR = private("keras.src.legacy.preprocessing.image.Iterator")
_KERAS_SEEDS = ("global_random_seed", "global_seed_generator")
UNSET = object()


# Imported means in sys.modules and not None: a None entry blocks the import (as tests
# that hide a framework do), and reading the framework's state then would fail.
def keras() -> Any:
    module = sys.modules.get("keras")
    return module if module is not None and hasattr(module, "utils") else None


def tensorflow() -> Any:
    module = sys.modules.get("tensorflow")
    return module if module is not None and hasattr(module, "random") else None


def is_tensor(obj: Any) -> bool:
    return is_a(obj, "tensorflow", "Tensor")


def tensor_like(array: Any, original: Any) -> Any:
    """``array`` as a tensor of ``original``'s dtype."""
    return sys.modules["tensorflow"].convert_to_tensor(array, dtype=original.dtype)


def is_pydataset(obj: Any) -> bool:
    """A ``keras.utils.PyDataset`` (``keras.utils.Sequence``)."""
    return is_a(obj, "keras", "utils.PyDataset")


def is_image_iterator(obj: Any) -> bool:
    """An iterator of ``ImageDataGenerator.flow`` (``flow_from_directory``, ...): tf_keras'
    or Keras 3's legacy one, a Sequence that draws its order itself (``shuffle=``)."""
    return is_a(obj, "tf_keras.preprocessing.image", "Iterator") or is_a(
        obj, "keras.src.legacy.preprocessing.image", "Iterator"
    )


def global_generator() -> Any:
    """TensorFlow's global ``tf.random.Generator`` once made (None before: asking for it
    through ``tf.random.get_global_generator()`` would make one)."""
    if tensorflow() is None:
        return None
    module = sys.modules.get("tensorflow.python.ops.stateful_random_ops")
    if module is None or not hasattr(module, "global_generator"):
        moved(_TF_GLOBAL_GENERATOR, AttributeError("global_generator"))
        return None
    return module.global_generator


def _context() -> Any:
    from tensorflow.python.eager import context

    return context.context()


def op_seeds() -> Any:
    """The ``random.Random`` TensorFlow derives eager ops' seeds from once a global seed is
    set (``tf.random.uniform`` in a ``__getitem__``), or None (no seed set, or no TF)."""
    if tensorflow() is None:
        return None
    try:
        return getattr(_context(), "_rng", None)
    except Exception as exc:
        moved(_TF_CONTEXT, exc)
        return None


def _keras_seeds(values: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Keras' global seed and seed generator by name, set to ``values`` first when given;
    None when Keras' global state is not where it was."""
    try:
        from keras.src.backend.common import global_state

        for key, value in (values or {}).items():
            global_state.set_global_attribute(key, value)
        return {key: global_state.get_global_attribute(key) for key in _KERAS_SEEDS}
    except Exception as exc:
        moved(_KERAS_STATE, exc)
        return None


def seed_keras(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)`` (Keras imported), with Keras' global
    ``SeedGenerator`` remade from the seed, as Keras 3.13+ does itself.

    Before 3.13 (the last Keras for Python 3.10 is 3.12) the generator that unseeded
    ``keras.random`` calls and weight initializers draw from kept its state across
    ``set_random_seed``: the same seed gave other weights after any earlier draw.
    """
    k = keras()
    if k is not None:
        k.utils.set_random_seed(seed)
        _keras_seeds({"global_seed_generator": None})


def seed(seed: int) -> None:
    """What ``keras.utils.set_random_seed`` does to Keras and TensorFlow, for those
    imported: Keras' global seed (its generator remade from it) and ``tf.random.set_seed``."""
    k = keras()
    if k is not None and _keras_seeds(dict(zip(_KERAS_SEEDS, (seed, None)))) is None:
        k.utils.set_random_seed(seed)  # through its public API: it seeds the others too
    tf = tensorflow()
    if tf is not None:
        tf.random.set_seed(seed)


def seeds() -> dict[str, Any]:
    """Keras' and TensorFlow's global seeds as they are, for :func:`put_back`: the eager
    context's seed and, once one was set, its op-seed ``random.Random`` (the object and
    its state). TensorFlow not imported yet counts as no seed, so one set after it was
    imported is taken back too."""
    state: dict[str, Any] = {}
    if keras() is not None:
        state["keras"] = _keras_seeds()
    state["tf"] = (None, UNSET, None)
    if tensorflow() is not None:
        try:
            ctx = _context()
            rng: Any = getattr(ctx, "_rng", UNSET)
            state["tf"] = (ctx._seed, rng, None if rng is UNSET else rng.getstate())
        except Exception as exc:
            moved(_TF_CONTEXT, exc)
            state.pop("tf")
    return state


def put_back(state: dict[str, Any]) -> None:
    """The seeds :func:`seeds` read, set again (TensorFlow's kernel caches cleared only when
    they changed, as ``tf.random.set_seed`` clears them)."""
    if keras() is not None:
        _keras_seeds(state.get("keras") or dict.fromkeys(_KERAS_SEEDS))
    if "tf" not in state or tensorflow() is None:
        return
    try:
        from tensorflow.python import pywrap_tfe

        ctx = _context()
        seed, rng, sequence = state["tf"]
        now: Any = getattr(ctx, "_rng", UNSET)
        if ctx._seed == seed and now is rng and (rng is UNSET or now.getstate() == sequence):
            return  # as it was: clearing TensorFlow's kernel caches would cost, for nothing
        ctx._seed = seed
        if rng is UNSET:
            if hasattr(ctx, "_rng"):
                del ctx._rng
        else:
            rng.setstate(sequence)  # the op seeds drawn since are drawn again
            ctx._rng = rng
        if ctx._context_handle is not None:  # as set_seed does: kernels keep seeds
            pywrap_tfe.TFE_ContextClearCaches(ctx._context_handle)
    except Exception as exc:
        moved(_TF_CONTEXT, exc)
