"""Blame: a failed check names the line that broke the invariant.

Each buggy source below marks its guilty line with a comment ``# <- NAME``;
the tests find the line by its marker, so they stay right when lines move.
A blame is either a line that really wrote (``how="frozen"``: the write
raised once the batch was made read-only; ``how="traced"``: a line-by-line
trace saw the batch change right after it) or an honest "cannot tell".
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import json
import random
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitfalls import check_epoch_repeatable, check_generator_no_aliasing, check_index_stable
from pitfalls._blame import blame_aliasing, blame_epochs, blame_index, blame_targets
from pitfalls._blame._where import _busy_threads, _idle
from pitfalls._report import Blame, Frame
from pitfalls._sources import resolve
from pitfalls.reproductions import generators

HERE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The line of this file that ends with ``# <- marker``."""
    hits = [n for n, text in enumerate(HERE, 1) if text.rstrip().endswith(f"# <- {marker}")]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


def assert_blamed(blame: Blame, marker: str, how: str) -> None:
    assert blame.found, blame.reason
    assert (blame.frame.file, blame.frame.line) == (__file__, line_of(marker)), blame.lines()
    assert blame.how == how


# The write forms freezing catches: the write raises on the batch made read-only ---------


def refills():
    x = np.zeros((4, 2))
    for i in range(64):
        x[:] = i  # <- slice assignment
        yield x, x.sum(axis=1)


def writes_rows():
    x = np.zeros((4, 2))
    for i in range(64):
        for r in range(4):
            x[r][0] = i + r  # <- x[i][0]
        yield x


def copies_into():
    b = np.empty((4, 2))
    for i in range(64):
        np.copyto(b, np.full((4, 2), float(i)))  # <- copyto
        yield b


def multiplies_into():
    base = np.arange(8.0).reshape(4, 2)
    buf = np.empty((4, 2))
    for i in range(64):
        np.multiply(base, i, out=buf)  # <- out=
        yield buf


def accumulates():
    x = np.zeros((4, 2))
    while True:
        yield x
        x += 1  # <- +=


def fills_images():
    img = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    while True:
        img[...] = rng.integers(0, 256, size=img.shape, dtype=np.uint8)  # <- uint8 img[...]
        yield img, img.mean(axis=(1, 2, 3))


def shuffles_its_own_array():
    data = np.zeros((20, 2))  # owns its memory: the views yielded freeze it
    data[:] = np.arange(40.0).reshape(20, 2)
    rng = np.random.default_rng(0)
    while True:
        for i in range(5):
            yield data[4 * i : 4 * i + 4]
        rng.shuffle(data)  # <- shuffle of a frozen array


class BufferOnSelf:
    """A PyDataset-like source (``__getitem__``, ``__len__``, ``on_epoch_end``)."""

    def __init__(self):
        self.data = np.arange(80.0).reshape(20, 4)
        self.buf = np.empty((4, 4))

    def __len__(self):
        return 5

    def __getitem__(self, i):
        self.buf[:] = self.data[4 * i : 4 * i + 4]  # <- self.buf
        return self.buf, self.buf.sum(axis=1)

    def on_epoch_end(self):
        pass


