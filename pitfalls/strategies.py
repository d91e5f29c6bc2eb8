"""Hypothesis strategies for property-testing your own pipeline.

Built on :mod:`hypothesis.extra.numpy`; arguments are validated when the
strategy is made, not when it is drawn from. Import explicitly
(``from pitfalls import strategies``): ``import pitfalls`` does not load
hypothesis. For example, to show that your prefetcher keeps inputs and targets
together whatever memory the source reuses::

    from hypothesis import given
    from pitfalls import strategies

    @given(strategies.batch_sources(target_fn=lambda x: x.sum(axis=1)))
    def test_my_prefetcher_keeps_pairs_together(source):
        for x, y in my_prefetcher(source(), depth=4):  # your code under test
            np.testing.assert_array_equal(x.sum(axis=1), y)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

REUSE = ("fresh", "one_buffer", "ring")
"""How a source from :func:`batch_sources` hands out memory."""

Shape = tuple[int, ...]


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    if value < minimum:
        raise InvalidArgument(f"{name}={value} must be at least {minimum}")
    return int(value)


def _range(lo_name: str, lo: Any, hi_name: str, hi: Any, minimum: int) -> tuple[int, int]:
    lo, hi = _int_arg(lo_name, lo, minimum), _int_arg(hi_name, hi, minimum)
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo} is larger than {hi_name}={hi}")
    return lo, hi


def batch_sizes(*, min_size: int = 1, max_size: int = 64) -> st.SearchStrategy[int]:
    """Batch sizes from ``min_size`` to ``max_size``; 1, where shape bugs hide, by default.

    Shrinks towards ``min_size``.
    """
    lo, hi = _range("min_size", min_size, "max_size", max_size, 1)
    return st.integers(lo, hi)


def batches(
    *,
    dtype: Any = np.float64,
    batch_size: st.SearchStrategy[int] | None = None,
    features: Sequence[int] = (2,),
    elements: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of shape ``(n, *features)``, ``n`` from ``batch_size`` (default :func:`batch_sizes`).

    ``elements`` as in ``hypothesis.extra.numpy.arrays`` (default: any value of
    ``dtype``, NaN and infinities included for floats).
    """
    features = tuple(features)
    for i, f in enumerate(features):
        _int_arg(f"features[{i}]", f, 0)
    if batch_size is not None and not isinstance(batch_size, st.SearchStrategy):
        raise InvalidArgument(f"batch_size={batch_size!r} must be a strategy, e.g. batch_sizes()")
    sizes = batch_sizes() if batch_size is None else batch_size
    return hnp.arrays(np.dtype(dtype), sizes.map(lambda n: (n, *features)), elements=elements)


def broadcasting_pairs(
    *, min_batch: int = 1, max_batch: int = 64, max_dims: int = 3
) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """``(y_true_shape, y_pred_shape)`` pairs that numpy broadcasts together, yet differ.

    Every pair is a silent-broadcast bug for an elementwise loss: the article's
    ``(n,)`` against ``(n, 1)`` in both orders (batch size 1 included, where the
    element count hides it), and general pairs built with
    ``hypothesis.extra.numpy.mutually_broadcastable_shapes`` around ``(n, 1)``.
    """
    lo, hi = _range("min_batch", min_batch, "max_batch", max_batch, 1)
    max_dims = _int_arg("max_dims", max_dims, 2)
    n = st.integers(lo, hi)
    article = n.flatmap(lambda k: st.sampled_from([((k,), (k, 1)), ((k, 1), (k,))]))
    general = (
        n.flatmap(
            lambda k: hnp.mutually_broadcastable_shapes(
                num_shapes=2, base_shape=(k, 1), max_dims=max_dims
            )
        )
        .map(lambda shapes: (tuple(shapes.input_shapes[0]), tuple(shapes.input_shapes[1])))
        .filter(lambda pair: pair[0] != pair[1])
    )
    return st.one_of(article, general)


@dataclass(frozen=True, repr=False)
class BatchSource:
    """A zero-argument factory of a finite generator over given batches.

    ``reuse`` says how memory is handed out: ``"fresh"`` yields a new array per
    batch; ``"one_buffer"`` refills one array in place; ``"ring"`` cycles
    through ``slots`` arrays. With ``target_fn`` it yields ``(x, target_fn(x))``,
    the target computed fresh at each yield, as the article's buggy generator
    does.
    """

    arrays: tuple[np.ndarray, ...]
    reuse: str = "fresh"
    slots: int = 1
    target_fn: Callable[[np.ndarray], Any] | None = None

    def __call__(self) -> Iterator[Any]:
        if self.reuse == "fresh":
            buffers = None
        else:
            buffers = [np.empty_like(self.arrays[0]) for _ in range(self.slots)]
        for i, a in enumerate(self.arrays):
            if buffers is None:
                x = a.copy()
            else:
                x = buffers[i % len(buffers)]
                x[...] = a
            yield x if self.target_fn is None else (x, self.target_fn(x))

    @property
    def reuses_memory(self) -> bool:
        """True when some yielded array is written again by a later batch."""
        return self.reuse != "fresh" and len(self.arrays) > self.slots

    def __repr__(self) -> str:
        shape = self.arrays[0].shape if self.arrays else ()
        ring = f", slots={self.slots}" if self.reuse == "ring" else ""
        return (
            f"BatchSource({len(self.arrays)} batches of shape {shape} {self.arrays[0].dtype},"
            f" reuse={self.reuse!r}{ring})"
        )


def batch_sources(
    arrays: st.SearchStrategy[np.ndarray] | None = None,
    *,
    reuse: Sequence[str] = REUSE,
    min_batches: int = 2,
    max_batches: int = 20,
    max_slots: int = 4,
    target_fn: Callable[[np.ndarray], Any] | None = None,
) -> st.SearchStrategy[BatchSource]:
    """:class:`BatchSource` factories: ``min_batches`` to ``max_batches`` batches of one shape.

    The first batch is drawn from ``arrays`` (default :func:`batches`), the
    rest with its shape and dtype; each source hands out memory in one of the
    ``reuse`` ways (rings of 2 to ``max_slots`` arrays). Use it to show that
    your consumer, wrapper or prefetcher survives sources that reuse memory,
    or that your own checks catch them.
    """
    lo, hi = _range("min_batches", min_batches, "max_batches", max_batches, 1)
    max_slots = _int_arg("max_slots", max_slots, 2)
    reuse = tuple(reuse)
    unknown = [r for r in reuse if r not in REUSE]
    if unknown or not reuse:
        raise InvalidArgument(f"reuse={reuse!r} must be a non-empty selection of {REUSE}")
    if arrays is not None and not isinstance(arrays, st.SearchStrategy):
        raise InvalidArgument(f"arrays={arrays!r} must be a strategy, e.g. batches()")
    if target_fn is not None and not callable(target_fn):
        raise InvalidArgument(f"target_fn={target_fn!r} must be callable")
    first = batches() if arrays is None else arrays

    @st.composite
    def build(draw: st.DrawFn) -> BatchSource:
        a0 = draw(first)
        more = draw(st.lists(hnp.arrays(a0.dtype, a0.shape), min_size=lo - 1, max_size=hi - 1))
        how = draw(st.sampled_from(reuse))
        slots = draw(st.integers(2, max_slots)) if how == "ring" else 1
        return BatchSource((a0, *more), how, slots, target_fn)

    return build()
