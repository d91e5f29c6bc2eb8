"""Pipelines as people write them: every planted bug fails the right check, with a hint
that fits, and random augmentation neither hides a bug nor gets blamed for one.

The pipelines are in pitfalls.reproductions.pipelines: a PyDataset-style dataset
(shuffled indices, random flips, integer labels), run as a plain class, as a real
keras.utils.PyDataset and through a factory returning one, and a PyTorch-style
loader (a new batch order per epoch, random brightness, float targets).
"""

from __future__ import annotations

import functools
import random
import types

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import pipelines as P

IMAGES, LABELS = P.image_data()
CHECKS = ("generator_no_aliasing", "targets_match", "index_stable", "epoch_repeatable")
CHECKS += ("order_shuffled",)

# What each planted bug fails, and a phrase its hint must hold; every other check passes.
# In-place scaling changes the samples, so their order cannot be compared: inconclusive.
EXPECTED = {
    P.BufferOnSelf: {
        "generator_no_aliasing": "allocate the batch inside __getitem__",
        "targets_match": "allocate the batch inside __getitem__",
    },
    P.ScaledInPlace: {
        "index_stable": "transform a copy inside __getitem__",
        "epoch_repeatable": "transform a copy inside __getitem__",
        "order_shuffled": None,
    },
    P.ShuffleIgnored: {"order_shuffled": "shuffle self.indices in on_epoch_end"},
    P.SameSeedEveryEpoch: {"order_shuffled": "shuffle self.indices in on_epoch_end"},
    P.LabelsBeforeFlip: {"targets_match": "compute each label from the augmented inputs"},
    P.LoaderBufferOnSelf: {
        "generator_no_aliasing": "allocate the batch inside __iter__",
        "targets_match": "allocate the batch inside __iter__",
    },
    P.LoaderScaledInPlace: {
        "epoch_repeatable": "transform a copy inside __iter__",
        "order_shuffled": None,
    },
    P.LoaderShuffleIgnored: {"order_shuffled": "draw a new permutation in every __iter__"},
    P.LoaderSameSeedEveryEpoch: {"order_shuffled": "make the generator once, in __init__"},
    P.LoaderTargetsBeforeScaling: {
        "targets_match": "compute the targets from the augmented inputs"
    },
}
FIXED = (P.FlipBatches, P.ScaledCopy, P.BrightnessLoader)
KINDS = ("plain", "PyDataset", "factory")


def source(cls, kind, request):
    """A fresh source of ``cls``: the dataset as a plain class, a PyDataset, a factory; a loader."""
    images = IMAGES.copy()  # the in-place bugs write the stored images
    if issubclass(cls, P.BrightnessLoader):
        return cls(images, 4)  # 16 batches: enough for draws=16
    if kind == "plain":
        return cls(images, LABELS)
    request.getfixturevalue("keras")  # TensorFlow is imported only by these tests
    made = P.pydataset(cls)
    if kind == "PyDataset":
        return made(images, LABELS)

    def train_batches():  # a factory, as a training script has one
        return made(images, LABELS)

    return train_batches


def rule(cls):
    return P.mean_brightness if issubclass(cls, P.BrightnessLoader) else P.brighter_side


def cases(classes):
    return [
        pytest.param(
            cls,
            kind,
            id=f"{cls.__name__}-{kind}",
            marks=[pytest.mark.frameworks("keras")] if kind in ("PyDataset", "factory") else [],
        )
        for cls in classes
        for kind in (("loader",) if issubclass(cls, P.BrightnessLoader) else KINDS)
    ]


def run_source(cls, kind, request):
    reports = pitfalls.check_source(source(cls, kind, request), rule(cls), shuffled=True)
    return {r.check: r for r in reports}


@pytest.fixture(scope="module")
def checked(request):
    """``run_source`` once per (class, kind), shared by the tests that read its reports:
    reports are frozen, so no test can change what another reads."""
    done = {}

    def get(cls, kind):
        if (cls, kind) not in done:
            done[cls, kind] = run_source(cls, kind, request)
        return done[cls, kind]

    return get


# Each bug fails the right check with a hint that fits; each fix passes -----------------


def run_functions(cls, kind, request):
    """Each check on its own, each on a fresh source: what check_source must agree with."""
    fn = rule(cls)
    alone = {
        "generator_no_aliasing": pitfalls.check_generator_no_aliasing(source(cls, kind, request)),
        "targets_match": pitfalls.check_targets_match(source(cls, kind, request), fn),
        "epoch_repeatable": pitfalls.check_epoch_repeatable(source(cls, kind, request)),
        "order_shuffled": pitfalls.check_order_shuffled(source(cls, kind, request)),
    }
    if kind != "loader":
        alone["index_stable"] = pitfalls.check_index_stable(source(cls, kind, request))
    return alone