@pytest.mark.parametrize(
    ("source", "marker", "path"),
    [
        (refills, "slice assignment", "inputs"),
        (writes_rows, "x[i][0]", "batch"),
        (copies_into, "copyto", "batch"),
        (multiplies_into, "out=", "batch"),
        (accumulates, "+=", "batch"),
        (fills_images, "uint8 img[...]", "inputs"),
        (shuffles_its_own_array, "shuffle of a frozen array", "batch"),
        (BufferOnSelf, "self.buf", "inputs"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_freezing_names_the_writing_line(source, marker, path):
    assert not check_generator_no_aliasing(source, draws=8).ok
    blame = blame_aliasing(source, draws=8)
    assert_blamed(blame, marker, "frozen")
    assert (blame.batch, blame.path) == (0, path)
    assert blame.frame.code == HERE[line_of(marker) - 1].strip()


def test_an_instance_of_an_indexable_source_is_read_again_by_index():
    blame = blame_aliasing(BufferOnSelf(), draws=8)
    assert_blamed(blame, "self.buf", "frozen")
    assert blame.frame.function == "BufferOnSelf.__getitem__"


def test_a_real_keras_pydataset(keras):
    class Buffered(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=2)
            self.data = np.arange(80.0).reshape(20, 4)
            self.buf = np.empty((4, 4))

        def __len__(self):
            return 5

        def __getitem__(self, i):
            self.buf[:] = self.data[4 * i : 4 * i + 4]  # <- keras PyDataset buffer
            return self.buf, self.buf.sum(axis=1)

    assert_blamed(blame_aliasing(Buffered(), draws=8), "keras PyDataset buffer", "frozen")
    assert_blamed(blame_aliasing(Buffered, draws=8), "keras PyDataset buffer", "frozen")


# What freezing cannot see: tracing line by line finds it ---------------------------------


def shuffles_through_an_older_view():
    data = np.arange(40.0).reshape(20, 2)  # a view of the arange: freezing its base misses it
    rng = np.random.default_rng(0)
    while True:
        for i in range(5):
            yield data[4 * i : 4 * i + 4]
        rng.shuffle(data)  # <- shuffle through an older view


def refills_a_list():
    batch = []
    for i in range(64):
        batch.clear()  # <- list cleared
        batch += [np.full(2, float(i))]
        yield batch


def replaces_a_dict_value():
    batch = {"x": np.zeros(2), "y": np.zeros(1)}
    for i in range(64):
        batch["x"] = np.full(2, float(i))  # <- dict value replaced
        batch["y"] = np.full(1, 2.0 * i)
        yield batch


def writes_from_c_ignoring_the_flag():
    buf = np.zeros(8)
    src = np.empty(8)
    for i in range(64):
        src[:] = i
        ctypes.memmove(buf.ctypes.data, src.ctypes.data, buf.nbytes)  # <- C write
        yield buf


def catches_the_refused_write():
    buf = np.zeros(4)
    for i in range(64):
        try:
            buf[:] = i  # <- refused when frozen, caught
        except ValueError:
            buf = np.full(4, float(i))  # frozen, it takes another path
        yield buf


@pytest.mark.parametrize(
    ("source", "marker", "path"),
    [
        (writes_from_c_ignoring_the_flag, "C write", "batch"),
        (catches_the_refused_write, "refused when frozen, caught", "batch"),
        (shuffles_through_an_older_view, "shuffle through an older view", "batch"),
        (refills_a_list, "list cleared", "batch"),
        (replaces_a_dict_value, "dict value replaced", "batch['x']"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_tracing_names_what_freezing_cannot_see(source, marker, path):
    blame = blame_aliasing(source, draws=8)
    assert_blamed(blame, marker, "traced")
    assert (blame.batch, blame.path) == (0, path)


# The frames above the writing line -------------------------------------------------------


class ShufflesBetweenEpochs:
    def __init__(self):
        self.data = np.arange(1.0, 41.0).reshape(20, 2).copy()
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return self.data[4 * i : 4 * i + 4], self.data[4 * i : 4 * i + 4].sum(axis=1)

    def on_epoch_end(self):
        self._reshuffle()  # <- on_epoch_end calls

    def _reshuffle(self):
        self.rng.shuffle(self.data)  # <- shuffled in place


def test_the_frames_above_the_writing_line_are_named():
    blame = blame_aliasing(ShufflesBetweenEpochs, draws=8)  # 5 per epoch: on_epoch_end runs
    assert_blamed(blame, "shuffled in place", "frozen")
    assert [(f.function, f.line) for f in blame.frames] == [
        ("ShufflesBetweenEpochs._reshuffle", line_of("shuffled in place")),
        ("ShufflesBetweenEpochs.on_epoch_end", line_of("on_epoch_end calls")),
    ]


# Targets that stop matching after later draws ---------------------------------------------


def test_targets_blame_names_the_refill_in_the_articles_generator():
    source = generators.shared_input_buffer
    blame = blame_targets(source, generators.mean_target, draws=4)
    lines, start = inspect.getsourcelines(source)
    written = start + next(n for n, text in enumerate(lines) if "x[i, 0] = " in text)
    assert (Path(blame.frame.file).name, blame.frame.line) == ("generators.py", written)
    assert (blame.how, blame.batch, blame.path) == ("frozen", 0, "inputs[0]")


def rewrites_a_column_then_the_inputs():
    x = np.zeros((4, 3))
    for i in range(64):
        x[:, 2] = -i  # <- a column target_fn ignores
        x[:, :2] = i  # <- the inputs target_fn reads
        yield x, x[:, :2].sum(axis=1)


def test_targets_blame_skips_writes_that_keep_the_pairs_matching():
    def rule(x):
        return x[:, :2].sum(axis=1)

    assert_blamed(blame_aliasing(rewrites_a_column_then_the_inputs, draws=4), "a column target_fn ignores", "frozen")  # fmt: skip
    blame = blame_targets(rewrites_a_column_then_the_inputs, rule, draws=4)
    assert_blamed(blame, "the inputs target_fn reads", "traced")


# Epochs and index stability ---------------------------------------------------------------


def scaled_in_place(data):
    for i in range(0, len(data), 4):
        x = data[i : i + 4]
        x /= 255.0  # <- x /= 255 in a generator
        yield x, x.sum(axis=1)


class ScaledInPlace:
    def __init__(self):
        self.x = np.arange(1.0, 41.0).reshape(20, 2)  # a view: tracing sees through it

    def __len__(self):
        return 5

    def __getitem__(self, i):
        x = self.x[4 * i : 4 * i + 4]
        x /= 255.0  # <- x /= 255 in __getitem__
        return x, x.sum(axis=1)

    def on_epoch_end(self):
        pass


def test_epoch_blame_names_the_in_place_scaling():
    data = np.arange(1.0, 41.0).reshape(20, 2).copy()
    assert not check_epoch_repeatable(lambda: scaled_in_place(data)).ok
    assert not check_epoch_repeatable(ScaledInPlace()).ok
    blame = blame_epochs(lambda: scaled_in_place(data))
    assert_blamed(blame, "x /= 255 in a generator", "frozen")
    assert blame.batch == 0
    assert_blamed(blame_epochs(ScaledInPlace()), "x /= 255 in __getitem__", "traced")


class ScalesStoredImagesReturnsCopies:
    """Returns copies, but scales the stored images in place at every read."""

    def __init__(self):
        self.images = np.arange(1.0, 81.0).reshape(20, 4)
        self.order = np.arange(5)
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        rows = self.images[4 * self.order[i] : 4 * self.order[i] + 4]
        rows *= 0.5  # <- stored images rewritten
        return rows * 1.0, rows.sum(axis=1)  # copies: no batch handed out is ever written

    def on_epoch_end(self):
        self.rng.shuffle(self.order)  # a reorder in the same step: not a rewrite


MEAN = 20.0


def centred(data):
    for i in range(0, len(data), 4):
        x = data[i : i + 4]
        x -= MEAN  # <- stored data shifted again
        yield x.copy()


def test_epoch_blame_watches_the_stored_data_behind_copies():
    assert not check_epoch_repeatable(ScalesStoredImagesReturnsCopies()).ok
    blame = blame_epochs(ScalesStoredImagesReturnsCopies())
    assert_blamed(blame, "stored images rewritten", "traced")
    assert (blame.batch, blame.path) == (None, "self.images")
    data = np.arange(1.0, 41.0).reshape(20, 2) ** 2
    assert not check_epoch_repeatable(functools.partial(centred, data)).ok
    blame = blame_epochs(functools.partial(centred, data))
    assert_blamed(blame, "stored data shifted again", "frozen")
    assert blame.path == "data"  # named as the generator's argument


class BufferAndRewrite:
    """Returns one reused buffer, and halves the stored rows it copied from."""

    def __init__(self):
        self.x = np.arange(1.0, 41.0).reshape(20, 2).copy()
        self.buf = np.empty((4, 2))

    def __len__(self):
        return 5

    def __getitem__(self, i):
        self.buf[:] = self.x[4 * i : 4 * i + 4]  # a reused buffer: aliasing, not the rewrite
        self.x[4 * i : 4 * i + 4] *= 0.5  # <- the rewrite behind a reused buffer
        return self.buf, self.buf.sum(axis=1)

    def on_epoch_end(self):
        pass


def test_epoch_blame_names_the_rewrite_not_the_reused_buffer():
    assert not check_epoch_repeatable(BufferAndRewrite()).ok
    blame = blame_epochs(BufferAndRewrite())
    assert_blamed(blame, "the rewrite behind a reused buffer", "frozen")
    assert blame.path == "self.x"


def test_epoch_blame_does_not_take_a_shuffle_for_a_rewrite():
    blame = blame_epochs(ShufflesBetweenEpochs())  # the samples move, none is rewritten
    assert not blame.found
    assert "saw nothing change" in blame.reason


class CountsReads:
    def __init__(self):
        self.data = np.arange(40.0).reshape(20, 2)
        self.calls = 0

    def __len__(self):
        return 5

    def __getitem__(self, i):
        if not hasattr(self, "ready"):
            self.ready = True  # a one-time set-up: not a state advanced per read
        j = self.calls % 5
        self.calls += 1  # <- counter advanced per read
        return self.data[4 * j : 4 * j + 4], np.zeros(4)

    def on_epoch_end(self):
        pass


class UnseededNoise(CountsReads):
    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def __getitem__(self, i):
        x = self.data[4 * i : 4 * i + 4]
        return x + self.rng.normal(size=x.shape), np.zeros(4)  # <- rng advanced per read


def test_index_blame_names_the_state_advanced_per_read():
    blame = blame_index(CountsReads(), draws=4)
    assert_blamed(blame, "counter advanced per read", "traced")
    assert (blame.unit, blame.batch, blame.path) == ("index", 0, "source.calls")
    blame = blame_index(UnseededNoise(), draws=4)
    assert_blamed(blame, "rng advanced per read", "traced")
    assert blame.path == "source.rng"


class MeanCentredLoader:
    """A loader object (len and iter), as a torch user writes one: centres a view in place."""

    def __init__(self):
        self.data = np.arange(1.0, 33.0).reshape(16, 2).copy()
        self.mean = self.data.mean(axis=0)

    def __len__(self):
        return 4

    def __iter__(self):
        for b in range(4):
            xb = self.data[4 * b : 4 * b + 4]
            xb -= self.mean  # <- centred again every epoch
            yield xb, xb.sum(axis=1)


def test_epoch_blame_reads_an_iterable_again_as_the_check_does():
    """The check starts epoch 2 with iter() on the same object, whose data epoch 1 already
    rewrote; the diagnosis once made a new object from the class instead, saw clean data
    and said "depends on timing" of a write that happens every epoch."""
    assert not check_epoch_repeatable(MeanCentredLoader).ok
    blame = blame_epochs(MeanCentredLoader)
    assert_blamed(blame, "centred again every epoch", "frozen")
    assert (blame.batch, blame.path) == (0, "inputs")


class NormalisesStoredSlice(CountsReads):
    """Divides a slice of the stored data in place; a harmless counter advances too."""

    def __getitem__(self, i):
        self.calls += 1  # counts reads for a log: not what makes reads differ
        x = self.data[4 * i : 4 * i + 4]
        x /= 255.0  # <- stored slice divided again at every read
        return x, x.sum(axis=1)


class FlipsWrittenBack(CountsReads):
    """A random flip, drawn from self.rng, written back into the stored rows."""

    def __init__(self):
        super().__init__()
        self.rng = np.random.default_rng(0)

    def __getitem__(self, i):
        rows = np.arange(4 * i, 4 * i + 4)
        flip = rows[self.rng.random(4) < 0.75]  # the generator advances here, every read
        self.data[flip] = self.data[flip][:, ::-1]  # <- flip written back
        return self.data[rows], self.data[rows].sum(axis=1)


def test_index_blame_names_the_write_into_the_stored_data():
    """Reads of one index differ because reading rewrites the stored data, deterministic or
    random: the write is named, not a counter or the generator advanced on the way."""
    for source, marker in [
        (NormalisesStoredSlice, "stored slice divided again at every read"),
        (FlipsWrittenBack, "flip written back"),
    ]:
        assert not check_index_stable(source(), draws=4).ok
        blame = blame_index(source(), draws=4)
        assert_blamed(blame, marker, "frozen")
        assert (blame.unit, blame.path) == ("index", "self.data")
        assert blame.batch in range(4)


class FillsACacheOnce(CountsReads):
    """Fills a cache on the first read of each index (a stored write that is harmless)."""

    def __init__(self):
        super().__init__()
        self.cache = np.zeros((20, 2))

    def __getitem__(self, i):
        self.cache[4 * i : 4 * i + 4] = self.data[4 * i : 4 * i + 4]
        return super().__getitem__(i)


def test_index_blame_ignores_a_cache_filled_on_first_reads():
    blame = blame_index(FillsACacheOnce(), draws=4)
    assert_blamed(blame, "counter advanced per read", "traced")  # the cache refills the same


def make_closure_jitter():
    r = random.Random(0)

    def jitter(a):
        return a * r.uniform(0.8, 1.2)  # <- closure generator drawn

    class Jittered(CountsReads):
        def __getitem__(self, i):
            return jitter(self.data[4 * i : 4 * i + 4]), np.zeros(4)

    return Jittered()


def test_index_blame_sees_a_generator_in_the_closure_of_the_code_it_runs():
    """A generator no attribute holds (a helper's closure) is found through the code that
    draws from it: named, rather than "its state is elsewhere"."""
    blame = blame_index(make_closure_jitter(), draws=4)
    assert_blamed(blame, "closure generator drawn", "traced")
    assert blame.path == "make_closure_jitter.<locals>.jitter's r"


# What the checkers hold: a resolved source, a timeout ------------------------------------


def writes_through_a_memoryview():
    buf = np.zeros(4)
    for i in range(64):
        memoryview(buf)[:] = memoryview(np.full(4, float(i)))  # <- memoryview write
        yield buf


def test_a_write_refused_by_a_memoryview_is_blamed_too():
    assert_blamed(blame_aliasing(writes_through_a_memoryview, draws=4), "memoryview write", "frozen")  # fmt: skip


def test_a_resolved_source_is_made_again_by_its_factory():
    assert_blamed(blame_aliasing(resolve(refills), draws=4), "slice assignment", "frozen")
    assert_blamed(blame_aliasing(resolve(BufferOnSelf()), draws=8), "self.buf", "frozen")


@pytest.mark.parametrize(
    ("source", "marker", "how"),
    [
        (refills, "slice assignment", "frozen"),
        (shuffles_through_an_older_view, "shuffle through an older view", "traced"),
    ],
    ids=["frozen", "traced"],
)
def test_with_a_timeout_each_step_runs_in_a_helper_thread(source, marker, how):
    assert_blamed(blame_aliasing(source, draws=8, timeout=30), marker, how)


def test_with_a_timeout_index_blame_runs_in_a_helper_thread():
    assert_blamed(blame_index(CountsReads(), draws=3, timeout=30), "counter advanced per read", "traced")  # fmt: skip


def test_a_comparison_that_fails_is_reported_not_raised_into_the_source():
    def turns_unreadable():
        batch = [np.zeros(2)]
        for _ in range(64):
            yield batch
            batch[0] = object()  # not an array: the comparison itself fails

    blame = blame_aliasing(turns_unreadable, draws=4)
    assert not blame.found
    assert "could not compare" in blame.reason


# Cannot tell: said plainly, never a wrong line ----------------------------------------------


def test_a_bare_iterator_cannot_be_read_again_pass_a_factory():
    for source in (refills(), resolve(refills())):
        blame = blame_aliasing(source, draws=4)
        assert not blame.found
        assert "pass a factory" in blame.reason
        assert blame.lines() == [f"Written at: cannot tell: {blame.reason}"]


def test_a_write_from_another_thread_is_not_blamed_on_a_line():
    stops = []

    def written_by_a_thread():
        buf = np.zeros((4, 2))
        go, done, stop = threading.Event(), threading.Event(), threading.Event()
        stops.append((stop, go))

        def writer():
            for i in range(1, 1000):
                go.wait()
                go.clear()
                if stop.is_set():
                    return
                buf[:] = i  # written by the other thread
                done.set()

        worker = threading.Thread(target=writer, daemon=True)
        worker.start()
        stops.append(worker)
        for i in range(1000):
            if i:
                go.set()
                done.wait()
                done.clear()
            yield buf

    try:
        blame = blame_aliasing(written_by_a_thread, draws=4)
    finally:
        for item in stops:
            if isinstance(item, tuple):
                item[0].set()
                item[1].set()
        for item in stops:
            if isinstance(item, threading.Thread):
                item.join(5)
    assert not blame.found
    assert "other threads" in blame.reason


LOADER_ROWS = np.arange(96.0, dtype=np.float32).reshape(32, 3)


def test_a_dataloader_with_workers_is_diagnosed_in_this_process(torch):
    """Its collate_fn writes in a worker process, out of reach of a trace here: the
    diagnosis reads a copy with num_workers=0 instead (no process started), names the
    line, and says it did."""
    from pitfalls.reproductions import loaders

    def loader():
        return loaders.collate_into_one_buffer(LOADER_ROWS, batch_size=4, num_workers=2)

    blame = blame_aliasing(loader, draws=6)
    assert blame.found, blame.reason
    assert (Path(blame.frame.file).name, blame.frame.code) == ("loaders.py", "self.buffer.copy_(x)")
    assert blame.note == (
        "the diagnosis read a copy of the DataLoader with num_workers=0: its 2 worker"
        " processes, where the batches are built, cannot be traced"
    )
    assert blame.lines()[-1] == f"  ({blame.note})"
    assert loader().num_workers == 2  # the user's loader is left as it was made


def test_a_write_from_a_worker_process_is_said_to_be_one(torch):
    """A DataLoader hidden in a generator cannot be copied: the batches change while no
    line of the source runs here, with worker processes alive, and the blame says so."""
    from pitfalls.reproductions import loaders

    def batches():
        yield from loaders.collate_into_one_buffer(LOADER_ROWS, batch_size=4, num_workers=2)

    blame = blame_aliasing(batches, draws=6)
    assert not blame.found
    assert blame.reason == (
        "the batches changed while 2 child processes of this one ran: most likely a worker"
        " process (a DataLoader with num_workers > 0, a process pool) wrote them, where no"
        " trace reaches; run it with num_workers=0 (no worker processes) to find the line"
    )


def test_epoch_blame_watches_a_tensor_a_dataloaders_dataset_holds(torch):
    """``x.sub_(mean)`` on ``self.images[i]``, a torch tensor two levels down (the
    loader's dataset's): the stored data is found there, as the check finds it."""
    from torch.utils.data import DataLoader, Dataset

    class Normalises(Dataset):
        def __init__(self):
            self.images = torch.arange(48.0).reshape(16, 3)
            self.mean = self.images.mean()

        def __len__(self):
            return 16

        def __getitem__(self, i):
            x = self.images[i]
            x.sub_(self.mean)  # <- stored tensor normalised again
            return x, x.sum()

    def loader():
        return DataLoader(Normalises(), batch_size=4)

    assert not check_epoch_repeatable(loader).ok
    blame = blame_epochs(loader)
    assert_blamed(blame, "stored tensor normalised again", "traced")
    assert blame.path == "self.dataset.images"


def test_a_write_in_a_tf_data_thread_says_where_to_look(tf):
    """tf.data runs a from_generator's generator in its own threads: the reason says to
    check the generator function itself, which runs in the check's thread."""
    from pitfalls.reproductions import zero_copy

    blame = blame_aliasing(lambda: zero_copy.from_generator_shared(aligned=True), draws=4)
    assert not blame.found
    assert blame.reason.startswith("the batches changed while tf.data ran its pipeline")
    assert "pass the generator function itself" in blame.reason
    found = blame_aliasing(lambda: zero_copy.shared_buffer_batches(8, aligned=True), draws=4)
    assert found.found and found.frame.function == "shared_buffer_batches"


def test_a_source_that_writes_nothing_is_not_blamed():
    def fresh():
        for i in range(64):
            yield np.full(2, float(i))

    blame = blame_aliasing(fresh, draws=8)
    assert not blame.found and "saw nothing change" in blame.reason


# Data first: to_dict and the rendered lines ------------------------------------------------


def test_to_dict_has_fixed_keys_and_round_trips_through_json():
    found = blame_aliasing(refills, draws=4).to_dict()
    missing = blame_aliasing(refills(), draws=4).to_dict()
    keys = ["found", "how", "batch", "path", "unit", "file", "line", "function", "code", "frames", "reason", "note", "why"]  # fmt: skip
    assert list(found) == list(missing) == keys
    assert json.loads(json.dumps(found)) == found
    assert found["line"] == line_of("slice assignment")
    assert found["frames"] == [
        {"file": __file__, "line": found["line"], "function": "refills", "code": found["code"]}
    ]
    assert (missing["found"], missing["file"], missing["frames"]) == (False, None, [])


def test_the_rendered_lines():
    blame = Blame(
        frames=(
            Frame(file="pipe/data.py", line=12, function="Batches._fill", code="self.x[:] = rows"),
            Frame(
                file="pipe/data.py", line=30, function="Batches.__getitem__", code="self._fill(i)"
            ),
        ),
        how="frozen",
        batch=0,
        path="inputs",
    )
    assert str(blame) == (
        "Written at: pipe/data.py:12 in Batches._fill: self.x[:] = rows\n"
        "  called from pipe/data.py:30 in Batches.__getitem__: self._fill(i)\n"
        "  (batch 0, inputs; the write raised once that memory was made read-only)"
    )
    assert Blame(reason="why").lines() == ["Written at: cannot tell: why"]


# Never leave a trace: flags, bytes and tracers as they were -----------------------------------


@st.composite
def handed_in(draw):
    """A dataset the user hands in, maybe read-only, maybe a view, and a way to misuse it."""
    data = np.arange(48.0).reshape(24, 2)
    if draw(st.booleans()):
        data = data.copy()  # owns its memory
    if draw(st.booleans()):
        data = data[::2] if draw(st.booleans()) else data[4:]
    if draw(st.booleans()):
        data.flags.writeable = False
    form = draw(st.sampled_from(["refill", "copyto", "views", "fresh", "raises", "list"]))
    return data, form


def reader(data, form, made):
    def batches():
        buf = np.empty((4, 2))
        made.append(buf)
        for i in range(1000):
            rows = data[(4 * i) % 8 : (4 * i) % 8 + 4]
            if form == "refill":
                buf[:] = rows
                yield buf
            elif form == "copyto":
                np.copyto(buf, rows)
                yield buf, rows
            elif form == "views":
                yield rows
            elif form == "list":
                yield [buf, rows]
                buf[0] = i
            elif form == "raises" and i == 3:
                raise RuntimeError("the loader broke")
            else:
                yield rows.copy()

    return batches


@given(handed_in())
def test_every_array_is_left_as_it_was_handed_in(case):
    data, form = case
    before = (data.flags.writeable, data.base is None or data.base.flags.writeable, data.tobytes())
    made = []
    blame = blame_aliasing(reader(data, form, made), draws=6)
    assert isinstance(blame, Blame)
    after = (data.flags.writeable, data.base is None or data.base.flags.writeable, data.tobytes())
    assert after == before
    assert all(buf.flags.writeable for buf in made)  # the source's own buffers, too


def test_an_array_numpy_could_not_make_writeable_again_is_never_frozen():
    base = np.zeros((4, 2))
    strided = np.lib.stride_tricks.as_strided(base, shape=(4, 2))  # its base is no array

    def source():
        for i in range(64):
            base[:] = i  # <- written under an as_strided view
            yield strided

    blame = blame_aliasing(source, draws=4)
    assert_blamed(blame, "written under an as_strided view", "traced")
    assert strided.flags.writeable and base.flags.writeable


def test_the_previous_trace_function_is_restored():
    def tracer(frame, event, arg):
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        assert blame_aliasing(shuffles_through_an_older_view, draws=8).found
        assert blame_index(CountsReads(), draws=3).found
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


def test_the_tracer_in_place_is_given_back():
    # sys.settrace's function, and sys.monitoring's tool ids on Python 3.12+: a debugger
    # or coverage running the suite keeps its hook after a diagnosis.
    def current():
        if sys.version_info >= (3, 12):
            return sys.gettrace(), [sys.monitoring.get_tool(i) for i in range(6)]
        return sys.gettrace(), []

    before = current()
    assert blame_aliasing(shuffles_through_an_older_view, draws=8).how == "traced"
    assert current() == before


# Held out: buggy sources in the styles people write, unlike the ones above ----------------


class RingOfThree:
    """Three preallocated slots used in turn, as double/triple buffering does."""

    def __init__(self, n=4):
        self.slots = [np.empty((n, 3), np.float32) for _ in range(3)]
        self.k = 0

    def __iter__(self):
        return self

    def __next__(self):
        slot = self.slots[self.k % 3]
        slot[:] = self.k  # <- held-out 1
        self.k += 1
        return slot, slot[:, 0].copy()


class Loader:
    """A DataLoader-like iterable: iter() starts an epoch, one batch buffer reused."""

    def __init__(self, dataset, batch_size=4):
        self.dataset, self.batch_size = dataset, batch_size
        self._batch = np.empty((batch_size, *dataset.shape[1:]), dataset.dtype)

    def __iter__(self):
        for start in range(0, len(self.dataset) - self.batch_size + 1, self.batch_size):
            for j in range(self.batch_size):
                self._batch[j] = self.dataset[start + j]  # <- held-out 2
            yield {"image": self._batch, "label": self._batch.sum(axis=(1, 2))}


def put_indices():
    out = np.zeros(8)
    for step in range(100):
        np.put(out, np.arange(8), np.arange(8) * step)  # <- held-out 3
        yield out.reshape(4, 2)


def make_stream(data):
    scratch = np.empty((4, data.shape[1]))

    def stream():
        rng = np.random.default_rng(1)
        while True:
            idx = rng.integers(0, len(data), size=4)
            np.take(data, idx, axis=0, out=scratch)  # <- held-out 4
            yield scratch, scratch.mean(axis=1)

    return stream


def fill_batch(buf, values):
    buf.fill(values)  # <- held-out 5


def via_helper():
    buf = np.empty((4, 2))
    for v in range(100):
        fill_batch(buf, v)
        yield (buf,)


class Augmenter:
    """Noise added in place to the stored samples, epoch after epoch."""

    def __init__(self):
        self.x = np.linspace(0, 1, 40).reshape(20, 2)
        self.rng = np.random.default_rng(3)

    def __len__(self):
        return 5

    def __getitem__(self, i):
        view = self.x[i * 4 : (i + 1) * 4]
        view += self.rng.normal(scale=0.01, size=view.shape)  # <- held-out 6
        return view, view.sum(axis=1)

    def on_epoch_end(self):
        pass


def feature_dict():
    feats = {"pixel_values": np.zeros((2, 3, 3)), "labels": np.zeros(2, np.int64)}
    for n in range(100):
        feats["pixel_values"][:] = n % 7  # <- held-out 7
        feats["labels"] = np.full(2, n % 7)
        yield feats


def reshaped_view():
    flat = np.zeros(12)
    for n in range(100):
        flat[:] = np.arange(12) + n  # <- held-out 8
        yield flat.reshape(3, 4)


def sorted_in_place():
    rng = np.random.default_rng(5)
    keys = rng.random(8)
    while True:
        yield keys
        keys.sort()  # <- held-out 9
        keys *= rng.random()


def cumulative(seed=0):
    rng = np.random.default_rng(seed)
    acc = np.zeros((4, 2))
    while True:
        step = rng.normal(size=(4, 2))
        np.add(acc, step, out=acc)  # <- held-out 10
        yield acc, acc.sum(axis=1)


HELD_OUT = [
    (RingOfThree, "held-out 1"),
    (lambda: Loader(np.arange(480.0).reshape(40, 3, 4)), "held-out 2"),
    (put_indices, "held-out 3"),
    (make_stream(np.arange(40.0).reshape(10, 4)), "held-out 4"),
    (via_helper, "held-out 5"),
    (Augmenter, "held-out 6"),
    (feature_dict, "held-out 7"),
    (reshaped_view, "held-out 8"),
    (sorted_in_place, "held-out 9"),
    (cumulative, "held-out 10"),
]


def test_held_out_sources_are_blamed_on_the_right_line_or_not_at_all():
    right, wrong, none = [], [], []
    for source, marker in HELD_OUT:
        assert not check_generator_no_aliasing(source, draws=8).ok, marker  # all buggy
        blame = blame_aliasing(source, draws=8)
        if not blame.found:
            none.append((marker, blame.reason))
        elif (blame.frame.file, blame.frame.line) == (__file__, line_of(marker)):
            right.append(marker)
        else:
            wrong.append((marker, blame.lines()))
    assert wrong == []
    assert len(right) >= 9, none


def _innermost_in_threading(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    return frame is not None and frame.f_globals.get("__name__") == "threading"


def test_a_thread_blocked_in_join_or_an_untimed_wait_is_idle_on_every_python():
    # Thread.join() waits in threading._wait_for_tstate_lock before 3.13 and in C from
    # 3.13 on: either way the joining thread cannot be the writer. A timed wait polls.
    release = threading.Event()

    def wait() -> None:
        release.wait()

    def join() -> None:
        waiting.join()

    def poll() -> None:
        release.wait(60)

    waiting = threading.Thread(target=wait, name="waiting")
    joining = threading.Thread(target=join, name="joining")
    polling = threading.Thread(target=poll, name="polling")
    for thread in (waiting, joining, polling):
        thread.start()
    try:
        # Each reaches its blocking call and stays there until released: the polls below
        # wait for a state, not a time.
        for thread in (waiting, joining, polling):
            for _ in range(10_000):
                if _innermost_in_threading(thread):
                    break
                threading.Event().wait(0.001)
            assert _innermost_in_threading(thread), thread.name
        frames = sys._current_frames()
        assert _idle(frames[waiting.ident])
        assert _idle(frames[joining.ident])
        assert not _idle(frames[polling.ident])
        del frames
        # each runs the user's code (this file): only the polling one may be writing
        busy = _busy_threads({threading.get_ident()})
        assert "polling" in busy
        assert "waiting" not in busy and "joining" not in busy
    finally:
        release.set()
        for thread in (waiting, joining, polling):
            thread.join(10)
