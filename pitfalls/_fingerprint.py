"""The one fingerprint: a 16-byte XXH3 digest of bytes, of a sample's rows, of an array.

A sample (one row, axis 0, of every input array of a batch) is fingerprinted by the bytes
of its row in each array, in order; a stored array's rows the same way; a batch by blocks
of its bytes. XXH3 is a fast non-cryptographic hash: collisions of unequal rows come at
a rate of 2**-128, far below anything a check could observe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import xxhash


def digest(data: bytes | memoryview | np.ndarray) -> bytes:
    """16 bytes standing for ``data`` (a C-contiguous array is read in place)."""
    return xxhash.xxh3_128_digest(data)  # type: ignore[arg-type]  # arrays are buffers


def as_bytes(array: np.ndarray) -> np.ndarray:
    """``array``'s bytes as a C-contiguous uint8 array of one row per sample (axis 0)."""
    n = len(array)
    flat = np.ascontiguousarray(array).reshape(n, -1)
    try:
        return flat.view(np.uint8)  # any dtype's bytes (datetime, structured) as bytes
    except (TypeError, ValueError):
        return np.frombuffer(flat.tobytes(), dtype=np.uint8).reshape(n, -1)


def samples(arrays: list[np.ndarray], n: int) -> list[bytes]:
    """One digest per sample: of the bytes of its row in every array, in order."""
    rows = [as_bytes(a) for a in arrays]
    if len(rows) == 1:
        (only,) = rows
        return [digest(only[i]) for i in range(n)]
    out = []
    for i in range(n):
        h = xxhash.xxh3_128()
        for r in rows:
            h.update(r[i])
        out.append(h.digest())
    return out


def row_multiset(array: np.ndarray) -> Counter[bytes]:
    """The rows (axis 0) of ``array`` as a multiset of digests: a reordering keeps it.
    Read a row at a time, so no copy of a large, strided array is made."""
    out: Counter[bytes] = Counter()
    for row in _rows(array):
        out[digest(as_bytes(row[None])[0])] += 1
    return out


def _rows(array: np.ndarray) -> Iterable[np.ndarray]:
    return array.reshape(len(array), -1) if array.flags.c_contiguous else array
