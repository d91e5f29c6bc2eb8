"""Pipelines as people write them: each planted bug caught by the right check.

What is seen. Real pipelines shuffle, augment at random and keep their data on
``self``, which is where the earlier pitfalls hide: a batch buffer kept on the
dataset, the stored images scaled in place, a shuffle that never happens or
happens the same way every epoch, labels computed before the augmentation that
changes them. Two small families reproduce them (``pitfalls.reproductions.
pipelines``): a Keras ``PyDataset``-style dataset of images that flips them at
random, and a PyTorch-style loader that draws a new order every epoch; each bug
is a subclass differing from the correct class by one method.

The invariant. A correct pipeline passes every data check however randomly it
augments: ``check_source`` runs them all (aliasing, targets, a re-read of each
index, two epochs) and each planted bug fails exactly the check for its pitfall,
naming the line of the subclass that broke it.
"""

from __future__ import annotations

import pytest

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import pipelines as P
from tests.lessons import Pitfall, buggy, fixed, unique

PITFALL = Pitfall(
    title="7. pipelines as people write them",
    invariant="a correct, randomly augmenting pipeline passes every check; each planted bug"
    " fails the check for its pitfall",
    read_more="docs/tutorial/engineer.md",
    pairs=P.PAIRS,
)

# What each planted bug fails, and why: every other check passes. Scaling the stored images
# in place changes the samples themselves, so their order cannot be compared: inconclusive.
FAILS = {
    P.BufferOnSelf: {
        "generator_no_aliasing": Cause.BATCH_CHANGED,
        "targets_match": Cause.BATCH_CHANGED,
    },
    P.ScaledInPlace: {
        "index_stable": Cause.STORED_DATA_WRITTEN,
        "epoch_repeatable": Cause.STORED_DATA_WRITTEN,
    },
    P.ShuffleIgnored: {"order_shuffled": Cause.SAME_ORDER},
    P.SameSeedEveryEpoch: {"order_shuffled": Cause.SAME_ORDER},
    P.LabelsBeforeFlip: {"targets_match": Cause.TARGETS_MISMATCH},
    P.LoaderBufferOnSelf: {
        "generator_no_aliasing": Cause.BATCH_CHANGED,
        "targets_match": Cause.BATCH_CHANGED,
    },
    P.LoaderScaledInPlace: {"epoch_repeatable": Cause.STORED_DATA_WRITTEN},
    P.LoaderShuffleIgnored: {"order_shuffled": Cause.SAME_ORDER},
    P.LoaderSameSeedEveryEpoch: {"order_shuffled": Cause.SAME_ORDER},
    P.LoaderTargetsBeforeScaling: {"targets_match": Cause.TARGETS_MISMATCH},
}
CHECKS = {
    False: {
        "generator_no_aliasing",
        "targets_match",
        "index_stable",
        "epoch_repeatable",
        "order_shuffled",
    },
    True: {"generator_no_aliasing", "targets_match", "epoch_repeatable", "order_shuffled"},
}
"""The checks check_source runs: on the dataset (indexable) and on the loader (no index)."""
INCONCLUSIVE = {P.ScaledInPlace: {"order_shuffled"}, P.LoaderScaledInPlace: {"order_shuffled"}}


def check_source(cls):
    """Every check on a fresh instance over a fresh copy of the images (the in-place bugs
    write them): the loader's rule is the mean brightness, the dataset's the brighter side."""
    images, labels = P.image_data()
    if issubclass(cls, P.BrightnessLoader):
        reports = pitfalls.check_source(cls(images, 4), P.mean_brightness, shuffled=True)
    else:
        reports = pitfalls.check_source(cls(images, labels), P.brighter_side, shuffled=True)
    made = {report.check: report for report in reports}
    assert set(made) == CHECKS[issubclass(cls, P.BrightnessLoader)]  # every check ran
    return made


@pytest.mark.parametrize("cls", buggy(*unique(b for b, _ in P.PAIRS)))
def test_each_planted_bug_fails_the_check_for_its_pitfall_and_names_its_line(cls):
    reports = check_source(cls)
    failed = {check: r.cause for check, r in reports.items() if r.status == "failed"}
    assert failed == FAILS[cls], "\n\n".join(map(str, reports.values()))
    for check, report in reports.items():
        if check in failed:
            print(report, end="\n\n")
            if report.cause in (Cause.BATCH_CHANGED, Cause.STORED_DATA_WRITTEN):
                # a write is traced to its line: in the buggy subclass, its one method
                # differing from the fix
                assert report.blame.frames[0].function.split(".")[0] == cls.__name__
        else:
            expected = "inconclusive" if check in INCONCLUSIVE.get(cls, ()) else "passed"
            assert report.status == expected, str(report)


@pytest.mark.parametrize("cls", fixed(*unique(f for _, f in P.PAIRS)))
def test_each_correct_pipeline_passes_every_check_however_it_augments(cls):
    for report in check_source(cls).values():
        assert report.status == "passed", str(report)
