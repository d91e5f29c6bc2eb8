"""Evidence that a read wrote: the rows of arrays a source holds, and its own attributes.

Randomness never changes the data a source stores; preprocessing done in place does
(``x /= 255`` on a slice). :func:`stored_arrays` digests the rows of the arrays
:func:`~pitfalls._randomness.held_by` found, :func:`changed_rows` says which of the same
objects changed; :func:`source_state` and :func:`state_changed` do the same for the
attributes of the source's own objects (a counter advanced per read).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from pitfalls import _fingerprint as fingerprint
from pitfalls import _frameworks as frameworks
from pitfalls._randomness import _ATOMS, _SKIP, Held, is_data

_MAX_ATTRIBUTES = 256
_NOT_STATE = (np.ndarray, *_SKIP)
"""What an attribute's token ignores: data judged by its rows, and what is no state (the
objects :func:`~pitfalls._randomness.held_by` does not enter)."""


# Stored data: written in place or not? ----------------------------------------------


@dataclass(frozen=True)
class Change:
    """A stored array whose rows changed: its name, rows no longer there, rows in all."""

    name: str
    changed: int
    rows: int


Stored = dict[str, tuple[Any, Counter[bytes]]]
"""Arrays a source holds, by name: the object itself (found again by identity, never by its
name: a name rebound to a new array is no write) and the multiset of its rows."""


def _rows(array: Any) -> Counter[bytes] | None:
    """A held array's rows as a multiset of digests; None when it cannot be read."""
    rows = frameworks.as_numpy(array)
    return None if rows is None else fingerprint.row_multiset(rows)


def stored_arrays(held: Held, min_rows: int) -> Stored:
    """The arrays held with at least ``min_rows`` rows (the data, not a batch's buffer), of
    any size, with their rows' digests."""
    rows = {name: _rows(array) for name, array in held.arrays.items() if len(array) >= min_rows}
    return {name: (held.arrays[name], digests) for name, digests in rows.items() if digests}


def changed_rows(before: Stored) -> tuple[Change, ...]:
    """The arrays of ``before`` (the same objects) whose rows are no longer that multiset."""
    changes = []
    for name, (array, digests) in before.items():
        now = _rows(array)
        if now is not None and now != digests:
            lost = sum((digests - now).values())
            changes.append(Change(name, lost, sum(digests.values())))
    return tuple(changes)


# The source's own state: what a read changed on it ------------------------------------


def _token(value: Any) -> Any:
    """What of an attribute a read could change that is neither data nor an RNG: a scalar's
    value, a container's length, which object is bound (None: not watched)."""
    if isinstance(value, _ATOMS):
        return ("value", value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return ("len", len(value))
    if isinstance(value, _NOT_STATE) or is_data(value) or callable(value):
        return None  # data is judged by its rows, randomness by its draws
    return ("object", id(value))


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    try:
        return list(vars(obj).items())[:_MAX_ATTRIBUTES]
    except TypeError:
        return []


def source_state(root: Any) -> dict[str, Any]:
    """The state of the objects a source is made of: the source itself and the objects its
    attributes hold (a DataLoader's ``dataset``), each but a loader a framework made (whose
    own bookkeeping moves as it is read), their attributes by :func:`_token`. Two snapshots
    around a read tell what the read changed (``self.calls``): a source whose batches drift
    with its state."""
    out: dict[str, Any] = {}
    objects = [("self", root)] + [(f"self.{k}", v) for k, v in _attributes(root)]
    for name, obj in objects:
        if isinstance(obj, (*_ATOMS, *_NOT_STATE)) or frameworks.framework_loader(obj):
            continue
        for key, value in _attributes(obj):
            token = _token(value)
            if token is not None:
                out[f"{name}.{key}"] = token
    return out


def state_changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Attributes whose token differs between two :func:`source_state` snapshots."""
    return [name for name in after if name in before and before[name] != after[name]]
