"""Lessons from mutation testing: bugs the comparisons, the flattening and the sources
could have, each pinned by the smallest test that notices it.

``bench/mutation.py`` breaks the core modules on purpose (an ``and`` made ``or``,
a check deleted, a constant changed) and runs the fast tests against each
broken copy. A broken copy the tests do not notice is a bug the suite would let
through. Each test here stands for one such bug, named in its docstring, as it
would show up in a user's pipeline.
"""

from __future__ import annotations

import collections
import functools
import re
import threading
from typing import Any

import numpy as np
import pytest

import pitfalls
from pitfalls import (
    check_epoch_complete,
    check_epoch_repeatable,
    check_generator_no_aliasing,
    check_index_stable,
    check_source,
    check_targets_match,
)
from pitfalls._matching import precision
from pitfalls._tree import diff_arrays, flatten, flatten_at

# Sources used below -------------------------------------------------------------------


class Reads:
    """An indexable source returning ``first[i]`` on the first read of i, ``second[i]`` after."""

    def __init__(self, first: list[Any], second: list[Any]) -> None:
        self.first, self.second = first, second
        self.seen: set[int] = set()

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, i: int) -> Any:
        if i in self.seen:
            return self.second[i]
        self.seen.add(i)
        return self.first[i]


def one_buffer(n: int = 16) -> Any:
    """The article's bug: one buffer, refilled and re-yielded."""
    x = np.zeros(2)
    for i in range(n):
        x[:] = i
        yield x, np.full(2, float(i))


