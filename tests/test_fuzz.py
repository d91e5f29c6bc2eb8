"""Junk in, a verdict or a clear error out: every public checker, fuzzed.

A checker handed junk may answer in three ways only:

* a verdict: a Report (or, from check_source, a tuple of them) that renders
  as text and as JSON;
* misuse: a TypeError, ValueError or TimeoutError whose message says what
  is wrong;
* the user's own exception, raised by the user's code (a source, a
  ``target_fn``, an ``__array__``), carrying a ``pitfalls:`` note that says
  which call raised it.

Anything else (a RecursionError, an IndexError from our own code, an
OverflowError, a bare exception without a note) is a crash. And whatever it
answers, a checker never writes to the user's data: every array handed in
holds the same bytes and the same ``flags.writeable`` afterwards.

Junk is built by hypothesis (derandomized by the conftest profile); each test
draws few examples, so the whole file runs in about two seconds.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import multiprocessing
import random
import sys
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pitfalls
from pitfalls import Report


class Junk(Exception):
    """The user's own exception, raised by junk the user handed in."""


# Leaves: arrays of every odd kind, scalars, objects numpy cannot read --------------------

odd_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
    hnp.array_dtypes(allow_subarrays=True, max_size=3),  # structured
    st.just(np.dtype(object)),
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)  # 0-d and zero-size too


@st.composite
def odd_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(odd_dtypes)
    if dtype.kind == "O":
        a = np.empty(draw(shapes), dtype=object)
        a.fill(draw(st.sampled_from([None, 1, "s", (1, 2)])))
    else:
        a = draw(hnp.arrays(dtype, draw(shapes)))
    if a.dtype.kind == "f" and a.size and draw(st.booleans()):
        a.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if draw(st.booleans()) and a.dtype != object:  # masked
        a = np.ma.masked_array(a, mask=draw(hnp.arrays(np.bool_, a.shape)))
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


class RaisingArray:
    """Looks like an array, but reading it raises the user's exception."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise Junk("__array__ is broken")


class BrokenInterface:
    """Claims numpy's array interface, but reading the attribute raises."""

    @property
    def __array_interface__(self) -> dict[str, Any]:
        raise Junk("__array_interface__ is broken")


class NotALeaf:
    def __repr__(self) -> str:
        raise Junk("even repr is broken")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.sampled_from([np.int8(-1), np.float16(np.inf), np.datetime64("NaT"), np.bool_(True)]),
)
leaves = st.one_of(
    odd_arrays(),
    scalars,
    st.builds(NotALeaf),
    st.builds(memoryview, st.binary(max_size=4)),
    st.builds(RaisingArray),
    st.builds(BrokenInterface),
)


class Deep(list):  # type: ignore[type-arg]
    """A batch nested thousands of lists deep, with a repr that says so in a few words."""

    def __repr__(self) -> str:
        return f"deep({self.depth})"

    depth = 0


def deep(depth: int) -> Any:
    """A batch nested ``depth`` lists deep."""
    x: Any = np.zeros(1)
    for _ in range(depth - 1):
        x = [x]
    outer = Deep([x])
    outer.depth = depth
    return outer


def containing_itself(kind: str) -> Any:
    if kind == "list":
        box: list[Any] = [np.zeros(2)]
        box.append(box)
        return box
    d: dict[str, Any] = {"x": np.zeros(2)}
    d["y"] = d
    return d


keys = st.sampled_from(["x", "y", "label", "labels", "target", "sample_weight", 0, ("k",)])


