"""One exact-text test per message format, so messages never drift unnoticed.

Order, as numpy.testing.assert_allclose: what was checked with which options,
the reason, counts, the first locations, further evidence, the hint, msg.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import epochs, pipelines

ALIASING_REASON = (
    "Batches changed after they were handed out: the source writes into memory it has"
    " already yielded, so a consumer that reads ahead (Keras' fit, tf.data prefetch,"
    " a queue of workers) trains on contents that are not the batch it was given."
)
ALIASING_HINT = (
    "Hint: allocate a new array for every batch (move np.zeros(...) inside the loop) or"
    " yield a copy (np.copy(x)); never write into an array after yielding it, nor"
    " shuffle in place an array whose views were yielded."
)
AT_YIELD_REASON = (
    "Targets differ from target_fn(inputs) on batches as they were yielded: the source"
    " computes its targets by another rule than target_fn (a wrong formula, targets"
    " computed before a random augmentation changed the inputs, integer overflow or"
    " division, a shape (n,) where (n, 1) is meant), or target_fn is wrong."
)
AT_YIELD_HINT = (
    "Hint: compute the targets from the very inputs you yield, in a floating dtype,"
    " shaped as the model's output (np.expand_dims(y, -1) for a Dense(1) head)."
)


def written_at(function, code, above=()):
    """The blame lines a message shows for the line ``code`` of ``function``."""

    def where(fn, text):
        lines, start = inspect.getsourcelines(fn)
        number = start + next(i for i, line in enumerate(lines) if line.strip() == text)
        path = inspect.getsourcefile(fn)
        # relative under the working directory, as pytest shows paths; else whole (an
        # installed pitfalls' lessons, when these tests run outside the checkout)
        if not os.path.relpath(path).startswith(os.pardir):
            path = os.path.relpath(path)
        return f"{path}:{number} in {fn.__qualname__}: {text}"

    return [f"Written at: {where(function, code)}"] + [
        f"  called from {where(fn, text)}" for fn, text in above
    ]


def refilled():
    x = np.zeros((2, 2))
    for i in range(4):
        x[:] = i
        yield x, np.full(2, float(i))


def message(assertion, *args, **kwargs):
    with pytest.raises(pitfalls.PitfallError) as excinfo:
        assertion(*args, **kwargs)
    return str(excinfo.value)


def test_aliasing_message():
    assert message(
        pitfalls.assert_generator_no_aliasing, refilled, draws=3, msg="my pipeline"
    ) == "\n".join(
        [
            "generator_no_aliasing(draws=3) failed",
            ALIASING_REASON,
            "Batches affected: 2 of 3 (66.7%); findings: 2",
            "Findings:",
            "  batch 0, inputs, after later draws: 4 / 4 elements (100.0%) differ",
            "      index   yielded  now",
            "      [0, 0]  0.0      2.0",
            "      [0, 1]  0.0      2.0",
            "      [1, 0]  0.0      2.0",
            "  batch 1, inputs, after later draws: 4 / 4 elements (100.0%) differ",
            "      index   yielded  now",
            "      [0, 0]  1.0      2.0",
            "      [0, 1]  1.0      2.0",
            "      [1, 0]  1.0      2.0",
            *written_at(refilled, "x[:] = i"),
            "  (batch 0, inputs; the write raised once that memory was made read-only)",
            "Memory: inputs in all 3 batches share one buffer, refilled in place.",
            ALIASING_HINT,
            "my pipeline",
        ]
    )


def test_aliasing_message_caps_the_listing():
    text = message(pitfalls.assert_generator_no_aliasing, lambda: refilled(), draws=4)
    assert "Findings:" in text  # 3 findings: all shown
    x = np.zeros(1)

    def many():
        for i in range(20):
            x[0] = i
            yield x

    lines = message(pitfalls.assert_generator_no_aliasing, many).splitlines()
    assert lines[3] == "First 3 shown:"
    assert "  ... and 12 more" in lines


def test_structure_change_message():
    def list_refill():
        batch = []
        for i in range(3):
            batch.clear()
            batch.extend([np.zeros(1)] * (i + 1))
            yield batch

    assert message(pitfalls.assert_generator_no_aliasing, list_refill, draws=3) == "\n".join(
        [
            "generator_no_aliasing(draws=3) failed",
            ALIASING_REASON,
            "Batches affected: 2 of 3 (66.7%); findings: 2",
            "Findings:",
            "  batch 0, batch, after later draws: held 1 item and now holds 3 items",
            "  batch 1, batch, after later draws: held 2 items and now holds 3 items",
            *written_at(list_refill, "batch.clear()"),
            "  (batch 0, batch; seen by tracing the source line by line)",
            ALIASING_HINT,
        ]
    )


def test_targets_message_when_yielded():
    def integer_division():
        for i in range(2):
            x = np.array([[i, i + 1], [2 * i, 2 * i + 3]])
            yield x, (x[:, 0] + x[:, 1]) // 2

    def mean(x):
        return x.mean(axis=1)

    assert message(pitfalls.assert_targets_match, integer_division, mean, draws=2) == "\n".join(
        [
            "targets_match(target_fn=mean, draws=2, rtol=1e-07, atol=1e-07) failed",
            "Targets differ from target_fn(inputs) on batches as they were yielded, and every"
            " difference is one that integer arithmetic leaves: a sum that overflowed its dtype"
            " and wrapped around, or a division that floored (see Integers).",
            "Batches affected: 2 of 2 (100.0%); findings: 2",
            "Findings:",
            "  batch 0, targets, when yielded: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    0.5        0",
            "      [1]    1.5        1",
            "  batch 1, targets, when yielded: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    1.5        1",
            "      [1]    3.5        3",
            "Integers: targets is int64 while target_fn gives fractions, which it floors:"
            " integer division (//) or an integer dtype. Divide with / in floats.",
            "Hint: compute the targets in a wide integer or floating dtype: widen before the"
            " arithmetic (x.astype(np.int64), or x.astype(np.float64) for a mean) and divide"
            " with /, not //.",
        ]
    )


def test_targets_message_for_another_rule():
    def off_by_one():
        for i in range(2):
            x = np.full((2, 2), float(i))
            yield x, x.mean(axis=1) + 1

    lines = message(
        pitfalls.assert_targets_match, off_by_one, lambda x: x.mean(axis=1), draws=2
    ).splitlines()
    assert [lines[0], lines[1], lines[-1]] == [
        "targets_match(target_fn=<lambda>, draws=2, rtol=1e-07, atol=1e-07) failed",
        AT_YIELD_REASON,
        AT_YIELD_HINT,
    ]


def test_targets_message_for_rounding():
    x = np.array([[0.1, 0.2]], np.float32)
    assert message(
        pitfalls.assert_targets_match,
        [(x, x.sum(axis=1))] * 2,
        lambda x: x.astype(np.float64).sum(axis=1),
        draws=2,
        rtol=0,
        atol=0,
    ) == "\n".join(
        [
            "targets_match(target_fn=<lambda>, draws=2, rtol=0, atol=0) failed",
            "Targets differ from target_fn(inputs) only by rounding: the rule holds, but the"
            " source and target_fn round differently (another order of summation, another"
            " library: torch, JAX or TensorFlow against numpy, float32 against float64), and"
            " the tolerance admits less than that rounding.",
            "Batches affected: 2 of 2 (100.0%); findings: 2",
            "Findings:",
            "  batch 0, targets, when yielded: 1 / 1 elements (100.0%) differ",
            "      index  target_fn            yielded",
            "      [0]    0.30000000447034836  0.3",
            "  batch 1, targets, when yielded: 1 / 1 elements (100.0%) differ",
            "      index  target_fn            yielded",
            "      [0]    0.30000000447034836  0.3",
            "Rounding: every difference is within 8 float32 ulps of the targets' largest magnitude"
            " (0.3; the largest difference 7.5e-09): the targets"
            " differ from target_fn's only by rounding.",
            "Hint: raise the tolerance to admit that rounding: atol=1e-07 covers every"
            " difference seen, or leave rtol and atol unset for the defaults of float32.",
        ]
    )


def test_targets_message_for_a_read_ahead():
    def refilled_pairs():
        x = np.zeros((2, 2))
        for i in range(4):
            x[:] = [[i, 2 * i], [3 * i, 4 * i]]
            yield x, x.mean(axis=1)

    def mean(x):
        return x.mean(axis=1)

    read_ahead = lambda: pitfalls.read_ahead(refilled_pairs(), 1)  # noqa: E731
    assert message(pitfalls.assert_targets_match, read_ahead, mean, draws=4) == "\n".join(
        [
            "targets_match(target_fn=mean, draws=4, rtol=1e-07, atol=1e-07) failed",
            "Targets differ from target_fn(inputs) on batches as they were yielded because"
            " their inputs were already overwritten with other batches' data: target_fn of"
            " those inputs gives the targets yielded with another batch, and they changed"
            " again after later draws. The source, or a reader ahead of the consumer"
            " (DataLoader workers, tf.data prefetch, a thread), writes new batches into memory"
            " it has already handed out.",
            "Batches affected: 3 of 4 (75.0%); findings: 3",
            "Findings:",
            "  batch 0, targets, when yielded: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    1.5        0.0",
            "      [1]    3.5        0.0",
            "  batch 1, targets, when yielded: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    3.0        1.5",
            "      [1]    7.0        3.5",
            "  batch 2, targets, when yielded: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    4.5        3.0",
            "      [1]    10.5       7.0",
            "Read-ahead: when they were compared, the inputs of batches 0, 1 held the data of"
            " batches 1, 2 (target_fn of them gives the targets yielded with those): 2 of the"
            " 3 batches that mismatched when yielded.",
            "Hint: allocate new arrays for every batch (move np.zeros(...) inside the loop) or"
            " yield copies (np.copy(x)); assert_generator_no_aliasing names the buffer.",
        ]
    )


def test_targets_reasons_for_sampled_rows_and_for_inputs_rewritten():
    stored = np.arange(16.0).reshape(8, 2)

    def sampled():
        rng = np.random.default_rng(0)
        while True:
            x = stored[rng.integers(0, 8, 2)]
            yield x, x.sum(axis=1) + 1  # rows as stored, targets by another rule

    report = pitfalls.check_targets_match(sampled, lambda x: x.sum(axis=1), draws=2)
    assert (report.reason, report.notes, report.hint) == (
        "Targets differ from target_fn(inputs) on batches as they were yielded, though every"
        " input row is a stored sample, unchanged: the source pairs inputs with the targets of"
        " other samples (inputs and targets indexed or shuffled apart) or computes them by"
        " another rule than target_fn, or target_fn is wrong.",
        (
            "Sampling: the source drew from sampled()'s rng, but every input row of the"
            " batches that mismatched is a row of sampled()'s stored, unchanged: it"
            " picks samples, it does not augment them, so the targets are those of other rows"
            " or of another rule.",
        ),
        "take each batch's inputs and targets with the same indices: one permutation for both"
        " (idx = rng.permutation(n), then x[idx] and y[idx]), never a separate shuffle of"
        " each; compute each target from the input it goes with, or check target_fn.",
    )

    def rewritten():
        x = np.zeros((2, 2))
        for i in range(3):
            x[:] = i
            yield x, x.mean(axis=1) + 1  # a wrong rule, and one buffer

    _, via_source = pitfalls.check_source(rewritten, lambda x: x.mean(axis=1), draws=3)
    assert (via_source.reason, via_source.notes[0], via_source.hint) == (
        "Targets differ from target_fn(inputs) on batches as they were yielded, and"
        " generator_no_aliasing failed on the same source: the source writes into batches it"
        " has handed out, so these inputs may have been overwritten before they were compared"
        " (by a read-ahead: DataLoader workers, tf.data prefetch, a thread), or the targets"
        " are wrong as well.",
        "Aliasing: generator_no_aliasing failed on the same source (2 of 3 batches changed"
        " after they were handed out): read its report first.",
        "fix what generator_no_aliasing reports first (its hint names the fix), then check the"
        " targets again: a mismatch left then is in the rule itself.",
    )


def test_targets_message_after_later_draws():
    assert message(
        pitfalls.assert_targets_match, refilled, lambda x: x[:, 0], draws=2
    ) == "\n".join(
        [
            "targets_match(target_fn=<lambda>, draws=2, rtol=1e-07, atol=1e-07) failed",
            "Every batch matched when it was yielded but not after later draws: the source"
            " overwrote the inputs or targets of batches it had handed out, so a consumer"
            " that reads ahead (Keras' fit, tf.data prefetch) trains on inputs paired with"
            " another batch's targets.",
            "Batches affected: 1 of 2 (50.0%); findings: 1",
            "Findings:",
            "  batch 0, targets, after later draws: 2 / 2 elements (100.0%) differ",
            "      index  target_fn  yielded",
            "      [0]    1.0        0.0",
            "      [1]    1.0        0.0",
            *written_at(refilled, "x[:] = i"),
            "  (batch 0, inputs; the write raised once that memory was made read-only)",
            "Hint: allocate new arrays for every batch (move np.zeros(...) inside the loop) or"
            " yield copies (np.copy(x)); assert_generator_no_aliasing names the buffer.",
        ]
    )


def test_shape_message():
    def column_targets():
        while True:
            yield np.ones((2, 2)), np.ones(2)

    text = message(pitfalls.assert_targets_match, column_targets, lambda x: x[:, :1], draws=2)
    assert (
        text.splitlines()[4]
        == "  batch 0, targets, when yielded: shape (2,), but target_fn gives (2, 1)"
    )


def test_passing_reports_say_what_was_checked():
    assert str(pitfalls.check_generator_no_aliasing([np.zeros(1)] * 3, draws=3)) == (
        "generator_no_aliasing(draws=3) passed: none of 3 batches changed after later draws"
    )
    pairs = [(np.ones((1, 2)), np.ones(1))] * 2
    assert str(pitfalls.check_targets_match(pairs, lambda x: x.mean(axis=1), draws=2)) == (
        "targets_match(target_fn=<lambda>, draws=2, rtol=1e-07, atol=1e-07) passed:"
        " all 2 batches matched when yielded and after later draws"
    )


def test_only_a_passing_report_carries_the_summary_line():
    """Bug: a failed report's .summary read "none of 16 batches changed", the pass line."""

    def refilled():
        x = np.zeros(2)
        for i in range(3):
            x[:] = i
            yield x

    failed = pitfalls.check_generator_no_aliasing(refilled, draws=3)
    assert failed.status == "failed" and failed.summary == "" == failed.to_dict()["summary"]
    passed = pitfalls.check_generator_no_aliasing([np.zeros(1)] * 3, draws=3)
    assert (
        passed.summary
        == passed.to_dict()["summary"]
        == ("none of 3 batches changed after later draws")
    )