def finding(report: pitfalls.Report, **where: Any) -> pitfalls.Finding:
    """The one finding with these attributes (path=..., batch=...)."""
    found = [f for f in report.findings if all(getattr(f, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, report.findings)
    return found[0]


# What counts as a change ------------------------------------------------------------------


def test_a_reread_in_another_dtype_is_a_change_even_with_equal_values():
    """Bug: ignoring dtypes, labels read as int64 once and float32 the next time pass.

    The values compare equal (3 == 3.0), so only the dtype check can see it;
    Keras would feed the two reads to the model as different tensors.
    """
    labels = np.arange(4)
    source = Reads([(np.zeros((4, 2)), labels)], [(np.zeros((4, 2)), labels.astype(np.float32))])
    report = check_index_stable(source, draws=1)
    found = finding(report, path="targets")
    assert found.problem == "dtype int64 became float32"
    assert (found.batch, found.mismatched, found.total, found.locations) == (0, 4, 4, ())


def test_a_buffer_reshaped_in_place_changes_the_batches_already_handed_out():
    """Bug: ignoring shapes, `x.shape = (2, 2)` on the yielded buffer goes unseen."""

    def batches() -> Any:
        x = np.zeros(4)
        for i in range(3):
            x.shape = (4,) if i == 0 else (2, 2)
            yield x

    report = check_generator_no_aliasing(batches, draws=3)
    found = finding(report, batch=0)
    assert (found.path, found.problem) == ("batch", "shape (4,) became (2, 2)")
    assert (found.mismatched, found.total, found.locations) == (4, 4, ())
    assert report.to_dict()["findings"][0]["locations"] == []


def test_a_value_overwritten_with_nan_is_a_change_and_nan_left_alone_is_not():
    """Bug: 'NaN equals NaN' widened to 'NaN equals anything' hides a failed normalisation."""

    def batches() -> Any:
        x = np.array([1.0, np.nan])
        yield x
        yield x
        x[0] = np.nan  # batches 0 and 1, one buffer, now hold NaN where they held 1.0
        yield np.zeros(2)

    report = check_generator_no_aliasing(batches, draws=3)
    assert report.bad_batches == (0, 1)
    index, was, now = finding(report, batch=0).locations[0]
    assert index == (0,) and was == 1.0 and np.isnan(now)
    assert check_generator_no_aliasing(lambda: iter([np.array([np.nan])] * 3), draws=3).ok


@pytest.mark.parametrize("unit", ["datetime64[s]", "timedelta64[s]"])
def test_nat_left_alone_is_unchanged_and_a_date_overwritten_with_nat_is_not(unit):
    """Bug: NaT != NaT, so time stamps with a missing value would always look changed."""
    stamps = np.array([0, "NaT"], dtype=unit)
    assert check_index_stable(Reads([stamps], [stamps.copy()]), draws=1).ok
    lost = np.array(["NaT", "NaT"], dtype=stamps.dtype)
    report = check_index_stable(Reads([stamps], [lost]), draws=1)
    assert finding(report, path="batch").mismatched == 1


def test_complex_batches_compare_both_parts_and_nan_equals_nan():
    """Bug: comparing complex numbers by their real part alone; or NaN+1j never equal."""
    z = np.array([1 + 1j, complex(np.nan, 1)])
    assert check_index_stable(Reads([z], [z.copy()]), draws=1).ok
    report = check_index_stable(Reads([z], [np.array([1 + 2j, complex(np.nan, 1)])]), draws=1)
    assert finding(report, path="batch").mismatched == 1


def test_a_batch_larger_than_one_mib_is_compared_chunk_by_chunk_to_its_last_element():
    """Bug: an off-by-one in the chunked comparison of large batches (1 MiB at a time)."""
    big = np.arange(300_001, dtype=np.float64)  # 2.4 MB: three chunks, the last one short
    changed = big.copy()
    changed[-1] = -1.0
    assert check_index_stable(Reads([big], [big.copy()]), draws=1).ok
    report = check_index_stable(Reads([big], [changed]), draws=1)
    assert finding(report, path="batch").locations[0].index == (300_000,)


def test_object_arrays_that_cannot_compare_raise_a_type_error_naming_the_leaf():
    """Bug: an exotic __eq__ escaping as the user's error, with no path to find it by."""

    class NoEq:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("cannot compare")

    ragged = np.array([NoEq(), NoEq()], dtype=object)
    with pytest.raises(TypeError, match=r"inputs: cannot compare elements \(RuntimeError"):
        check_index_stable(Reads([(ragged, np.zeros(2))], [(ragged.copy(), np.zeros(2))]))


def test_string_targets_compare_exactly_and_name_the_mismatch():
    """Bug: class names (str targets) skipped or compared as numbers."""
    x = np.arange(4)
    names = np.array(["even", "odd", "even", "odd"])

    def label(x: np.ndarray) -> np.ndarray:
        return np.where(x % 2, "odd", "even")

    report = check_targets_match([(x, names)] * 2, label, draws=2)
    assert report.ok and report.source == "iterable list"
    wrong = names.copy()
    wrong[3] = "even"
    report = check_targets_match([(x, wrong)] * 2, label, draws=2)
    assert tuple(finding(report, batch=0).locations[0]) == ((3,), "odd", "even")


@pytest.mark.parametrize(
    "yielded", [np.array(["a", "b"]), np.array(["2020-01-01", "NaT"], dtype="datetime64[s]")]
)
def test_numbers_against_strings_or_dates_are_a_finding_not_a_crash(yielded):
    """Bug: isclose, isnan or isnat on targets that are not numbers: numpy's TypeError."""
    report = check_targets_match([(np.zeros(2), yielded)] * 2, lambda x: x, draws=2)
    assert finding(report, batch=0).mismatched == 2


def test_targets_compare_with_the_tolerances_given_and_nan_equal_to_nan():
    """Bug: rtol dropped (float32 targets fail), or equal_nan dropped (missing targets fail)."""
    x = np.array([1.0, 2.0, np.nan])
    close = [(x, x * 1.05)] * 2
    assert not check_targets_match(close, lambda x: x, draws=2).ok
    assert check_targets_match(close, lambda x: x, draws=2, rtol=0.1).ok
    assert check_targets_match(close, lambda x: x, draws=2, rtol=0, atol=0.2).ok


def test_copies_compare_equal_whatever_the_dtype_and_layout():
    """Bug: the byte-wise fast path misreading float16, strided views, 3-byte records, 0-d."""
    rec = np.zeros(5, dtype=[("a", "u1"), ("b", "<u2")])
    for a in (np.arange(5, dtype=np.float16), np.arange(5.0)[::2], rec, np.float32(1.0)):
        a = np.asarray(a)
        assert diff_arrays("x", a, a.copy()) is None
        assert diff_arrays("x", a, a.copy(), rtol=1e-9) is None


# Targets: which part of a batch is which --------------------------------------------------


def test_sample_weights_of_a_3_tuple_batch_are_compared_under_their_own_name():
    """Bug (the issue's second survivor): dropping the sample-weights role of a 3-tuple."""

    def batches() -> Any:
        w = np.ones(4)
        for i in range(4):
            w[:] = i  # the weights buffer is refilled; inputs and targets are fresh
            yield np.full((4, 2), i), np.full(4, i), w

    report = check_generator_no_aliasing(batches, draws=4)
    assert {f.path for f in report.findings} == {"sample_weights"}
    assert flatten((np.zeros(1), np.zeros(1), np.zeros(1))).leaves[2][0] == "sample_weights"
    assert check_targets_match(batches, lambda x: x[:, 0], draws=4).ok


def test_a_1_tuple_batch_is_inputs_alone_with_no_targets_to_check():
    """Bug: a (x,) batch read as (inputs, targets), or its inputs renamed batch[0]."""
    assert flatten((np.zeros(2),)).leaves[0][0] == "inputs"
    with pytest.raises(ValueError, match=r"batch 0 is a tuple of 1 items, with no targets"):
        check_targets_match([(np.zeros(2),)] * 2, lambda x: x, draws=2)
    with pytest.raises(ValueError, match=r"batch 0 is a dict with keys \['x'\], with no"):
        check_targets_match([{"x": np.zeros(2)}] * 2, lambda x: x, draws=2)
    assert check_epoch_repeatable([(np.arange(2.0),)]).ok


def hf_batches(**extra: Any) -> list[dict[str, Any]]:
    """Hugging Face style: {"pixel_values": x, "label": y}, plus ``extra`` keys."""
    x = np.arange(8.0).reshape(4, 2)
    return [{"pixel_values": x + i, "label": (x + i).sum(axis=1), **extra} for i in range(3)]


def test_a_dict_batch_keeps_its_targets_under_label_and_its_weights_apart():
    """Bugs: 'label' not taken for targets; sample weights taken for inputs."""
    seen: list[Any] = []

    def target_fn(x: Any) -> Any:
        seen.append(x)
        return x.sum(axis=1)

    report = check_targets_match(hf_batches(sample_weight=np.ones(4)), target_fn, draws=3)
    assert report.ok, str(report)
    assert all(isinstance(x, np.ndarray) and x.shape == (4, 2) for x in seen)
    wrong = hf_batches()
    wrong[1]["label"] = wrong[1]["label"] + 1
    assert finding(check_targets_match(wrong, target_fn, draws=3), batch=1).path == (
        "batch['label']"
    )


def test_a_dict_with_several_inputs_hands_them_all_to_target_fn():
    """Bug: a dict batch with two input keys cut down to one, or to none."""
    batches = [{"a": np.ones(2), "b": np.full(2, 2.0), "y": np.full(2, 3.0)}] * 2
    assert check_targets_match(batches, lambda d: d["a"] + d["b"], draws=2).ok
    report = check_targets_match(batches, lambda d: d["a"] - d["b"], draws=2)
    assert finding(report, batch=0).path == "batch['y']"


def test_a_dict_with_two_target_keys_asks_which_is_which():
    with pytest.raises(ValueError, match=r"several target keys \['y', 'label'\]: pass unpack"):
        check_targets_match([{"x": 1, "y": 2, "label": 3}] * 2, lambda x: x, draws=2)


class Unpacked:
    """A batch layout no convention covers: an object with .image and .cls."""

    def __init__(self, image: np.ndarray, cls: np.ndarray) -> None:
        self.image, self.cls = image, cls


def unpacked_batches() -> Any:
    x = np.zeros((2, 2))
    for i in range(4):
        x[:] = i  # one buffer, refilled: targets stop matching after later draws
        yield Unpacked(x, np.full(2, 2.0 * i))


def test_unpack_settles_any_layout_when_yielded_and_after_later_draws():
    """Bug: unpack= dropped on the way (the first pass, the second, or assert_)."""

    def unpack(b: Unpacked) -> tuple[Any, Any]:
        return b.image, b.cls

    report = check_targets_match(unpacked_batches, lambda x: x.sum(axis=1), draws=4, unpack=unpack)
    assert report.bad_batches == (0, 1, 2) and {f.path for f in report.findings} == {"targets"}
    assert {f.when for f in report.findings} == {"after later draws"}
    assert report.blame is not None and report.blame.found  # the diagnosis unpacks too
    with pytest.raises(pitfalls.TargetMismatchError):
        pitfalls.assert_targets_match(
            unpacked_batches, lambda x: x.sum(axis=1), draws=4, unpack=unpack
        )


@pytest.mark.parametrize(
    "unpack", [lambda b: [b.image, b.cls], lambda b: (b.image,), lambda b: (b.image, b.cls, 1)]
)
def test_unpack_must_return_a_tuple_of_two(unpack):
    with pytest.raises(ValueError, match=r"unpack must return a pair .* for batch 0 it returned"):
        check_targets_match(unpacked_batches, lambda x: x, draws=2, unpack=unpack)


def test_an_error_in_unpack_carries_a_note_naming_the_batch():
    def unpack(b: Any) -> Any:
        raise KeyError("cls")

    with pytest.raises(KeyError) as raised:
        check_targets_match(unpacked_batches, lambda x: x, draws=2, unpack=unpack)
    assert "pitfalls: raised by unpack on batch 0" in raised.value.__notes__


def test_unreadable_targets_and_results_name_where_they_are():
    """Bug: a LeafError without the path that tells the user which part is wrong."""
    with pytest.raises(TypeError, match=r"^targets: a batch leaf of type object"):
        check_targets_match([(np.zeros(2), object())] * 2, lambda x: x, draws=2)
    with pytest.raises(TypeError, match=r"^target_fn\(inputs\): a batch leaf of type object"):
        check_targets_match([(np.zeros(2), np.zeros(2))] * 2, lambda x: object(), draws=2)


def test_every_target_leaf_is_checked_after_a_shape_mismatch():
    """Bug: stopping at the first leaf whose shape differs; its counts left empty."""
    batches = [(np.ones(3), (np.ones(3), np.ones(3)))] * 2
    report = check_targets_match(batches, lambda x: (x[:, None], x * 2), draws=2)
    shape = finding(report, batch=0, path="targets[0]")
    assert (shape.mismatched, shape.total) == (3, 3)
    assert shape.problem == "shape (3,), but target_fn gives (3, 1)"
    assert finding(report, batch=0, path="targets[1]").mismatched == 3


@pytest.mark.parametrize(
    ("yielded", "wanted", "notes"),
    [
        (np.array([1, 2], np.int64), np.array([1.5, 2.5]), {"floors"}),  # // instead of /
        (np.array([1, 1], np.int64), np.array([2.5, 2.0]), set()),  # 1.5 off: not a floor
        (np.array([1, 3], np.int64), np.array([1.5, 2.0]), set()),  # an integer 1 off too
        (np.array([7, 9], np.int16), np.array([7, 8]), {"wraps"}),  # int16 overflows
        (np.array([7, 9], np.int32), np.array([7, 8]), set()),  # int32: wide enough
        (np.array([1.0, 2.0]), np.array([1.5, 2.5]), set()),  # floats: no integer story
    ],
)
def test_integer_notes_explain_integer_targets_only(yielded, wanted, notes):
    """Bugs: the 'floors' note for any error under 2, 'wraps' for int32, notes for floats."""
    report = check_targets_match([(wanted, yielded)] * 2, lambda x: x, draws=2)
    said = {"floors" for n in report.notes if "floors" in n}
    said |= {"wraps" for n in report.notes if "wraps around" in n}
    assert said == notes


# Flattening: nesting, cycles, limits --------------------------------------------------------


def nested(kind: str, depth: int) -> Any:
    x: Any = np.zeros(1)
    for _ in range(depth):
        x = [x] if kind == "list" else {"k": x}
    return x


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_nesting_64_levels_deep_is_allowed_and_65_is_an_error(kind):
    """Bug: an off-by-one in the depth limit, or no limit (a RecursionError instead)."""
    flatten(nested(kind, 64))
    flatten((nested(kind, 63), np.zeros(1)))  # a role counts as one level
    with pytest.raises(ValueError, match="batch is nested more than 64 levels deep"):
        flatten(nested(kind, 65))
    with pytest.raises(ValueError, match=r"^inputs.*: batch is nested more than 64 levels"):
        flatten((nested(kind, 64), np.zeros(1)))
    with pytest.raises(ValueError) as raised:  # the path shown in short, not 65 steps long
        flatten(nested(kind, 65))
    assert len(str(raised.value)) < 120 and "..." in str(raised.value)
    with pytest.raises(ValueError, match="nested more than 64"):
        check_targets_match([(np.zeros(1), nested(kind, 65))] * 2, lambda x: x, draws=2)
    deep_targets = [(np.zeros(1), nested(kind, 64))] * 2
    assert check_targets_match(deep_targets, lambda x: nested(kind, 64), draws=2).ok
    with pytest.raises(ValueError, match="nested more than 64"):
        check_generator_no_aliasing([nested(kind, 5_000)] * 2, draws=2)


def test_the_same_list_twice_in_a_batch_is_not_a_cycle():
    """Bug: an autoencoder's (xs, xs), or {"a": d, "b": d}, taken for a batch containing itself."""
    xs = [np.zeros(2)]
    d = {"m": np.zeros(2)}
    assert check_generator_no_aliasing([(xs, xs), (xs, xs)], draws=2).ok
    assert check_generator_no_aliasing([{"a": d, "b": d}] * 2, draws=2).ok
    assert check_generator_no_aliasing([[{"a": 1}, {"b": 2}]] * 2, draws=2).ok


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_batch_containing_itself_is_an_error_naming_where(kind):
    box: Any = [np.zeros(1)] * 3 if kind == "list" else {"x": np.zeros(1)}
    if kind == "list":
        box.append(box)  # 4 items: not (inputs, targets, weights), so rooted at batch
    else:
        box["y"] = box
    where = "batch[3]" if kind == "list" else "batch['y']"
    with pytest.raises(ValueError, match=rf"^{re.escape(where)}: batch contains itself"):
        flatten(box)


def test_nested_dicts_and_lists_are_walked_and_compared_leaf_by_leaf():
    """Bug: containers inside a dict not walked (an HF batch with a dict of masks)."""

    def batches() -> Any:
        mask = np.ones(3)
        for i in range(3):
            mask[0] = i
            yield {"inputs": {"ids": [np.full(3, i)], "mask": mask}, "label": np.full(3, i)}

    report = check_generator_no_aliasing(batches, draws=3)
    assert {f.path for f in report.findings} == {"batch['inputs']['mask']"}


def test_a_container_replaced_by_another_kind_is_a_change():
    """Bug: container kinds not compared, so a list swapped for a tuple passes."""

    def batches() -> Any:
        d: dict[str, Any] = {}
        for i in range(3):
            d["x"] = [np.zeros(2)] if i == 0 else (np.zeros(2),)
            yield d

    report = check_generator_no_aliasing(batches, draws=3)
    found = finding(report, batch=0)
    assert (found.path, found.problem) == ("batch['x']", "was a list and is now a tuple")
    first = Reads([(np.zeros(1), np.zeros(1))], [[np.zeros(1), np.zeros(1)]])
    assert finding(check_index_stable(first, draws=1), batch=0).problem == (
        "was a tuple and is now a list"
    )
    mapping = Reads([{"x": {"a": np.zeros(1)}}], [{"x": collections.OrderedDict(a=np.zeros(1))}])
    assert finding(check_index_stable(mapping, draws=1), batch=0).problem == (
        "was a dict and is now a OrderedDict"
    )


def test_a_list_refilled_with_fewer_items_says_how_many():
    def batches() -> Any:
        xs: list[Any] = []
        for i in range(3):
            xs[:] = [np.zeros(1)] * (2 if i == 0 else 1)
            yield {"images": xs}

    found = finding(check_generator_no_aliasing(batches, draws=3), batch=0)
    assert (found.path, found.problem) == ("batch['images']", "held 2 items and now holds 1 item")


@pytest.mark.parametrize("leaf", ["cat.png", b"\x00\x01", None, 3, 2.5, 1j, True, np.int8(1)])
def test_scalar_leaves_such_as_file_names_are_compared_like_arrays(leaf):
    """Bug: str or bytes leaves (file names, raw records) rejected as 'not an array'."""
    assert check_generator_no_aliasing([(np.zeros(1), leaf)] * 2, draws=2).ok


@pytest.mark.parametrize("attribute", ["__array__", "__array_interface__", "__array_struct__"])
def test_anything_numpy_can_read_is_a_leaf(attribute):
    """Bug: array-likes without __array__ (buffers, other libraries' arrays) rejected."""
    base = np.arange(3.0)

    class Like:
        pass

    like = Like()
    if attribute == "__array__":
        like.__class__ = type("Like", (), {"__array__": lambda self, *a, **k: base})
    else:
        setattr(like, attribute, getattr(base, attribute))
    assert check_generator_no_aliasing([(like, like)] * 2, draws=2).ok
    with pytest.raises(TypeError, match=r"inputs: cannot read Broken as a numpy array"):
        broken = type("Broken", (), {attribute: property(lambda self: 1 / 0)})()
        if attribute == "__array__":
            broken = type("Broken", (), {"__array__": lambda self, *a, **k: 1 / 0})()
        check_generator_no_aliasing([(broken, 1)] * 2, draws=2)
    assert check_generator_no_aliasing([(memoryview(b"ab"), bytearray(b"c"))] * 2, draws=2).ok


# Memory notes --------------------------------------------------------------------------------


def test_the_memory_note_names_one_refilled_buffer_even_for_two_batches():
    """Bug: notes needing 3 batches; or worded 'batch in all' for a bare array."""

    def batches() -> Any:
        x = np.zeros(2)
        for i in range(2):
            x[:] = i
            yield x

    report = check_generator_no_aliasing(batches, draws=2)
    assert report.notes == ("Memory: all 2 batches share one buffer, refilled in place.",)


def test_views_of_two_different_arrays_are_not_called_views_into_one():
    """Bug: 'views into one array' said of rows taken alternately from two arrays."""

    def batches() -> Any:
        blocks = [np.zeros((8, 2)), np.zeros((8, 2))]
        for i in range(4):
            rows = blocks[i % 2][:2]  # a double buffer carved out of two arrays
            rows[:] = i
            yield rows

    notes = check_generator_no_aliasing(batches, draws=4).notes
    assert notes == (
        "Memory: all 4 batches live in 2 buffers, reused in turn (a ring or double buffer).",
    )


def test_fresh_arrays_written_later_get_no_ring_note():
    """Bug: 'reused in turn' said of distinct arrays that a source writes after yielding."""

    def batches() -> Any:
        history: list[np.ndarray] = []
        for i in range(3):
            x = np.full(2, float(i))
            history.append(x)
            for old in history:
                old -= 0.5  # centres everything yielded so far, in place
            yield x

    report = check_generator_no_aliasing(batches, draws=3)
    assert report.findings and report.notes == ()


def test_a_path_changed_in_one_batch_does_not_stop_the_notes_for_the_others():
    """Bug: `break` instead of `continue` when a changed path is held by one batch only."""

    def batches() -> Any:
        b = np.zeros(2)
        a = np.zeros(2)
        for i in range(3):
            b[:] = i
            yield {"a": a, "b": b} if i == 0 else {"b": b}
            a[:] = 1

    notes = check_generator_no_aliasing(batches, draws=3).notes
    assert notes == ("Memory: batch['b'] in all 3 batches share one buffer, refilled in place.",)


# Sources --------------------------------------------------------------------------------------


class Counted:
    """A PyDataset-like source that records every index read and every on_epoch_end."""

    def __init__(self, n: int = 3) -> None:
        self.n = n
        self.log: list[Any] = []

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:  # Keras' PyDataset has one: still read by index
        raise AssertionError("read by index, not iterated")

    def __getitem__(self, i: int) -> Any:
        self.log.append(i)
        return np.full(2, float(i))

    def on_epoch_end(self) -> None:
        self.log.append("end")


def test_a_pydataset_is_read_by_index_with_on_epoch_end_between_epochs():
    """Bugs: iterating a PyDataset; never calling on_epoch_end (its reshuffle)."""
    source = Counted(3)
    report = check_generator_no_aliasing(source, draws=5)
    assert report.ok and report.source == "indexable Counted"
    assert source.log == [0, 1, 2, "end", 0, 1]


class NumBatches(Counted):
    """Keras 3's PyDataset: ``num_batches`` says how many; None, or no __len__, is endless."""

    def __init__(self, n: Any) -> None:
        super().__init__(0)
        self._n = n

    @property
    def num_batches(self) -> Any:
        if self._n == "raise":
            raise NotImplementedError
        return self._n

    def __getitem__(self, i: int) -> Any:
        if i >= 10:
            raise IndexError(i)
        return super().__getitem__(i)


@pytest.mark.parametrize(
    ("n", "log"),
    [(2, [0, 1, "end", 0, 1, "end", 0]), (None, [0, 1, 2, 3, 4]), ("raise", [0, 1, 2, 3, 4])],
)
def test_num_batches_is_the_epoch_length_and_none_means_endless(n, log):
    source = NumBatches(n)
    check_generator_no_aliasing(source, draws=5)
    assert source.log == log


class Endless:
    def __getitem__(self, i: int) -> Any:
        return np.full(1, float(i))

    def on_epoch_end(self) -> None:
        raise AssertionError("no epochs in an endless source")


def test_an_endless_indexable_without_len_is_read_on_by_index():
    report = check_generator_no_aliasing(Endless(), draws=4)
    assert report.ok and report.source == "indexable Endless"


def test_an_object_with_getitem_alone_is_not_a_source():
    class OnlyGetitem:
        def __getitem__(self, i: int) -> Any:
            return np.zeros(1)

    with pytest.raises(TypeError, match="source must be an iterator"):
        check_generator_no_aliasing(OnlyGetitem())


@pytest.mark.parametrize(
    "attribute", ["__array__", "__array_interface__", "__array_struct__", "__dlpack__"]
)
def test_an_array_of_any_library_is_a_dataset_not_a_source(attribute):
    """Bug: a tensor (it has __dlpack__ or __array_interface__) iterated row by row."""
    cls = type("Tensor", (), {attribute: None, "__iter__": lambda self: iter([])})
    with pytest.raises(TypeError, match="got a Tensor: an array is a dataset, not a source"):
        check_generator_no_aliasing(cls())
    with pytest.raises(TypeError, match=r"<lambda>\(\) returned a Tensor: an array is a dataset"):
        check_generator_no_aliasing(lambda: cls())
    with pytest.raises(TypeError, match="got an ndarray: an array is a dataset"):
        check_generator_no_aliasing(np.zeros((16, 2)))


def test_a_list_whose_items_are_arrays_is_a_source_of_batches():
    class Batches(list):  # a list subclass that also converts to an array
        def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
            return np.zeros(1)

    assert check_generator_no_aliasing(Batches([np.zeros(1)] * 2), draws=2).ok


def test_each_source_kind_is_described_in_the_report():
    """Bug: a list taken for a read-once iterator, so check_source skips its other checks."""
    batches = [(np.arange(2.0), np.arange(2.0))] * 2
    # a generator is named by its function, once; a partial binding arguments shows "..."
    assert check_generator_no_aliasing(one_buffer, draws=2).source == (
        "generator made by one_buffer()"
    )
    assert check_generator_no_aliasing(functools.partial(one_buffer, 4), draws=2).source == (
        "generator made by one_buffer(...)"
    )
    assert check_generator_no_aliasing(one_buffer(), draws=2).source == "generator one_buffer"
    made = check_generator_no_aliasing(lambda: one_buffer(), draws=2).source
    assert made.startswith("generator one_buffer made by ") and made.endswith(".<lambda>()")
    assert check_generator_no_aliasing(iter(batches), draws=2).source == "iterator list_iterator"
    assert check_generator_no_aliasing(batches, draws=2).source == "iterable list"
    reports = check_source(batches, lambda x: x, draws=2)
    assert [(r.check, r.status) for r in reports] == [
        ("generator_no_aliasing", "passed"),
        ("targets_match", "passed"),
        ("epoch_repeatable", "passed"),
    ]


def test_a_list_shorter_than_draws_is_read_again_and_an_empty_one_is_an_error():
    """Bugs: a list read once (fit reads it epoch after epoch), or an empty one read forever."""
    batches = [np.full(2, float(i)) for i in range(3)]
    assert check_generator_no_aliasing(batches, draws=5).ok
    with pytest.raises(ValueError, match="source stopped after 0 batches"):
        check_generator_no_aliasing([], draws=5)


class LenRaises:
    def __len__(self) -> int:
        raise OSError("index file missing")

    def __getitem__(self, i: int) -> Any:
        return np.zeros(1)


class IterRaises:
    def __iter__(self) -> Any:
        raise OSError("bucket unreachable")


def broken_factory() -> Any:
    raise OSError("no such directory")


@pytest.mark.parametrize(
    ("source", "note"),
    [
        (LenRaises(), "pitfalls: raised by len() of the source LenRaises"),
        (IterRaises(), "pitfalls: raised by iter() of the source IterRaises"),
        (broken_factory, "pitfalls: raised by the source factory broken_factory()"),
    ],
    ids=["len", "iter", "factory"],
)
def test_the_users_own_error_says_which_call_of_the_source_raised_it(source, note):
    """Bug: a bare OSError from deep inside a check, with no word of where it came from."""
    with pytest.raises(OSError) as raised:
        check_epoch_repeatable(source)
    assert note in raised.value.__notes__


def test_a_factory_that_works_once_is_named_when_it_fails_the_second_time():
    calls = []

    def factory() -> Any:
        calls.append(1)
        return iter([np.zeros(2)] * 2) if len(calls) == 1 else 42

    with pytest.raises(TypeError, match=r"^source: calling .*factory\(\) returned an int"):
        check_source(factory, lambda x: x, draws=2)


@pytest.mark.parametrize(
    ("made", "says"),
    [
        (lambda: "abc", "returned a str"),
        (lambda: {"x": 1}, "returned a dict: a batch, not a source"),
        (lambda: np.zeros(2), "returned an ndarray: an array is a dataset"),
    ],
)
def test_a_factory_returning_junk_says_what_it_returned(made, says):
    with pytest.raises(TypeError, match=rf"^source must be .*calling .*<lambda>\(\) {says}"):
        check_generator_no_aliasing(made)


def test_a_source_that_stops_early_is_read_whole_unless_it_gave_one_batch():
    """Bug: 'at least 2 are needed' said of a source that gave 2; draws missing. A source
    that gives 2 or more is read whole; one batch is too few to compare."""
    for check in (
        check_generator_no_aliasing,
        lambda s, draws: check_targets_match(s, lambda x: x, draws=draws),
    ):
        report = check(lambda: iter([(np.zeros(1), np.zeros(1))] * 2), draws=3)
        assert (report.status, report.batches) == ("passed", 2)
        assert "ended after 2 batches, fewer than draws=3" in report.notes[-1]
    with pytest.raises(ValueError) as raised:
        check_generator_no_aliasing(lambda: iter([np.zeros(1)]), draws=3)
    assert str(raised.value) == (  # not "pass draws=1 or fewer": 1 is too few
        "source stopped after 1 batch, but draws=3 were asked for; at least 2 are needed:"
        " pass a source that yields more"
    )


# Timeouts: a source that hangs ----------------------------------------------------------------


@pytest.fixture
def hanging():
    """A factory of sources that yield one batch, then wait for an event that never comes."""
    release = threading.Event()

    def source() -> Any:
        yield np.zeros(1), np.zeros(1)
        release.wait()
        yield np.zeros(1), np.zeros(1)

    yield source
    release.set()  # let the abandoned thread finish


@pytest.mark.parametrize(
    "check",
    [
        pitfalls.check_generator_no_aliasing,
        pitfalls.assert_generator_no_aliasing,
        lambda s, **kw: pitfalls.check_targets_match(s, lambda x: x, **kw),
        lambda s, **kw: pitfalls.assert_targets_match(s, lambda x: x, **kw),
    ],
    ids=["check_aliasing", "assert_aliasing", "check_targets", "assert_targets"],
)
def test_a_hanging_source_raises_timeout_error_naming_the_batch(hanging, check):
    """Bug: timeout= accepted but not applied: the test hangs instead of failing."""
    with pytest.raises(TimeoutError, match=r"^source did not yield batch 1 within 0.05 s"):
        check(hanging, draws=2, timeout=0.05)
    waiting = [t for t in threading.enumerate() if t.name == "pitfalls: yield batch 1"]
    assert waiting and all(t.daemon for t in waiting)  # never blocks the interpreter's exit


def test_with_a_timeout_batches_and_errors_come_through_as_without():
    """Bug: the helper thread losing the batch it read, or the error the source raised."""
    report = check_generator_no_aliasing(one_buffer, timeout=5)
    assert report.bad_batches == tuple(range(15))

    def broken() -> Any:
        yield np.zeros(1)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone") as raised:
        check_generator_no_aliasing(broken, draws=2, timeout=5)
    assert "pitfalls: raised by the source while drawing batch 1" in raised.value.__notes__


@pytest.mark.parametrize("option", ["timeout", "draws"])
@pytest.mark.parametrize("check", ["generator_no_aliasing", "targets_match"])
def test_a_bad_option_is_named_in_the_error(check, option):
    args = (lambda x: x,) if check == "targets_match" else ()
    fn = getattr(pitfalls, f"check_{check}")
    with pytest.raises(TypeError, match=rf"^{option} must be"):
        fn([np.zeros(1)] * 2, *args, **{option: "3"})
    if check == "targets_match":
        with pytest.raises(TypeError, match=r"^unpack must be callable"):
            fn([np.zeros(1)] * 2, *args, unpack=3)


# Tracebacks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("assert_generator_no_aliasing", lambda: pitfalls.assert_generator_no_aliasing(one_buffer)),
        (
            "assert_targets_match",
            lambda: pitfalls.assert_targets_match(one_buffer, np.copy, draws=2),
        ),
    ],
)
def test_an_assert_hides_its_own_frame_from_pytest(name, call):
    """Bug: tracebacks ending in pitfalls' code instead of the user's line."""
    with pytest.raises(pitfalls.PitfallError) as raised:
        call()
    frames = [tb.tb_frame for tb in _walk_tb(raised.value.__traceback__)]
    ours = [f for f in frames if name in f.f_code.co_name]
    assert ours and all(f.f_locals.get("__tracebackhide__") is True for f in ours)


