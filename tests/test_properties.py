"""Properties: which invariant each variant keeps or breaks, for any batch size and seed,
and the checkers' verdicts against an independent oracle on arbitrary arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pitfalls
from pitfalls.reproductions import generators as gen
from pitfalls.reproductions.generators import mean_target

batch_sizes = st.integers(min_value=1, max_value=16)  # 1, where shape bugs hide, and a few more
seeds = st.integers(min_value=0, max_value=2**32 - 1)
forms = st.sampled_from(["article", "pair"])

# Each example of the variants' properties runs two whole checks. Derandomized (the default
# and CI profiles), ten fixed examples cover a batch size, a seed and a form;
# --hypothesis-profile=explore keeps its own count.
few_examples = settings(max_examples=10) if settings.default.derandomize else settings()


@pytest.mark.parametrize("variant", gen.FIXED, ids=lambda v: v.__name__)
@few_examples
@given(batch_size=batch_sizes, seed=seeds, form=forms)
def test_fixed_variants_keep_both_invariants(variant, batch_size, seed, form):
    def source():
        return variant(batch_size, seed=seed, form=form)

    pitfalls.assert_generator_no_aliasing(source)
    pitfalls.assert_targets_match(source, mean_target)


@few_examples
@given(batch_size=batch_sizes, seed=seeds, form=forms)
def test_shared_input_buffer_breaks_both(batch_size, seed, form):
    def source():
        return gen.shared_input_buffer(batch_size, seed=seed, form=form)

    inputs = "inputs[0]" if form == "article" else "inputs"
    aliasing = pitfalls.check_generator_no_aliasing(source)
    assert not aliasing.ok
    assert {f.path for f in aliasing.findings} == {inputs}  # targets are fresh
    targets = pitfalls.check_targets_match(source, mean_target)
    assert not targets.ok
    assert {f.when for f in targets.findings} == {"after later draws"}


@few_examples
@given(batch_size=batch_sizes, seed=seeds, form=forms)
def test_the_articles_fix_keeps_pairs_but_breaks_aliasing(batch_size, seed, form):
    def source():
        return gen.shared_input_and_target_buffers(batch_size, seed=seed, form=form)

    pitfalls.assert_targets_match(source, mean_target)
    report = pitfalls.check_generator_no_aliasing(source)
    assert not report.ok
    assert len({f.path for f in report.findings}) == 2  # inputs and targets both aliased


# The aliasing checker against an oracle ------------------------------------------

numeric_dtypes = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes()
    | hnp.unsigned_integer_dtypes()
    | hnp.floating_dtypes()
    | hnp.complex_number_dtypes()
)


@st.composite
def array_sequences(draw):
    """2 to 6 arrays of one dtype and shape, any values (NaN and inf included)."""
    dtype = draw(numeric_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    return draw(st.lists(hnp.arrays(dtype, shape), min_size=2, max_size=6))


def same_content(a, b):
    """Oracle: numpy's array_equal with NaN equal, real and imaginary parts apart."""
    if a.dtype.kind == "c":
        return same_content(a.real, b.real) and same_content(a.imag, b.imag)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def one_buffer_refilled(arrays):
    buffer = np.empty_like(arrays[0])
    for a in arrays:
        buffer[...] = a
        yield buffer


@given(array_sequences())
def test_a_refilled_buffer_is_flagged_exactly_where_content_changed(arrays):
    report = pitfalls.check_generator_no_aliasing(
        lambda: one_buffer_refilled(arrays), draws=len(arrays)
    )
    last = arrays[-1]
    expected = tuple(i for i, a in enumerate(arrays[:-1]) if not same_content(a, last))
    assert report.bad_batches == expected


@given(array_sequences())
def test_fresh_copies_of_any_arrays_pass(arrays):
    report = pitfalls.check_generator_no_aliasing(
        lambda: (a.copy() for a in arrays), draws=len(arrays)
    )
    assert report.ok, str(report)


@given(array_sequences())
def test_checking_never_writes_the_yielded_arrays(arrays):
    for a in arrays:
        a.setflags(write=False)  # any write by the checker would raise
    frozen = [a.copy() for a in arrays]
    pitfalls.check_generator_no_aliasing(iter(arrays), draws=len(arrays))
    for a, before in zip(arrays, frozen):
        assert same_content(a, before)


# The targets checker against an oracle ------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 16), st.just(2)), elements=finite),
    data=st.data(),
)
def test_a_corrupted_target_is_found_at_its_index(x, data):
    row = data.draw(st.integers(0, len(x) - 1), label="row")
    y = mean_target(x)
    y[row] += 1.0 + abs(y[row])  # far outside rtol

    report = pitfalls.check_targets_match(lambda: iter([(x, y)] * 3), mean_target, draws=3)
    assert report.bad_batches == (0, 1, 2)
    index, expected, actual = report.findings[0].locations[0]
    assert index == (row,) and actual == y[row] and expected == mean_target(x)[row]
    assert pitfalls.check_targets_match(
        lambda: iter([(x, mean_target(x))] * 3), mean_target, draws=3
    ).ok
