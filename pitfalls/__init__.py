"""pitfalls: make silent machine-learning bugs loud.

Checkers (the product other projects import) are re-exported here; the
reproductions (the lessons) live in :mod:`pitfalls.reproductions`.
Importing this package never imports TensorFlow, Keras, torch or JAX.
"""

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
from pitfalls._report import AliasingError
from pitfalls._report import BatchDependenceError
from pitfalls._report import BroadcastError
from pitfalls._report import Cause
from pitfalls._report import EpochChangedError
from pitfalls._report import EpochIncompleteError
from pitfalls._report import Finding
from pitfalls._report import InconclusiveError
from pitfalls._report import IndexUnstableError
from pitfalls._report import Location
from pitfalls._report import OrderNotShuffledError
from pitfalls._report import PitfallError
from pitfalls._report import PredictionShapeError
from pitfalls._report import Report
from pitfalls._report import TargetMismatchError
from pitfalls._report import SharedRngError
from pitfalls._report import UnderfitError
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
