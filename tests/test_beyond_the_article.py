"""Pitfalls next door: epochs that change, orders that never do, integer targets,
and one source shared by several workers.

Each buggy reproduction fails its checker; each fix passes. Reproductions are
in pitfalls.reproductions.epochs, .targets and .workers.
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pitfalls
from pitfalls.reproductions import epochs, targets, workers
from tests.fresh_python import printed_json


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


def test_keras_warns_and_ignores_shuffle_for_a_generator(keras):
    # Pinned: if Keras starts shuffling generators (or stops warning), this fails.
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(loss="mse", run_eagerly=True)  # Keras' data adapter warns: no graph needed
    source = epochs.same_order_every_epoch(images(), 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(source, steps_per_epoch=1, epochs=1, verbose=0, shuffle=True)
    warned = any("`shuffle=True` was passed, but will be ignored" in str(w.message) for w in caught)
    # Keras 3.15 warns; 3.1 to 3.14 (all of them on Python 3.10) ignore it silently: the
    # warning was commented out there.
    version = tuple(int(part) for part in keras.version().split(".")[:2])
    assert warned == (version >= (3, 15))


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
        (  # rows of another width than the samples: misuse, not "every sample dropped"
            lambda: pitfalls.check_epoch_complete([np.zeros((4, 2))], np.zeros((4, 3))),
            r"^dataset's samples are shape \(3,\) float64, but the source's batches hold"
            r" samples of shape \(2,\) float64: dataset must hold the samples as the source"
            " delivers them, in the same shape and dtype, since they are compared byte for byte$",
        ),
        (  # the same numbers in another dtype have other bytes
            lambda: pitfalls.check_epoch_complete([np.zeros((4, 2), np.float32)], np.zeros((4, 2))),
            r"dataset's samples are shape \(2,\) float64, but .* shape \(2,\) float32",
        ),
    ],
)
def test_epoch_misuse(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Epochs without an end, epochs that restart --------------------------------------------


def endless(batch_size=8):
    """An endless generator of fresh random batches: no epoch ends, nothing says where."""
    rng = np.random.default_rng(0)
    while True:
        x = rng.random((batch_size, 2))
        yield x, x.sum(axis=1)


@pytest.fixture
def few_batches_are_endless(monkeypatch):
    """The limits of an epoch without an end (5,000 batches, 10**6 samples, 512 MB of
    inputs), lowered to 40 batches so that reaching them takes milliseconds."""
    from pitfalls import _reader

    monkeypatch.setattr(_reader, "_ENDLESS", (40, 10**6, 2**29))


ENDLESS = (
    "source has no end after 40 batches (320 samples, 5 kB of inputs) in one epoch: pass"
    " steps_per_epoch=, the batches of one epoch, if it is endless (or if its epochs are"
    " longer still)"
)


def test_an_endless_source_without_steps_per_epoch_is_misuse_said_early(few_batches_are_endless):
    """Bug: an endless generator with shuffled=True and no steps_per_epoch read 100,000
    batches, keeping a copy of every sample: minutes, or a MemoryError blamed on the source."""
    for call in (
        lambda: pitfalls.check_source(endless, shuffled=True),
        lambda: pitfalls.check_epoch_repeatable(endless, timeout=None),
        lambda: pitfalls.check_epoch_complete(endless, np.zeros((4, 2))),
    ):
        with pytest.raises(ValueError) as raised:
            call()
        assert str(raised.value) == ENDLESS
    # with the length of an epoch, the same source is read: two epochs of 4 batches, after
    # one more that found the generator's own rng (a local variable, once it runs)
    assert pitfalls.check_epoch_repeatable(endless, steps_per_epoch=4).batches == 12


def test_a_finite_source_without_a_length_is_still_one_epoch(few_batches_are_endless):
    data = np.arange(60.0).reshape(30, 2)  # 30 batches of 1: under the limit, then it ends
    pitfalls.assert_epoch_repeatable(lambda: iter([data[i : i + 1] for i in range(30)]))
    pitfalls.assert_epoch_complete(lambda: iter([data[i : i + 1] for i in range(30)]), data)


def test_an_epoch_as_long_as_its_dataset_is_never_called_endless(few_batches_are_endless):
    """Bug: a generator of 6,000 batches of one row, checked against its 6,000-row dataset,
    was refused as endless after 5,000 batches; the dataset's length raises the limits."""
    data = np.arange(120.0).reshape(60, 2)  # 60 batches of 1: past the lowered limit of 40
    pitfalls.assert_epoch_complete(lambda: iter([data[i : i + 1] for i in range(60)]), data)


