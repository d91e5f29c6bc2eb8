"""assert_generator_no_aliasing on patterns found in real pipelines.

Buggy patterns (``..._should_fail``) write into memory they have yielded;
harmless ones (``..._should_pass``) share memory nobody writes. The checker
judges content, not addresses: sharing is fine, writing after yielding is not.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pitfalls
from pitfalls import AliasingError, assert_generator_no_aliasing, check_generator_no_aliasing

RNG_SEED = 1234


def rng():
    return np.random.default_rng(RNG_SEED)


# Buggy patterns ----------------------------------------------------------------


class SequenceWithBufferOnSelf:
    """A keras.utils.Sequence-style class that keeps its batch buffer on self."""

    def __init__(self, n_batches=6, batch_size=4):
        self.data = rng().normal(size=(n_batches * batch_size, 3))
        self.batch_size = batch_size
        self.x = np.empty((batch_size, 3))

    def __len__(self):
        return len(self.data) // self.batch_size

    def __getitem__(self, i):
        np.copyto(self.x, self.data[i * self.batch_size : (i + 1) * self.batch_size])
        return self.x, self.x.sum(axis=1)

    def on_epoch_end(self):
        pass


def ring_buffer(slots, batch_size=4):
    """Reuses `slots` preallocated buffers in turn, like a hand-written prefetcher."""
    r = rng()
    ring = [np.empty((batch_size, 2)) for _ in range(slots)]
    for step in range(1000):
        x = ring[step % slots]
        x[:] = r.integers(0, 100, size=x.shape)
        yield x, x.mean(axis=1)


def out_parameter_reuse():
    r = rng()
    a, b = r.normal(size=(100, 8)), r.normal(size=(100, 8))
    out = np.empty((5, 8))
    for i in range(0, 100, 5):
        np.add(a[i : i + 5], b[i : i + 5], out=out)  # `out=` writes into the yielded array
        yield out, np.ones(5)


def list_cleared_and_refilled():
    r = rng()
    batch = []
    for _ in range(20):
        batch.clear()
        batch.extend([r.normal(size=(4, 2)), r.normal(size=4)])
        yield batch  # the same list object every time


def list_refilled_to_another_length():
    batch = []
    for i in range(20):
        batch.clear()
        batch.extend(np.full(3, float(i)) for _ in range(1 + i % 3))
        yield batch


def dict_updated_in_place():
    r = rng()
    features = {}
    for _ in range(20):
        features["image"] = r.normal(size=(2, 3))  # fresh arrays, shared dict
        yield features, np.zeros(2)


def uint8_image_buffer():
    r = rng()
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    labels = np.zeros(4, dtype=np.int64)
    for _ in range(20):
        images[...] = r.integers(0, 256, size=images.shape, dtype=np.uint8)
        labels[...] = r.integers(0, 10, size=4)
        yield images, labels


def dataset_shuffled_in_place(batches_per_epoch=4, batch_size=3):
    r = rng()
    data = np.arange(batches_per_epoch * batch_size * 2, dtype=np.float64).reshape(-1, 2)
    while True:
        r.shuffle(data)  # in place: the views already yielded change
        for i in range(batches_per_epoch):
            yield data[i * batch_size : (i + 1) * batch_size]


def previous_batch_normalised_in_place():
    r = rng()
    previous = None
    for _ in range(20):
        if previous is not None:
            previous -= previous.mean()  # "cleans up" the batch it already handed out
        previous = r.normal(size=(4, 2)) + 5
        yield previous


def scalar_buffer_refilled():
    step = np.zeros(())
    for i in range(20):
        step[()] = i
        yield np.ones(3), step


BUGGY = [
    SequenceWithBufferOnSelf,
    lambda: ring_buffer(2),
    lambda: ring_buffer(3),
    lambda: ring_buffer(15),
    out_parameter_reuse,
    list_cleared_and_refilled,
    list_refilled_to_another_length,
    dict_updated_in_place,
    uint8_image_buffer,
    dataset_shuffled_in_place,
    previous_batch_normalised_in_place,
    scalar_buffer_refilled,
]
BUGGY_IDS = [
    "sequence-buffer-on-self",
    "ring-of-2",
    "ring-of-3",
    "ring-of-15",
    "out-parameter",
    "list-cleared-refilled",
    "list-refilled-other-length",
    "dict-updated-in-place",
    "uint8-image-buffer",
    "dataset-shuffled-in-place",
    "previous-batch-normalised",
    "0d-scalar-buffer",
]


@pytest.mark.parametrize("source", BUGGY, ids=BUGGY_IDS)
def test_buggy_pattern_should_fail(source):
    with pytest.raises(AliasingError, match="after later draws") as excinfo:
        assert_generator_no_aliasing(source)
    report = excinfo.value.report
    assert not report.ok
    assert "np.copy(x)" in str(excinfo.value)  # the hint names the fix


def test_the_default_draws_see_a_ring_of_15_but_not_16_and_more_draws_do():
    # A buffer reused k batches later is caught when draws > k: document the limit.
    assert not check_generator_no_aliasing(lambda: ring_buffer(15)).ok
    assert check_generator_no_aliasing(lambda: ring_buffer(16)).ok
    assert not check_generator_no_aliasing(lambda: ring_buffer(16), draws=17).ok


def test_memory_note_counts_the_buffers_of_a_ring():
    report = check_generator_no_aliasing(lambda: ring_buffer(3))
    assert "Memory: inputs in all 16 batches live in 3 buffers" in "\n".join(report.notes)
    assert report.bad_batches == tuple(range(13))  # the last 3 were not overwritten yet


def test_memory_note_names_views_of_one_array_written_in_place():
    report = check_generator_no_aliasing(dataset_shuffled_in_place)
    assert any("views into one array" in note for note in report.notes)


def test_structure_change_is_reported_with_the_path():
    report = check_generator_no_aliasing(list_refilled_to_another_length)
    problems = {f.problem for f in report.findings if f.problem}
    assert any(p.startswith("held 2 items and now holds") for p in problems), problems


# Harmless sharing ----------------------------------------------------------------


def dataset_slices_across_epochs():
    data = np.arange(40.0).reshape(20, 2)
    while True:  # the same views again every epoch; nobody writes data
        for i in range(0, 20, 5):
            yield data[i : i + 5], data[i : i + 5].sum(axis=1)


def constant_sample_weights():
    r = rng()
    weights = np.ones(4)
    for _ in range(20):
        x = r.normal(size=(4, 2))
        yield x, x.sum(axis=1), weights  # one array, never written


def read_only_arrays():
    data = rng().normal(size=(40, 2))
    data.setflags(write=False)
    for i in range(0, 40, 2):
        yield data[i : i + 2]


def overlapping_token_windows(window=8):
    tokens = np.arange(100, dtype=np.int32)
    for i in range(50):
        yield tokens[i : i + window], tokens[i + 1 : i + window + 1]  # shifted views overlap


def lazy_reallocation():
    r = rng()
    for _ in range(20):
        buf = np.empty((4, 2))  # new memory per batch; the old one is the consumer's
        buf[:] = r.normal(size=buf.shape)
        yield buf
        del buf


def one_constant_array():
    zeros = np.zeros((4, 2))
    while True:
        yield zeros, zeros[:, 0]


def inputs_and_targets_viewing_one_fresh_batch():
    r = rng()
    for _ in range(20):
        block = r.normal(size=(4, 3))
        yield block[:, :2], block[:, 2]


def nan_batches():
    r = rng()
    for _ in range(20):
        x = r.normal(size=(3, 3))
        x[0, 0] = np.nan
        yield x, np.full(3, np.nan)


def nested_mixed_batches():
    r = rng()
    for i in range(20):
        yield (
            {"pixels": r.integers(0, 255, size=(2, 2), dtype=np.uint8), "name": f"b{i}"},
            [r.normal(size=2), (i, 0.5, None)],
        )


def constant_nat_timestamps():
    stamps = np.array(["NaT", "2026-11-28"], dtype="datetime64[D]")
    while True:
        yield stamps


def complex_with_nan_parts():
    r = rng()
    for _ in range(20):
        z = r.normal(size=3) + 1j * r.normal(size=3)
        z[0] = complex(np.nan, 1.0)
        yield z


HARMLESS = [
    dataset_slices_across_epochs,
    constant_sample_weights,
    read_only_arrays,
    overlapping_token_windows,
    lazy_reallocation,
    one_constant_array,
    inputs_and_targets_viewing_one_fresh_batch,
    nan_batches,
    nested_mixed_batches,
    constant_nat_timestamps,
    complex_with_nan_parts,
]


@pytest.mark.parametrize("source", HARMLESS, ids=lambda f: f.__name__.replace("_", "-"))
def test_harmless_sharing_should_pass(source):
    assert_generator_no_aliasing(source)
    report = check_generator_no_aliasing(source)
    assert report.ok and report.findings == () and report.batches == 16


def rewritten_with_equal_values():
    """Writes happen, but of equal values: -0.0 over 0.0, a NaN with another payload."""
    x = np.array([0.0, np.nan, 1.0])
    nans = np.array([0x7FF8000000000000, 0x7FF8000000000001], dtype=np.uint64).view(np.float64)
    for i in range(20):
        x[0] = -x[0]
        x[1] = nans[i % 2]
        yield x


def test_a_write_of_equal_values_is_not_a_change():
    it = rewritten_with_equal_values()
    first = next(it).tobytes()
    assert next(it).tobytes() != first  # the bytes did change...
    assert_generator_no_aliasing(rewritten_with_equal_values)  # ...the values did not


# Kinds of source -------------------------------------------------------------------


class IterableBatches:
    def __iter__(self):
        x = np.zeros(2)
        for i in range(20):
            x[:] = i
            yield x


class IndexableOnly:
    """No __iter__, no on_epoch_end: read by index, with wrap-around."""

    def __init__(self):
        self.buf = np.zeros(2)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        self.buf[:] = i
        return self.buf


class Fresh:
    """A parameter made anew for each run: an iterator is consumed by the first test that
    draws from it, so a repeated or re-ordered run (pytest-repeat) needs its own."""

    def __init__(self, make):
        self.make = make


def made(source):
    return source.make() if isinstance(source, Fresh) else source


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: IterableBatches(), id="factory-of-iterable"),
        pytest.param(IterableBatches, id="class"),
        pytest.param(IterableBatches(), id="iterable-instance"),
        pytest.param(Fresh(lambda: iter(IterableBatches())), id="iterator"),
        pytest.param(IndexableOnly(), id="indexable"),
        pytest.param(IndexableOnly, id="indexable-class"),
        pytest.param(SequenceWithBufferOnSelf(n_batches=3), id="sequence-shorter-than-draws"),
    ],
)
def test_every_kind_of_source_is_drawn(source):
    with pytest.raises(AliasingError):
        assert_generator_no_aliasing(made(source))


def test_a_list_of_batches_is_a_source():
    batches = [(np.full(2, i), np.full(1, i)) for i in range(16)]
    assert_generator_no_aliasing(batches)
    same = np.zeros(2)
    assert check_generator_no_aliasing([same] * 16).ok  # same object, never written


def test_an_indexable_source_wraps_into_the_next_epoch_calling_on_epoch_end():
    calls = []

    class Shuffling(SequenceWithBufferOnSelf):
        def __getitem__(self, i):  # fresh batches: views of data
            return self.data[i * self.batch_size : (i + 1) * self.batch_size]

        def on_epoch_end(self):
            calls.append(len(calls))
            rng().shuffle(self.data)  # in place, under the views yielded

    with pytest.raises(AliasingError, match="views into one array"):
        assert_generator_no_aliasing(Shuffling(n_batches=6))
    # 16 draws over 6 batches cross two epoch ends; the failing check's diagnosis (which
    # names the writing line) reads the source once more, to the first epoch end, where
    # the shuffle into memory only handed-out batches hold is refused: the line
    assert calls == [0, 1, 2]


# Never writes, never hides -------------------------------------------------------


def test_checker_never_writes_the_users_data():
    data = rng().normal(size=(32, 2))
    data.setflags(write=False)  # numpy would raise on any write
    before = data.copy()
    report = check_generator_no_aliasing([data[i : i + 2] for i in range(16)])
    assert report.ok
    np.testing.assert_array_equal(data, before)
    assert not data.flags.writeable


def test_a_generator_passed_itself_is_consumed_draws_batches():
    it = iter([np.full(1, i) for i in range(20)])
    assert_generator_no_aliasing(it, draws=5)
    assert next(it)[0] == 5  # five were drawn


# Misuse is not failure ---------------------------------------------------------------


class EmptyIndexable:
    def __len__(self):
        return 0

    def __getitem__(self, i):
        raise IndexError(i)


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        (42, TypeError, r"source must be an iterator, an iterable, .* got int"),
        ("abc", TypeError, r"source must be .* got a str"),
        ({"x": np.zeros(2)}, TypeError, r"got a dict: a batch, not a source of batches"),
        (lambda: 42, TypeError, r"returned an int, which is not an iterator"),
        (dict.fromkeys, TypeError, r"fromkeys"),
        (Fresh(lambda: iter([])), ValueError, r"stopped after 0 batches.*iterator is empty"),
        (EmptyIndexable(), ValueError, r"stopped after 0 batches"),
    ],
    ids=[
        "int",
        "str",
        "dict",
        "factory-returns-int",
        "callable-needing-args",
        "empty",
        "empty-indexable",
    ],
)
def test_misuse_raises_a_clear_error(source, error, match):
    with pytest.raises(error, match=match):
        assert_generator_no_aliasing(made(source))


def test_a_short_finite_source_is_read_whole_and_judged_on_every_batch_it_gives():
    """A one-epoch generator of 5 batches, with the default draws=16: all 5 are read (a
    real tutorial's first call used to fail with "pass draws=5 or fewer")."""

    def fresh():
        for i in range(5):
            yield np.full(3, float(i)), np.full(1, float(i))

    def refilled():
        x = np.zeros(3)
        for i in range(5):
            x[:] = i
            yield x, np.full(1, float(i))

    report = check_generator_no_aliasing(fresh)
    assert report.status == "passed" and report.batches == 5
    assert report.notes == (
        "The source ended after 5 batches, fewer than draws=16: every batch it gives was"
        " read and checked.",
    )
    bad = check_generator_no_aliasing(refilled)
    assert bad.status == "failed" and bad.cause == "batch changed" and bad.batches == 5


def test_a_source_that_gave_nothing_says_why_and_what_to_pass():
    """Bug: an iterator already consumed read "pass draws=0 or fewer" (draws must be 2 or
    more): say it was consumed, and that a factory gives every check a fresh one."""

    def batches():
        yield from [(np.zeros(2), 0.0)] * 3

    consumed = batches()
    list(consumed)
    with pytest.raises(ValueError) as raised:
        check_generator_no_aliasing(consumed)
    assert str(raised.value) == (
        "source stopped after 0 batches, but draws=16 were asked for: the generator was"
        " already consumed (by list(), a for loop or an earlier check); pass a factory"
        " instead, the generator function itself or lambda: iter(batches), so that every"
        " check reads a fresh one"
    )
    with pytest.raises(ValueError, match=r"draws=16 were asked for: the iterator is empty, or"):
        pitfalls.check_targets_match(iter([]), lambda x: x)
    with pytest.raises(ValueError, match=r"calling .*<lambda>\(\) returned an empty iterator;"):
        check_generator_no_aliasing(lambda: iter([]))
    with pytest.raises(ValueError, match=r"0 batches, but draws=16 .*: the source is empty;"):
        check_generator_no_aliasing([])


def test_batches_drawn_in_a_row_need_two_and_indices_read_twice_need_one():
    """index_stable reads each index twice, so draws=1 is a check there; the checks that
    draw in a row see a batch change only under a later draw. The words say which."""
    from pitfalls import _validate as validate

    with pytest.raises(ValueError, match=r"^draws=1 must be at least 2: at least 2 batches"):
        validate.draws(1)
    assert validate.indices(1) == 1
    with pytest.raises(ValueError) as raised:
        validate.indices(0)
    assert str(raised.value) == (
        "draws=0 must be at least 1: index_stable reads each of the indices 0 .. draws-1"
        " twice and compares the two reads, so one index is the fewest it can check"
    )


class NeedsArgs:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def test_a_class_that_needs_arguments_is_misuse():
    with pytest.raises(TypeError, match="the class NeedsArgs that needs arguments"):
        assert_generator_no_aliasing(NeedsArgs)


@pytest.mark.parametrize(
    ("draws", "error", "match"),
    [
        (0, ValueError, "draws=0 must be at least 2: at least 2 batches are needed"),
        (1, ValueError, "draws=1 must be at least 2"),
        ("16", TypeError, "draws must be an int, got str"),
        (True, TypeError, "draws must be an int, got bool"),
    ],
)
def test_bad_draws_are_misuse(draws, error, match):
    with pytest.raises(error, match=match):
        assert_generator_no_aliasing(dataset_slices_across_epochs, draws=draws)


def test_a_leaf_that_is_not_an_array_names_its_path():
    def source():
        while True:
            yield {"x": np.zeros(2), "meta": object()}

    with pytest.raises(TypeError, match=r"batch\['meta'\]: a batch leaf of type object"):
        assert_generator_no_aliasing(source)


def test_a_batch_that_contains_itself_is_misuse():
    def source():
        while True:
            loop = [np.zeros(1)]
            loop.append(loop)
            yield loop

    with pytest.raises(ValueError, match="reference cycle"):
        assert_generator_no_aliasing(source)


def test_an_error_inside_the_source_keeps_its_type_and_says_which_batch():
    def source():
        yield np.zeros(1)
        yield np.zeros(1)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone") as excinfo:
        assert_generator_no_aliasing(source)
    if sys.version_info >= (3, 11):  # exception notes (PEP 678)
        assert "pitfalls: raised by the source while drawing batch 2" in excinfo.value.__notes__


def test_report_is_frozen_and_carried_by_the_error():
    with pytest.raises(AliasingError) as excinfo:
        assert_generator_no_aliasing(lambda: ring_buffer(2), msg="while testing ring buffers")
    report = excinfo.value.report
    assert isinstance(report, pitfalls.Report)
    assert str(excinfo.value).endswith("while testing ring buffers")
    with pytest.raises(AttributeError):
        report.findings = ()  # type: ignore[misc]