def nested(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Batches of ``leaf``: nested lists, tuples and dicts; thousands deep; containing itself."""
    return st.one_of(
        st.recursive(
            leaf,
            lambda children: st.one_of(
                st.lists(children, max_size=4),
                st.lists(children, max_size=4).map(tuple),
                st.dictionaries(keys, children, max_size=4),
            ),
            max_leaves=6,
        ),
        st.integers(1_000, 5_000).map(deep),
        st.sampled_from(["list", "dict"]).map(containing_itself),
    )


batches = nested(leaves)


# Sources: the kinds a checker accepts, and the junk it must reject ----------------------


class Indexable:
    """A PyDataset-like source over a fixed list of batches."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]

    def on_epoch_end(self) -> None:
        pass


class LenRaises(Indexable):
    def __len__(self) -> int:
        raise Junk("__len__ is broken")


class LenNegative(Indexable):
    def __len__(self) -> int:
        return -1


class GetitemRaises(Indexable):
    def __getitem__(self, i: int) -> Any:
        raise Junk(f"__getitem__({i}) is broken")


class IterRaises:
    def __iter__(self) -> Any:
        raise Junk("__iter__ is broken")


class NeedsArguments:
    def __init__(self, n: int) -> None:
        self.n = n


def raising_factory() -> Any:
    raise Junk("the factory is broken")


def raising_generator() -> Any:
    yield np.zeros(2), np.zeros(1)
    raise Junk("the generator broke at batch 1")


NOT_SOURCES = {
    "int": 42,
    "float": 3.5,
    "None": None,
    "str": "abc",
    "bytes": b"abc",
    "object": object(),
    "dict": {"x": np.zeros(2)},
    "ndarray": np.zeros((4, 2)),
    "factory-of-int": lambda: 42,
    "class-needing-arguments": NeedsArguments,
    "raising-factory": raising_factory,
    "raising-__array__": RaisingArray(),
    "raising-__iter__": IterRaises(),
    "generator-that-raises": raising_generator,
    "raising-__len__": LenRaises([np.zeros(2)] * 3),
    "negative-__len__": LenNegative([np.zeros(2)] * 3),
    "raising-__getitem__": GetitemRaises([np.zeros(2)] * 3),
}

KINDS = ("list", "factory", "iterator", "indexable")


def make_source(kind: str, items: list[Any]) -> Any:
    if kind == "list":
        return items
    if kind == "factory":
        return lambda: (b for b in items)
    if kind == "iterator":
        return iter(items)
    return Indexable(items)


@st.composite
def sources(draw: st.DrawFn) -> tuple[Any, list[Any], str]:
    """(source, its batches, kind); batches reuse array objects, as buggy sources do."""
    pool = draw(st.lists(batches, min_size=1, max_size=3))
    items = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=5))
    kind = draw(st.sampled_from(KINDS))
    return make_source(kind, items), items, kind


# Options: right and wrong types, non-finite and huge values ------------------------------

HUGE = 2**70
numbers = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        1e308,
        -1e308,
        -1,
        0,
        1,
        2,
        3,
        2.5,
        1e-300,
        HUGE,
        "3",
        True,
        False,
        None,
        np.int64(3),
        np.float32(2.0),
        np.bool_(True),
        np.uint8(255),
        [3],
        1j,
    ]
)
flags = st.sampled_from([True, False, None, np.bool_(False), 1, "yes", math.nan])


def identity(x: Any) -> Any:
    return x


def junk_fn_raises(x: Any) -> Any:
    raise Junk("target_fn is broken")


functions = st.sampled_from(
    [
        identity,
        junk_fn_raises,
        lambda x: "abc",
        lambda x: [x, x],
        lambda x: np.zeros(3),
        lambda x: (x, x),
        None,
        3,
        "f",
    ]
)


