"""assert_targets_match: the invariant "targets == target_fn(inputs)", now and later."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pitfalls import (
    Cause,
    TargetMismatchError,
    assert_source,
    assert_targets_match,
    check_source,
    check_targets_match,
)
from pitfalls._matching import TOLERANCES
from pitfalls.reproductions.generators import fresh_vectorized, mean_target, shared_input_buffer


def mean_of_pair(x):
    return x.mean(axis=1)


def uint8_pixels_with_wrapping_mean():
    r = np.random.default_rng(0)
    while True:
        x = r.integers(0, 256, size=(8, 2), dtype=np.uint8)
        yield x, (x[:, 0] + x[:, 1]) // 2  # uint8 + uint8 wraps past 255


def integer_division_target():
    r = np.random.default_rng(0)
    while True:
        x = r.integers(0, 100, size=(8, 2))
        yield x, (x[:, 0] + x[:, 1]) // 2  # floors 38.5 to 38


def test_integer_overflow_fails_when_yielded():
    with pytest.raises(TargetMismatchError, match="when yielded") as excinfo:
        assert_targets_match(
            uint8_pixels_with_wrapping_mean, lambda x: x.astype(np.int64).sum(axis=1) // 2
        )
    assert "integer" in str(excinfo.value) and "overflowed" in str(excinfo.value)


def test_integer_division_fails_when_yielded_and_names_the_elements():
    report = check_targets_match(integer_division_target, mean_of_pair)
    assert not report.ok
    first = report.findings[0]
    assert (first.batch, first.path, first.when) == (0, "targets", "when yielded")
    for index, expected, actual in first.locations:  # only the odd sums differ
        assert expected - actual == 0.5 and index[0] < 8


def test_shape_n_against_n_1_is_a_finding_not_a_broadcast():
    def source():
        while True:
            x = np.ones((4, 2))
            yield x, x.mean(axis=1)  # (4,)

    report = check_targets_match(source, lambda x: x.mean(axis=1, keepdims=True))
    assert report.findings[0].problem == "shape (4,), but target_fn gives (4, 1)"


def test_shared_input_fails_only_after_later_draws():
    report = check_targets_match(lambda: shared_input_buffer(8, seed=2), mean_target)
    assert {f.when for f in report.findings} == {"after later draws"}
    assert report.bad_batches == tuple(range(15))  # the last one was not overwritten yet
    assert "another batch's targets" in report.reason
    # the evidence, as data: batches changed after they were handed out
    assert report.cause is Cause.BATCH_CHANGED


def test_the_cause_tells_a_wrong_rule_from_rewritten_batches_and_a_pass_has_none():
    wrong = check_targets_match(integer_division_target, mean_of_pair)
    assert wrong.cause is Cause.TARGETS_MISMATCH and wrong.reason
    fine = check_targets_match(lambda: fresh_vectorized(8, seed=0, form="pair"), mean_target)
    assert fine.ok and fine.cause is None and fine.reason == "" and fine.hint == ""


def test_sample_weights_are_allowed_and_ignored():
    def source():
        for x, y in fresh_vectorized(4, seed=0, form="pair"):
            yield x, y, np.ones(4)

    assert_targets_match(source, mean_target)


def test_nested_targets_are_paired_in_order():
    def source():
        r = np.random.default_rng(0)
        while True:
            x = r.normal(size=(3, 2))
            yield {"x": x}, {"sum": x.sum(axis=1), "max": x.max(axis=1)}

    assert_targets_match(
        source, lambda inp: {"sum": inp["x"].sum(axis=1), "max": inp["x"].max(axis=1)}
    )


@pytest.mark.parametrize(("noise", "passes"), [(1e-9, True), (1e-3, False)])
def test_rtol_decides_what_is_close(noise, passes):
    def source():
        r = np.random.default_rng(0)
        while True:
            x = r.uniform(1, 2, size=(4, 2))
            yield x, x.mean(axis=1) * (1 + noise)

    assert check_targets_match(source, mean_of_pair, rtol=1e-6).ok is passes


def test_atol_allows_absolute_slack_near_zero():
    def source():
        while True:
            x = np.zeros((4, 2))
            yield x, np.full(4, 1e-6)

    assert not check_targets_match(source, mean_of_pair).ok  # float64's atol: 1e-7
    assert check_targets_match(source, mean_of_pair, atol=1e-5).ok


# Tolerances by dtype: rounding is no bug ---------------------------------------------------


def sums_in_sequence():
    """Correct float32 targets, summed left to right; numpy's x.sum sums pairwise."""
    r = np.random.default_rng(0)
    while True:
        x = r.normal(size=(8, 64)).astype(np.float32)
        yield x, np.cumsum(x, axis=1)[:, -1]


