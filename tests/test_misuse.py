"""Misuse is refused up front, in words that say what to pass instead (a newcomer's trial
found each of these passing silently, or running until killed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls


def test_fit_style_data_is_refused_as_a_source_with_what_to_pass():
    x, y = np.zeros((10, 3)), np.zeros(10)
    for data in ((x, y), (x, y, np.ones(10))):
        with pytest.raises(TypeError, match=r"data, as fit\(x, y\) takes it") as info:
            pitfalls.check_source(data)
        assert "[(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]" in str(info.value)
    # a list of batches is a source, and so is a tuple of batches of other sizes
    assert pitfalls.check_source([(x[:5], y[:5]), (x[5:], y[5:])])[0].ok
    assert pitfalls.check_generator_no_aliasing((x[:4], x[4:]), draws=2).ok


@pytest.mark.parametrize("batch", [None, "text", (None, None), {"x": "a"}, []])
def test_batches_that_hold_no_array_are_refused(batch):
    with pytest.raises(ValueError, match="none of the 16 batches drawn holds an array"):
        pitfalls.check_generator_no_aliasing(lambda: itertools.repeat(batch))


def test_draws_has_an_upper_bound():
    with pytest.raises(ValueError, match=r"draws=1000000000 is more than 100,000"):
        pitfalls.check_generator_no_aliasing(lambda: itertools.repeat(np.zeros(2)), draws=10**9)

    class Indexed:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.full(2, float(i))

    with pytest.raises(ValueError, match=r"draws=200000 is more than 100,000"):
        pitfalls.check_index_stable(Indexed(), draws=200_000)


def test_check_source_runs_epoch_complete_when_given_the_dataset():
    # A newcomer could not ask check_source (nor pitfalls check) for epoch_complete.
    data = np.arange(32.0).reshape(16, 2)

    def twice_the_first_half():
        for start in (0, 4, 0, 4):  # samples 0..7 twice, 8..15 never
            yield data[start : start + 4].copy(), np.zeros(4)

    reports = pitfalls.check_source(twice_the_first_half, dataset=data, epochs=False, draws=4)
    assert [r.check for r in reports] == ["generator_no_aliasing", "epoch_complete"]
    assert reports[-1].status == "failed" and reports[-1].cause is pitfalls.Cause.SAMPLES_TWICE
    with pytest.raises(pitfalls.EpochIncompleteError):
        pitfalls.assert_source(twice_the_first_half, dataset=data, epochs=False, draws=4)


def test_pitfalls_check_takes_the_dataset(tmp_path, capsys):
    from pitfalls._cli import main

    (tmp_path / "pipe.py").write_text(
        "import numpy as np\n"
        "data = np.arange(32.0).reshape(16, 2)\n"
        "def batches():\n"
        "    for start in (0, 4, 0, 4):\n"
        "        yield data[start : start + 4].copy(), np.zeros(4)\n"
    )
    pipe = str(tmp_path / "pipe.py")
    code = main(
        ["check", f"{pipe}:batches", "--dataset", f"{pipe}:data", "--draws", "4", "--no-epochs"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "epoch_complete(steps_per_epoch=4, samples=16) failed" in out


@pytest.mark.parametrize(
    "check",
    [
        pitfalls.check_generator_no_aliasing,
        pitfalls.check_targets_match,
        pitfalls.check_index_stable,
        pitfalls.check_epoch_repeatable,
        pitfalls.check_order_shuffled,
        pitfalls.check_epoch_complete,
        pitfalls.check_source,
        pitfalls.assert_source,
        pitfalls.assert_generator_no_aliasing,
        pitfalls.assert_epoch_complete,
    ],
)
def test_every_check_that_reads_a_source_waits_a_finite_time_by_default(check):
    import inspect

    assert inspect.signature(check).parameters["timeout"].default == 60.0


def test_a_source_that_never_yields_ends_in_a_timeout_naming_the_batch():
    import threading

    stuck = threading.Event()

    def batches():
        yield np.zeros(2)
        stuck.wait()  # a dead worker's queue: nothing ever comes
        yield np.zeros(2)

    try:
        with pytest.raises(TimeoutError, match=r"source did not yield batch 1 within 0\.5 s"):
            pitfalls.check_generator_no_aliasing(batches, timeout=0.5)
    finally:
        stuck.set()  # let the abandoned thread end


class _Indexed:
    """An indexable source of ``n`` batches of 2 samples, or endless (``num_batches`` None)."""

    def __init__(self, n=2, width=(2, 2)):
        self.n, self.width = n, width

    @property
    def num_batches(self):  # as keras.utils.PyDataset says its length
        return self.n

    def __getitem__(self, i):
        return (np.full(self.width[0], float(i)), np.full(self.width[1], float(i))), np.zeros(2)

    def on_epoch_end(self):
        pass


def test_an_epoch_of_an_indexable_source_needs_its_length_and_no_more_steps_than_it():
    with pytest.raises(
        ValueError, match=r"no length \(num_batches is None\): pass steps_per_epoch="
    ):
        pitfalls.check_epoch_repeatable(_Indexed(n=None))
    with pytest.raises(ValueError, match=r"steps_per_epoch=3 is more than the 2 batches of source"):
        pitfalls.check_epoch_repeatable(_Indexed(), steps_per_epoch=3)
    assert pitfalls.check_epoch_repeatable(_Indexed(n=None), steps_per_epoch=2).ok


def test_inputs_that_disagree_on_the_batch_size_are_refused():
    with pytest.raises(ValueError, match="batch 0: input arrays disagree on the batch size"):
        pitfalls.check_epoch_repeatable(_Indexed(width=(2, 3)))


def test_an_indexable_source_of_no_batches_has_nothing_to_read():
    with pytest.raises(ValueError, match=r"no batches to read \(its length is 0\)"):
        pitfalls.check_index_stable(_Indexed(n=0))


def test_a_misused_value_is_named_even_when_its_repr_fails_or_runs_long():
    class Opaque:
        def __repr__(self):
            raise RuntimeError("no repr")

    source = [np.zeros(2), np.ones(2)]
    with pytest.raises(
        TypeError, match=r"draws must be an int, got Opaque \[repr failed for <Opaque>\]$"
    ):
        pitfalls.check_generator_no_aliasing(source, draws=Opaque())
    with pytest.raises(TypeError, match=r"draws must be an int, got str 'xxxxx.*\.\.\.$") as raised:
        pitfalls.check_generator_no_aliasing(source, draws="x" * 1000)
    assert len(str(raised.value)) < 100
