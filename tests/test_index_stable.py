"""assert_index_stable: source[i] must depend on i alone (workers read in any order).

Random augmentation is not "depending on more than i": both reads of an index are
made after reseeding every RNG the checker can reach (self.rng here) alike.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from pitfalls import IndexUnstableError, assert_index_stable, check_index_stable


class Sliced:
    """Each batch a slice of fixed data: stable."""

    def __init__(self):
        self.data = np.arange(40.0).reshape(20, 2)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return self.data[4 * i : 4 * i + 4], self.data[4 * i : 4 * i + 4].sum(axis=1)

    def on_epoch_end(self):
        pass


class CountsCalls(Sliced):
    """Ignores the index and serves the next batch: fine for one reader in order."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __getitem__(self, i):
        batch = super().__getitem__(self.calls % 5)
        self.calls += 1
        return batch


class UnseededAugmentation(Sliced):
    """Noise from a generator held on self, advanced by every read: reseeded alike."""

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + self.rng.normal(size=x.shape), y


def hidden_augmentation():
    """Noise from a numpy generator another module holds, reached through the module: in
    nothing the source holds or names, and drawn from by C code (map), so seen drawing on
    no Python version."""
    elsewhere = types.ModuleType("elsewhere")
    elsewhere.rng = np.random.default_rng(0)

    class Hidden(Sliced):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + next(map(elsewhere.rng.normal, [0.0], [1.0], [x.shape])), y

    def reseed(seed):
        elsewhere.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state

    return Hidden(), reseed


class ScalesInPlace(UnseededAugmentation):
    """Augments, and scales a slice of its data in place: the augmentation must not hide it."""

    def __getitem__(self, i):
        x = self.data[4 * i : 4 * i + 4]
        x /= 2.0  # writes self.data
        return x + self.rng.normal(size=x.shape), x.sum(axis=1)


class SeededAugmentation(Sliced):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + np.random.default_rng(i).normal(size=x.shape), y  # seeded by the index


class BufferOnSelf(Sliced):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        self.__dict__.setdefault("buf", np.empty_like(x))[:] = x
        return self.buf, y


@pytest.mark.parametrize(
    "source",
    [Sliced(), SeededAugmentation(), BufferOnSelf(), UnseededAugmentation()],
    ids=type,
)
def test_stable_sources_should_pass(source):
    assert_index_stable(source)
    assert check_index_stable(source).batches == 5  # all five, once forward and once back


def test_augmentation_from_self_rng_passes_and_says_it_was_reseeded():
    report = check_index_stable(UnseededAugmentation())
    assert report.notes == (
        "Randomness: the source drew from self.rng; every read compared was made after"
        " reseeding them alike, and they were put back afterwards.",
    )


def test_a_counter_should_fail_as_serving_another_index():
    with pytest.raises(IndexUnstableError, match="read again") as excinfo:
        assert_index_stable(CountsCalls())
    assert "derive each batch from its index alone" in str(excinfo.value)
    assert "a second read returned the batch another index gave first" in str(excinfo.value)


def test_in_place_writes_fail_with_the_array_they_wrote():
    report = check_index_stable(ScalesInPlace())
    assert report.status == "failed"
    assert report.notes[0] == "Stored data written while reading: self.data (4 of 20 rows)."
    assert report.hint.startswith("transform a copy inside __getitem__")


def test_a_generator_the_checker_cannot_reach_is_inconclusive_until_reseeded():
    # Nothing it reaches drew and no attribute changed: a hidden generator or hidden state,
    # no evidence of either, so it cannot judge (and says what to pass).
    source, reseed = hidden_augmentation()
    report = check_index_stable(source)
    assert report.status == "inconclusive"
    assert "nothing pitfalls can see explains it" in report.inconclusive
    assert "pass reseed=" in report.inconclusive
    assert check_index_stable(source, reseed=reseed).ok


def test_the_report_pairs_first_and_second_read():
    report = check_index_stable(CountsCalls(), draws=3)
    first = report.findings[0]
    assert (first.batch, first.path, first.when) == (1, "inputs", "read again")
    # Reads 0, 1, 2 then 2, 1, 0 serve batches 0, 1, 2 then 3, 4, 0 (calls % 5):
    # index 0 agrees by luck, indices 1 and 2 do not.
    assert report.bad_batches == (1, 2)
    assert report.columns == ("first read", "second read")
    # index 1's second read is batch 4, which no index gave first; index 2's is batch 3: none
    # served another index's batch; the evidence is the counter the reads advanced
    assert report.notes == ("Reading changed the source's own state: self.calls.",)


def test_a_factory_is_read_as_the_dataset_it_makes():
    report = check_index_stable(Sliced)
    assert report.ok and report.source == "indexable Sliced made by Sliced()"


def test_misuse():
    with pytest.raises(TypeError, match="indexable batch source"):
        check_index_stable(iter([1, 2]))
    with pytest.raises(TypeError, match="reseed must be callable, got int 3"):
        check_index_stable(Sliced(), reseed=3)
    with pytest.raises(ValueError, match="draws=0 must be at least 1"):
        check_index_stable(Sliced(), draws=0)
    with pytest.raises(TypeError, match="draws must be an int, got str '3'"):
        check_index_stable(Sliced(), draws="3")
    with pytest.raises(ValueError, match=r"timeout=inf is longer than a week"):
        check_index_stable(Sliced(), timeout=float("inf"))