def test_a_value_whose_repr_fails_does_not_break_the_message():
    class Bad:
        def __eq__(self, other):
            return False

        def __repr__(self):
            raise RuntimeError("no repr")

    def source():
        cell = np.empty(1, dtype=object)
        for _ in range(3):
            cell[0] = Bad()
            yield cell

    text = message(pitfalls.assert_generator_no_aliasing, source, draws=3)
    assert "[repr failed for <Bad>]" in text


BROADCAST_HINT = (
    "Hint: give both the same shape before subtracting: np.reshape(y_true, y_pred.shape), or"
    " y[:, None] / keras.ops.expand_dims(y, -1) for a (n,) target against a (n, 1) output."
    " Keras 3's built-in losses reshape for you; a Loss subclass, a GradientTape loop and"
    " numpy evaluation do not."
)


def test_no_broadcast_message():
    assert message(pitfalls.assert_no_broadcast, np.zeros((8, 1)), np.zeros(8)) == "\n".join(
        [
            "no_broadcast(y_true=(8, 1), y_pred=(8,)) failed",
            "y_true and y_pred differ in shape, so an elementwise loss silently broadcasts:"
            " every target is compared with every prediction, and the mean is of the wrong"
            " numbers.",
            "Findings:",
            "  y_true - y_pred: broadcasts to (8, 8): 64 elements where 8 were meant",
            BROADCAST_HINT,
        ]
    )


