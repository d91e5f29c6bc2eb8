"""A deterministic stand-in for a consumer that reads ahead."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import Any

from pitfalls import _validate as validate
from pitfalls._sources import noted, open_source


def read_ahead(source: Any, depth: int) -> Iterator[Any]:
    """Yield the batches of ``source`` as a consumer with a read-ahead buffer sees them.

    Before batch ``i`` is handed out, batches up to ``i + depth`` have been
    drawn from the source: what Keras 2's queue (``max_queue_size``),
    ``tf.data``'s ``prefetch`` and a ``DataLoader``'s workers do, but in one
    thread and in a fixed order, so the outcome never depends on timing.
    ``depth=0`` is a plain loop. Batches are handed out as drawn, not copied:
    what you see is what training would see. Ends when the source ends; an
    exception the source raises comes through with a note naming the batch.

    >>> import numpy as np
    >>> def shared():
    ...     x = np.zeros(1)
    ...     for i in range(3):
    ...         x[0] = i
    ...         yield x, float(i)
    >>> [(float(x[0]), y) for x, y in read_ahead(shared(), depth=1)]
    [(1.0, 0.0), (2.0, 1.0), (2.0, 2.0)]
    """
    depth = validate.integer("depth", depth, minimum=0)
    return _read_ahead(open_source(source), depth)


def _read_ahead(batches: Iterator[Any], depth: int) -> Iterator[Any]:
    queue: deque[Any] = deque()
    for drawn in itertools.count():
        try:
            with noted(f"pitfalls: raised by the source while read_ahead drew batch {drawn}"):
                queue.append(next(batches))
        except StopIteration:
            break
        if len(queue) > depth:
            yield queue.popleft()
    yield from queue
