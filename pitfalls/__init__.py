"""pitfalls: make silent machine-learning bugs loud.

Checkers (the product other projects import) are re-exported here; the
reproductions (the lessons) live in :mod:`pitfalls.reproductions`.
Importing this package never imports TensorFlow, Keras, torch or JAX, nor the
checkers themselves: each is imported when first used (``pitfalls.check_source``
or ``from pitfalls import check_source``), so ``import pitfalls`` costs little
more than numpy.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from pitfalls._report import (
    AliasingError,
    BatchDependenceError,
    BroadcastError,
    Cause,
    EpochChangedError,
    EpochIncompleteError,
    Finding,
    InconclusiveError,
    IndexUnstableError,
    Location,
    OrderNotShuffledError,
    PitfallError,
    PredictionShapeError,
    Report,
    TargetMismatchError,
    SharedRngError,
    UnderfitError,
)

if _TYPE_CHECKING:  # what __getattr__ imports on first use, for type checkers
    from pitfalls._aliasing import DEFAULT_DRAWS
    from pitfalls._aliasing import assert_generator_no_aliasing
    from pitfalls._aliasing import check_generator_no_aliasing
    from pitfalls._complete import assert_epoch_complete
    from pitfalls._complete import check_epoch_complete
    from pitfalls._fits import assert_fits
    from pitfalls._fits import check_fits
    from pitfalls._independence import assert_batch_independent
    from pitfalls._independence import check_batch_independent
    from pitfalls._order import assert_order_shuffled
    from pitfalls._order import check_order_shuffled
    from pitfalls._randomness import register_random
    from pitfalls._readahead import read_ahead
    from pitfalls._repeatable import assert_epoch_repeatable
    from pitfalls._repeatable import check_epoch_repeatable
    from pitfalls._runner import assert_source
    from pitfalls._runner import check_source
    from pitfalls._shapes import assert_no_broadcast
    from pitfalls._shapes import assert_prediction_shape
    from pitfalls._shapes import check_no_broadcast
    from pitfalls._shapes import check_prediction_shape
    from pitfalls._shapes import strict_loss
    from pitfalls._stability import assert_index_stable
    from pitfalls._stability import check_index_stable
    from pitfalls._targets import assert_targets_match
    from pitfalls._targets import check_targets_match
    from pitfalls._worker_rng import assert_worker_randomness
    from pitfalls._worker_rng import check_worker_randomness

__version__ = "0.1.0"

_LAZY = {
    "DEFAULT_DRAWS": "pitfalls._aliasing",
    "assert_generator_no_aliasing": "pitfalls._aliasing",
    "check_generator_no_aliasing": "pitfalls._aliasing",
    "assert_epoch_complete": "pitfalls._complete",
    "check_epoch_complete": "pitfalls._complete",
    "assert_fits": "pitfalls._fits",
    "check_fits": "pitfalls._fits",
    "assert_batch_independent": "pitfalls._independence",
    "check_batch_independent": "pitfalls._independence",
    "assert_order_shuffled": "pitfalls._order",
    "check_order_shuffled": "pitfalls._order",
    "register_random": "pitfalls._randomness",
    "read_ahead": "pitfalls._readahead",
    "assert_epoch_repeatable": "pitfalls._repeatable",
    "check_epoch_repeatable": "pitfalls._repeatable",
    "assert_source": "pitfalls._runner",
    "check_source": "pitfalls._runner",
    "assert_no_broadcast": "pitfalls._shapes",
    "assert_prediction_shape": "pitfalls._shapes",
    "check_no_broadcast": "pitfalls._shapes",
    "check_prediction_shape": "pitfalls._shapes",
    "strict_loss": "pitfalls._shapes",
    "assert_index_stable": "pitfalls._stability",
    "check_index_stable": "pitfalls._stability",
    "assert_targets_match": "pitfalls._targets",
    "check_targets_match": "pitfalls._targets",
    "assert_worker_randomness": "pitfalls._worker_rng",
    "check_worker_randomness": "pitfalls._worker_rng",
}
"""Where each checker lives: imported when first asked for."""


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pitfalls' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_DRAWS",
    "AliasingError",
    "BatchDependenceError",
    "BroadcastError",
    "Cause",
    "EpochChangedError",
    "EpochIncompleteError",
    "Finding",
    "InconclusiveError",
    "IndexUnstableError",
    "Location",
    "OrderNotShuffledError",
    "PitfallError",
    "PredictionShapeError",
    "Report",
    "SharedRngError",
    "TargetMismatchError",
    "UnderfitError",
    "assert_batch_independent",
    "assert_epoch_complete",
    "assert_epoch_repeatable",
    "assert_fits",
    "assert_generator_no_aliasing",
    "assert_index_stable",
    "assert_no_broadcast",
    "assert_order_shuffled",
    "assert_prediction_shape",
    "assert_source",
    "assert_targets_match",
    "assert_worker_randomness",
    "check_batch_independent",
    "check_epoch_complete",
    "check_epoch_repeatable",
    "check_fits",
    "check_generator_no_aliasing",
    "check_index_stable",
    "check_no_broadcast",
    "check_order_shuffled",
    "check_prediction_shape",
    "check_source",
    "check_targets_match",
    "check_worker_randomness",
    "read_ahead",
    "register_random",
    "strict_loss",
]