def test_no_broadcast_message_when_the_shapes_cannot_broadcast():
    lines = message(pitfalls.assert_no_broadcast, np.zeros(3), np.zeros(4)).splitlines()
    assert lines[1] == "y_true and y_pred have different shapes that cannot be combined."
    assert (
        lines[3]
        == "  y_true - y_pred: shapes (3,) and (4,) do not broadcast: the operation would raise"
    )


def test_prediction_shape_message():
    class DeclaresOneColumn:
        output_shape = (None, 1)

        def __call__(self, x):
            return x[:, 0] + x[:, 1]

    text = message(pitfalls.assert_prediction_shape, DeclaresOneColumn(), np.ones((4, 2)))
    assert text == "\n".join(
        [
            "prediction_shape(declared=(None, 1), rows=4) failed",
            "The model's output has another shape than it declares: a layer (often a Lambda)"
            " returns (n,) where (n, 1) is declared, which no error reports; against (n, 1)"
            " targets, a loss that does not reshape broadcasts to (n, n).",
            "Findings:",
            "  prediction: model(x) returned shape (4,), expected (4, 1)",
            "Hint: keep the feature axis: return keras.ops.expand_dims(res, -1) (K.expand_dims"
            " in Keras 2) from the Lambda, or declare and return the same shape.",
        ]
    )