def _walk_tb(tb: Any) -> Any:
    while tb is not None:
        yield tb
        tb = tb.tb_next


class Unreadable:
    pass


@pytest.mark.parametrize(
    ("batch", "unpack", "path"),
    [
        ((Unreadable(), np.zeros(1)), None, "inputs"),
        (Unreadable(), None, "batch"),
        ({"pixels": Unreadable(), "label": np.zeros(1)}, None, "batch['pixels']"),
        ({"a": Unreadable(), "b": np.zeros(1), "y": np.zeros(1)}, None, "inputs['a']"),
        (1, lambda b: (Unreadable(), b), "inputs"),
    ],
    ids=["tuple", "bare", "dict", "dict-of-inputs", "unpack"],
)
def test_inputs_the_epoch_checks_cannot_read_are_named_by_their_path(batch, unpack, path):
    """Bug: the split of a batch losing the path of its inputs, so the error says 'None'."""
    with pytest.raises(TypeError, match=rf"^{re.escape(path)}: a batch leaf of type Unreadable"):
        check_epoch_repeatable([batch, batch], unpack=unpack)
    with pytest.raises(TypeError, match=rf"^{re.escape(path)}: a batch leaf"):
        check_epoch_complete([batch], np.zeros((1, 1)), unpack=unpack)