@pytest.mark.parametrize(("cls", "kind"), cases(EXPECTED))
def test_each_planted_bug_fails_the_right_check_with_a_hint_that_fits(cls, kind, request, checked):
    reports = checked(cls, kind)
    expected = EXPECTED[cls]
    for check, report in reports.items():
        if check not in expected:
            assert report.status == "passed", str(report)
        elif expected[check] is None:
            assert report.status == "inconclusive", str(report)
        else:
            assert report.status == "failed", str(report)
            assert expected[check] in report.hint, report.hint
    assert set(expected) <= set(reports)
    # The runner and the functions alone give the same verdicts and the same hints.
    alone = run_functions(cls, kind, request)
    assert {c: r.status for c, r in reports.items()} == {c: r.status for c, r in alone.items()}
    assert {c: r.hint for c, r in reports.items()} == {c: r.hint for c, r in alone.items()}


@pytest.mark.parametrize(("cls", "kind"), cases(FIXED))
def test_each_fixed_twin_passes_every_check(cls, kind, request):
    reports = run_source(cls, kind, request)
    expected = set(CHECKS) - ({"index_stable"} if kind == "loader" else set())
    assert set(reports) == expected
    assert [r.status for r in reports.values()] == ["passed"] * len(expected), [
        str(r) for r in reports.values() if not r.ok
    ]
    assert all(r.ok for r in run_functions(cls, kind, request).values())


def test_hints_fit_the_kind_of_data_and_source(checked):
    # Integer class labels are never told to use a floating dtype or a Dense(1) head;
    # float targets are never told about labels; a dataset is never told about loops.
    labels = checked(P.LabelsBeforeFlip, "plain")["targets_match"]
    assert "expand_dims" not in labels.hint and "floating" not in labels.hint
    floats = checked(P.LoaderTargetsBeforeScaling, "loader")["targets_match"]
    assert "label" not in floats.hint and "before the augmentation" in floats.hint
    buffer = checked(P.BufferOnSelf, "plain")["generator_no_aliasing"]
    assert "inside the loop" not in buffer.hint and "self.x[:] = ..." in buffer.hint
    same_seed = checked(P.LoaderSameSeedEveryEpoch, "loader")["order_shuffled"]
    assert "from the same seed" in same_seed.reason and "__iter__()'s rng" in same_seed.reason
    assert "Keras does not shuffle a generator" not in same_seed.reason
    ignored = checked(P.LoaderShuffleIgnored, "loader")["order_shuffled"]
    assert "shuffle option is ignored" in ignored.reason


def test_a_generator_made_anew_each_epoch_is_blamed_only_when_its_seed_repeats():
    """Bug: any generator found new in an epoch's iterator was named as "made anew from the
    same seed" (a name rule on where it was found). The evidence is its state: here it is
    seeded differently every epoch, and draws nothing the order depends on, so the order
    repeats for another reason (the loop never shuffles)."""

    class FreshSeedEachEpoch:
        def __init__(self):
            self.x = np.arange(32.0).reshape(16, 2)
            self.epoch = 0

        def __len__(self):
            return 4

        def __iter__(self):
            self.epoch += 1
            rng = np.random.default_rng(self.epoch)  # another seed every epoch
            for b in range(4):
                rng.random()  # drawn, but the order never depends on it
                yield self.x[4 * b : 4 * b + 4], self.x[4 * b : 4 * b + 4, :1]

    report = pitfalls.check_order_shuffled(FreshSeedEachEpoch)
    assert report.cause == pitfalls.Cause.SAME_ORDER
    assert "from the same seed" not in report.reason


def test_targets_computed_before_the_augmentation_are_named_as_the_cause(checked):
    report = checked(P.LabelsBeforeFlip, "plain")["targets_match"]
    assert "targets computed before a random augmentation" in report.reason
    assert any(n.startswith("Randomness: the source drew from self.rng") for n in report.notes)
    # ...and only where the source augments stored samples: random *data* is no augmentation
    from pitfalls.reproductions import targets

    report = pitfalls.check_targets_match(targets.integer_division_buggy, targets.mean_target)
    assert not any(n.startswith("Randomness") for n in report.notes)
    assert "floating dtype" in report.hint


def test_the_in_place_bug_names_the_stored_array_it_wrote(checked):
    report = checked(P.ScaledInPlace, "plain")["epoch_repeatable"]
    assert "Stored data written while reading: self.images (64 of 64 rows)." in report.notes


