"""Pitfalls next door: epochs that change, orders that never do, integer targets,
and one source shared by several workers.

Each buggy reproduction fails its checker; each fix passes. Reproductions are
in pitfalls.reproductions.epochs, .targets and .workers.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pitfalls
from pitfalls.reproductions import epochs, targets, workers


def images(seed=0, n=64):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 4, 4)).astype(np.float32)


# Each example below runs whole checks. Derandomized (the default and CI profiles), ten
# fixed examples cover a seed and one of three batch sizes; --hypothesis-profile=explore
# keeps its own count.
few_examples = settings(max_examples=10) if settings.default.derandomize else settings()


# In-place preprocessing corrupts the next epoch ------------------------------------------


@few_examples
@given(st.integers(0, 2**32 - 1), st.sampled_from([8, 16, 32]))
def test_scaling_a_view_in_place_changes_the_next_epoch(seed, batch_size):
    data = images(seed)
    before = data.copy()
    with pytest.raises(pitfalls.EpochChangedError, match="samples of epoch 1 are not in epoch 2"):
        pitfalls.assert_epoch_repeatable(
            functools.partial(epochs.scaled_in_place, data, batch_size)
        )
    # every epoch read divided the stored data once more: two by the check, and more
    # by its diagnosis pass, which reads the source again to name the writing line
    assert np.all(data <= before / 255.0**2 * (1 + 1e-6))


@few_examples
@given(st.integers(0, 2**32 - 1), st.sampled_from([8, 16, 32]))
def test_scaling_a_copy_leaves_the_dataset_alone(seed, batch_size):
    data = images(seed)
    before = data.copy()
    pitfalls.assert_epoch_repeatable(functools.partial(epochs.scaled_copy, data, batch_size))
    np.testing.assert_array_equal(data, before)


def test_a_shuffled_but_unchanged_dataset_is_repeatable():
    data = images()
    pitfalls.assert_epoch_repeatable(
        functools.partial(epochs.reshuffled_every_epoch, data, 16), steps_per_epoch=4
    )


def test_an_indexable_source_is_read_across_on_epoch_end():
    class NormalisesInPlace:
        def __init__(self):
            self.data = images()

        def __len__(self):
            return 4

        def __getitem__(self, i):
            x = self.data[16 * i : 16 * i + 16]
            x -= 1.0  # "centre" the batch: writes self.data
            return x, x.sum(axis=(1, 2))

        def on_epoch_end(self):
            pass

    with pytest.raises(pitfalls.EpochChangedError):
        pitfalls.assert_epoch_repeatable(NormalisesInPlace)


# Generators are not shuffled for you -------------------------------------------------


def test_a_generator_in_stored_order_is_not_shuffled():
    source = functools.partial(epochs.same_order_every_epoch, images(), 16)
    with pytest.raises(
        pitfalls.OrderNotShuffledError, match="repeats epoch 1's order of all 64 samples"
    ):
        pitfalls.assert_order_shuffled(source, steps_per_epoch=4)


@few_examples
@given(st.integers(0, 2**32 - 1))
def test_a_generator_that_permutes_each_epoch_is(seed):
    source = functools.partial(epochs.reshuffled_every_epoch, images(), 16, seed=seed)
    pitfalls.assert_order_shuffled(source, steps_per_epoch=4)


def test_keras_warns_and_ignores_shuffle_for_a_generator(keras):
    # Pinned: if Keras starts shuffling generators (or stops warning), this fails.
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(loss="mse", run_eagerly=True)  # Keras' data adapter warns: no graph needed
    source = epochs.same_order_every_epoch(images(), 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(source, steps_per_epoch=1, epochs=1, verbose=0, shuffle=True)
    assert any("`shuffle=True` was passed, but will be ignored" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: pitfalls.check_order_shuffled(iter([np.zeros((2, 1))] * 4)),
            r"source is a list_iterator \(an iterator\), which can be read only once: pass its factory",
        ),
        (lambda: pitfalls.check_epoch_repeatable(lambda: iter([])), "source yielded no batches"),
        (
            lambda: pitfalls.check_epoch_repeatable(
                lambda: iter([np.zeros(2)] * 3), steps_per_epoch=2
            ),
            "two epochs of steps_per_epoch=2 need 4",
        ),
        (
            lambda: pitfalls.check_epoch_repeatable(
                lambda: iter([np.float64(1.0)] * 4), steps_per_epoch=2
            ),
            "inputs need a batch axis",
        ),
        (
            lambda: pitfalls.check_order_shuffled(lambda: iter([]), steps_per_epoch=0),
            "steps_per_epoch=0 must be at least 1",
        ),
    ],
)
def test_epoch_misuse(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Integer targets ------------------------------------------------------------------------


@pytest.mark.parametrize(("buggy", "fixed"), targets.PAIRS, ids=lambda f: f.__name__)
def test_integer_targets_fail_when_yielded_with_a_hint_and_their_fixes_pass(buggy, fixed):
    report = pitfalls.check_targets_match(buggy, targets.mean_target)
    assert {f.when for f in report.findings} == {"when yielded"}
    assert len(report.notes) == 1 and report.notes[0].startswith("Integers: targets is ")
    pitfalls.assert_targets_match(fixed, targets.mean_target)


def test_the_uint8_note_names_the_wraparound():
    report = pitfalls.check_targets_match(targets.uint8_pixels_buggy, targets.mean_target)
    assert "uint8 (0..255)" in report.notes[0] and "x.astype(np.int64)" in report.notes[0]
    gaps = {expected - actual for f in report.findings for _, expected, actual in f.locations}
    assert any(gap >= 127.5 for gap in gaps)  # a pair summed past 255 and wrapped: 128 lost


def test_the_division_note_names_floor_division():
    report = pitfalls.check_targets_match(targets.integer_division_buggy, targets.mean_target)
    assert "integer division (//)" in report.notes[0]
    for _, expected, actual in report.findings[0].locations:
        assert expected - actual == 0.5


# Several workers, one source ---------------------------------------------------------


@given(st.integers(2, 4), st.sampled_from([2, 4, 8]))
def test_a_shared_position_duplicates_and_drops_batches_under_interleaving(n_workers, batch_size):
    data = np.arange(64 * 2, dtype=np.float64).reshape(64, 2)
    n_batches = 64 // batch_size
    delivered = workers.round_robin(
        workers.SharedPositionBatches(data, batch_size), n_batches, n_workers
    )
    assert len(delivered) == n_batches  # the epoch looks complete...
    report = pitfalls.check_epoch_complete(delivered, data)
    assert {f.when for f in report.findings} == {"duplicated", "dropped"}  # ...and is not


@given(st.integers(1, 4), st.sampled_from([2, 4, 8]))
def test_a_position_claimed_under_a_lock_delivers_each_batch_once(n_workers, batch_size):
    data = np.arange(64 * 2, dtype=np.float64).reshape(64, 2)
    delivered = workers.round_robin(
        workers.LockedPositionBatches(data, batch_size), 64 // batch_size, n_workers
    )
    pitfalls.assert_epoch_complete(delivered, data)


def test_one_worker_never_races():
    data = np.arange(32.0).reshape(16, 2)
    pitfalls.assert_epoch_complete(
        workers.round_robin(workers.SharedPositionBatches(data, 4), 4, 1), data
    )
    pitfalls.assert_epoch_complete(workers.SharedPositionBatches(data, 4), data, steps_per_epoch=4)


def test_epoch_complete_reports_strangers_and_names_rows():
    data = np.arange(8.0).reshape(4, 2)
    report = pitfalls.check_epoch_complete([data[:2], data[:2] + 100], data)
    problems = [f.problem for f in report.findings]
    assert problems == [
        "2 / 4 samples never delivered; first: [2, 3]",
        "2 delivered samples are not rows of dataset",
    ]


def watching(recording_model_class):
    """The recording model, its step recording what fit hands it and training on nothing:
    what the step receives is all these tests look at (an eager step that trains takes
    ~40 ms here)."""

    class Watching(recording_model_class):
        def train_step(self, data):
            x, y = data
            self.seen.append((np.array(x), np.array(y)))
            return {"loss": 0.0}

    return Watching


def test_keras_pydataset_workers_deliver_every_index_once(recording_model_class):
    # Keras' ordered enqueuer hands each index to one worker: the fixed design.
    from pitfalls.reproductions import generators as gen

    dataset = gen.pydataset_fresh(8, seed=0, batches=12, workers=3)
    table = np.concatenate([dataset[i][0] for i in range(12)])
    model = watching(recording_model_class)()
    model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    model.fit(dataset, epochs=1, verbose=0)
    pitfalls.assert_epoch_complete([x for x, _ in model.seen], table)


# Worker processes and numpy's global RNG ----------------------------------------------


def run_in_fresh_interpreter(script):
    """What ``script`` printed as JSON, run in a new Python: forking a process that
    runs TensorFlow's threads could deadlock, so the workers fork from this one."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