def options(names: tuple[str, ...], endless: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``names`` set to junk; no huge counts for an endless (indexable) source."""
    value = {
        "draws": numbers,
        "timeout": numbers,
        "rtol": numbers,
        "atol": numbers,
        "steps_per_epoch": numbers,
        "max_perturbed": numbers,
        "seed": numbers,
        "epochs": flags,
        "shuffled": flags,
        "training": flags,
        "unpack": functions,
    }

    def tame(opts: dict[str, Any]) -> dict[str, Any]:
        # asked to read 2**70 batches of an endless source, a checker rightly reads on
        count = ("draws", "steps_per_epoch")
        return {k: (3 if endless and k in count and v is HUGE else v) for k, v in opts.items()}

    return st.fixed_dictionaries({}, optional={n: value[n] for n in names}).map(tame)


# The judge ---------------------------------------------------------------------------------


def arrays_in(obj: Any, found: list[np.ndarray], depth: int = 0) -> list[np.ndarray]:
    """Every ndarray reachable through lists, tuples and dicts (no cycles, limited depth)."""
    if isinstance(obj, np.ndarray):
        found.append(obj)
    elif depth < 60 and isinstance(obj, (list, tuple)):
        for item in obj:
            if item is not obj:
                arrays_in(item, found, depth + 1)
    elif depth < 60 and isinstance(obj, dict):
        for item in obj.values():
            if item is not obj:
                arrays_in(item, found, depth + 1)
    return found


def fingerprint(a: np.ndarray) -> tuple[Any, ...]:
    mask = np.ma.getmaskarray(a).tobytes() if isinstance(a, np.ma.MaskedArray) else b""
    data = np.asarray(a).tobytes() if a.dtype != object else repr(a.tolist()).encode()
    return (a.shape, a.dtype, data, mask, a.flags.writeable)


def judge(call: Any, *data: Any, verdicts: tuple[type, ...] = (), reports: bool = True) -> str:
    """Run ``call()`` and accept only a verdict or a clear error; data must be untouched.

    ``verdicts``: exceptions that are verdicts (strict_loss raises BroadcastError);
    ``reports=False``: what ``call()`` returns is not a report (read_ahead's batches).
    """
    held = arrays_in(list(data), [])
    before = [fingerprint(a) for a in held]
    try:
        out = call()
    except (TypeError, ValueError, TimeoutError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        outcome = "misuse"
    except verdicts:
        outcome = "verdict"
    except Exception as exc:
        notes = getattr(exc, "__notes__", [])
        if not any(note.startswith("pitfalls:") for note in notes):
            raise AssertionError(
                f"crash: {type(exc).__name__}: {exc} (no pitfalls note: {notes})"
            ) from exc
        outcome = "user"
    else:
        if reports:
            got = out if isinstance(out, tuple) else (out,)
            assert got and all(isinstance(r, Report) for r in got), out
            for r in got:
                assert str(r)
                json.dumps(r.to_dict())
        outcome = "verdict"
    after = [fingerprint(a) for a in held]
    for a, b, c in zip(held, before, after):
        assert b == c, f"the checker changed the user's data: {a!r}"
    return outcome


# The tests ---------------------------------------------------------------------------------

SOURCE_CHECKS = {
    "generator_no_aliasing": ("draws", "timeout"),
    "targets_match": ("draws", "rtol", "atol", "timeout", "unpack"),
    "index_stable": ("draws", "timeout"),
    "epoch_repeatable": ("steps_per_epoch", "timeout", "unpack"),
    "order_shuffled": ("steps_per_epoch", "timeout", "unpack"),
    "epoch_complete": ("steps_per_epoch", "timeout", "unpack"),
    "source": (
        "draws",
        "timeout",
        "epochs",
        "shuffled",
        "steps_per_epoch",
        "unpack",
        "rtol",
        "atol",
    ),
}


@st.composite
def source_calls(draw: st.DrawFn) -> tuple[str, Any, list[Any], dict[str, Any], Any]:
    check = draw(st.sampled_from(sorted(SOURCE_CHECKS)))
    source, items, kind = draw(sources())
    opts = draw(options(SOURCE_CHECKS[check], endless=kind == "indexable"))
    extra = None
    if check == "targets_match":
        extra = draw(functions)
    elif check == "epoch_complete":
        extra = draw(st.one_of(leaves, batches))
    elif check == "source":
        extra = draw(st.one_of(st.none(), functions))
    return check, source, items, opts, extra


def run_source_check(check: str, source: Any, opts: dict[str, Any], extra: Any) -> Any:
    if check == "source":
        return pitfalls.check_source(source, extra, **opts)
    if check == "targets_match":
        return pitfalls.check_targets_match(source, extra, **opts)
    if check == "epoch_complete":
        return pitfalls.check_epoch_complete(source, extra, **opts)
    return getattr(pitfalls, f"check_{check}")(source, **opts)


@given(call=source_calls())
@example(call=("epoch_complete", [], [], {}, deep(1000)))  # once a RecursionError: the dataset
def test_source_checkers_give_a_verdict_or_a_clear_error(call):
    check, source, items, opts, extra = call
    judge(lambda: run_source_check(check, source, opts, extra), items, extra)


@given(a=odd_arrays(), b=odd_arrays())
@example(a=np.zeros(2), b=np.ma.masked_array(0j, mask=False))  # once a crash in the view as words
def test_odd_arrays_are_data_and_get_a_verdict(a, b):
    """Structured, masked, datetime, complex, float16, bool, zero-size, 0-d: all batches."""
    batches = [(a, b), (a, b)]
    for check in (
        lambda: pitfalls.check_generator_no_aliasing(batches, draws=2),
        lambda: pitfalls.check_index_stable(Indexable(batches), draws=2),
        lambda: pitfalls.check_targets_match(batches, lambda x: b, draws=2),
    ):
        assert judge(check, batches) == "verdict"


@given(source=sources(), depth=numbers)
def test_read_ahead_hands_out_batches_or_a_clear_error(source, depth):
    src, items, kind = source
    if kind == "indexable" and depth is HUGE:
        depth = 3  # reading 2**70 batches ahead of an endless source, it rightly reads on
    judge(lambda: list(itertools.islice(pitfalls.read_ahead(src, depth), 20)), items, reports=False)


NOT_A_SOURCE_CALLS = {
    **{
        check: (lambda c: lambda s: run_source_check(c, s, {}, identity))(check)
        for check in SOURCE_CHECKS
    },
    "read_ahead": lambda s: (list(pitfalls.read_ahead(s, 2)), Report(check="read"))[1],
}


@pytest.mark.parametrize("source", NOT_SOURCES)
@pytest.mark.parametrize("check", sorted(NOT_A_SOURCE_CALLS))
def test_junk_sources_are_rejected_or_their_errors_noted(check, source):
    judge(lambda: NOT_A_SOURCE_CALLS[check](NOT_SOURCES[source]))


@given(y_true=batches, y_pred=batches)
def test_no_broadcast_gives_a_verdict_or_a_clear_error(y_true, y_pred):
    judge(lambda: pitfalls.check_no_broadcast(y_true, y_pred), y_true, y_pred)


def test_no_broadcast_of_an_unreadable_array_is_a_clear_error():
    """Found by this fuzz: np.shape's call of a raising __array__ escaped bare."""
    assert judge(lambda: pitfalls.check_no_broadcast(np.zeros(2), RaisingArray())) == "misuse"


def test_an_error_in_the_models_predict_carries_a_note():
    """Found by this fuzz: the model's own exception came through without a note."""
    model = FakeModel((None, 1), Junk("predict is broken"))
    assert judge(lambda: pitfalls.check_prediction_shape(model, np.zeros((2, 1)))) == "user"


def per_sample(*args: Any) -> Any:
    return np.asarray(args[0]) * 2


@given(
    fn=st.sampled_from([per_sample, junk_fn_raises, lambda *a: (a, a), lambda *a: "abc", 3]),
    args=st.lists(st.one_of(leaves, batches), max_size=3),
    opts=options(("max_perturbed", "training", "seed", "rtol", "atol"), endless=False),
)
def test_batch_independent_gives_a_verdict_or_a_clear_error(fn, args, opts):
    judge(lambda: pitfalls.check_batch_independent(fn, *args, **opts), args)


def junk_loss(y_true: Any, y_pred: Any) -> Any:
    return np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)


@given(
    fn=st.sampled_from([junk_loss, junk_fn_raises, max, NeedsArguments, 3, None]),
    args=st.lists(batches, max_size=3),
)
def test_strict_loss_wraps_and_checks_or_gives_a_clear_error(fn, args):
    def call() -> Any:
        return pitfalls.strict_loss(fn)(*args)

    judge(call, args, verdicts=(pitfalls.BroadcastError,), reports=False)


@pytest.mark.parametrize("args", [(), (np.zeros(2),)], ids=["none", "one"])
def test_a_strict_loss_called_without_y_pred_is_a_clear_error(args):
    """Found by this fuzz: the wrapper popped its arguments, raising IndexError."""
    assert judge(lambda: pitfalls.strict_loss(junk_loss)(*args)) == "misuse"


class FakeModel:
    """Not Keras: prediction_shape reads ``output_shape`` and calls ``predict``."""

    def __init__(self, output_shape: Any, out: Any) -> None:
        self.output_shape = output_shape
        self.out = out

    def predict(self, x: Any, verbose: int = 0) -> Any:
        if isinstance(self.out, Exception):
            raise self.out
        return self.out


shape_junk = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([None, 1, 4, -1, 2.5, "1", True])),
    st.lists(st.tuples(st.sampled_from([None, 1, 4]), st.sampled_from([1, 2]))),
    st.sampled_from([(None, 1), (4, 1), [], 3, "shape", ()]),
)


