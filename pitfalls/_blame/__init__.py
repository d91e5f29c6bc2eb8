"""Blame: name the line that broke the invariant a check found broken.

A failed check says *what* changed (batch 0's ``inputs[0]``, after later
draws); these functions say *where*: ``path/to/file.py:LINE in function: the
source text``, with the user frames above it. Each runs a diagnosis pass on
a fresh copy of the source (a factory or a class is called again, an
indexable source such as a ``keras.utils.PyDataset`` is read again by index,
an iterable is iterated again) and watches it:

* :func:`blame_aliasing`: every batch drawn, for a write after it was handed out;
* :func:`blame_targets`: the inputs and targets drawn, for a write that makes
  them disagree with ``target_fn``;
* :func:`blame_epochs`: epoch 1's batches and the data the source stores, for
  a rewrite during epoch 2 (an in-place shuffle is a reorder, not a rewrite);
* :func:`blame_index`: the data an indexable source stores, for a write made
  while an index is read again, then its counters and random generators, for
  the line that advances one on every read.

Two mechanisms find the line:

1. Freezing. Once a batch is drawn, every numpy array in it, and each array
   that owns its memory, is made read-only, so the source's next write into
   it raises ``ValueError: assignment destination is read-only`` at the
   guilty statement; the traceback names the line.
2. Tracing. For what freezing cannot see (a write through a view made before
   the freeze, a list cleared and refilled, a dict value replaced, a C
   extension that ignores the flag) the source's Python lines are traced one
   by one (``sys.settrace``, in the thread that reads the source) and what is
   held compared with its snapshot at each line; the first line after which
   it differs is the line that wrote.

A line found by freezing is confirmed by tracing before it is named: freezing
the array that owns a batch's memory also refuses writes to parts of it that
no batch holds. Where no line can be named (another thread wrote, C code with
no Python line, a worker process, a bare iterator that cannot be read again)
the :class:`Blame` says why instead: a wrong blame is worse than none. A torch
DataLoader with worker processes builds its batches where no trace reaches, so
the diagnosis reads a copy of it with ``num_workers=0`` and says so
(:attr:`Blame.note`).

Every flag changed is restored, also on error; the user's arrays are never
written. Nothing here runs unless a caller asks, after a check failed: a
passing check costs what it cost before.
"""

from __future__ import annotations

from pitfalls._blame._batches import blame_aliasing, blame_epochs, blame_targets
from pitfalls._blame._index import blame_index

__all__ = [
    "blame_aliasing",
    "blame_epochs",
    "blame_index",
    "blame_targets",
]
