"""Batches as trees: flatten nested batches into named leaves, snapshot, compare.

A batch is whatever a data source yields: an array, a scalar, or lists, tuples
and dicts of those, nested (the article yields ``[x], [y]``). Every leaf gets a
path that a person can read in a failure message: a top-level tuple is taken
as Keras' ``(inputs, targets, sample_weights)``, so the article's input array
is ``inputs[0]``; anything else is rooted at ``batch``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pitfalls._fingerprint import digest
from pitfalls._report import MAX_SHOWN, Finding, Location
from pitfalls._sources import noted

ROLES = ("inputs", "targets", "sample_weights")
_MAX_DEPTH = 64
_SCALARS = (type(None), bool, int, float, complex, str, bytes, np.generic)


class LeafError(TypeError):
    """A leaf of a batch cannot be read as an array."""


def _has(obj: Any, name: str) -> bool:
    """``hasattr``, but an attribute that raises on access counts as present: the
    object claims the protocol, and reading it (in ``as_array``) says what went wrong."""
    try:
        return hasattr(obj, name)
    except Exception:
        return True


def _is_array_like(obj: Any) -> bool:
    return (
        _has(obj, "__array__")
        or _has(obj, "__array_interface__")
        or _has(obj, "__array_struct__")
        or isinstance(obj, (memoryview, bytearray))
    )


def as_array(leaf: Any, path: str) -> np.ndarray:
    """The leaf's current content as an ndarray, sharing memory where it can."""
    if isinstance(leaf, np.ndarray):
        # A subclass (masked, memmap, matrix) as the plain array a consumer reads: its
        # data, a view sharing its memory, compared without the subclass's own == and view.
        return leaf if type(leaf) is np.ndarray else np.asarray(leaf)
    if isinstance(leaf, _SCALARS) or _is_array_like(leaf):
        try:
            return np.asarray(leaf)
        except Exception as exc:  # a tensor on a device, a broken __array__
            from pitfalls._frameworks import torch

            torch_array = torch.as_array(leaf)
            if torch_array is not None:
                return torch_array
            raise LeafError(
                f"{path}: cannot read {type(leaf).__qualname__} as a numpy array"
                f" ({type(exc).__name__}: {exc})"
            ) from exc
    raise LeafError(
        f"{path}: a batch leaf of type {type(leaf).__qualname__} is not an array,"
        " a scalar, a list, a tuple or a dict"
    )


def _child(path: str, key: Any) -> str:
    return f"{path}[{key!r}]"