@given(
    declared=shape_junk,
    out=st.one_of(batches, st.just(Junk("predict is broken"))),
    x=batches,
    expected=shape_junk,
)
def test_prediction_shape_gives_a_verdict_or_a_clear_error(declared, out, x, expected):
    model = FakeModel(declared, out)
    judge(lambda: pitfalls.check_prediction_shape(model, x, expected=expected), x, out)


# Keras and fork: only the argument checks are fuzzed, and they must come first --------------

NOT_A_NUMBER = [math.nan, math.inf, -math.inf, "1", True, None, [1], 1j]
FITS_JUNK = {
    "max_loss": [*NOT_A_NUMBER, 0, -1.0, 1e309],
    "steps": [*NOT_A_NUMBER, 0, -1, 2.5, 1e308],
    "batch_size": [math.nan, math.inf, "1", True, 0, -1, 2.5],
    "learning_rate": [*NOT_A_NUMBER, 0, -1e-3],
    "seed": [*NOT_A_NUMBER, -1, 0.5],
}
BAD_XY = [
    (np.float64(1.0), np.zeros(1)),  # 0-d
    (np.zeros((3, 2)), np.zeros(4)),  # rows disagree
    (np.zeros((0, 2)), np.zeros(0)),  # empty
    (RaisingArray(), np.zeros(1)),
    (containing_itself("list"), np.zeros(1)),
    (deep(3000), np.zeros(1)),
]


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Importing Keras or TensorFlow raises ImportError: a check must reject junk first."""
    for name in ("keras", "tensorflow", "tf_keras"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("option", "value"),
    [(k, v) for k, values in FITS_JUNK.items() for v in values],
    ids=lambda v: repr(v)[:20],
)
def test_fits_rejects_junk_options_before_importing_tensorflow(no_tensorflow, option, value):
    x, y = np.arange(6.0).reshape(3, 2), np.zeros(3)
    kwargs = {"max_loss": 1.0, option: value}
    with pytest.raises((TypeError, ValueError), match=option):
        pitfalls.check_fits(None, x, y, **kwargs)


def test_a_hidden_framework_counts_as_not_imported(no_tensorflow, monkeypatch):
    """Bug: with TensorFlow and Keras hidden (sys.modules[name] = None, as the fixture and
    a user's own tests may do), every check warned that TensorFlow's and Keras' internals
    had moved: it took the None entries for imported frameworks and read their state."""
    from pitfalls._frameworks import base

    monkeypatch.setitem(sys.modules, "tensorflow.python.ops.stateful_random_ops", None)
    monkeypatch.setattr(base, "_WARNED", set())  # each warning is said once a process
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pitfalls.assert_generator_no_aliasing(lambda: (np.zeros(2) for _ in range(3)), draws=2)


@pytest.mark.parametrize(("x", "y"), BAD_XY, ids=range(len(BAD_XY)))
def test_fits_rejects_junk_data_before_importing_tensorflow(no_tensorflow, x, y):
    judge(lambda: pitfalls.check_fits(None, x, y, max_loss=1.0), x, y)


WORKER_JUNK = {
    "fn": [None, 3, "f"],
    "worker_init": [3, "f"],
    "workers": [*NOT_A_NUMBER, 1, 0, -1, 2.0, 1e308],
    "calls": [*NOT_A_NUMBER, 0, -1, 1.5],
    "seed": [math.nan, math.inf, "0", True, -1, 0.5],
    "timeout": [math.nan, math.inf, -math.inf, 0, -1, 1e308, 8 * 24 * 3600, "1", True],
    "dataset": [3, 1.5, "f", b"x", True],
}


@pytest.mark.parametrize(
    ("option", "value"),
    [(k, v) for k, values in WORKER_JUNK.items() for v in values],
    ids=lambda v: repr(v)[:20],
)
def test_worker_randomness_rejects_junk_options_before_forking(monkeypatch, option, value):
    def no_fork(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("forked before checking its arguments")

    monkeypatch.setattr(multiprocessing, "get_context", no_fork)
    kwargs = {"fn": np.random.random, option: value}
    with pytest.raises((TypeError, ValueError), match=option):
        pitfalls.check_worker_randomness(**kwargs)


# Memmaps: files the checker must read and never write -------------------------------------


def test_memmapped_batches_are_read_not_written(tmp_path):
    """A dataset on disk, opened read-write: checking it leaves the file byte for byte."""
    path = tmp_path / "data.npy"
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(8, 3))
    data[:] = np.arange(24, dtype=np.float32).reshape(8, 3)
    data.flush()
    before = path.read_bytes()
    stored = np.load(path, mmap_mode="r+")
    batches = [(stored[i : i + 2], stored[i : i + 2].sum(axis=1)) for i in range(0, 8, 2)]
    reports = pitfalls.check_source(
        lambda: iter(batches), lambda x: x.sum(axis=1), draws=4, epochs=True
    )
    assert all(r.ok for r in reports), [str(r) for r in reports]
    assert pitfalls.check_epoch_complete(batches, stored).ok
    read_only = np.load(path, mmap_mode="r")
    assert pitfalls.check_index_stable(Indexable([read_only[:4], read_only[4:]])).ok
    assert path.read_bytes() == before


class DrawingAndWriting:
    """Batches that draw from the global RNGs as the dataset is built and as it is read,
    written into one buffer: every check reads it, the failing ones blame it too."""

    def __init__(self) -> None:
        np.random.rand(3)  # e.g. a random split made when the dataset is built
        random.random()
        self.buffer = np.zeros((4, 2))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Any:
        self.buffer[:] = np.random.rand(4, 2) + random.random()
        return self.buffer, self.buffer.mean(axis=1)


@pytest.mark.parametrize("check", sorted(SOURCE_CHECKS))
def test_no_checker_moves_the_global_rngs(check):
    """Bug: the factory was called, and the blame pass read the source, outside the span
    whose RNGs were put back: numpy's and Python's global RNGs came back moved."""
    extra = {"targets_match": lambda x: x.mean(axis=1), "epoch_complete": np.zeros((8, 2))}
    before = random.getstate(), np.random.get_state()
    run_source_check(check, DrawingAndWriting, {}, extra.get(check))
    assert random.getstate() == before[0], "random's state moved"
    np.testing.assert_equal(np.random.get_state(), before[1], "np.random's state moved")


@pytest.mark.parametrize("name", sorted(n for n in pitfalls.__all__ if n.startswith("assert_")))
def test_a_msg_that_is_not_a_str_is_misuse_said_before_any_check(name):
    """Bug: msg=5 was accepted while the check passed, then broke the failure message it
    was meant to extend (a TypeError from str.join in place of the real error)."""
    check = getattr(pitfalls, name)
    required = {
        p.name: None
        for p in inspect.signature(check).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    with pytest.raises(TypeError, match=r"^msg must be a str or None, got int 5$"):
        check(**required, msg=5)