def test_passing_shape_reports():
    assert str(pitfalls.check_no_broadcast(np.zeros((2, 1)), np.zeros((2, 1)))) == (
        "no_broadcast(y_true=(2, 1), y_pred=(2, 1)) passed: shapes match"
    )
    report = pitfalls.check_prediction_shape(
        lambda x: x[:, :1], np.ones((3, 2)), expected=(None, 1)
    )
    assert str(report) == "prediction_shape(expected=(None, 1)) passed: model(x) returned (3, 1)"


def test_index_stability_message():
    class CountsCalls:
        def __init__(self):
            self.calls = 0

        def __len__(self):
            return 2

        def __getitem__(self, i):
            self.calls += 1
            return np.full(2, float(self.calls))

        def on_epoch_end(self):
            pass

    assert message(pitfalls.assert_index_stable, CountsCalls()) == "\n".join(
        [
            "index_stable(draws=2) failed",
            "Reading the same index twice gave different batches: __getitem__ depends on more"
            " than its index (a counter, an iterator or an RNG advanced per call), so workers"
            " that read indices in any order see other data than one reader would.",
            "Indices affected: 2 of 2 (100.0%); findings: 2",
            "Findings:",
            "  index 0, batch, read again: 2 / 2 elements (100.0%) differ",
            "      index  first read  second read",
            "      [0]    1.0         4.0",
            "      [1]    1.0         4.0",
            "  index 1, batch, read again: 2 / 2 elements (100.0%) differ",
            "      index  first read  second read",
            "      [0]    2.0         3.0",
            "      [1]    2.0         3.0",
            *written_at(CountsCalls.__getitem__, "self.calls += 1"),
            "  (index 0, source.calls; seen by tracing the source line by line)",
            "Reading changed the source's own state: self.calls.",
            "Hint: derive each batch from its index alone: slice by index, and seed any random"
            " augmentation with the index (and the epoch), or pass reseed=, a function that"
            " reseeds your generator from the seed it is given.",
        ]
    )