def row_sums(x):
    return x.sum(axis=1)


@pytest.fixture(scope="module")
def exact_sums():
    """The correct float32 sums compared with no tolerance at all: rounding shows."""
    return check_targets_match(sums_in_sequence, row_sums, draws=2, rtol=0, atol=0)


def test_the_default_tolerance_fits_the_dtypes_compared(exact_sums):
    """Bug: one rtol=1e-6, atol=0 for every dtype: correct float32 targets computed in
    another order (torch's x.mean(dim=1) against numpy's) failed, and int targets got a
    relative slack. Now float32 gets torch.testing.assert_close's 1.3e-6 and 1e-5."""
    assert not exact_sums.ok  # the sums do differ, by rounding
    report = check_targets_match(sums_in_sequence, row_sums, draws=2)
    assert report.ok
    assert (report.parameters["rtol"], report.parameters["atol"]) == TOLERANCES["float32"]


@pytest.mark.parametrize(
    ("targets", "inputs", "tolerances"),
    [
        (np.float16, np.float64, TOLERANCES["float16"]),
        (np.float32, np.float64, TOLERANCES["float32"]),
        (np.float64, np.float64, TOLERANCES["float64"]),
        (np.float64, np.float16, TOLERANCES["float64"]),  # float64 targets: exact in float64
        (np.complex64, np.float64, TOLERANCES["float32"]),
        (np.int64, np.float32, (0.0, 0.0)),  # integers compare exactly
        (np.bool_, np.float32, (0.0, 0.0)),
    ],
)
def test_the_least_precise_floating_dtype_involved_picks_the_tolerances(
    targets, inputs, tolerances
):
    x = np.ones((2, 2), dtype=inputs)
    y = np.ones(2, targets)
    report = check_targets_match([(x, y)] * 2, lambda x: y.copy(), draws=2)
    assert (report.parameters["rtol"], report.parameters["atol"]) == tolerances


def test_leaves_of_different_dtypes_show_each_tolerance_and_given_ones_win():
    x = np.ones((2, 2), np.float32)
    batch = (x, {"box": np.ones(2, np.float32), "label": np.ones(2, np.int64)})
    rule = lambda x: {"box": np.ones(2, np.float32), "label": np.ones(2, np.int64)}  # noqa: E731
    report = check_targets_match([batch] * 2, rule, draws=2)
    assert report.parameters["rtol"] == "1.3e-06 (float32), 0 (int64)"
    given = check_targets_match([batch] * 2, rule, draws=2, rtol=0.5)
    assert (
        given.parameters["rtol"] == 0.5 and given.parameters["atol"] == "1e-05 (float32), 0 (int64)"
    )


def test_targets_that_differ_only_by_rounding_say_so_and_which_atol_admits_it(exact_sums):
    """Bug: float32 rounding under a tight tolerance read "another rule ... np.expand_dims
    for a Dense(1) head": the user hunted a bug that was not there."""
    assert exact_sums.reason.startswith("Targets differ from target_fn(inputs) only by rounding")
    (note,) = exact_sums.notes
    assert note.startswith("Rounding: every difference is within 8 float32 ulps")
    suggested = float(exact_sums.hint.split("atol=")[1].split()[0])
    assert suggested <= 1e-5  # a few ulps of the sums, not a blanket tolerance
    # the oracle: the atol the hint names does admit every difference
    assert check_targets_match(sums_in_sequence, row_sums, draws=2, rtol=0, atol=suggested).ok


def test_a_real_mismatch_is_not_called_rounding():
    def off_by_a_little():
        for x, y in sums_in_sequence():
            yield x, y + np.float32(1e-3)

    report = check_targets_match(off_by_a_little, row_sums, draws=2)
    assert not report.ok and "rounding" not in report.reason
    assert not any(n.startswith("Rounding") for n in report.notes)


