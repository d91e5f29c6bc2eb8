"""`pitfalls demo`: measured into a DemoResult, then rendered; the tests read the data.

The numpy part runs without a framework; the training part runs once per
session at a tiny size (2 epochs of 3 steps, batch 8). Expectations come from
invariants and independent oracles: a count is asserted exactly only where no
thread decides it (the GradientTape loop fed by read_ahead, fixed generators,
the batches each run saw), never for Keras' worker threads. One test pins the
text format on a DemoResult built by hand.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import io
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from pitfalls._cli import build_parser
from pitfalls._demo import (
    CheckerRow,
    Consumer,
    DemoConfig,
    DemoResult,
    EpochMeansRow,
    EpochOrderRow,
    NextNextRow,
    PitfallTwo,
    ReadAheadCount,
    ReadAheadRow,
    TrainingRun,
    build_figure,
    config_from_args,
    render_figure,
    render_text,
    run_demo,
    run_demo_command,
    training,
)
from pitfalls._demo.measure import PHASES
from pitfalls._report import Finding, Report
from pitfalls.reproductions import epochs as epoch_variants
from pitfalls.reproductions import generators as gen

TINY = DemoConfig(epochs=2, steps=3, batch_size=8, seed=3, batches=12, depths=(0, 1, 3), draws=6)
STEPS = TINY.epochs * TINY.steps  # batches every pitfall-1 run trains on
BUGGY = {v.__name__ for v in gen.BUGGY}
FIXED = {v.__name__ for v in gen.FIXED}


@pytest.fixture(scope="session")
def numpy_part():
    return run_demo(dataclasses.replace(TINY, train=False))


@pytest.fixture(scope="session")
def trained(keras):
    """The whole demo at the tiny size, and every progress call it made."""
    calls = []
    result = run_demo(TINY, progress=lambda *call: calls.append(call))
    return result, calls


# The numpy part ----------------------------------------------------------------------


def test_the_articles_next_next_check_flags_exactly_the_buggy_variants(numpy_part):
    rows = {r.variant: r for r in numpy_part.next_next}
    assert {name for name, r in rows.items() if r.flagged} == BUGGY
    # the shared input: the first pair shows the second draw's inputs beside its own mean
    assert not rows["shared_input_buffer"].consistent
    # the article's "fix": both buffers rewritten together, so the pair is consistent but gone
    fix = rows["shared_input_and_target_buffers"]
    assert fix.consistent and fix.overwritten
    assert fix.first_inputs == fix.second_inputs
    # every fixed variant prints the seed's first two draws (numpy's Generator, row-major)
    draws = np.random.default_rng(TINY.seed).integers(0, 100, size=(2, 2)).astype(float)
    for name in FIXED:
        assert rows[name].first_inputs == tuple(draws[0]), name
        assert rows[name].second_inputs == tuple(draws[1]), name
        assert rows[name].first_target == draws[0].mean()


def test_the_checker_table_is_the_shared_runners_verdict(numpy_part):
    rows = {r.variant: r for r in numpy_part.checkers}
    assert set(rows) == BUGGY | FIXED
    for name, row in rows.items():
        assert [r.check for r in row.reports] == ["generator_no_aliasing", "targets_match"]
        aliasing, targets = row.reports
        assert aliasing.ok == (name in FIXED), name
        # every batch but the last drawn is overwritten by a later draw
        if name in BUGGY:
            assert aliasing.bad_batches == tuple(range(TINY.draws - 1)), name
            assert {f.when for f in aliasing.findings} == {"after later draws"}
        # only the shared input tears pairs; the article's "fix" keeps them consistent
        assert targets.ok == (name != "shared_input_buffer"), name
    assert rows["shared_input_buffer"].report("targets_match").bad_batches == tuple(
        range(TINY.draws - 1)
    )


def test_read_ahead_counts_follow_from_where_memory_is_allocated(numpy_part):
    for row in numpy_part.read_ahead:
        assert [c.depth for c in row.counts] == list(TINY.depths)
        for c in row.counts:
            everything = TINY.batches if c.depth > 0 else 0  # depth 0: used before the next draw
            expected = {
                "shared_input_buffer": (everything, everything),
                "shared_input_and_target_buffers": (0, everything),  # consistent, overwritten
            }.get(row.variant, (0, 0))
            assert (c.mismatched, c.overwritten) == expected, (row.variant, c.depth)
            assert c.batches == TINY.batches


def test_the_numpy_part_is_reproducible_for_a_seed(numpy_part):
    again = run_demo(dataclasses.replace(TINY, train=False))
    assert again.next_next == numpy_part.next_next and again.read_ahead == numpy_part.read_ahead
    other = run_demo(dataclasses.replace(TINY, train=False, seed=4))
    assert other.next_next != numpy_part.next_next
    assert numpy_part.consumers == () and numpy_part.skipped == ()


def test_no_train_and_the_parser_import_no_framework_and_no_matplotlib():
    code = (
        "import sys\n"
        "from pitfalls._cli import build_parser\n"
        "from pitfalls._demo import DemoConfig, render_text, run_demo\n"
        "build_parser()\n"
        "render_text(run_demo(DemoConfig(train=False, batch_size=4, batches=3, draws=2)))\n"
        "heavy = ('tensorflow', 'keras', 'tf_keras', 'torch', 'jax', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Options -------------------------------------------------------------------------------


def test_the_command_lines_defaults_are_the_configs_defaults():
    assert config_from_args(build_parser().parse_args(["demo"])) == DemoConfig()


def test_options_become_a_config():
    args = build_parser().parse_args(
        ["demo", "--pitfalls", "2", "--depths", "0,3", "--seed", "5", "--draws", "4", "--no-train"]
    )
    assert config_from_args(args) == DemoConfig(
        pitfalls=(2,), depths=(0, 3), seed=5, draws=4, train=False
    )


def test_every_demo_option_shows_its_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    options = [f.name for f in dataclasses.fields(DemoConfig) if f.name != "train"]
    assert text.count("(default: ") == len(options) + 2  # and --plot, --no-train
    assert "(default: 1,2)" in text and "(default: 0,1,2,10)" in text


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"epochs": 0}, ValueError, "epochs=0 must be at least 1"),
        ({"draws": "3"}, TypeError, "draws must be an int"),
        ({"pitfalls": (3,)}, ValueError, "choose from 1 and 2"),
        ({"depths": ()}, TypeError, "depths must be a non-empty tuple of ints"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate=0.0 must be above 0"),
    ],
)
def test_a_wrong_config_is_refused(changes, error, words):
    with pytest.raises(error, match=words):
        DemoConfig(**changes)


def test_the_command_prints_the_rendered_result_and_skips_the_plot_without_training(tmp_path):
    png = tmp_path / "demo.png"
    small = ["--batch-size", "4", "--batches", "3", "--draws", "2"]
    args = build_parser().parse_args(["demo", *small, "--no-train", "--plot", str(png)])
    out, err = io.StringIO(), io.StringIO()
    assert run_demo_command(args, out, err) == 0
    expected = render_text(run_demo(config_from_args(args)))
    assert out.getvalue() == expected + "skipped: --plot (nothing was trained)\n"
    assert err.getvalue() == "" and not png.exists()


def test_without_keras_the_demo_says_what_it_skipped(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("keras", "tensorflow") else real(name, *a),
    )
    result = run_demo(dataclasses.replace(TINY, batches=3))
    assert result.consumers == () and result.pitfall_two is None
    assert result.skipped == (
        "training (Keras 3 and TensorFlow are not installed: pip install tensorflow keras)",
    )


# The training part --------------------------------------------------------------------


def test_every_pitfall_one_run_trains_on_exactly_epochs_times_steps_batches(trained):
    result, _ = trained
    ones = [c for c in result.consumers if c.pitfall == 1]
    assert [c.key for c in ones] == ["fit_generator", "fit_pydataset", "tape_read_ahead"] + (
        ["tf_keras_fit"] if importlib.util.find_spec("tf_keras") else []
    )
    for consumer in ones:
        for run in consumer.runs:
            assert run.batches == STEPS, (consumer.key, run.variant)
            assert len(run.losses) == TINY.epochs


def test_the_read_ahead_loop_trains_the_shared_input_on_wrong_pairs_only(trained):
    result, _ = trained
    tape = result.consumer("tape_read_ahead")
    # with depth 2, every step sees batch i's targets beside batch i+2's inputs
    assert tape.run("shared_input_buffer").mismatched == STEPS
    for variant in ("shared_input_and_target_buffers", "fresh_per_yield", "copy_on_yield"):
        assert tape.run(variant).mismatched == 0, variant


def test_a_fixed_generator_trains_the_same_through_every_consumer(trained):
    """The same numbers in the same order, the same start: the same losses, whatever the loop."""
    result, _ = trained
    reference = result.consumer("tape_read_ahead").run("fresh_per_yield")
    for consumer in result.consumers:
        if consumer.key in ("fit_pydataset", "tape_shapes"):  # other data
            continue
        for variant in ("fresh_per_yield", "copy_on_yield"):
            run = consumer.run(variant)
            assert run.mismatched == 0, (consumer.key, variant)
            np.testing.assert_allclose(run.losses, reference.losses, rtol=1e-4)
            assert run.prediction == pytest.approx(reference.prediction, rel=1e-4)
    wrong = result.consumer("tape_read_ahead").run("shared_input_buffer")
    assert not np.allclose(wrong.losses, reference.losses, rtol=1e-2)


def test_keras_fit_trains_on_a_stale_first_batch_and_never_on_fresh_memory(trained):
    result, _ = trained
    # Keras 3 keeps the first two batches to infer shapes: the first is always overwritten
    assert result.consumer("fit_generator").run("shared_input_buffer").mismatched >= 1
    assert result.consumer("fit_pydataset").run("pydataset_fresh").mismatched == 0


def test_without_tf_keras_its_consumer_is_skipped_and_said_so(trained):
    result, _ = trained
    present = importlib.util.find_spec("tf_keras") is not None
    assert any(c.key == "tf_keras_fit" for c in result.consumers) == present
    assert any("tf_keras is not installed" in s for s in result.skipped) == (not present)


def test_pitfall_two_the_loss_subclass_scores_an_exact_model_2_var_y(trained):
    result, _ = trained
    two = result.pitfall_two
    n = TINY.batch_size * 16
    x = np.random.default_rng(TINY.seed).integers(0, 100, size=(n, 2))
    y = x.mean(axis=1)
    assert two.samples == n
    assert two.two_var_y == pytest.approx(2 * np.var(y))
    assert two.loss_subclass_buggy == pytest.approx(2 * np.var(y), rel=1e-4)
    assert two.loss_subclass_fixed == pytest.approx(0, abs=1e-6)
    assert two.keras_mse_buggy == pytest.approx(0, abs=1e-6)  # Keras 3 reshapes built-in losses
    assert np.shape(two.lambda_buggy_prediction) == (1,)
    assert np.shape(two.lambda_fixed_prediction) == (1, 1)
    assert np.ravel(two.lambda_buggy_prediction)[0] == pytest.approx(46)
    # every target against every prediction: Var(y) + Var(p) + (mean y - mean p)^2 >= Var(y)
    assert two.numpy_mse_buggy >= np.var(y) * (1 - 1e-5)
    assert [r.ok for r in two.loss_call_independence] == [False, True]
    assert [r.ok for r in two.batchnorm_independence] == [False, True]


def test_pitfall_two_the_broadcast_loss_never_falls_below_var_y(trained):
    result, _ = trained
    n = TINY.batch_size * 16
    y = np.random.default_rng(TINY.seed).integers(0, 100, size=(n, 2)).mean(axis=1)
    tape = result.consumer("tape_shapes")
    assert min(tape.run("gradient_tape_buggy").losses) >= np.var(y) * (1 - 1e-5)
    assert tape.run("gradient_tape_fixed").losses[-1] < np.var(y) / 10  # it learns


def test_beyond_in_place_scaling_divides_the_stored_data_by_255_every_epoch(trained):
    result, _ = trained
    rows = {r.variant: r for r in result.epoch_means}
    in_place, copy = rows["scaled_in_place"].means, rows["scaled_copy"].means
    for earlier, later in itertools.pairwise(in_place):
        assert earlier / later == pytest.approx(255, rel=1e-4)
    stored = np.random.default_rng(TINY.seed).integers(0, 256, size=training.pixels(0).shape)
    assert copy == pytest.approx([stored.mean() / 255] * len(copy), rel=1e-5)
    assert rows["scaled_in_place"].rewritten and not rows["scaled_copy"].rewritten


def test_beyond_fit_trains_a_generator_in_the_order_it_yields(trained):
    result, _ = trained
    rows = {r.variant: r for r in result.epoch_orders}
    # Keras 3.15+ says it ignores shuffle=True; before, it ignores it silently
    version = tuple(int(part) for part in importlib.metadata.version("keras").split(".")[:2])
    assert all(r.warned == (version >= (3, 15)) for r in rows.values())
    assert rows["same_order_every_epoch"].first_samples == (0,) * training.PROBE_EPOCHS
    source = epoch_variants.reshuffled_every_epoch(
        training.numbered(), training.PROBE_BATCH, seed=TINY.seed
    )
    batches = [next(source)[0] for _ in range(training.PROBE_EPOCHS * training.PROBE_STEPS)]
    oracle = tuple(int(b[0, 0, 0]) // 16 for b in batches[:: training.PROBE_STEPS])
    assert rows["reshuffled_every_epoch"].first_samples == oracle
    assert rows["reshuffled_every_epoch"].reordered


def test_progress_has_one_bar_per_phase_that_counts_up_to_its_total_once(trained):
    """Bug: one counter for the whole demo, and the zero-copy step said [24/24] twice."""
    _, calls = trained
    phases = list(dict.fromkeys(phase for phase, *_ in calls))
    assert phases == list(PHASES)  # in order, each once
    for phase in phases:
        mine = [(done, total, what) for p, done, total, what in calls if p == phase]
        assert len({total for _, total, _ in mine}) == 1
        done = [d for d, _, _ in mine]
        assert done == sorted(done) and done[-1] == mine[0][1]
        assert [d for d, total, _ in mine if d == total] == [mine[0][1]]  # it ends once
    runs = sum(len(c.runs) for c in trained[0].consumers if c.pitfall == 1)
    pitfall_one = [c for c in calls if c[0] == "pitfall 1 trained"]
    assert pitfall_one[0] == (
        "pitfall 1 trained",
        0,
        runs * TINY.epochs,
        "Keras 3 fit(generator): shared_input_buffer",
    )
    assert pitfall_one[2][1:] == (1, runs * TINY.epochs, pitfall_one[0][3] + ", epoch 2/2")


def test_the_command_shows_a_bar_per_phase_and_no_framework_log_lines():
    """Bug: 100 progress lines, TensorFlow's C++ start-up lines between them."""
    tiny = ["--epochs", "2", "--steps", "3", "--batch-size", "8", "--batches", "12"]
    done = subprocess.run(
        [sys.executable, "-m", "pitfalls", "demo", *tiny],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split("━")[0].strip() for line in lines] == list(PHASES)  # a finished bar each
    assert done.stdout.startswith("Pitfall 1: a batch generator that re-yields one numpy buffer")