IN_PLACE_REASON = (
    "The second epoch holds other samples than the first: reading writes the data the"
    " source holds (see the note), typically preprocessing done in place through a view"
    " (x /= 255 on a slice), so every epoch trains on data transformed once more."
)


def test_epoch_repeatable_message():
    data = np.arange(32.0).reshape(8, 2, 2)
    source = functools.partial(epochs.scaled_in_place, data, 4)
    assert message(pitfalls.assert_epoch_repeatable, source) == "\n".join(
        [
            "epoch_repeatable(steps_per_epoch=2) failed",
            IN_PLACE_REASON,
            "Findings:",
            "  samples of epoch 1, in epoch 2: 8 / 8 samples of epoch 1 are not in epoch 2"
            " (epoch 1 had 8 samples, epoch 2 8); first missing: samples [0, 1, 2]",
            *written_at(epochs.scaled_in_place, "x /= 255.0"),
            "  (batch 0, inputs; seen by tracing the source line by line)",
            "Stored data written while reading: scaled_in_place()'s data (8 of 8 rows).",
            "Hint: transform a copy (x = data[rows] / 255 makes one), never a slice of the"
            " stored data in place; or preprocess once, before training.",
        ]
    )


def test_epoch_repeatable_message_for_a_dataset_that_augments():
    images, labels = pipelines.image_data(n=32)
    dataset = pipelines.ScaledInPlace(images, labels)
    assert message(pitfalls.assert_epoch_repeatable, dataset) == "\n".join(
        [
            "epoch_repeatable(steps_per_epoch=4) failed",
            IN_PLACE_REASON,
            "Findings:",
            "  samples of epoch 1, read again: 32 / 32 samples differ when the same indices"
            " are read again under the same seeds; first: samples [0, 1, 2]",
            *written_at(
                pipelines.ScaledInPlace.scaled,
                "self.images[rows] /= 255.0",
                above=[(pipelines.ScaledCopy.__getitem__, "x = self.scaled(i)")],
            ),
            "  (self.images; seen by tracing the source line by line)",
            "Stored data written while reading: self.images (32 of 32 rows).",
            "Randomness: the source drew from self.rng; every read compared was made after"
            " reseeding them alike, and they were put back afterwards.",
            "Hint: transform a copy inside __getitem__ (x = self.images[rows] / 255 makes"
            " one), never a slice of the stored data in place; or preprocess once, in"
            " __init__.",
        ]
    )


