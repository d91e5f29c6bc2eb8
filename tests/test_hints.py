"""The fix a failure names fits the code its author wrote.

A generator's author is told to move ``np.zeros`` inside the loop; a
PyDataset's author, to allocate inside ``__getitem__``; a DataLoader-style
class's, inside ``__iter__``. Views of stored data written in place get their
own hint, and targets get one per kind of data (class labels or not) and per
kind of source (augmenting at random or not). Each case below is a small
source of that style with one planted bug, and the exact hint it must get:
what the report says, not only whether it fails (``test_messages.py`` pins
the layout of the messages; this file pins which words are chosen).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pitfalls import check_generator_no_aliasing, check_order_shuffled, check_targets_match
from pitfalls.reproductions import zero_copy

GENERATOR_HINT = (
    "allocate a new array for every batch (move np.zeros(...) inside the loop) or"
    " yield a copy (np.copy(x)); never write into an array after yielding it, nor"
    " shuffle in place an array whose views were yielded."
)


def buffer_hint(method: str, verb: str) -> str:
    return (
        f"allocate the batch inside {method} (self.x[:] = ... reuses one buffer for every"
        f" batch) or {verb} a copy (np.copy(x)); never write into an array after you"
        f" {verb} it."
    )


def views_hint(method: str) -> str:
    return (
        f"never write into the stored data after returning views of it: in {method},"
        " transform a copy (x = self.images[rows] / 255 makes one), not a slice in"
        " place, and shuffle an index array rather than the stored arrays in place."
    )


# Sources, one per style and memory pattern ------------------------------------------


def refilled_generator() -> Any:
    x = np.zeros(3)
    for i in range(8):
        x[:] = i  # bug: one buffer, refilled
        yield x


class RefilledList(list):  # type: ignore[type-arg]
    """A list of batches whose iteration refills its one buffer: a container source."""

    def __iter__(self) -> Any:
        x = np.zeros(3)
        for i in range(len(self)):
            x[:] = i
            yield x


class BufferOnSelf:
    """A PyDataset-style source whose batches are one buffer kept on self."""

    def __init__(self) -> None:
        self.x = np.zeros(3)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> np.ndarray:
        self.x[:] = i  # bug
        return self.x


class Ring(BufferOnSelf):
    """Three buffers used in turn: still memory reused under the consumer."""

    def __init__(self) -> None:
        self.ring = [np.zeros(3) for _ in range(3)]

    def __getitem__(self, i: int) -> np.ndarray:
        x = self.ring[i % 3]
        x[:] = i
        return x


class ScaledInPlace(BufferOnSelf):
    """Views of the stored data, scaled in place each time they are read."""

    def __init__(self) -> None:
        self.images = np.arange(8.0)

    def __getitem__(self, i: int) -> np.ndarray:
        rows = self.images[2 * i : 2 * i + 2]
        rows /= 2  # bug: the second epoch halves what the first handed out
        return rows


class LoaderBuffer:
    """A DataLoader-style class: each ``__iter__`` is an epoch, one buffer refilled."""

    def __iter__(self) -> Any:
        x = np.zeros(3)
        for i in range(8):
            x[:] = i
            yield x


class LoaderScaledInPlace:
    def __init__(self) -> None:
        self.images = np.arange(8.0)

    def __iter__(self) -> Any:
        for i in range(4):
            rows = self.images[2 * i : 2 * i + 2]
            rows *= 0.5
            yield rows


@pytest.mark.parametrize(
    "source, pattern, hint",
    [
        (refilled_generator, "buffer", GENERATOR_HINT),
        (RefilledList([None] * 8), "buffer", GENERATOR_HINT),
        (BufferOnSelf, "buffer", buffer_hint("__getitem__", "return")),
        (Ring, "ring", buffer_hint("__getitem__", "return")),
        (ScaledInPlace, "views", views_hint("__getitem__")),
        (LoaderBuffer, "buffer", buffer_hint("__iter__", "yield")),
        (LoaderScaledInPlace, "views", views_hint("__iter__")),
    ],
    ids=[
        "generator",
        "list",
        "pydataset",
        "pydataset-ring",
        "pydataset-views",
        "loader",
        "loader-views",
    ],
)
def test_the_aliasing_hint_names_where_the_author_allocates(source, pattern, hint):
    report = check_generator_no_aliasing(source, draws=8)
    assert not report.ok
    assert report.hint == hint
    first_note = report.notes[0]
    assert {
        "buffer": "share one buffer, refilled in place.",
        "ring": "live in 3 buffers, reused in turn (a ring or double buffer).",
        "views": "are views into one array",
    }[pattern] in first_note


def test_one_buffer_outweighs_views_in_the_hint():
    """Inputs refilled in one buffer, targets views written in place: the buffer hint."""

    class Both(BufferOnSelf):
        def __init__(self) -> None:
            self.x = np.zeros(3)
            self.y = np.arange(8.0)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            self.x[:] = i
            y = self.y[2 * (i % 4) : 2 * (i % 4) + 2]
            y += 1
            return self.x, y

    report = check_generator_no_aliasing(Both, draws=8)
    assert sorted(note.split(" ", 2)[1] for note in report.notes) == ["inputs", "targets"]
    assert report.hint == buffer_hint("__getitem__", "return")


# Targets --------------------------------------------------------------------------


def later_hint(method: str) -> str:
    return (
        f"allocate the batch inside {method} (self.x[:] = ... reuses one buffer for"
        " every batch) or hand out copies (np.copy(x));"
        " assert_generator_no_aliasing names the buffer."
    )


def shared_inputs() -> Any:
    x = np.zeros((2, 2))
    for i in range(4):
        x[:] = i
        yield x, x.sum(axis=1)  # targets right when yielded, inputs overwritten later


class SharedInputs:
    def __init__(self) -> None:
        self.x = np.zeros((2, 2))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.x[:] = i
        return self.x, self.x.sum(axis=1)


class LoaderSharedInputs:
    def __iter__(self) -> Any:
        x = np.zeros((2, 2))
        for i in range(4):
            x[:] = i
            yield x, x.sum(axis=1)


def row_sums(x: Any) -> Any:
    return np.asarray(x).sum(axis=1)


@pytest.mark.parametrize(
    "source, hint",
    [
        (
            shared_inputs,
            "allocate new arrays for every batch (move np.zeros(...) inside the loop) or"
            " yield copies (np.copy(x)); assert_generator_no_aliasing names the buffer.",
        ),
        (SharedInputs, later_hint("__getitem__")),
        (LoaderSharedInputs, later_hint("__iter__")),
    ],
    ids=["generator", "pydataset", "loader"],
)
def test_targets_that_break_only_later_get_the_allocation_hint_for_the_style(source, hint):
    report = check_targets_match(source, row_sums, draws=4)
    assert {f.when for f in report.findings} == {"after later draws"}
    assert report.hint == hint
    assert report.reason.startswith("Every batch matched when it was yielded but not after")


class Stored:
    """Stored samples, batches of 2 cut from them; ``flip`` mirrors inputs at random."""

    def __init__(self, labels: bool, flip: bool) -> None:
        self.x = np.arange(16.0).reshape(8, 2)
        self.labels, self.flip = labels, flip
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.x[2 * i : 2 * i + 2].copy()
        y = (x[:, 0] > x[:, 1]) if self.labels else x[:, 0] * 1.0  # from the stored sample
        if self.flip and self.rng.random() < 2:  # always flips, but through the RNG
            x = x[:, ::-1].copy()
        elif not self.flip:
            y = y + 1  # a wrong formula, no randomness involved
        return x, y


def first_is_larger(x: Any) -> Any:
    return np.asarray(x)[:, 0] > np.asarray(x)[:, 1]


def first_column(x: Any) -> Any:
    return np.asarray(x)[:, 0] * 1.0


@pytest.mark.parametrize(
    "labels, flip, hint",
    [
        (
            False,
            False,
            "compute the targets from the very inputs you yield, in a floating dtype, shaped"
            " as the model's output (np.expand_dims(y, -1) for a Dense(1) head).",
        ),
        (True, False, "compute each label from the very inputs you yield, or check target_fn."),
        (
            False,
            True,
            "compute the targets from the augmented inputs you yield (scale the target with"
            " the image), not before the augmentation; keep a floating dtype and the"
            " model's output shape.",
        ),
        (
            True,
            True,
            "compute each label from the augmented inputs you return (a flipped image needs"
            " its flipped label), not from the stored sample before the augmentation; or"
            " check target_fn.",
        ),
    ],
    ids=["values", "labels", "augmented-values", "augmented-labels"],
)
def test_targets_wrong_when_yielded_get_a_hint_for_labels_and_augmentation(labels, flip, hint):
    target_fn = first_is_larger if labels else first_column
    report = check_targets_match(Stored(labels, flip), target_fn, draws=4)
    assert "when yielded" in {f.when for f in report.findings}
    assert report.hint == hint
    randomness = [n for n in report.notes if n.startswith("Randomness:")]
    assert bool(randomness) == flip  # augmentation is named only where the source drew


def test_random_numbers_that_make_the_data_are_not_augmentation():
    """A source drawing its samples fresh (no stored rows) gets the plain hint, no note."""

    def fresh() -> Any:
        rng = np.random.default_rng(1)
        for _ in range(4):
            x = rng.random((2, 2))
            yield x, x[:, 0] + 1  # wrong formula

    report = check_targets_match(fresh, first_column, draws=4)
    assert report.hint.startswith("compute the targets from the very inputs you yield")
    assert not [n for n in report.notes if n.startswith("Randomness:")]


class Jittered:
    """Random numbers drawn by a source holding ``stored`` rows, batches of 2 rows."""

    def __init__(self, stored: int) -> None:
        self.x = np.arange(2.0 * stored).reshape(stored, 2)
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(2 * i, 2 * i + 2) % len(self.x)
        x = self.x[rows] + self.rng.normal(size=(2, 2))  # noise on the stored rows
        return x, self.x[rows, 0]  # bug: the target of the sample before the noise


@pytest.mark.parametrize("stored, augments", [(4, True), (3, False), (2, False)])
def test_augmentation_is_random_numbers_applied_to_at_least_two_batches_of_stored_rows(
    stored, augments
):
    """Rows enough for two batches are a data set being augmented; fewer are a buffer."""
    report = check_targets_match(Jittered(stored), first_column, draws=4)
    assert report.hint.startswith("compute the targets from the augmented inputs") == augments
    assert any(n.startswith("Randomness:") for n in report.notes) == augments


def test_integer_targets_against_a_float_target_fn_are_values_not_labels():
    """Labels are integers on both sides; one float side makes it a regression target."""

    def counts() -> Any:
        for i in range(4):
            x = np.full((2, 2), float(i))
            yield x, np.full(2, i + 1)  # int targets, off by one

    def as_float(x: Any) -> Any:
        return np.asarray(x)[:, 0]

    def as_int(x: Any) -> Any:
        return np.asarray(x)[:, 0].astype(int)

    plain = "compute the targets from the very inputs you yield, in a floating dtype"
    assert check_targets_match(counts, as_float, draws=4).hint.startswith(plain)
    assert check_targets_match(counts, as_int, draws=4).hint == (
        "compute each label from the very inputs you yield, or check target_fn."
    )


# Words by the framework that made the batch ---------------------------------------------


def refilled_as(wrap: Any) -> Any:
    """One aligned numpy buffer, refilled, handed out wrapped by another library (which
    shares an aligned buffer's memory on CPU: jax.device_put, tf.experimental.numpy)."""

    def batches() -> Any:
        x = zero_copy.placed((2, 2), aligned=True)
        for i in range(4):
            x[:] = i
            yield wrap(x), np.full(2, 2.0 * i)  # targets fresh, inputs one buffer

    return batches


def test_jax_batches_are_told_where_their_memory_comes_from(jax):
    """Bug: "np.copy(x)" and "allocate inside the loop" said of JAX arrays, which cannot be
    written; the numpy buffer they wrap is what is refilled."""
    report = check_generator_no_aliasing(refilled_as(jax.device_put), draws=4)
    assert report.status == "failed"
    assert report.hint == (
        "fill a new numpy array for every batch before handing it to JAX, or copy it with"
        " jnp.array(x): on CPU, jax.device_put and jnp.asarray can wrap a numpy buffer"
        " without copying, so refilling that buffer rewrites every JAX array made from it."
    )
    later = check_targets_match(
        refilled_as(jax.device_put), lambda x: np.asarray(x).sum(axis=1), draws=4
    )
    assert later.status == "failed"
    assert later.hint.endswith("; assert_generator_no_aliasing names the buffer.")
    assert "jnp.array(x)" in later.hint


def test_tensorflow_batches_are_told_to_copy_in_the_python_code_behind_the_pipeline():
    # A TensorFlow tensor made eagerly is a copy (convert_to_tensor copied the refilled
    # buffer above: nothing to fail), so the words for TensorFlow batches are chosen here.
    from pitfalls._aliasing import fix_kind, later_fix
    from pitfalls._sources import resolve
    from pitfalls._words import say

    generator = resolve(iter([]))
    kind, fields = fix_kind(generator, "tensorflow")
    hint = say("generator_no_aliasing", "BATCH_CHANGED", kind, **fields).hint
    assert kind == "tensorflow" and hint.startswith(
        "have the Python code behind the pipeline yield a new numpy array for every batch"
    )
    assert "from_generator" in later_fix(generator, "tensorflow")


TORCH_LOADER_HINT = (
    "return a new tensor for every batch from the Dataset's __getitem__ and from"
    " collate_fn, or return x.clone(): torch.stack(..., out=buf), buf[:] = ... and"
    " torch.from_numpy(buf) of a refilled buffer hand out the same memory every time,"
    " with workers too (a tensor a worker sends moves to shared memory, which that worker"
    " then refills)."
)


def test_a_torch_collate_fn_reusing_its_tensor_is_told_to_clone(torch):
    """Bug: "allocate the batch inside __iter__ ... np.copy(x)" said of a DataLoader, whose
    user writes a Dataset and a collate_fn, and whose batches are tensors."""
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.arange(32.0).reshape(16, 2)
    out = torch.empty(4, 2)

    def collate(samples: Any) -> Any:
        torch.stack([s[0] for s in samples], out=out)  # bug: one tensor for every batch
        return out, out.sum(dim=1)

    def loader() -> Any:
        return DataLoader(TensorDataset(x), batch_size=4, collate_fn=collate)

    assert check_generator_no_aliasing(loader, draws=4).hint == TORCH_LOADER_HINT
    later = check_targets_match(loader, lambda x: np.asarray(x).sum(axis=1), draws=4)
    assert later.hint == (
        "return a new tensor for every batch from the Dataset's __getitem__ and from"
        " collate_fn (torch.stack(..., out=buf) and buf[:] = ... reuse one), or x.clone();"
        " assert_generator_no_aliasing names the buffer."
    )


def test_a_generator_of_torch_tensors_is_told_to_clone_and_its_targets_to_unsqueeze(torch):
    def refilled() -> Any:
        x = torch.zeros(2, 2)
        for i in range(4):
            x.fill_(float(i))
            yield x, x.sum(dim=1) + 1  # reused, and a wrong rule

    assert check_generator_no_aliasing(refilled, draws=4).hint == (
        "allocate a new tensor for every batch (move torch.empty(...) inside the loop) or"
        " yield x.clone(); never write into a tensor after yielding it (x[:] = ...,"
        " x.add_(...), torch.stack(..., out=x))."
    )

    def fresh_but_wrong() -> Any:
        for i in range(4):
            x = torch.full((2, 2), float(i))
            yield x, x.sum(dim=1) + 1

    wrong = check_targets_match(fresh_but_wrong, lambda x: np.asarray(x).sum(axis=1), draws=4)
    assert wrong.hint.endswith("(y.unsqueeze(-1) for an output layer of one unit).")


# Sampling is not augmentation ------------------------------------------------------------


SAMPLING_HINT = (
    "take each batch's inputs and targets with the same indices: one permutation for both"
    " (idx = rng.permutation(n), then x[idx] and y[idx]), never a separate shuffle of each;"
    " compute each target from the input it goes with, or check target_fn."
)


class ShuffledApart:
    """x and y shuffled in on_epoch_end by two different permutations: the pairs break.

    Batches are copies, so no aliasing hides or fakes anything here; every input row
    is still a stored row: the RNG sampled, it did not augment.
    """

    def __init__(self) -> None:
        self.x = np.arange(16.0).reshape(8, 2)
        self.y = self.x.sum(axis=1)
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.x[4 * i : 4 * i + 4].copy(), self.y[4 * i : 4 * i + 4].copy()

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.x)  # bug: each array gets its own permutation
        self.rng.shuffle(self.y)