def test_a_dict_given_a_new_key_after_it_was_yielded_says_which():
    """Bug: dict nodes left out of the structure, so a reused dict gaining a key passes."""

    def batches() -> Any:
        d: dict[str, Any] = {"x": np.zeros(1)}
        for i in range(3):
            yield d
            d[f"extra{i}"] = np.zeros(1)

    found = finding(check_generator_no_aliasing(batches, draws=3), batch=0)
    assert (found.path, found.problem) == (
        "batch",
        "had keys ['x'] and now has ['x', 'extra0', 'extra1']",
    )


def test_a_container_nested_deeper_after_it_was_yielded_changes_the_nesting():
    def batches() -> Any:
        d: dict[str, Any] = {"x": [np.zeros(1)]}
        for _ in range(2):
            yield d
            d["x"][0] = [np.zeros(1)]  # the leaf becomes a list: one more level

    found = finding(check_generator_no_aliasing(batches, draws=2), batch=0)
    assert (found.path, found.problem) == ("batch", "the batch's nesting changed")


def test_a_leaf_that_turns_unreadable_after_it_was_yielded_is_named():
    def batches() -> Any:
        d: dict[str, Any] = {"x": np.zeros(1)}
        yield d
        d["x"] = Unreadable()  # the batch already handed out now holds junk
        yield np.zeros(1)

    with pytest.raises(TypeError, match=r"^batch\['x'\]: a batch leaf of type Unreadable"):
        check_generator_no_aliasing(batches, draws=2)