def test_tiny_targets_are_not_all_close_to_each_other():
    """Bug: float32's atol=1e-5, applied as is, called any two targets below 1e-5 close:
    targets twice what the rule says passed. atol now shrinks with targets below 1."""

    def doubled():
        rng = np.random.default_rng(0)
        while True:
            x = rng.uniform(0, 1, (8, 3)).astype(np.float32)
            yield x, (2e-6 * x.sum(axis=1)).astype(np.float32)

    report = check_targets_match(doubled, lambda x: 1e-6 * x.sum(axis=1), draws=2)
    assert not report.ok and report.parameters["atol"] < 1e-5 / 2  # a few ulps of the inputs
    assert [(f.batch, f.path) for f in report.findings] == [(0, "targets"), (1, "targets")]
    assert not any(n.startswith("Rounding") for n in report.notes)


def test_a_cancellation_that_leaves_rounding_where_zero_is_meant_passes():
    """Targets centred on each row's mean: numpy's x - x.mean() leaves ~1e-16 where the
    rule computed another way gives exactly 0. Tiny targets get a smaller atol, but never
    below a few ulps of their inputs' scale, which is what such rounding leaves."""
    x = np.random.default_rng(1).uniform(1, 2, (8, 3))
    centred = x - x.mean(axis=1, keepdims=True)

    def rule(x):
        return np.zeros_like(x)  # the rule: centred constant rows

    constant = np.repeat(x[:, :1], 3, axis=1)  # every row constant: 0 is exact
    residue = constant - (constant.sum(axis=1, keepdims=True) / 3)  # numpy's rounding
    assert np.abs(residue).max() > 0  # the residue is there...
    assert check_targets_match([(constant, residue)] * 2, rule, draws=2).ok  # ...and admitted
    assert not check_targets_match([(x, centred)] * 2, rule, draws=2).ok


def test_half_precision_inputs_do_not_loosen_float64_targets():
    """Bug: float16 inputs gave float64 targets float16's rtol=1e-3, so a rule off by 0.05%
    passed. Targets computed from the inputs as yielded are exact in float64; an error
    below one float16 ulp could be either, so the check fails and says so."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, (8, 3)).astype(np.float16)
    exact = x.astype(np.float64).sum(axis=1)
    rule = lambda x: x.astype(np.float64).sum(axis=1)  # noqa: E731
    assert check_targets_match([(x, exact)] * 2, rule, draws=2).ok
    off = check_targets_match([(x, 1.003 * exact)] * 2, rule, draws=2)  # 0.3%: 3 ulps
    assert not off.ok and off.parameters["rtol"] == TOLERANCES["float64"][0]
    assert not any(n.startswith("Rounding") for n in off.notes)

    # Targets computed before the inputs were rounded to float16 differ by that rounding,
    # and the note says so rather than hiding it.
    unrounded = rng.uniform(1, 2, (8, 3))
    early = check_targets_match(
        [(unrounded.astype(np.float16), unrounded.sum(axis=1))] * 2, rule, draws=2
    )
    assert not early.ok and early.reason.startswith(
        "Targets differ from target_fn(inputs) only by rounding"
    )
    (note,) = early.notes
    assert "8 float16 ulps" in note and "before rounding the inputs to float16" in note


def test_a_large_input_column_the_targets_ignore_does_not_excuse_an_error_as_rounding():
    """Bug: the rounding bound was scaled by the largest input anywhere, so a timestamp
    column (1.7e9) made targets off by 0.5 read as float32 rounding, and the hint's atol
    made the bug pass."""
    x = np.array([[1.7e9, 1.0, 3.0], [1.7e9, 2.0, 4.0]], np.float32)
    report = check_targets_match(
        [(x, x[:, 1:].mean(axis=1) + 0.5)] * 2, lambda x: x[:, 1:].mean(axis=1), draws=2
    )
    assert not report.ok and "rounding" not in report.reason
    assert "atol=" not in report.hint


def test_torch_float32_means_pass_numpys_rule_by_default(torch):
    """The trial's case: x.mean(dim=1) in torch against np.asarray(x).mean(axis=1)."""

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(16, 16, generator=g)
            yield x, x.mean(dim=1)

    assert check_targets_match(batches, lambda x: np.asarray(x).mean(axis=1)).ok  # 16 draws


