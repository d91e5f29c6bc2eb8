"""Beyond the article: targets computed in integers.

Each generator yields ``(x, y)`` with ``x`` integer inputs and ``y`` meant to
be the mean of each row's two values; the rule is :func:`mean_target`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def mean_target(x: np.ndarray) -> np.ndarray:
    """The rule: the exact mean of each row's two values, in float64."""
    return x.astype(np.float64).mean(axis=1)


def uint8_pixels_buggy(batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """BUGGY: the mean of two uint8 pixels computed in uint8.

    Symptom: bright pairs get dark targets: (200 + 100) // 2 gives 22, not
    150. Cause: uint8 addition wraps at 256 before the division. Fix: widen
    first, ``x.astype(np.float64).mean(axis=1)`` (:func:`uint8_pixels_fixed`).
    """
    rng = np.random.default_rng(seed)
    while True:
        x = rng.integers(0, 256, size=(batch_size, 2), dtype=np.uint8)
        yield x, (x[:, 0] + x[:, 1]) // 2


def uint8_pixels_fixed(batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """FIXED: the same pixels, averaged in float64."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.integers(0, 256, size=(batch_size, 2), dtype=np.uint8)
        yield x, x.astype(np.float64).mean(axis=1)


def integer_division_buggy(batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """BUGGY: the mean by floor division, ``(a + b) // 2``.

    Symptom: every odd sum loses 0.5: the best the model can learn is a mean
    biased by -0.25, a quarter off on every sample, so its loss never falls
    below 1/16. Cause: ``//`` floors.
    Fix: ``/ 2`` (:func:`integer_division_fixed`).
    """
    rng = np.random.default_rng(seed)
    while True:
        x = rng.integers(0, 100, size=(batch_size, 2))
        yield x, (x[:, 0] + x[:, 1]) // 2


def integer_division_fixed(batch_size: int = 32, *, seed: int = 0) -> Iterator[Any]:
    """FIXED: ``(a + b) / 2``, a float."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.integers(0, 100, size=(batch_size, 2))
        yield x, (x[:, 0] + x[:, 1]) / 2


PAIRS = (
    (uint8_pixels_buggy, uint8_pixels_fixed),
    (integer_division_buggy, integer_division_fixed),
)