def test_flattening_a_part_keeps_its_nesting_under_its_own_root():
    """Bug: flatten_at dropping the structure that a diagnosis of the part compares."""
    flat = flatten_at({"a": [np.zeros(1)]}, "targets")
    assert flat.structure == (
        ("targets", "dict", ("keys", ("a",))),
        ("targets['a']", "list", ("len", 1)),
    )
    assert [path for path, _ in flat.leaves] == ["targets['a'][0]"]


def test_a_masked_or_memory_mapped_batch_is_compared_by_the_data_a_consumer_reads(tmp_path):
    """Bugs: the subclass's own == (masked elements skipped), or its view() (a crash)."""
    data = np.ma.masked_array([1 + 1j, 2 + 2j], mask=[False, True])
    assert check_index_stable(Reads([data], [data.copy()]), draws=1).ok
    hidden = data.copy()
    hidden.data[1] = 5  # under the mask, but np.asarray (and so Keras) still reads it
    report = check_index_stable(Reads([data], [hidden]), draws=1)
    assert tuple(finding(report, path="batch").locations[0]) == ((1,), 2 + 2j, 5 + 0j)
    stored = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(4,))
    assert check_generator_no_aliasing([stored[:2], stored[2:]], draws=2).ok


class MakeBatches:
    """A callable object as a factory: it has no __qualname__ of its own."""

    def __call__(self) -> Any:
        return iter([np.zeros(1)] * 2)