def test_datadrawn_from_the_stored_samples_are_sampling_not_augmentation():
    """Bug: any RNG draw read as augmentation: "a flipped image needs its flipped label"
    for x and y shuffled apart, where no input was changed at all."""
    report = check_targets_match(ShuffledApart, row_sums, draws=6)
    assert report.hint == SAMPLING_HINT
    assert report.reason.startswith(
        "Targets differ from target_fn(inputs) on batches as they were yielded, though every"
        " input row is a stored sample, unchanged"
    )
    assert [n.split(":")[0] for n in report.notes] == ["Sampling"]
    assert "a row of self.x, unchanged" in report.notes[0]


def test_uint8_labels_computed_before_a_flip_keep_the_augmentation_hint():
    """The wrap-around note is a caution for narrow labels; it leads only where every
    mismatch is what a wrap leaves, and a flipped label is 1 off, not 32."""

    class FlipsAfterLabel(Stored):
        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            x, y = super().__getitem__(i)
            return x, y.astype(np.uint8)

    report = check_targets_match(
        FlipsAfterLabel(labels=True, flip=True),
        lambda x: first_is_larger(x).astype(np.uint8),
        draws=4,
    )
    assert report.hint.startswith("compute each label from the augmented inputs you return")
    assert any("wraps around" in n for n in report.notes)