def test_order_shuffled_message():
    source = functools.partial(epochs.same_order_every_epoch, np.arange(32.0).reshape(8, 4), 4)
    assert message(pitfalls.assert_order_shuffled, source, steps_per_epoch=2) == "\n".join(
        [
            "order_shuffled(steps_per_epoch=2) failed",
            "Every epoch visits the samples in the same order: nothing shuffles them between"
            " epochs, and Keras does not shuffle a generator (fit(..., shuffle=True) only warns).",
            "Findings:",
            "  sample order, epoch 2: epoch 2 repeats epoch 1's order of all 8 samples",
            "Hint: permute inside the generator each epoch (order = rng.permutation(n)), or"
            " use a keras.utils.PyDataset / tf.data pipeline that shuffles.",
        ]
    )


def test_order_shuffled_message_for_a_loader_reseeded_every_epoch():
    images, _ = pipelines.image_data(n=16)
    loader = pipelines.LoaderSameSeedEveryEpoch(images, 4)
    assert message(pitfalls.assert_order_shuffled, loader) == "\n".join(
        [
            "order_shuffled(steps_per_epoch=4) failed",
            "Every epoch visits the samples in the same order: the source makes its random"
            " generator (__iter__()'s rng) anew for every epoch, from the same seed, so every"
            " epoch draws the same permutation (and the same augmentation).",
            "Findings:",
            "  sample order, epoch 2: epoch 2 repeats epoch 1's order of all 16 samples",
            "Randomness: the source drew from __iter__()'s rng; the epochs were read as"
            " training reads them, nothing reseeded between them, and every generator was put"
            " back afterwards.",
            "Hint: make the generator once, in __init__ (self.rng ="
            " np.random.default_rng(seed)), and draw a new permutation from it in every"
            " __iter__.",
        ]
    )


def test_inconclusive_message():
    elsewhere = types.ModuleType("elsewhere")
    elsewhere.rng = np.random.default_rng(0)

    class TwoGenerators:  # draws from np.random (reseeded) and from another module's (not:
        # drawn from by C code, map, it is seen drawing on no Python version)
        def __len__(self):
            return 2

        def __getitem__(self, i):
            x = np.arange(4.0).reshape(2, 2) + 2 * i
            hidden = next(map(elsewhere.rng.normal, [0.0], [1.0], [(2, 1)]))
            noise = np.random.normal(size=(2, 1)) + hidden
            return x + noise, np.ones(2)

        def on_epoch_end(self):
            pass

    assert message(pitfalls.assert_epoch_repeatable, TwoGenerators()) == "\n".join(
        [
            "epoch_repeatable(steps_per_epoch=2) could not judge",
            "The source is random per read (it drew from np.random (global)), and two epochs"
            " hold other samples even with every generator pitfalls can reach reseeded alike"
            " before each read, so the difference may be randomness pitfalls cannot reach (a"
            " numpy generator in another module before Python 3.12, a generator drawn from by"
            " C code, or TensorFlow ops in a tf.function) as well as a bug. No array the source holds changed (watched: none found). Pass"
            " reseed=, a function that reseeds your generators from its seed argument (for"
            " self.rng: lambda seed: ...), or check with the augmentation turned off.",
            "Randomness: the source drew from np.random (global); every read compared was"
            " made after reseeding them alike, and they were put back afterwards.",
        ]
    )