def test_a_callable_object_factory_is_named_by_its_classs_call():
    """``MakeBatches()`` would read as a call of the class; pitfalls called the instance."""
    assert check_generator_no_aliasing(MakeBatches(), draws=2).source == (
        "iterator list_iterator made by MakeBatches.__call__()"
    )


class ArrayLikeBatches:
    """A batch source that also converts to an array (its whole data), as some datasets do."""

    def __init__(self) -> None:
        self.data = np.arange(8.0).reshape(4, 2)

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> Any:
        rows = self.data[2 * i : 2 * i + 2]
        return rows, rows[:, 0]

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.data


def test_a_class_whose_instances_convert_to_arrays_is_judged_by_what_it_makes():
    """Bug: the class refused as "an array is a dataset" before it was called."""
    report = check_generator_no_aliasing(ArrayLikeBatches, draws=2)
    assert report.ok and report.source == "indexable ArrayLikeBatches made by ArrayLikeBatches()"
    assert check_generator_no_aliasing(ArrayLikeBatches(), draws=2).ok
    with pytest.raises(TypeError, match="got an ndarray: an array is a dataset"):
        check_generator_no_aliasing(np.zeros((4, 2)), draws=2)


def _one_sample() -> Any:
    yield np.array([[1]]), np.array([0])


def test_a_nested_list_dataset_is_read_as_one_array():
    """Bug: [[1], [2]] walked as a nesting of inputs: "batch -1: inputs need a batch axis"."""
    report = check_epoch_complete(_one_sample, [[1], [2]])
    assert finding(report, path="samples").problem == "1 / 2 samples never delivered; first: [1]"
    assert check_epoch_complete(_one_sample, [[1]]).ok


@pytest.mark.parametrize(
    "dataset, why",
    [
        ([[1, 2], [3]], "this nested list is ragged, not one array"),
        (np.zeros(()), "dataset is a scalar"),
        (
            (np.zeros(1), np.zeros(2)),
            "disagree on the number of samples: dataset[0] 1, dataset[1] 2",
        ),
    ],
    ids=["ragged", "scalar", "disagreeing"],
)
def test_a_dataset_without_samples_on_axis_0_is_misuse_that_says_why(dataset, why):
    with pytest.raises(ValueError, match=r"^dataset must hold the samples on axis 0") as raised:
        check_epoch_complete(_one_sample, dataset)
    assert why in str(raised.value)


