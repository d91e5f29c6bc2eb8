"""Beyond the article: zero-copy conversions of a refilled buffer.

What is seen. The article's first generator, fed through ``tf.data.Dataset.
from_generator`` or ``jax.device_put``, gives tensors and "immutable" JAX arrays
that turn into the newest batch after they were taken, but only on some runs.
Both frameworks wrap 64-byte aligned numpy memory instead of copying it, so
whether the buffer's refill reaches them depends on where numpy placed the
buffer: an unaligned buffer is copied, and the bug hides.

The invariant. A batch handed out never changes, whatever the conversion between
the generator and the consumer: copy the buffer before handing it over
(``np.copy(x)``, ``jnp.array(x)``); alignment is luck, not a fix.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import zero_copy
from tests.lessons import Pitfall, buggy, fixed

PITFALL = Pitfall(
    title="9. zero-copy conversions of one buffer",
    invariant="a batch handed out never changes, whatever converts it (an aligned buffer is"
    " wrapped, not copied)",
    read_more="docs/explanation/zero-copy.md",
    pairs=zero_copy.PAIRS,
)


def mean(x):
    return np.asarray(x).mean(axis=1, keepdims=True)


def judged(variant, aligned):
    """Aliasing and targets, each on a fresh dataset (a tf.data one, or a JAX generator)."""
    return (
        pitfalls.check_generator_no_aliasing(lambda: variant(8, aligned=aligned), draws=4),
        pitfalls.check_targets_match(lambda: variant(8, aligned=aligned), mean, draws=4),
    )


def check(variant):
    aliasing, targets = judged(variant, aligned=True)
    if variant in (zero_copy.from_generator_shared, zero_copy.device_put_shared):
        print(aliasing)
        assert aliasing.cause is Cause.BATCH_CHANGED  # the wrapped buffer was refilled
        assert {f.when for f in targets.findings} == {"after later draws"}
        # the same code over an unaligned buffer is copied by the framework: it passes,
        # by luck, which is why the bug comes and goes between runs
        assert all(r.ok for r in judged(variant, aligned=False))
    else:
        assert aliasing.ok and targets.ok, f"{aliasing}\n{targets}"


@pytest.mark.parametrize(
    "variant", buggy(zero_copy.from_generator_shared) + fixed(zero_copy.from_generator_copied)
)
def test_tf_data_from_generator_wraps_an_aligned_buffer(tf, variant):
    check(variant)


@pytest.mark.parametrize(
    "variant", buggy(zero_copy.device_put_shared) + fixed(zero_copy.device_put_copied)
)
def test_jax_device_put_wraps_an_aligned_buffer(jax, variant):
    check(variant)