def test_plot_without_matplotlib_is_refused_before_anything_is_measured(monkeypatch, tmp_path):
    """Bug: --plot without matplotlib trained for 15 s, then skipped the plot."""
    from pitfalls._demo import measure

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    monkeypatch.setattr(measure, "run_demo", lambda *a, **k: pytest.fail("it measured"))
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["demo", "--plot", str(tmp_path / "demo.png")])
    assert run_demo_command(args, out, err) == 2
    assert (out.getvalue(), err.getvalue()) == (
        "",
        "pitfalls demo: --plot needs matplotlib, which is not installed: pip install matplotlib\n",
    )
    monkeypatch.undo()
    monkeypatch.setattr(measure, "run_demo", lambda *a, **k: pytest.fail("it measured"))
    nowhere = tmp_path / "no" / "demo.png"
    args = build_parser().parse_args(["demo", "--plot", str(nowhere)])
    assert run_demo_command(args, out, err) == 2
    assert f"--plot {nowhere}: the folder {nowhere.parent} does not exist" in err.getvalue()


def test_the_figure_has_a_panel_per_consumer_and_one_for_the_epoch_means(trained, tmp_path):
    import matplotlib.pyplot as plt

    result, _ = trained
    fig = build_figure(result)
    try:
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert len(panels) == len(result.consumers) + 1
        for ax, consumer in zip(panels, result.consumers):
            assert consumer.title in ax.get_title()
            assert len(ax.get_lines()) == len(consumer.runs)
            colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
            for run in consumer.runs:
                label = next(k for k in colours if k.startswith(run.variant))
                assert (colours[label] in ("#d62728", "#ff7f0e")) == (run.kind == "buggy")
    finally:
        plt.close(fig)
    png = tmp_path / "demo.png"  # laid out and saved by render_figure: one panel shows it works
    render_figure(dataclasses.replace(result, consumers=result.consumers[:1], epoch_means=()), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="nothing was trained"):
        render_figure(dataclasses.replace(result, consumers=()), png)