@pytest.mark.frameworks("keras")
def test_check_source_runs_the_epoch_checks_wherever_the_source_has_a_length(request):
    for cls, kind in [(P.FlipBatches, "PyDataset"), (P.FlipBatches, "factory")]:
        reports = pitfalls.check_source(source(cls, kind, request))
        assert [r.check for r in reports] == [
            "generator_no_aliasing",
            "index_stable",
            "epoch_repeatable",
        ]
        assert reports[1].source == "indexable FlipBatches" + (
            " made by source.<locals>.train_batches()" if kind == "factory" else ""
        )
    loader = pitfalls.check_source(P.BrightnessLoader(IMAGES.copy(), 4))
    assert [r.check for r in loader] == ["generator_no_aliasing", "epoch_repeatable"]
    assert loader[1].source == "iterable BrightnessLoader"


def test_a_factory_is_checked_as_the_pydataset_it_returns(keras):
    factory = functools.partial(P.pydataset(P.FlipBatches), IMAGES, LABELS)
    report = pitfalls.check_index_stable(factory)
    assert report.ok and report.batches == 8 and report.source.startswith("indexable FlipBatches")
    assert pitfalls.check_epoch_repeatable(factory).batches == 24  # 3 epochs of 8, not 100000


def test_keras_fit_reorders_whole_batches_of_an_unshuffled_pydataset(recording_model_class):
    # Pinned, because the order_shuffled hint says so: Keras' fit (shuffle=True by default)
    # shuffles a PyDataset's batch order, never the samples inside a batch.
    import keras

    class Unshuffled(keras.utils.PyDataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            x = np.arange(8.0).reshape(4, 2) + 10 * i
            return x, x.sum(axis=1)

    model = recording_model_class()
    model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
    model.fit(Unshuffled(), epochs=2, verbose=0)
    firsts = [x[0, 0] for x, _ in model.seen]
    first, second = firsts[:6], firsts[6:]
    assert sorted(first) == sorted(second) == [10.0 * i for i in range(6)]  # same batches
    assert first != second  # in another order
    with pytest.raises(pitfalls.OrderNotShuffledError, match="reorders whole"):
        pitfalls.assert_order_shuffled(Unshuffled())


# Random augmentation: no miss, no false blame --------------------------------------

MODULE_RNG = np.random.default_rng(7)


class Noisy:
    """Indexable: 32 two-feature samples with integer labels, plus noise from ``how``'s RNG.

    ``shuffle``: ``on_epoch_end`` reorders ``self.indices`` with the same RNG;
    ``in_place``: ``x /= 2`` on a slice of the stored data (the bug).
    """

    def __init__(self, how, *, shuffle=True, in_place=False):
        self.how, self.shuffle, self.in_place = how, shuffle, in_place
        self.data = np.arange(64.0).reshape(32, 2)
        self.labels = np.arange(32) % 3
        self.indices = np.arange(32)
        self.rng = np.random.default_rng(1)
        self.state = np.random.RandomState(1)

    def __len__(self):
        return 8

    def draw(self, n):
        return {
            "numpy global": lambda: np.random.normal(size=n),
            "python random": lambda: np.array([random.gauss(0, 1) for _ in range(n)]),
            "self.rng": lambda: self.rng.normal(size=n),
            "RandomState": lambda: self.state.normal(size=n),
            "module RNG": lambda: MODULE_RNG.normal(size=n),
        }[self.how]()

    def __getitem__(self, i):
        rows = self.indices[4 * i : 4 * i + 4]
        if self.in_place:
            x = self.data[4 * i : 4 * i + 4]
            x /= 2.0
            rows = np.arange(4 * i, 4 * i + 4)
        else:
            x = self.data[rows]
        return x + self.draw(4)[:, None], self.labels[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.indices = self.indices[np.argsort(self.draw(32))]


def hidden(*, shuffle=True, in_place=False):
    """A Noisy dataset drawing from a generator pitfalls cannot reach, and a hook reseeding it."""
    elsewhere = types.ModuleType("elsewhere")
    elsewhere.rng = np.random.default_rng(3)

    class Hidden(Noisy):
        def draw(self, n):
            # another module's, neither held nor named, drawn from by C code (map): seen
            # drawing on no Python version
            return next(map(elsewhere.rng.normal, [0.0], [1.0], [n]))

    def reseed(seed):
        elsewhere.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state

    return Hidden("hidden", shuffle=shuffle, in_place=in_place), reseed


VISIBLE = ("numpy global", "python random", "self.rng", "RandomState", "module RNG")


@pytest.mark.parametrize("how", VISIBLE)
def test_augmentation_from_any_rng_pitfalls_reaches_passes_when_the_pipeline_is_right(how):
    for check in (pitfalls.check_index_stable, pitfalls.check_epoch_repeatable):
        report = check(Noisy(how))
        assert report.ok, str(report)
        assert any(n.startswith("Randomness: the source drew from") for n in report.notes)
    assert pitfalls.check_order_shuffled(Noisy(how)).ok


@pytest.mark.parametrize("how", VISIBLE)
def test_augmentation_does_not_hide_a_missing_shuffle(how):
    # The miss the issue found: with noise on, epoch 2 never equals epoch 1 byte for byte.
    # Read as training reads them, the two epochs' targets come in the same sequence.
    report = pitfalls.check_order_shuffled(Noisy(how, shuffle=False))
    assert report.status == "failed"
    assert report.findings[0].problem == (
        "epoch 2 repeats epoch 1's sequence of all 32 targets (the inputs differ: random per read)"
    )


@pytest.mark.parametrize("how", [*VISIBLE, "hidden"])
def test_augmentation_does_not_hide_in_place_writes(how):
    source = hidden(in_place=True)[0] if how == "hidden" else Noisy(how, in_place=True)
    report = pitfalls.check_epoch_repeatable(source)
    assert report.status == "failed"
    assert "transform a copy inside __getitem__" in report.hint
    assert "Stored data written while reading: self.data" in report.notes[0]


def test_randomness_pitfalls_cannot_reach_is_never_passed_nor_blamed_on_the_data():
    # A generator in a closure: no RNG pitfalls reaches moves, no stored array changes, no
    # attribute of the source changes. No evidence of a bug: it cannot judge, and says what
    # to pass; it never blames x /= 255.
    for check in (pitfalls.check_index_stable, pitfalls.check_epoch_repeatable):
        report = check(hidden()[0])
        assert report.status == "inconclusive", str(report)
        assert "pass reseed=" in report.inconclusive.lower() and "x /= 255" not in str(report)
    shuffled = pitfalls.check_order_shuffled(hidden()[0])
    assert shuffled.status == "inconclusive"  # shuffled, but it cannot be shown: not passed
    assert "pass reseed=" in shuffled.inconclusive
    # An unshuffled one is still caught, by its labels, which the noise does not touch.
    unshuffled = pitfalls.check_order_shuffled(hidden(shuffle=False)[0])
    assert unshuffled.status == "failed"
    assert "sequence of all 32 targets" in unshuffled.findings[0].problem


def test_randomness_seen_but_not_controlled_is_inconclusive():
    # The source draws from np.random (seen, reseeded) and from a hidden generator too.
    dataset, _ = hidden()
    dataset.draw = lambda n, draw=dataset.draw: draw(n) + np.random.normal(size=n)
    for check in (pitfalls.check_index_stable, pitfalls.check_epoch_repeatable):
        report = check(dataset)
        assert report.status == "inconclusive", str(report)
        assert report.inconclusive.startswith(
            "The source is random per read (it drew from np.random (global))"
        )


def test_a_reseed_hook_reaches_the_generators_pitfalls_cannot():
    for check in (
        pitfalls.check_index_stable,
        pitfalls.check_epoch_repeatable,
        pitfalls.check_order_shuffled,
    ):
        dataset, reseed = hidden()
        report = check(dataset, reseed=reseed)
        assert report.ok, str(report)
        assert report.parameters["reseed"] is reseed
    dataset, reseed = hidden(shuffle=False)
    assert pitfalls.check_order_shuffled(dataset, reseed=reseed).status == "failed"
    reports = pitfalls.check_source(hidden()[0], reseed=hidden()[1])  # not its own RNG
    assert [r.status for r in reports] == ["passed", "inconclusive", "inconclusive"]
    dataset, reseed = hidden()
    assert all(r.ok for r in pitfalls.check_source(dataset, reseed=reseed))


def test_the_hook_gets_the_same_seed_before_both_reads_of_an_index():
    seeds = []
    pitfalls.check_index_stable(Noisy("self.rng"), draws=3, reseed=seeds.append)
    assert seeds == [0, 1, 2, 2, 1, 0]


def test_an_inconclusive_report_raises_inconclusive_error_not_the_pitfalls():
    # No pitfall was shown: the error says the check could not judge, and what to pass.
    errors = (
        pitfalls.OrderNotShuffledError,
        pitfalls.IndexUnstableError,
        pitfalls.EpochChangedError,
    )
    with pytest.raises(pitfalls.InconclusiveError, match="could not judge") as info:
        pitfalls.assert_order_shuffled(hidden()[0])
    assert not isinstance(info.value, errors) and "reseed=" in str(info.value)
    dataset, _ = hidden()
    dataset.draw = lambda n, draw=dataset.draw: draw(n) + np.random.normal(size=n)
    for check in (pitfalls.assert_index_stable, pitfalls.assert_epoch_repeatable):
        with pytest.raises(pitfalls.InconclusiveError, match="could not judge") as info:
            check(dataset)
        assert not isinstance(info.value, errors) and "reseed=" in str(info.value)


def test_a_counter_is_still_blamed_and_not_excused_as_randomness():
    class ServesNext(Noisy):
        def __init__(self):
            super().__init__("self.rng")
            self.calls = 0

        def __getitem__(self, i):
            self.calls += 1
            return super().__getitem__(self.calls % 8)  # ignores i, still augments

    report = pitfalls.check_index_stable(ServesNext())
    assert report.status == "failed"
    assert report.notes[0].startswith("Served by another index: on the second read, index")


def test_every_rng_is_put_back_as_it_was(keras):
    dataset = Noisy("self.rng")
    random.seed(5)
    np.random.seed(5)
    keras.utils.set_random_seed(5)
    before = (random.getstate(), np.random.get_state()[1].copy(), dataset.rng.bit_generator.state)
    from keras.src.backend.common import global_state
    from keras.src.utils import rng_utils

    # Keras 3.10+ records the seed set_random_seed was given (get_random_seed); before, none
    recorded = 5 if hasattr(rng_utils, "get_random_seed") else None

    pitfalls.check_source(dataset, shuffled=True)
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    assert dataset.rng.bit_generator.state == before[2]
    assert global_state.get_global_attribute("global_random_seed") == recorded


def test_keras_seed_generators_held_by_the_source_are_reseeded(keras):
    class KerasNoise(Noisy):
        def __init__(self):
            super().__init__("self.rng", shuffle=False)
            self.seed_generator = keras.random.SeedGenerator(11)

        def __len__(self):
            return 4  # half of Noisy's batches: every draw here is a TensorFlow op

        def draw(self, n):
            return np.asarray(keras.random.normal((n,), seed=self.seed_generator))

    report = pitfalls.check_index_stable(KerasNoise(), draws=3)
    assert report.ok, str(report)
    assert "self.seed_generator" in report.notes[0]
    assert pitfalls.check_order_shuffled(KerasNoise()).status == "failed"


def test_torch_augmentation_is_reseeded_where_torch_is_installed(torch):

    class TorchNoise(Noisy):
        def draw(self, n):
            return torch.randn(n).numpy().astype(np.float64)

    assert pitfalls.check_index_stable(TorchNoise("torch")).ok
    assert pitfalls.check_order_shuffled(TorchNoise("torch", shuffle=False)).status == "failed"


@pytest.mark.parametrize(
    "call",
    [
        lambda: pitfalls.check_index_stable(Noisy("self.rng"), reseed=3),
        lambda: pitfalls.check_epoch_repeatable(Noisy("self.rng"), reseed="seed"),
        lambda: pitfalls.check_order_shuffled(Noisy("self.rng"), reseed=[]),
        lambda: pitfalls.check_source(Noisy("self.rng"), reseed=1.0),
    ],
)
def test_reseed_must_be_callable(call):
    with pytest.raises(TypeError, match="reseed must be callable, got"):
        call()


def test_an_augmenting_source_is_not_judged_incomplete():
    # Augmented samples are never rows of the dataset: inconclusive, not "dropped".
    report = pitfalls.check_epoch_complete(Noisy("self.rng"), np.arange(64.0).reshape(32, 2))
    assert report.status == "inconclusive"
    assert report.inconclusive.startswith("The source is random per read (it drew from self.rng)")
    clean = Noisy("self.rng")
    clean.draw = lambda n: np.zeros(n)
    assert pitfalls.check_epoch_complete(clean, np.arange(64.0).reshape(32, 2)).ok


def test_a_generator_in_a_factorys_closure_is_found_and_reseeded():
    def make_batches(data, rng):
        def batches():  # the factory: one epoch of noisy batches, in stored order
            for i in range(0, len(data), 4):
                yield data[i : i + 4] + rng.normal(size=(4, 1)), np.arange(i, i + 4)

        return batches

    factory = make_batches(np.arange(64.0).reshape(32, 2), np.random.default_rng(5))
    report = pitfalls.check_epoch_repeatable(factory)
    assert report.ok, str(report)
    assert report.notes[-1].startswith("Randomness: the source drew from batches()'s rng")
    assert pitfalls.check_order_shuffled(factory).status == "failed"