# An order that never changes: a generator remade from one seed every epoch ------------

REMADE_HINT = (
    "make the random generator once, outside the epoch's loop (before while True:, or"
    " passed in to the generator function), and draw a new permutation from it every"
    " epoch; or seed it with the epoch: np.random.default_rng([seed, epoch])."
)


def remade_every_epoch(endless: bool) -> Any:
    """A generator function shuffling with a generator made from the same seed for every
    epoch: one endless stream (inside while True), or one epoch per call. (Its rows are
    made here: an array at the top level of this module would count as stored data for
    every source defined in it.)"""
    data = np.arange(64.0).reshape(32, 2)
    while True:
        rng = np.random.default_rng(0)  # the bug: the same permutation every epoch
        order = rng.permutation(len(data))
        for i in range(0, len(data), 8):
            rows = data[order[i : i + 8]]
            yield rows, rows.mean(axis=1)
        if not endless:
            return


@pytest.mark.parametrize("endless", [True, False], ids=["while-true", "an-epoch-per-call"])
def test_a_generator_remade_from_one_seed_every_epoch_is_named_and_moved_out(endless):
    """Bug: inside while True, the remade generator went unseen: "nothing shuffles them",
    and the hint said to permute in the generator, which it did."""
    report = check_order_shuffled(
        lambda: remade_every_epoch(endless), steps_per_epoch=4 if endless else None
    )
    assert report.reason.endswith(
        "the source makes its random generator (remade_every_epoch()'s rng) anew for every"
        " epoch, from the same seed, so every epoch draws the same permutation (and the same"
        " augmentation)."
    )
    assert report.hint == REMADE_HINT