# The text format -----------------------------------------------------------------------


def _report(check, bad=(), batches=3):
    findings = tuple(Finding(batch=b, when="after later draws") for b in bad)
    return Report(check=check, batches=batches, findings=findings)


def _independence(ok):
    found = () if ok else (Finding(path="y_true[0]", mismatched=3, total=3),)
    return Report(check="batch_independent", findings=found)


HAND_MADE = DemoResult(
    config=DemoConfig(epochs=2, steps=3, batch_size=4, batches=3, depths=(0, 2), draws=3),
    next_next=(
        NextNextRow(
            variant="shared_input_buffer",
            kind="buggy",
            first_inputs=(1.0, 3.0),
            first_target=5.0,
            second_inputs=(1.0, 3.0),
            second_target=2.0,
            consistent=False,
            overwritten=True,
        ),
        NextNextRow(
            variant="fresh_per_yield",
            kind="fixed",
            first_inputs=(4.0, 6.0),
            first_target=5.0,
            second_inputs=(1.0, 3.0),
            second_target=2.0,
            consistent=True,
            overwritten=False,
        ),
    ),
    checkers=(
        CheckerRow(
            variant="shared_input_buffer",
            kind="buggy",
            reports=(
                _report("generator_no_aliasing", (0, 1)),
                _report("targets_match", (0, 1)),
            ),
        ),
        CheckerRow(
            variant="fresh_per_yield",
            kind="fixed",
            reports=(_report("generator_no_aliasing"), _report("targets_match")),
        ),
    ),
    read_ahead=(
        ReadAheadRow(
            variant="shared_input_buffer",
            kind="buggy",
            counts=(
                ReadAheadCount(depth=0, batches=3, mismatched=0, overwritten=0),
                ReadAheadCount(depth=2, batches=3, mismatched=3, overwritten=3),
            ),
        ),
        ReadAheadRow(
            variant="fresh_per_yield",
            kind="fixed",
            counts=(
                ReadAheadCount(depth=0, batches=3, mismatched=0, overwritten=0),
                ReadAheadCount(depth=2, batches=3, mismatched=0, overwritten=0),
            ),
        ),
    ),
    consumers=(
        Consumer(
            key="tape_read_ahead",
            title="GradientTape loop + read_ahead(depth=2)",
            pitfall=1,
            deterministic=True,
            runs=(
                TrainingRun(
                    variant="shared_input_buffer",
                    kind="buggy",
                    losses=(1234.5, 700.0),
                    prediction=54.83,
                    mismatched=6,
                    batches=6,
                ),
                TrainingRun(
                    variant="fresh_per_yield",
                    kind="fixed",
                    losses=(763.0, 0.2889),
                    prediction=66.08,
                    mismatched=0,
                    batches=6,
                ),
            ),
        ),
        Consumer(
            key="tape_shapes",
            title="GradientTape loop, Adam(0.1), (n,) targets vs (n, 1) outputs",
            pitfall=2,
            deterministic=True,
            runs=(
                TrainingRun(
                    variant="gradient_tape_buggy",
                    kind="buggy",
                    losses=(900.0, 593.9),
                    prediction=50.0,
                ),
                TrainingRun(
                    variant="gradient_tape_fixed",
                    kind="fixed",
                    losses=(9.0, 0.04489),
                    prediction=65.0,
                ),
            ),
        ),
    ),
    pitfall_two=PitfallTwo(
        samples=64,
        lambda_buggy_prediction=[46.0],
        lambda_fixed_prediction=[[46.0]],
        keras_mse_buggy=0.0,
        keras_mse_fixed=0.0,
        loss_subclass_buggy=783.5,
        loss_subclass_fixed=0.0,
        two_var_y=783.5,
        loss_call_independence=(_independence(False), _independence(True)),
        batchnorm_independence=(_independence(False), _independence(True)),
        tape_steps=120,
        tape_weights_buggy=(0.32, 0.33, 13.2),
        tape_weights_fixed=(0.5, 0.5, 0.6),
        numpy_mse_buggy=776.1,
        numpy_mse_fixed=0.04079,
    ),
    epoch_means=(
        EpochMeansRow(variant="scaled_in_place", kind="buggy", means=(0.261, 0.00103, 4.02e-06)),
        EpochMeansRow(variant="scaled_copy", kind="fixed", means=(0.521, 0.521, 0.521)),
    ),
    epoch_orders=(
        EpochOrderRow(
            variant="same_order_every_epoch", kind="buggy", first_samples=(0, 0, 0), warned=True
        ),
        EpochOrderRow(
            variant="reshuffled_every_epoch", kind="fixed", first_samples=(2, 7, 24), warned=False
        ),
    ),
    skipped=("tf_keras fit (tf_keras is not installed)",),
    versions=(("tensorflow", "2.21.0"), ("keras", "3.15.1")),
    seconds=12.34,
)