def test_check_source_and_assert_source_take_the_tolerances():
    """Bug: rtol and atol could not be passed through check_source or assert_source."""
    batches = [(np.zeros((2, 2)), np.full(2, 1e-3))] * 2
    reports = check_source(batches, mean_of_pair, draws=2, atol=1e-2, epochs=False)
    assert [(r.check, r.ok) for r in reports] == [
        ("generator_no_aliasing", True),
        ("targets_match", True),
    ]
    with pytest.raises(TargetMismatchError):
        assert_source(batches, mean_of_pair, draws=2, rtol=0.5, epochs=False)
    with pytest.raises(ValueError, match=r"^atol=-1.0 must be at least 0$"):
        check_source(batches, mean_of_pair, draws=2, atol=-1)
    with pytest.raises(TypeError, match=r"^rtol must be a number, got str '0.1'$"):
        assert_source(batches, mean_of_pair, draws=2, rtol="0.1")


# Integers: the wrap-around or the floor explains every mismatch -----------------------------


STORED_PIXELS = np.random.default_rng(0).integers(0, 256, (64, 2), dtype=np.uint8)


def sampled_pixel_means(seed=0):
    """Rows sampled at random from stored uint8 pixels (no augmentation); the mean of each
    pair computed in uint8, which wraps."""
    rng = np.random.default_rng(seed)
    while True:
        x = STORED_PIXELS[rng.integers(0, 64, 8)]
        yield x, (x[:, 0] + x[:, 1]) // 2


def widened_mean(x):
    return np.asarray(x).astype(np.int64).sum(axis=1) // 2


def test_a_wrap_around_that_explains_every_mismatch_leads_the_message():
    """Bug: sampling rows with an RNG read as augmentation, so a uint8 overflow got "a
    flipped image needs its flipped label" beside the right note."""
    report = check_targets_match(sampled_pixel_means, widened_mean, draws=4)
    assert "integer arithmetic" in report.reason and "overflowed" in report.reason
    assert report.hint.startswith("compute the targets in a wide integer or floating dtype")
    assert [n.split(":")[0] for n in report.notes] == ["Integers"]  # no augmentation story
    assert "flipped" not in report.hint


def test_narrow_inputs_that_wrap_before_a_wide_sum_get_their_own_note():
    """uint8 + uint8 wraps, and only the sum that follows widens (to uint64): the targets'
    dtype is wide, the inputs' is what wrapped."""

    def channel_sums():
        rng = np.random.default_rng(1)
        while True:
            x = STORED_PIXELS[rng.integers(0, 64, 8)].reshape(8, 1, 2)
            yield x, (x[..., :1] + x[..., 1:]).reshape(8, -1).sum(axis=1)

    report = check_targets_match(
        channel_sums, lambda x: np.asarray(x).astype(np.int64).reshape(8, -1).sum(axis=1), draws=4
    )
    assert report.notes == (
        "Integers: inputs is uint8 (0..255), and every mismatch of targets is off by about a"
        " multiple of 32, what a sum that wraps around in uint8 leaves (e.g. 255 + 1 = 0)"
        " before the result is widened: widen the inputs first, x.astype(np.int64).",
    )
    assert report.hint.startswith("compute the targets in a wide integer or floating dtype")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target_fn": "mean"}, TypeError, "target_fn must be callable, got str"),
        ({"rtol": -1.0}, ValueError, r"rtol=-1.0 must be at least 0"),
        ({"atol": float("nan")}, ValueError, r"atol=nan must be a finite number"),
        ({"rtol": "1e-6"}, TypeError, "rtol must be a number, got str"),
        ({"draws": 1}, ValueError, "draws=1 must be at least 2"),
    ],
)
def test_misuse_raises_a_clear_error(kwargs, error, match):
    args = {"source": lambda: fresh_vectorized(4, form="pair"), "target_fn": mean_target, **kwargs}
    with pytest.raises(error, match=match):
        assert_targets_match(**args)


def test_a_batch_without_targets_is_misuse():
    with pytest.raises(
        ValueError,
        match=r"batch 0 is a ndarray, with no targets to check: check_targets_match needs"
        r" batches of \(inputs, targets\[, sample_weights\]\) as a tuple or list, a dict with"
        r" a 'y', 'label', 'labels', 'target' or 'targets' key, or unpack=",
    ):
        assert_targets_match(lambda: iter([np.zeros(2)] * 20), mean_of_pair)


