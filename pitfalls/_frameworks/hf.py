"""Hugging Face ``datasets``, never importing it."""

from __future__ import annotations

import inspect
from typing import Any

from pitfalls._frameworks.base import is_a


def is_dataset(obj: Any) -> bool:
    """A ``datasets.Dataset`` or ``datasets.IterableDataset``."""
    return is_a(obj, "datasets", "Dataset") or is_a(obj, "datasets", "IterableDataset")


def is_iteration(obj: Any) -> bool:
    """A generator that ``datasets`` code runs (``Dataset.iter(batch_size=...)``)."""
    if not inspect.isgenerator(obj) or obj.gi_frame is None:
        return False
    return str(obj.gi_frame.f_globals.get("__name__", "")).startswith("datasets.")