HAND_MADE_TEXT = """\
Pitfall 1: a batch generator that re-yields one numpy buffer
(batch size 4, seed 0; this part runs on numpy alone)

The article's check, print(next(it), next(it)) at batch size 1. MISMATCH: the first
pair's target is not the mean of its inputs; OVERWRITTEN: it shows the second draw.
  shared_input_buffer  ([[1.0, 3.0]], [5.0]) ([[1.0, 3.0]], [2.0])  MISMATCH
  fresh_per_yield      ([[4.0, 6.0]], [5.0]) ([[1.0, 3.0]], [2.0])  consistent

Checkers, draws=3 (pitfalls.check_source: generator_no_aliasing, targets_match):
variant              kind   generator_no_aliasing         targets_match
shared_input_buffer  buggy  FAIL 2/3 (after later draws)  FAIL 2/3 (after later draws)
fresh_per_yield      fixed  pass                          pass

A deterministic read-ahead consumer over 3 batches (pitfalls.read_ahead):
depth d means batch i is used after batch i+d was drawn, as Keras 2's queue and
tf.data's prefetch do. Cells: mismatched pairs / inputs overwritten before use.
variant              depth 0        depth 2
shared_input_buffer  0 / 0          3 / 3
fresh_per_yield      0 / 0          0 / 0

Mismatched pairs train the model on inputs with another batch's targets. Overwritten
but consistent batches (the article's 'fix') only shift the stream in this strict
FIFO; a consumer that holds several at once (Keras 3 keeps the first two to infer
shapes; tf.data batches and prefetches) trains on repeated or torn batches.

Pitfall 1 trained: 2 epochs of 3 steps, batch 4, RMSprop 0.01. Per run: the
batches the optimizer saw with inputs that no longer gave their targets, the
prediction for (73, 57) (the mean is 65), and the loss per epoch.
The article: shared_input_buffer trains to loss ~415 after 100 epochs and predicts 49.65
for (73, 57); its 'fix', shared_input_and_target_buffers, reaches loss 0.003 by epoch 3;
fresh_per_yield and copy_on_yield are correct.

  GradientTape loop + read_ahead(depth=2) (deterministic):
    variant              kind   mismatched  (73, 57)  loss per epoch
    shared_input_buffer  buggy         6/6     54.83  1.23e+03 700
    fresh_per_yield      fixed         0/6     66.08  763 0.289

Pitfall 2: (n,) against (n, 1) on 64 samples, the article beside now:
  path                                      article                            buggy now                           fixed now
  Lambda predict((46, 46))                  [46.] instead of [[46.]]           [46.0]                              [[46.0]]
  compile(loss="mse") on the exact Lambda   ~830 without expand_dims           0 (Keras 3 reshapes)                0
  keras.losses.Loss subclass, exact Lambda  ~830                               783.5 (2 Var(y) = 783.5)            0
  assert_batch_independent(Loss.call)       (beyond the article)               MIXED: y_true[0] moved 3/3 others   independent
  BatchNormalization, training=True/False   (beyond the article)               MIXED: y_true[0] moved 3/3 others   independent
  GradientTape loop, 120 Adam steps         (NOTES) w=(0.32, 0.31), b=12.6     w=(0.32, 0.33), b=13.2; loss 593.9  w=(0.50, 0.50), b=0.6; loss 0.04489
  np.mean((y - model.predict(x)) ** 2)      (NOTES) 472.5 reported, 57.7 true  776.1 reported                      0.04079 true

Beyond the article, through Keras 3's fit (measured inside train_step):
  fit(PyDataset), mean input per epoch:
    scaled_in_place          buggy    0.261  0.00103 4.02e-06   data rewritten each epoch
    scaled_copy              fixed    0.521    0.521    0.521   same data every epoch
  fit(generator, shuffle=True), first sample per epoch:
    same_order_every_epoch   buggy       #0       #0       #0   same order every epoch; Keras warned shuffle is ignored
    reshuffled_every_epoch   fixed       #2       #7      #24   reordered

skipped: tf_keras fit (tf_keras is not installed)
trained with TensorFlow 2.21.0, Keras 3.15.1 in 12.3 s (imports included)
"""


def test_the_text_format_of_a_hand_made_result():
    assert render_text(HAND_MADE) == HAND_MADE_TEXT


def test_an_unaligned_buffer_tears_only_the_peeked_batch_and_an_aligned_one_may_tear_more(
    trained,
):
    # tf.data copies an unaligned numpy buffer and wraps a 64-byte aligned one: only
    # the first batch, kept by fit beside the second to infer shapes, is refilled
    # under the unaligned run; the aligned count depends on thread timing.
    result, _ = trained
    rows = {row.aligned: row for row in result.zero_copy}
    assert rows[False].torn == 1 and rows[False].steps == TINY.steps
    assert 1 <= rows[True].torn <= TINY.steps
    assert "Zero-copy: Keras 3 fit(generator)" in render_text(result)