def test_an_epoch_of_big_samples_as_big_as_its_dataset_is_never_called_endless(monkeypatch):
    """Bug: 2,000 images of 160x160x3 (614 MB) against the same array stopped at 512 MB of
    inputs, "no end"; the dataset's size in bytes raises that limit too."""
    from pitfalls import _reader

    monkeypatch.setattr(_reader, "_ENDLESS", (5000, 10**6, 500))  # 500 bytes, for speed
    data = np.arange(120.0).reshape(60, 2)  # 960 bytes, read in 60 batches of 1
    pitfalls.assert_epoch_complete(lambda: iter([data[i : i + 1] for i in range(60)]), data)


def noisy_stream(data, seed=0):
    """An endless generator that shuffles and adds noise from its own generator, made
    once, before its epoch loop: correct."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(data))
        for start in range(0, len(data), 8):
            x = data[order[start : start + 8]] + rng.normal(scale=0.01, size=(8, data.shape[1]))
            yield x, x.mean(axis=1)


def test_an_endless_generator_augmenting_with_its_own_generator_passes_both_epoch_checks():
    """Bug: its generator, a local variable, exists only once the generator runs, so the
    first epoch was read unseeded and both checks were inconclusive on a correct source.
    An epoch that found a generator as it ran is read once more, reseeded from its start."""
    data = images(n=48).reshape(48, -1)[:, :4]
    pitfalls.assert_epoch_repeatable(lambda: noisy_stream(data), steps_per_epoch=6)
    pitfalls.assert_order_shuffled(lambda: noisy_stream(data), steps_per_epoch=6)


def test_samples_that_are_not_rows_of_dataset_are_named_so_or_cannot_be_judged():
    """Bug: a source that normalises its samples (or a dataset passed raw) read "a source
    shared by several workers without a lock": none is a row now says it cannot judge,
    and some strangers are named as what they are."""
    data = np.arange(16.0).reshape(8, 2)
    normalised = pitfalls.check_epoch_complete([data[:4] / 10, data[4:] / 10], data)
    assert normalised.status == "inconclusive"
    assert normalised.inconclusive.startswith("No sample the epoch delivered is a row of dataset")
    some = pitfalls.check_epoch_complete([data[:4], data[4:] / 10], data)
    assert some.status == "failed"
    assert some.reason.startswith("An epoch delivered samples that are not rows of dataset")


def test_a_sample_is_kept_as_a_16_byte_digest_not_a_copy():
    """Memory per sample read is fixed: the epoch checks compare digests of the bytes."""
    from pitfalls._fingerprint import row_multiset, samples

    rows = np.random.default_rng(0).random((3, 3, 32, 32))  # 24 kB a sample
    digests = samples([rows], 3)
    assert [len(d) for d in digests] == [16, 16, 16] and len(set(digests)) == 3
    assert samples([rows.copy()], 3) == digests  # the same bytes, the same digest
    # the one fingerprint: a stored array's rows are digested as a sample's are
    assert row_multiset(rows) == Counter(digests)
    assert row_multiset(rows[:, :, ::2]) == Counter(samples([rows[:, :, ::2]], 3))  # strided


def test_memory_running_out_is_not_blamed_on_the_source():
    def batches():
        yield np.zeros((2, 2)), np.zeros(2)
        raise MemoryError

    with pytest.raises(MemoryError) as raised:
        pitfalls.check_epoch_repeatable(batches)
    assert raised.value.__notes__ == [
        "pitfalls: memory ran out while reading batch 1 of the source"
    ]


def test_a_factory_whose_epoch_ends_is_started_again_for_the_next_stretch():
    """Bug: with steps_per_epoch, a generator factory (Hugging Face's Dataset.iter) or a list
    that ends after one epoch stopped the check: "two epochs need 8" batches. A stream that
    ends exactly between two epochs is started again, as an iterable's next iter()."""
    data = np.arange(32.0).reshape(16, 2)
    batches = [(data[i : i + 4], data[i : i + 4].sum(axis=1)) for i in range(0, 16, 4)]
    pitfalls.assert_epoch_repeatable(lambda: iter(batches), steps_per_epoch=4)
    pitfalls.assert_epoch_repeatable(batches, steps_per_epoch=4)
    with pytest.raises(pitfalls.OrderNotShuffledError):
        pitfalls.assert_order_shuffled(lambda: iter(batches), steps_per_epoch=4)


# The order of the samples both epochs hold ---------------------------------------------


class LeavesOneOut:
    """A loader that leaves one random sample out of each epoch (a sampler without
    replacement of n - 1 samples), with its order drawn anew each epoch or not."""

    def __init__(self, shuffle):
        self.data = np.arange(64.0).reshape(32, 2)
        self.rng = np.random.default_rng(0)
        self.shuffle = shuffle

    def __len__(self):
        return 31

    def __iter__(self):
        left_out = self.rng.integers(32)
        order = self.rng.permutation(32) if self.shuffle else np.arange(32)
        for i in order[order != left_out]:
            yield self.data[i : i + 1], self.data[i : i + 1].sum(axis=1)


def test_the_samples_both_epochs_hold_show_their_order():
    """Bug: epochs differing in a few samples (one left out, a remainder dropped, a few
    augmented) could not be compared at all ("could not judge"), though the 30 samples both
    hold show whether their order changed."""
    report = pitfalls.check_order_shuffled(LeavesOneOut(shuffle=True))
    assert report.ok and "the 30 samples both hold come in another order" in report.summary
    report = pitfalls.check_order_shuffled(LeavesOneOut(shuffle=False))
    assert [f.problem for f in report.findings] == [
        "epoch 2 repeats epoch 1's order of the 30 samples both epochs hold (of 31)"
    ]


# Integer targets ------------------------------------------------------------------------


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


def test_one_worker_never_races():
    data = np.arange(32.0).reshape(16, 2)
    pitfalls.assert_epoch_complete(
        workers.round_robin(workers.SharedPositionBatches(data, 4), 4, 1), data
    )
    pitfalls.assert_epoch_complete(workers.SharedPositionBatches(data, 4), data, steps_per_epoch=4)


def batches_of(data, batch_size, *, whole_only):
    """One shuffled epoch of ``data``; ``whole_only`` stops before a partial batch, as
    range(0, n - batch_size + 1, batch_size) does (and drop_last=True, drop_remainder=True)."""
    order = np.random.default_rng(0).permutation(len(data))
    stop = len(data) - batch_size + 1 if whole_only else len(data)
    for i in range(0, stop, batch_size):
        x = data[order[i : i + batch_size]]
        yield x, x.reshape(len(x), -1).sum(axis=1)


def test_a_dropped_partial_batch_is_named_as_the_cause_and_its_fix_passes():
    """Bug: the last, partial batch left out (drop_last) was blamed on workers sharing an
    iterator without a lock. Exactly n mod batch_size missing, none twice: the remainder."""
    data = images(n=40)
    dropping = functools.partial(batches_of, data, 16, whole_only=True)
    report = pitfalls.check_epoch_complete(dropping, data)
    assert [(f.when, f.mismatched) for f in report.findings] == [("dropped", 40 % 16)]
    assert "its last, partial batch was dropped" in report.reason
    assert report.hint.startswith("yield the last, smaller batch too")
    pitfalls.assert_epoch_complete(functools.partial(batches_of, data, 16, whole_only=False), data)


def test_epoch_complete_reports_strangers_and_names_rows():
    data = np.arange(8.0).reshape(4, 2)
    report = pitfalls.check_epoch_complete([data[:2], data[:2] + 100], data)
    problems = [f.problem for f in report.findings]
    assert problems == [
        "2 / 4 samples never delivered; first: [2, 3]",
        "2 delivered samples are not rows of dataset",
    ]


def test_keras_pydataset_workers_deliver_every_index_once(recording_model_class):
    # Keras' ordered enqueuer hands each index to one worker: the fixed design.
    from pitfalls.reproductions import generators as gen

    dataset = gen.pydataset_fresh(8, seed=0, batches=12, workers=3)
    table = np.concatenate([dataset[i][0] for i in range(12)])
    model = recording_model_class()
    model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    model.fit(dataset, epochs=1, verbose=0)
    pitfalls.assert_epoch_complete([x for x, _ in model.seen], table)


# Worker processes and numpy's global RNG ----------------------------------------------


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
    return printed_json(WORKERS_SCRIPT)


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


def test_a_one_shot_iterator_class_is_made_again_for_each_epoch():
    # Its __iter__ returns itself without starting over: the second epoch, iter() of the
    # spent object, is empty, so the class (the factory) makes the next one.
    class Batches:
        def __init__(self):
            self.left = iter(range(4))

        def __iter__(self):
            return self

        def __next__(self):
            i = next(self.left)
            return np.full((2, 3), float(i)), np.zeros(2)

    assert pitfalls.check_epoch_repeatable(Batches).ok