WORKERS_SCRIPT = """
import json, sys, time
import numpy as np
import pitfalls
from pitfalls.reproductions import workers

x = np.zeros(4)
np.random.seed(123)
before = np.random.get_state()[1][:4].tolist()
rng = {}
for init in (workers.inherit_parent_rng, workers.seed_per_worker):
    report = pitfalls.check_worker_randomness(
        lambda: workers.augment_with_global_rng(x), workers=3, worker_init=init
    )
    rng[init.__name__] = [f.path for f in report.findings]
rng["state_kept"] = np.random.get_state()[1][:4].tolist() == before
rng["tf"] = "tensorflow" in sys.modules

start = time.monotonic()
try:
    pitfalls.check_worker_randomness(lambda: time.sleep(60), timeout=0.2)
    hung = {"error": None}
except TimeoutError as exc:
    hung = {"error": str(exc)}
hung["seconds"] = time.monotonic() - start
print(json.dumps({"rng": rng, "hung": hung}))
"""


@pytest.fixture(scope="module")
def forked():
    # One fresh interpreter, importing numpy and pitfalls only, for both tests below:
    # what each worker drew, and a check whose workers never answer.
    return run_in_fresh_interpreter(WORKERS_SCRIPT)


def test_forked_workers_repeat_augmentations_unless_seeded_per_worker(forked):
    out = forked["rng"]
    assert out["inherit_parent_rng"] == ["workers 0 and 1", "workers 0 and 2", "workers 1 and 2"]
    assert out["seed_per_worker"] == []
    assert out["state_kept"] and not out["tf"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fn": 3}, TypeError, "fn must be callable"),
        ({"workers": 1}, ValueError, "workers=1 must be at least 2"),
        ({"calls": 0}, ValueError, "calls=0 must be at least 1"),
        ({"calls": "3"}, TypeError, "calls must be an int, got str '3'"),
        ({"timeout": float("inf")}, ValueError, "timeout=inf is longer than a week"),
        ({"timeout": 0}, ValueError, "timeout=0 must be a number of seconds above 0, or None"),
        ({"seed": -1}, ValueError, "seed=-1 must be at least 0"),
        ({"worker_init": "seed"}, TypeError, "worker_init must be callable"),
    ],
)
def test_worker_randomness_misuse(kwargs, error, match):
    with pytest.raises(error, match=match):
        pitfalls.check_worker_randomness(**{"fn": lambda: np.zeros(1), **kwargs})


def test_a_hung_worker_raises_timeout_error_naming_it_on_time(forked):
    # The workers sleep for a minute: they never answer within the timeout, so a short
    # one cannot make this flaky, and a loaded machine can only make it later. The
    # bound is loose; what matters is a TimeoutError that names the workers, not a
    # bare queue.Empty many seconds later.
    out = forked["hung"]
    assert out["error"].startswith("workers 0, 1 did not return within timeout=0.2 s")
    assert out["seconds"] < 10