@pytest.mark.parametrize(
    "dataset, why",
    [
        (None, "got NoneType None"),
        ("images.npy", "got str 'images.npy'"),
        (object(), "dataset: a leaf of type object is not an array"),
    ],
    ids=["None", "str", "object"],
)
def test_a_dataset_that_is_no_data_at_all_is_a_type_error_naming_it(dataset, why):
    """Bug: None and a path read "dataset is a scalar" (a ValueError); an object read "a
    batch leaf", words about batches for the argument named dataset."""
    with pytest.raises(TypeError, match=r"^dataset must hold the samples on axis 0") as raised:
        check_epoch_complete(_one_sample, dataset)
    assert why in str(raised.value)


@pytest.mark.parametrize(
    "buffer",
    [np.zeros(()), np.array(["a", "b"], dtype=object)],
    ids=["0-d", "object"],
)
def test_a_refilled_0_d_or_object_buffer_gets_its_memory_note(buffer):
    """Bug: notes skipped for every 0-d array, or for object arrays, not only for temporaries."""

    def batches() -> Any:
        for i in range(3):
            buffer[...] = i if buffer.ndim == 0 else str(i)
            yield buffer

    notes = check_generator_no_aliasing(batches, draws=3).notes
    assert notes == ("Memory: all 3 batches share one buffer, refilled in place.",)


def test_a_none_placeholder_gets_no_memory_note():
    """Bug: notes from the temporaries numpy makes of None, faking a shared buffer."""

    def batches() -> Any:
        d: dict[str, Any] = {"x": None}
        x = np.zeros(2)
        for i in range(3):
            yield d
            d["x"] = x
            x[:] = i

    report = check_generator_no_aliasing(batches, draws=3)
    assert finding(report, batch=0).problem == "shape () became (2,)"
    assert report.notes == ()


# Randomness: what a read drew from ------------------------------------------------------------


class TwoFacesOfOneGenerator:
    """Indexable: four fixed batches, holding a Generator and a RandomState over one MT19937."""

    def __init__(self, draw_from: str | None = None) -> None:
        bits = np.random.MT19937(0)
        self.rng = np.random.Generator(bits)
        self.legacy = np.random.RandomState(bits)
        self.draw_from = draw_from

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> Any:
        x = np.full((2, 2), float(i))
        if self.draw_from is not None:
            x = x + getattr(self, self.draw_from).random()
        return x, x.sum(axis=1)


def randomness_notes(report: Any) -> list[str]:
    return [n for n in report.notes if n.startswith("Randomness")]


def test_two_rngs_over_one_bit_generator_are_watched_as_they_are_after_seeding():
    """Bug: the state an RNG has after seeding taken as known, though seeding the other
    RNG over the same bits moved it: every read then seems to draw from it."""
    report = check_index_stable(TwoFacesOfOneGenerator())
    assert report.ok and randomness_notes(report) == [], str(report)
    drawing = check_index_stable(TwoFacesOfOneGenerator(draw_from="rng"))
    assert drawing.ok and "self.rng" in randomness_notes(drawing)[0], str(drawing)


def test_a_random_state_subclass_seeding_its_own_way_is_read_after_seeding():
    """Bug: the state after ``seed(s)`` taken to depend on s alone for a subclass too."""

    class NewStreamEachSeeding(np.random.RandomState):
        seedings = 0

        def seed(self, seed: Any = None) -> None:
            type(self).seedings += 1
            super().seed(self.seedings)  # whatever seed it is given

    class Holds:  # and never draws from it
        def __init__(self) -> None:
            self.state = NewStreamEachSeeding()

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> Any:
            return np.full((2, 2), float(i)), np.zeros(2)

    report = check_index_stable(Holds())
    assert report.ok and randomness_notes(report) == [], str(report)


def test_taking_the_gaussian_numpy_cached_is_a_draw_from_its_global_rng():
    """Bug: numpy's global RNG judged by its Mersenne Twister alone: ``normal()`` hands out
    the second Gaussian of the pair it drew last time without moving the twister."""
    from pitfalls._randomness import Randomness

    np.random.seed(0)
    np.random.normal()  # draws a pair, keeps the second
    with Randomness([]) as watch:
        watch.mark()
        assert watch.drew() == ()
        watch.mark()
        np.random.normal()  # the one it kept
        assert watch.drew() == ("np.random (global)",)


# The tolerance of a targets comparison: which dtype sets it -------------------------


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.dtype(np.float16), "float16"),
        (np.dtype(np.float32), "float32"),
        (np.dtype(np.float64), "float64"),
        (np.dtype(np.longdouble), "float64"),
        (np.dtype(np.complex64), "float32"),
        (np.dtype(np.complex128), "float64"),
        (np.dtype(np.int64), None),
        (np.dtype(bool), None),
        (np.dtype("V4"), None),  # raw bytes, no float in the name
        # torch's, TensorFlow's and JAX's dtypes, by their names
        ("torch.float16", "float16"),
        ("torch.half", "float16"),
        ("torch.bfloat16", "bfloat16"),
        ("<dtype: 'bfloat16'>", "bfloat16"),
        ("torch.float32", "float32"),
        ("torch.complex64", "float32"),
        ("torch.float64", "float64"),
        ("torch.double", "float64"),
        ("torch.complex128", "float64"),
        ("torch.int64", None),
        (None, None),
    ],
)
def test_each_floating_dtype_has_its_precision_and_nothing_else_does(dtype, expected):
    """Bug (mutation): any name read as float32, or bfloat16 as float16, would pick another
    row of the tolerance table, and half-precision targets would fail on their rounding."""
    assert precision(dtype) == expected


def test_ml_dtypes_bfloat16_is_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert precision(np.dtype(ml_dtypes.bfloat16)) == "bfloat16"


@pytest.mark.parametrize("side", ["yielded", "target_fn"])
def test_a_python_float_on_either_side_sets_float64s_tolerance(side):
    """The floating side picks the tolerance, an array or a Python float: 1e-17 against an
    integer 0, from inputs of 1, is float64 rounding (a cancellation), not a mismatch;
    compared exactly, as integers are, it would fail."""
    tiny, zero = 1e-17, np.int64(0)
    targets, rule = (tiny, zero) if side == "yielded" else (zero, tiny)
    batch = (np.ones((1, 2)), targets)
    assert check_targets_match([batch] * 2, lambda x: rule, draws=2).ok


def test_zero_size_targets_compare_and_a_nan_does_not_loosen_tiny_ones():
    """Bug (mutation): an empty leaf's magnitude raised, and a NaN among tiny targets made
    their atol float32's full 1e-5 (NaN is equal to NaN; it has no magnitude)."""
    empty = (np.zeros((0, 2)), np.zeros(0))
    assert check_targets_match([empty] * 2, lambda x: x.mean(axis=1), draws=2).ok
    x = np.ones((3, 2), np.float32)
    yielded = np.array([2e-6, 2e-6, np.nan], np.float32)  # twice the rule, and a NaN
    rule = lambda x: np.array([1e-6, 1e-6, np.nan], np.float32)  # noqa: E731
    assert not check_targets_match([(x, yielded)] * 2, rule, draws=2).ok


