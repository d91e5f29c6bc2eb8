"""assert_index_stable: source[i] must depend on i alone (workers read in any order)."""

from __future__ import annotations

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
    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + self.rng.normal(size=x.shape), y


class SeededAugmentation(Sliced):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x + np.random.default_rng(i).normal(size=x.shape), y  # seeded by the index


class BufferOnSelf(Sliced):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        self.__dict__.setdefault("buf", np.empty_like(x))[:] = x
        return self.buf, y


@pytest.mark.parametrize("source", [Sliced(), SeededAugmentation(), BufferOnSelf()], ids=type)
def test_stable_sources_should_pass(source):
    assert_index_stable(source)
    assert check_index_stable(source).batches == 5  # all five, once forward and once back


@pytest.mark.parametrize("source", [CountsCalls(), UnseededAugmentation()], ids=type)
def test_sources_that_depend_on_call_order_should_fail(source):
    with pytest.raises(IndexUnstableError, match="read again") as excinfo:
        assert_index_stable(source)
    assert "derive each batch from its index alone" in str(excinfo.value)


def test_the_report_pairs_first_and_second_read():
    report = check_index_stable(CountsCalls(), draws=3)
    first = report.findings[0]
    assert (first.batch, first.path, first.when) == (1, "inputs", "read again")
    # Reads 0, 1, 2 then 2, 1, 0 serve batches 0, 1, 2 then 3, 4, 0 (calls % 5):
    # index 0 agrees by luck, indices 1 and 2 do not.
    assert report.bad_batches == (1, 2)
    assert report.columns == ("first read", "second read")


def test_misuse():
    with pytest.raises(TypeError, match="indexable batch source"):
        check_index_stable(iter([1, 2]))
    with pytest.raises(ValueError, match="draws=0 must be at least 1"):
        check_index_stable(Sliced(), draws=0)
    with pytest.raises(TypeError, match="draws must be an int, got str '3'"):
        check_index_stable(Sliced(), draws="3")
    with pytest.raises(ValueError, match=r"timeout=inf is longer than a week"):
        check_index_stable(Sliced(), timeout=float("inf"))
