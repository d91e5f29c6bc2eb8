"""`pitfalls demo`'s training part, end to end at a tiny size.

Only the deterministic parts are asserted: the GradientTape loop fed through
read_ahead, Keras 3's peek at the first batches, fresh memory never changing,
and pitfall 2's shapes and closed-form losses. Counts that depend on thread
timing are only checked to be counts.
"""

from __future__ import annotations

import importlib.util
import io
import re

import numpy as np
import pytest

from pitfalls import _demo
from pitfalls._cli import build_parser

TINY = ["demo", "--epochs", "2", "--steps", "5", "--batch-size", "8", "--seed", "3"]


@pytest.fixture(scope="module")
def demo_run(keras, tmp_path_factory):
    png = tmp_path_factory.mktemp("demo") / "curves.png"
    args = build_parser().parse_args([*TINY, "--plot", str(png)])
    out, err = io.StringIO(), io.StringIO()
    assert _demo.train_and_report(args, out, err) == 0
    return out.getvalue(), err.getvalue(), png


def section(text, title):
    """Rows of one consumer's table: {variant: (mismatched, prediction, losses)}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    rows = {}
    for line in lines[start + 2 :]:
        m = re.match(r"\s+(\w+)\s+(buggy|fixed)\s+(\d+)/(\d+)\s+(-?[\d.]+)\s+(.*)$", line)
        if m:
            rows[m.group(1)] = (int(m.group(3)), int(m.group(4)), float(m.group(5)), m.group(6))
        elif not line.strip().startswith("article:"):
            break
    return rows


def test_the_deterministic_read_ahead_loop_trains_the_buggy_generator_on_wrong_pairs(demo_run):
    text, _, _ = demo_run
    rows = section(text, "GradientTape + read_ahead(depth=2)")
    assert rows["shared_input_buffer"][:2] == (10, 10)  # every step: inputs of batch i+2
    for variant in ("shared_input_and_target_buffers", "fresh_per_yield", "copy_on_yield"):
        assert rows[variant][:2] == (0, 10), variant
    assert rows["fresh_per_yield"][3] == rows["copy_on_yield"][3]  # same numbers, same losses
    assert rows["shared_input_buffer"][3] != rows["fresh_per_yield"][3]


def test_keras_fit_sees_the_peeked_batch_and_never_touches_fresh_memory(demo_run):
    text, _, _ = demo_run
    rows = section(text, "keras fit(generator)")
    assert rows["shared_input_buffer"][0] >= 1  # Keras 3 peeks two batches: the first is stale
    assert rows["fresh_per_yield"][:2] == (0, 10) and rows["copy_on_yield"][:2] == (0, 10)
    pydataset = section(text, "keras fit(PyDataset, workers=2)")
    assert pydataset["pydataset_fresh"][:2] == (0, 10)
    assert 0 <= pydataset["pydataset_shared_buffer"][0] <= 10  # timing: a count, not a claim


def test_legacy_keras_is_run_or_said_to_be_skipped(demo_run):
    text, _, _ = demo_run
    if importlib.util.find_spec("tf_keras") is None:
        assert "skipped: legacy Keras 2 fit (tf_keras is not installed" in text
    else:
        rows = section(text, "tf_keras fit (Keras 2 queue)")
        assert rows["fresh_per_yield"][:2] == (0, 10)


def test_pitfall_two_rows_show_shapes_and_the_closed_form(demo_run):
    text, _, _ = demo_run
    assert re.search(
        r"Lambda predict\(\(46, 46\)\)\s+\[46\.\] instead of \[\[46\.\]\]\s+\[46\.0\]\s+\[\[46\.0\]\]",
        text,
    )
    assert re.search(
        r'compile\(loss="mse"\) on the exact Lambda\s+~830 without expand_dims\s+0 \(Keras 3 reshapes\)',
        text,
    )
    m = re.search(
        r"Loss subclass, exact Lambda\s+~830\s+([\d.]+) \(2 Var\(y\) = ([\d.]+)\)\s+0", text
    )
    assert m and m.group(1) == m.group(2)


def test_the_summary_and_progress(demo_run):
    text, err, _ = demo_run
    assert "Summary:" in text and "trained in" in text
    assert re.search(
        r"^\[1/\d+\] keras fit\(generator\): shared_input_buffer, epoch 1/2$", err, re.M
    )


def test_the_plot_is_a_png_with_two_panels(demo_run):
    import matplotlib.image

    _, _, png = demo_run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[1] > pixels.shape[0]  # wide: two panels side by side
    assert np.ptp(pixels[..., :3]) > 0  # something was drawn


def test_without_keras_the_demo_says_what_it_skipped(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("keras", "tensorflow") else real(name, *a),
    )
    out = io.StringIO()
    assert _demo.train_and_report(build_parser().parse_args(TINY), out, io.StringIO()) == 0
    assert out.getvalue().startswith("skipped: training (Keras 3 and TensorFlow are not installed")


def test_beyond_the_article_rows_through_keras_fit(demo_run):
    text, _, _ = demo_run
    rows = {}
    for line in text.split("Beyond the article, through Keras 3's fit")[1].splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 5 and parts[1] in ("buggy", "fixed"):
            rows[parts[0]] = (parts[2:5], " ".join(parts[5:]))
    means, verdict = rows["scaled_in_place"]
    assert verdict == "data rewritten each epoch"
    values = [float(m) for m in means]
    assert values[0] / values[1] == pytest.approx(255, rel=1e-2)  # printed to 3 digits
    assert values[1] / values[2] == pytest.approx(255, rel=1e-2)
    assert (
        rows["scaled_copy"][1] == "same data every epoch" and len(set(rows["scaled_copy"][0])) == 1
    )
    assert (
        rows["same_order_every_epoch"][1]
        == "same order every epoch; Keras warned shuffle is ignored"
    )
    assert rows["reshuffled_every_epoch"][1].startswith("reordered")