@pytest.mark.parametrize("check", ["assert_generator_no_aliasing", "assert_targets_match"])
def test_a_msg_that_is_not_a_str_names_msg(check):
    """Bug (mutation): the misuse error could name another argument than msg."""
    args = ([], lambda x: x) if check == "assert_targets_match" else ([],)
    with pytest.raises(TypeError, match=r"^msg must be a str or None, got int 5$"):
        getattr(pitfalls, check)(*args, msg=5)


# Seals: batches too large to copy are kept as digests of 64 KiB blocks ---------------------


def test_a_sealed_batch_counts_exactly_the_elements_of_the_blocks_that_changed():
    """Bug (mutation testing): the digest path of large batches had no test of its own:
    a changed block went uncounted, or counted whole past the array's end, or the first
    changed index was off."""
    from pitfalls._tree import BLOCK_BYTES, diff_snapshot, seal

    per_block = BLOCK_BYTES // 4  # float32 elements in one block
    a = np.zeros((3, per_block - 7), np.float32)  # 3 blocks, the last one short
    sealed = seal(flatten(a))
    assert diff_snapshot(sealed, flatten(a)) == ([], None)  # unchanged: no diff
    size = a.size
    a.reshape(-1)[-1] = 1.0  # the last element: in the short last block
    a.reshape(-1)[per_block + 5] = 2.0  # the middle block
    (diff,), structure = diff_snapshot(sealed, flatten(a))
    assert structure is None and not diff.exact
    assert (diff.mismatched, diff.total) == (size - per_block, size)
    first = np.unravel_index(per_block, a.shape)
    assert f"2 of 3 blocks of its bytes ({BLOCK_BYTES // 1024} KiB each" in diff.problem
    assert f"the first at index {[int(i) for i in first]}" in diff.problem


def test_a_sealed_batch_read_back_in_another_shape_or_dtype_is_a_change():
    from pitfalls._tree import BLOCK_BYTES, diff_snapshot, seal

    a = np.zeros(BLOCK_BYTES, np.float32)  # 4 blocks, digested
    sealed = seal(flatten(a))
    for other in (a.reshape(2, -1), a.view(np.int32), a[:-1]):
        diffs, structure = diff_snapshot(sealed, flatten(other))
        assert structure is None and len(diffs) == 1 and diffs[0].mismatched > 0
    # a small array, or one of objects, is copied and compared element by element
    small = np.arange(4.0)
    kept = seal(flatten(small))
    small[2] = -1.0
    (diff,), _ = diff_snapshot(kept, flatten(small))
    assert diff.exact and diff.mismatched == 1


def test_fingerprints_read_every_dtype_and_every_array_of_a_sample():
    """Bug (mutation testing): the fallback for dtypes numpy cannot view as bytes, and the
    digest of a sample spread over several arrays, had no test of their own."""
    from pitfalls import _fingerprint as fingerprint

    x = np.arange(6.0).reshape(3, 2)
    y = np.array([1, 2, 1])
    both = fingerprint.samples([x, y], 3)
    assert len(set(both)) == 3  # every sample told apart
    assert both != fingerprint.samples([x], 3)  # the second array counts
    assert fingerprint.samples([x, y[::-1]], 3)[1] == both[1]  # only the sample's own rows
    swapped = fingerprint.samples([x, np.array([1, 1, 2])], 3)
    assert swapped[0] == both[0] and swapped[1] != both[1]
    rows = fingerprint.as_bytes(np.array([b"ab", b"cd"], dtype="S2").reshape(2, 1))
    assert rows.tolist() == [list(b"ab"), list(b"cd")]
    objects = np.array([[1, "a"], [2, "b"]], dtype=object)  # no byte view: copied out
    held = fingerprint.as_bytes(objects)
    assert held.dtype == np.uint8 and held.shape == (2, 2 * objects.itemsize)


def test_an_iterator_that_keeps_the_sequence_protocol_is_read_by_index():
    """Bug (mutation testing): the Sequence-before-Iterator rule (Keras' own
    ImageDataGenerator.flow is both) was pinned only by tests that need tf_keras."""
    from pitfalls._sources import resolve

    class FlowLike:
        def __init__(self):
            self.x = np.arange(16.0).reshape(8, 2)
            self.position = 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return self.x[2 * i : 2 * i + 2]

        def on_epoch_end(self):
            pass

        def __iter__(self):
            return self

        def __next__(self):
            self.position += 1
            return self[(self.position - 1) % 4]

    assert resolve(FlowLike()).kind == "indexable"
    assert pitfalls.check_epoch_repeatable(FlowLike).ok  # read by index: it has an end


def test_bytes_alike_in_another_dtype_or_shape_are_not_the_same_array():
    """Bug: the fast path compared digests alone, so zeros of float32[4] read as the
    float64[2] they share their bytes with, and a batch retyped in place counted as
    unchanged."""
    from pitfalls._tree import bitwise_equal

    zeros = np.zeros(4, dtype=np.float32)
    assert bitwise_equal(zeros, zeros.copy())
    assert not bitwise_equal(zeros, np.zeros(2, dtype=np.float64))
    assert not bitwise_equal(zeros, np.zeros((2, 2), dtype=np.float32))


def test_a_loader_whose_iter_starts_an_epoch_is_iterated_again_each_epoch():
    """Bug: an iterator whose class defines __iter__ (a JAX-style loader reshuffling
    there) was read on as one stream, so epoch 2 never started and its order was never
    drawn."""

    class Loader:
        def __init__(self, x):
            self.x, self.rng, self.i, self.order = x, np.random.default_rng(0), 0, None

        def __iter__(self):
            self.order, self.i = self.rng.permutation(len(self.x)), 0
            return self

        def __next__(self):
            if self.i >= len(self.x):
                raise StopIteration
            rows = self.order[self.i : self.i + 4]
            self.i += 4
            return self.x[rows], self.x[rows].sum(axis=1)

    x = np.arange(64.0).reshape(32, 2)
    assert pitfalls.check_order_shuffled(Loader(x)).status == "passed"
    assert pitfalls.check_epoch_repeatable(Loader(x)).status == "passed"


def test_rows_counted_as_a_multiset_keep_their_repeats():
    """Bug: a row met twice was counted once, so a dataset whose rows were overwritten
    by copies of another row still held 'the same rows'."""
    from pitfalls._fingerprint import row_multiset

    data = np.array([[1.0, 5.0], [1.0, 5.0], [2.0, 6.0]])
    assert sorted(row_multiset(data).values()) == [1, 2]
    strided = np.arange(12.0).reshape(3, 4)[:, ::2]  # not C-contiguous: read row by row
    assert row_multiset(strided) == row_multiset(np.ascontiguousarray(strided))
    assert row_multiset(strided) != row_multiset(strided[[0, 0, 1]])
