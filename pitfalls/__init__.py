"""pitfalls: make silent machine-learning bugs loud.

Checkers (the product other projects import) are re-exported here; the
reproductions (the lessons) live in :mod:`pitfalls.reproductions`.
Importing this package never imports TensorFlow or Keras.
"""

from pitfalls._aliasing import DEFAULT_DRAWS
from pitfalls._aliasing import assert_generator_no_aliasing
from pitfalls._aliasing import check_generator_no_aliasing
from pitfalls._readahead import read_ahead
from pitfalls._report import AliasingError
from pitfalls._report import Finding
from pitfalls._report import PitfallError
from pitfalls._report import Report
from pitfalls._report import TargetMismatchError
from pitfalls._targets import assert_targets_match
from pitfalls._targets import check_targets_match

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DRAWS",
    "AliasingError",
    "Finding",
    "PitfallError",
    "Report",
    "TargetMismatchError",
    "assert_generator_no_aliasing",
    "assert_targets_match",
    "check_generator_no_aliasing",
    "check_targets_match",
    "read_ahead",
]