def test_target_fn_returning_none_is_misuse_that_names_the_missing_return():
    """Bug: a target_fn without `return` read "target_fn gives ()", a finding about shapes."""
    with pytest.raises(TypeError, match=r"^target_fn returned None for batch 0 \(when yielded\):"):
        check_targets_match(lambda: fresh_vectorized(4, form="pair"), lambda x: None)
    with pytest.raises(TypeError, match=r"^target_fn returned None at target_fn\(inputs\)\['y'\]"):
        check_targets_match([({"x": np.ones(2)}, {"y": np.ones(2)})] * 2, lambda x: {"y": None})


def test_target_fn_nested_unlike_the_targets_is_misuse():
    with pytest.raises(
        ValueError,
        match=r"target_fn returned 2 array\(s\) for batch 0, but the batch's targets hold 1",
    ):
        assert_targets_match(lambda: fresh_vectorized(4, form="pair"), lambda x: [x[:, 0], x[:, 1]])


def test_an_error_in_target_fn_keeps_its_type_and_says_which_batch():
    def boom(x):
        raise KeyError("no such column")

    with pytest.raises(KeyError) as excinfo:
        assert_targets_match(lambda: fresh_vectorized(4, form="pair"), boom)
    if sys.version_info >= (3, 11):
        assert excinfo.value.__notes__ == [
            "pitfalls: raised by target_fn on the inputs of batch 0 (when yielded)"
        ]


def test_msg_is_appended():
    with pytest.raises(TargetMismatchError) as excinfo:
        assert_targets_match(integer_division_target, mean_of_pair, msg="pipeline v2")
    assert str(excinfo.value).splitlines()[-1] == "pipeline v2"


def test_a_list_filled_from_one_buffer_is_named_as_one_buffer():
    """Bug: a list built by refilling one array (batches.append((buf, y))) had targets
    that mismatched "by another rule": nothing changed while the check drew, so memory
    went unmentioned. Every entry holds the last inputs written."""
    buffer, batches = np.zeros((4, 2)), []
    for k in range(4):
        buffer[:] = k
        batches.append((buffer, buffer.mean(axis=1)))  # the bug: buffer, not buffer.copy()
    report = check_targets_match(batches, mean_of_pair, draws=4)
    assert [f.batch for f in report.findings] == [0, 1, 2]  # the last one is consistent
    assert "the inputs of 4 batches share one buffer" in report.reason
    assert "batches.append((x.copy(), y))" in report.hint
    fixed = [(np.full((4, 2), float(k)), np.full(4, float(k))) for k in range(4)]
    assert check_targets_match(fixed, mean_of_pair, draws=4).ok


def test_the_same_views_read_again_are_not_one_buffer():
    """Bug: a list of four views of one array, read four times over (draws=16), had each
    batch "share one buffer" with itself: the wrong rule went unnamed. A buffer counts as
    shared only by batches whose targets differ."""
    x = np.arange(64.0).reshape(32, 2)
    views = [(x[i * 8 : (i + 1) * 8], x[i * 8 : (i + 1) * 8].mean(axis=1)) for i in range(4)]
    report = check_targets_match(views, lambda x: x.sum(axis=1), draws=16)
    assert not report.ok and "share one buffer" not in report.reason
    assert not any(n.startswith("Memory") for n in report.notes)


def test_a_difference_within_one_ulp_of_a_large_input_is_said_to_be_perhaps_rounding():
    """Durations t1 - t0 computed from float64 timestamps, yielded as float32 (1.7e6): the
    rule holds but the inputs were rounded after the targets were taken. The check still
    fails (a rule ignoring such an input would be wrong), and the note says what to try."""
    rng = np.random.default_rng(0)
    t0 = 1.7e6 + rng.uniform(0, 100, 8)
    times = np.stack([t0, t0 + rng.uniform(0, 5, 8)], axis=1)
    report = check_targets_match(
        [(times.astype(np.float32), times[:, 1] - times[:, 0])] * 2,
        lambda x: x[:, 1].astype(np.float64) - x[:, 0],
        draws=2,
    )
    assert not report.ok
    (note,) = report.notes
    assert note.startswith("Perhaps rounding: every difference (at most")
    assert "within one float32 ulp of the largest input (1.7e+06)" in note