def test_epoch_complete_message():
    data = np.arange(32.0).reshape(8, 2, 2)
    assert message(pitfalls.assert_epoch_complete, [data[:4], data[:4]], data) == "\n".join(
        [
            "epoch_complete(steps_per_epoch=2, samples=8) failed",
            "An epoch did not deliver every sample exactly once: the batches are drawn with"
            " replacement (rng.choice(n, batch_size) or rng.integers for each batch), index"
            " ranges overlap, or a source shared by several workers without a lock (a"
            " read-modify-write of its position) hands out some batches twice and skips"
            " others.",
            "Findings:",
            "  samples, duplicated: 4 extra deliveries of 4 samples; first: [0, 1, 2]",
            "  samples, dropped: 4 / 8 samples never delivered; first: [4, 5, 6]",
            "Hint: draw one permutation of the samples per epoch and cut the batches from it"
            " (order = rng.permutation(n); batch i is order[i * batch_size:(i + 1) *"
            " batch_size]); with workers, give each worker indices (keras.utils.PyDataset, a"
            " DataLoader with a sampler) or guard a shared iterator with a threading.Lock"
            " around next().",
        ]
    )


def test_epoch_complete_message_for_a_dropped_remainder():
    data = np.arange(32.0).reshape(8, 2, 2)  # 8 samples in batches of 3: the last 2 dropped
    assert message(pitfalls.assert_epoch_complete, [data[:3], data[3:6]], data) == "\n".join(
        [
            "epoch_complete(steps_per_epoch=2, samples=8) failed",
            "An epoch did not deliver every sample: its last, partial batch was dropped (the"
            " batching stops at the last whole batch), so the samples past the last whole"
            " batch are never trained on in an epoch (other ones each epoch, when it"
            " shuffles).",
            "Findings:",
            "  samples, dropped: 2 / 8 samples never delivered; first: [6, 7]",
            "Hint: yield the last, smaller batch too: for start in range(0, n, batch_size)"
            " reaches the rows left; range(0, n - batch_size + 1, batch_size) skips them.",
        ]
    )


def test_batch_independent_message():
    def centred(x):
        return x - x.mean(axis=0)  # every output moves with the batch's mean

    text = message(
        pitfalls.assert_batch_independent, centred, np.arange(6).reshape(3, 2), max_perturbed=2
    )
    assert text == "\n".join(
        [
            "batch_independent(max_perturbed=2, batch=3) failed",
            "The output for one sample depends on other samples of the batch, so each"
            " sample's gradient leaks into the others: a (n,) against (n, 1) broadcast in"
            " the loss, or a batch-mixing layer such as BatchNormalization in training mode,"
            " or a reduction over axis 0.",
            "Findings:",
            "  x[0], perturbed: changing it moved the outputs of 2 / 2 other samples (first"
            " values shown)",
            "      index  output before  after",
            "      [1]    0.0            -0.3333333333333335",
            "      [2]    2.0            1.6666666666666665",
            "  x[1], perturbed: changing it moved the outputs of 2 / 2 other samples (first"
            " values shown)",
            "      index  output before  after",
            "      [0]    -2.0           -2.3333333333333335",
            "      [2]    2.0            1.6666666666666665",
            "Hint: give targets the output's shape (np.reshape(y, pred.shape)); evaluate with"
            " training=False where per-sample results are expected; reduce over the batch"
            " only after the per-sample loss.",
        ]
    )


WORKER_MESSAGE_SCRIPT = """
import json
import numpy as np
import pitfalls
from pitfalls.reproductions import workers

x = np.zeros(2)
try:
    pitfalls.assert_worker_randomness(
        lambda: workers.augment_with_global_rng(x), workers=2, calls=2
    )
    print(json.dumps(None))
except pitfalls.SharedRngError as exc:
    print(json.dumps(str(exc)))
"""


def test_worker_randomness_message():
    # In a fresh interpreter: forking a process that runs TensorFlow's threads may hang.
    done = subprocess.run(
        [sys.executable, "-c", WORKER_MESSAGE_SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(done.stdout) == "\n".join(
        [
            "worker_randomness(workers=2, calls=2, seed=0) failed",
            "Forked workers drew identical random numbers: each inherited its parent's RNG"
            " state and nothing reseeded it, so every worker repeats the same augmentations.",
            "Findings:",
            "  workers 0 and 1: drew the same 2 values: one RNG stream, copied into both",
            "      first value, first worker  second worker",
            "      0.1764052345967664         0.1764052345967664",
            "Randomness: fn drew from numpy's global RNG, which started in the same state in"
            " every worker (copied at the fork).",
            "Hint: seed each worker differently: np.random.seed / default_rng from"
            " np.random.SeedSequence(seed).spawn(workers)[worker_id] in a worker_init_fn or"
            " pool initializer, or derive the RNG from the batch index.",
        ]
    )