def _walk(
    node: Any,
    path: str,
    depth: int,
    leaves: list[tuple[str, Any]],
    shape: list[tuple[str, str, tuple[Any, ...]]],
    seen: set[int],
    roles: bool = False,
) -> None:
    if depth > _MAX_DEPTH:
        shown = path if len(path) <= 60 else f"{path[:28]}...{path[-28:]}"
        raise ValueError(f"{shown}: batch is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(node, Mapping):
        keys = tuple(node.keys())
        size: tuple[Any, ...] = ("keys", keys)
        items: Iterable[tuple[str, Any]] = ((_child(path, key), node[key]) for key in keys)
    elif isinstance(node, (list, tuple)):
        size = ("len", len(node))
        names = ROLES if roles else [f"{path}[{i}]" for i in range(len(node))]
        items = zip(names, node)
    else:
        leaves.append((path, node))
        return
    if id(node) in seen:
        raise ValueError(f"{path}: batch contains itself (a reference cycle)")
    seen.add(id(node))
    shape.append((path, type(node).__qualname__, size))
    for child, item in items:
        _walk(item, child, depth + 1, leaves, shape, seen)
    seen.discard(id(node))


@dataclass(frozen=True)
class Flat:
    """A batch flattened: its containers' shapes and its leaves, by path."""

    structure: tuple[tuple[str, str, tuple[Any, ...]], ...]
    leaves: tuple[tuple[str, Any], ...]


def _positional(batch: Any) -> bool:
    """A top-level tuple or list of 1-3 items: (inputs, targets, sample_weights)."""
    return type(batch) in (tuple, list) and 1 <= len(batch) <= len(ROLES)


def flatten(batch: Any) -> Flat:
    """Flatten a batch; a top-level tuple or list of 1-3 items is (inputs, targets, weights)."""
    return flatten_at(batch, "batch", roles=_positional(batch))


TARGET_KEYS = ("y", "label", "labels", "target", "targets")
"""Keys that hold the targets of a dict batch (Hugging Face, torchvision-style datasets)."""
WEIGHT_KEYS = ("sample_weight", "sample_weights")


@dataclass(frozen=True)
class Parts:
    """A batch split by the batch convention: inputs, targets (None: none), and their paths."""

    inputs: Any
    targets: Any
    inputs_path: str
    targets_path: str


def split_batch(batch: Any, index: int, unpack: Any = None) -> Parts:
    """Split a batch into inputs and targets, by ``unpack(batch)`` or by the convention.

    The convention, which every checker follows: a tuple or a list of 2 or 3
    items is ``(inputs, targets[, sample_weights])`` (Keras' tuples, PyTorch's
    default collate); a dict holds its targets under one of ``TARGET_KEYS``
    (``"y"``, ``"label"``, ``"labels"``, ``"target"``, ``"targets"``), its
    other keys (but ``sample_weight``) being the inputs; anything else is
    inputs alone. ``unpack``, a function of the batch returning ``(inputs,
    targets)``, settles any other layout.
    """
    if unpack is not None:
        with noted(f"pitfalls: raised by unpack on batch {index}"):
            parts = unpack(batch)
        if not isinstance(parts, tuple) or len(parts) != 2:
            raise ValueError(
                f"unpack must return a pair (inputs, targets); for batch {index} it returned"
                f" {type(parts).__qualname__}"
            )
        return Parts(parts[0], parts[1], "inputs", "targets")
    if _positional(batch):
        targets = batch[1] if len(batch) >= 2 else None
        return Parts(batch[0], targets, "inputs", "targets")
    if isinstance(batch, Mapping):
        keys = [k for k in TARGET_KEYS if k in batch]
        if len(keys) > 1:
            raise ValueError(
                f"batch {index} is a dict with several target keys {keys}: pass"
                " unpack=lambda b: (inputs, targets) to say which part is which"
            )
        if keys:
            key = keys[0]
            inputs = {k: v for k, v in batch.items() if k != key and k not in WEIGHT_KEYS}
            if len(inputs) == 1:
                (only,) = inputs
                return Parts(inputs[only], batch[key], _child("batch", only), _child("batch", key))
            return Parts(inputs, batch[key], "inputs", _child("batch", key))
    return Parts(batch, None, "batch", "targets")


def flatten_at(node: Any, root: str, roles: bool = False) -> Flat:
    """Flatten one part of a batch (e.g. its targets) under the path ``root``; with
    ``roles``, the items of the top-level list or tuple are named by :data:`ROLES`."""
    leaves: list[tuple[str, Any]] = []
    shape: list[tuple[str, str, tuple[Any, ...]]] = []
    _walk(node, root, 0, leaves, shape, set(), roles)
    return Flat(tuple(shape), tuple(leaves))


@dataclass(frozen=True)
class Snapshot:
    """A private copy of a batch's structure and content, taken when it was drawn."""

    structure: tuple[tuple[str, str, tuple[Any, ...]], ...]
    arrays: tuple[tuple[str, np.ndarray], ...]


def snapshot(flat: Flat) -> Snapshot:
    arrays = tuple((path, np.array(as_array(leaf, path), copy=True)) for path, leaf in flat.leaves)
    return Snapshot(flat.structure, arrays)


BLOCK_BYTES = 1 << 16
"""A sealed leaf's bytes are digested in blocks of 64 KiB: 16 bytes kept per block."""
_COPIED_BYTES = 1 << 12
"""Leaves up to 4 KiB are copied whole when sealed: their digest would not be smaller."""


@dataclass(frozen=True)
class Digests:
    """A leaf as drawn, kept as the digests of the blocks of its bytes."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    blocks: tuple[bytes, ...]


@dataclass(frozen=True)
class Seal:
    """A batch as drawn, held at a fraction of its size: its structure and, per leaf, a
    copy (up to 4 KiB) or its :class:`Digests` (:func:`seal`); :func:`diff_snapshot`
    says what changed."""

    structure: tuple[tuple[str, str, tuple[Any, ...]], ...]
    arrays: tuple[tuple[str, np.ndarray | Digests], ...]


def _bytes(a: np.ndarray) -> np.ndarray:
    """The array's bytes, flat (copied only when the array is not C-contiguous)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _blocks(a: np.ndarray) -> tuple[bytes, ...]:
    data = _bytes(a)
    return tuple(digest(data[i : i + BLOCK_BYTES]) for i in range(0, data.size, BLOCK_BYTES))


def _sealed(a: np.ndarray) -> np.ndarray | Digests:
    if a.nbytes <= _COPIED_BYTES or a.dtype.hasobject:
        return np.array(a, copy=True)
    return Digests(a.shape, a.dtype, _blocks(a))


def seal(flat: Flat) -> Seal:
    """Seal a batch as it is drawn: memory of about 1/4096 of its bytes."""
    return Seal(
        flat.structure,
        tuple((path, _sealed(as_array(leaf, path))) for path, leaf in flat.leaves),
    )


def _block_diff(path: str, then: Digests, blocks: tuple[bytes, ...]) -> Diff | None:
    changed = [i for i, (a, b) in enumerate(zip(then.blocks, blocks)) if a != b]
    if not changed:
        return None
    size = int(np.prod(then.shape))
    per_block = max(1, BLOCK_BYTES // then.dtype.itemsize)
    elements = sum(min(per_block, size - i * per_block) for i in changed)
    index = [int(i) for i in np.unravel_index(changed[0] * per_block, then.shape)]
    return Diff(
        path,
        elements,
        size,
        (),
        f"{len(changed)} of {len(blocks)} blocks of its bytes ({BLOCK_BYTES // 1024} KiB each,"
        f" {elements} / {size} elements) changed, the first at index {index}; only"
        " digests were kept, so the elements' values are not shown",
        exact=False,
    )


@dataclass(frozen=True)
class Diff:
    """How one leaf differs: element counts and the first differing places."""

    path: str
    mismatched: int
    total: int
    first: tuple[Location, ...]
    """The first few differing elements: (index, then or desired, now or actual)."""
    problem: str = ""  # set when shapes or dtypes differ and elements cannot be paired
    exact: bool = True
    """False when only digests of blocks were compared: counts, but no values."""

    def finding(self, batch: int | None, when: str) -> Finding:
        """This difference as a report's finding about ``batch``."""
        return Finding(
            batch=batch,
            path=self.path,
            when=when,
            mismatched=self.mismatched,
            total=self.total,
            locations=self.first,
            problem=self.problem,
        )


def _equal_mask(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Elementwise equality in which NaN equals NaN (and NaT equals NaT)."""
    if old.dtype.kind == "c" and new.dtype.kind == "c":
        return _equal_mask(old.real, new.real) & _equal_mask(old.imag, new.imag)
    eq = np.asarray(old == new)
    if eq.shape != old.shape:  # object arrays whose == did not broadcast
        raise TypeError("elementwise comparison failed")
    if not eq.all():
        if old.dtype.kind == "f" and new.dtype.kind == "f":
            eq = eq | (np.isnan(old) & np.isnan(new))
        elif old.dtype.kind in "mM" and new.dtype.kind in "mM":
            eq = eq | (np.isnat(old) & np.isnat(new))
    return eq


def _close_mask(actual: np.ndarray, desired: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    if actual.dtype.kind in "biufc" and desired.dtype.kind in "biufc":
        eq = np.asarray(actual == desired)
        if eq.all():  # equal is close (rtol, atol >= 0), without isclose's ~50 us overhead
            return eq
        return np.isclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)
    return _equal_mask(actual, desired)


def bitwise_equal(then: np.ndarray, now: np.ndarray) -> bool:
    """True when both arrays hold the same bytes: unchanged, NaN payloads included.

    Compared by their digests (:func:`pitfalls._fingerprint.digest`), read in place, so a
    large batch costs one read of each array and no batch-sized temporary. False for
    arrays not C-contiguous or holding objects: the elementwise comparison settles those.
    """
    if then.dtype.hasobject or not (then.flags.c_contiguous and now.flags.c_contiguous):
        return False
    if then.dtype != now.dtype or then.shape != now.shape:
        return False
    return digest(_bytes(then)) == digest(_bytes(now))


def _layout_change(
    path: str, shape: tuple[int, ...], dtype: np.dtype[Any] | None, now: np.ndarray
) -> Diff | None:
    """A Diff when ``now`` has another shape than ``shape`` (or another dtype than
    ``dtype``, when given): its elements cannot be paired. None when the layout holds."""
    size = int(np.prod(shape))
    if now.shape != shape:
        return Diff(path, size, size, (), f"shape {shape} became {now.shape}")
    if dtype is not None and now.dtype != dtype:
        return Diff(path, size, size, (), f"dtype {dtype} became {now.dtype}")
    return None


def diff_arrays(
    path: str,
    then: np.ndarray,
    now: np.ndarray,
    *,
    rtol: float | None = None,
    atol: float = 0.0,
) -> Diff | None:
    """None when ``now`` holds what ``then`` held (NaN equals NaN); else a Diff.

    With ``rtol`` the comparison is ``numpy.isclose(now, then, rtol, atol)``,
    ``then`` being the desired value; without it, exact equality.
    """
    layout = _layout_change(path, then.shape, then.dtype if rtol is None else None, now)
    if layout is not None:
        return layout
    if rtol is None and bitwise_equal(then, now):
        return None  # the common case, without a batch-sized mask
    try:
        eq = _equal_mask(then, now) if rtol is None else _close_mask(now, then, rtol, atol)
    except Exception as exc:  # object arrays with exotic __eq__
        raise TypeError(f"{path}: cannot compare elements ({type(exc).__name__}: {exc})") from exc
    if eq.all():
        return None
    bad = np.flatnonzero(~eq.ravel())
    first = tuple(
        Location(
            tuple(int(i) for i in np.unravel_index(flat_i, then.shape)),
            then.flat[flat_i],
            now.flat[flat_i],
        )
        for flat_i in bad[:MAX_SHOWN]
    )
    return Diff(path, int(bad.size), int(then.size), first)


def diff_snapshot(snap: Snapshot | Seal, flat: Flat) -> tuple[list[Diff], tuple[str, str] | None]:
    """Compare a batch as it is now with its snapshot or its seal.

    Returns the differing leaves and, when the containers themselves changed
    (a list cleared and refilled with fewer items, a dict given new keys), the
    path and a sentence saying how. A copied leaf is compared element by element
    (NaN equals NaN); a digested leaf by its blocks, in a Diff whose ``mismatched``
    counts the elements in the blocks that changed.
    """
    if snap.structure != flat.structure:
        for old, new in zip(snap.structure, flat.structure):
            if old != new:
                return [], _structure_change(old, new)
        return [], ("batch", "the batch's nesting changed")
    diffs = []
    for (path, then), (_, leaf) in zip(snap.arrays, flat.leaves):
        now = as_array(leaf, path)
        if isinstance(then, Digests):
            d = _layout_change(path, then.shape, then.dtype, now)
            d = d or _block_diff(path, then, _blocks(now))
        else:
            d = diff_arrays(path, then, now)
        if d is not None:
            diffs.append(d)
    return diffs, None


Node = tuple[str, str, tuple[Any, ...]]


def _structure_change(old: Node, new: Node) -> tuple[str, str]:
    path, kind, (how, what) = old
    npath, nkind, (_, nwhat) = new
    if path != npath:
        return path, f"nesting changed: {path} is now {npath}"
    if kind != nkind:
        return path, f"was a {kind} and is now a {nkind}"
    if how == "len":
        return path, f"held {_items(what)} and now holds {_items(nwhat)}"
    return path, f"had keys {list(what)!r} and now has {list(nwhat)!r}"


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def buffer_of(array: np.ndarray) -> tuple[int, int]:
    """(id of the object owning the memory, data address) of an array."""
    owner: Any = array
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return id(owner), array.__array_interface__["data"][0]
