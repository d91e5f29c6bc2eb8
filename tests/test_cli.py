"""The command line: `pitfalls demo` (the README's first command, run small) and `pitfalls check`."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import sysconfig

import jsonschema
import numpy as np
import pytest

import pitfalls
from pitfalls._cli import build_parser, demo
from pitfalls.reproductions import generators as gen
from tests import user_code


def run_demo(*argv):
    out = io.StringIO()
    assert demo(build_parser().parse_args(["demo", *argv]), out) == 0
    return out.getvalue()


def rows(text, heading):
    """The table rows after the line starting with `heading`, up to a blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    table = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        table.append(line.split())
    return {row[0]: row[1:] for row in table}


def test_demo_tables_show_buggy_rows_failing_and_fixed_rows_passing():
    text = run_demo("--batches", "30", "--depths", "0,1,3")
    checks = rows(text, "variant ")
    assert set(checks) == {v.__name__ for v in gen.BUGGY + gen.FIXED}
    assert checks["shared_input_buffer"][:4] == ["buggy", "FAIL", "15/16", "(after"]
    assert "pass" not in checks["shared_input_buffer"]
    assert checks["shared_input_and_target_buffers"][1] == "FAIL"
    assert checks["shared_input_and_target_buffers"][-1] == "pass"  # targets still match
    for fixed in gen.FIXED:
        assert checks[fixed.__name__] == ["fixed", "pass", "pass"]

    consumer = rows(text.split("pitfalls.read_ahead")[1], "variant ")
    assert consumer["shared_input_buffer"] == ["0", "/", "0", "30", "/", "30", "30", "/", "30"]
    assert consumer["shared_input_and_target_buffers"] == [
        "0",
        "/",
        "0",
        "0",
        "/",
        "30",
        "0",
        "/",
        "30",
    ]
    for fixed in gen.FIXED:
        assert consumer[fixed.__name__] == ["0", "/", "0"] * 3


def test_demo_shows_the_articles_print_next_next_mismatch():
    text = run_demo("--batches", "5")
    lines = [line for line in text.splitlines() if line.startswith("  ")]
    verdicts = {line.split()[0]: line.split()[-1] for line in lines}
    assert verdicts["shared_input_buffer"] == "MISMATCH"
    assert verdicts["fresh_per_yield"] == "consistent"


def test_demo_is_reproducible_for_a_seed():
    assert run_demo("--batches", "10", "--seed", "3") == run_demo("--batches", "10", "--seed", "3")
    assert run_demo("--batches", "10", "--seed", "3") != run_demo("--batches", "10", "--seed", "4")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--batch-size", "0"], "0 is not >= 1"),
        (["demo", "--depths", "1,x"], "is not a comma-separated list of ints"),
        (["demo", "--depths", "-1"], "depths must be >= 0"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        build_parser().parse_args(argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_pitfalls_runs_the_demo():
    out = subprocess.run(
        [sys.executable, "-m", "pitfalls", "demo", "--batches", "5", "--depths", "1", "--no-train"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("Pitfall 1: a batch generator that re-yields one numpy buffer")


# pitfalls check ------------------------------------------------------------------

PIPELINE = (
    user_code.PIPELINE
    + """
def wrong_rule(x):
    return x.sum(axis=1)

class CountsCalls:
    def __init__(self):
        self.calls = 0
    def __len__(self):
        return 4
    def __getitem__(self, i):
        self.calls += 1
        return np.full((2, 2), float(self.calls)), np.zeros(2)
    def on_epoch_end(self):
        pass

def hangs():
    yield np.zeros(1)
    time.sleep(60)

def needs(n):
    return iter(range(n))

NOT_A_SOURCE = 42
"""
)


@pytest.fixture
def pipeline(tmp_path):
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def pitfalls_check(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "pitfalls", "check", *args], cwd=cwd, capture_output=True, text=True
    )


def test_check_a_clean_source_exits_0(pipeline):
    out = pitfalls_check(pipeline, "pipeline:good", "--target-fn", "pipeline:rule")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("generator_no_aliasing(draws=16) passed")
    assert "targets_match(target_fn=rule, draws=16, rtol=1e-06, atol=0) passed" in out.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pipeline:reused"], "Memory: inputs in all 16 batches share one buffer"),
        (["pipeline:good", "--target-fn", "pipeline:wrong_rule"], "targets, when yielded"),
        (["pipeline:CountsCalls"], "derive each batch from its index alone"),
    ],
)
def test_check_a_finding_exits_1_with_the_report(pipeline, args, expected):
    out = pitfalls_check(pipeline, *args)
    assert out.returncode == 1, out.stderr
    assert expected in out.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["nowhere:good"],
            "pitfalls check: cannot import 'nowhere': ModuleNotFoundError: No module named 'nowhere'",
        ),
        (["pipeline:missing"], "pitfalls check: 'pipeline' has no attribute 'missing'"),
        (
            ["pipeline"],
            "pitfalls check: target must be MODULE:ATTR, e.g. my_pipeline:train_batches; got 'pipeline'",
        ),
        (
            ["pipeline:NOT_A_SOURCE"],
            "pitfalls check: pipeline:NOT_A_SOURCE: source must be an iterator, an iterable, an indexable batch source with __getitem__ and __len__ (like keras.utils.PyDataset), or a zero-argument callable returning one; got int",
        ),
        (
            ["pipeline:needs"],
            "pitfalls check: pipeline:needs: source is needs, a callable that needs arguments (missing a required argument: 'n'); pass an instance or a zero-argument factory (functools.partial or a lambda)",
        ),
        (
            ["pipeline:hangs", "--timeout", "0.5"],
            "pitfalls check: pipeline:hangs: source did not yield batch 1 within 0.5 s: it waits for something that never comes (a queue whose worker died, a lock, a socket); the call was abandoned, its thread left waiting",
        ),
    ],
)
def test_check_an_unusable_target_exits_2_with_one_line(pipeline, args, line):
    out = pitfalls_check(pipeline, *args)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [line]
    assert out.stdout == ""


def test_check_json_is_machine_readable(pipeline):
    out = pitfalls_check(
        pipeline, "pipeline:reused", "--target-fn", "pipeline:rule", "--json", "--draws", "3"
    )
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["target"] == "pipeline:reused" and doc["ok"] is False
    aliasing, targets = doc["reports"]
    assert aliasing["check"] == "generator_no_aliasing" and aliasing["batches"] == 3
    first = aliasing["findings"][0]
    assert (first["batch"], first["path"], first["when"]) == (0, "inputs", "after later draws")
    assert set(first["locations"][0]) == {"index", "expected", "actual"}
    assert aliasing["columns"] == {"expected": "yielded", "actual": "now"}
    assert targets["columns"] == {"expected": "target_fn", "actual": "yielded"}
    assert targets["findings"][0]["when"] == "after later draws"
    assert doc["schema"] == "pitfalls.check/1"
    jsonschema.validate(doc, REPORT_SCHEMA)  # the documented shape, every key fixed


REPORT_SCHEMA = json.loads(
    (pathlib.Path(__file__).parent.parent / "docs" / "report.schema.json").read_text()
)


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(
            lambda: pitfalls.check_no_broadcast(np.zeros(3), np.zeros((3, 1))), id="value"
        ),
        pytest.param(lambda: pitfalls.check_index_stable(Counting(), draws=3), id="index"),
        pytest.param(
            lambda: pitfalls.check_epoch_complete([np.zeros((2, 1))], np.ones((2, 1))), id="epoch"
        ),
        pytest.param(
            lambda: pitfalls.check_batch_independent(lambda a: a - a.mean(), np.arange(4.0)),
            id="independence",
        ),
        pytest.param(
            lambda: pitfalls.check_targets_match(
                [(np.ones(2), np.float32(0.1))] * 2, np.sum, draws=2
            ),
            id="float32",
        ),
    ],
)
def test_every_report_follows_the_schema(report):
    made = report()
    doc = {"schema": "pitfalls.check/1", "target": "t", "ok": made.ok, "reports": [made.to_dict()]}
    jsonschema.validate(doc, REPORT_SCHEMA)
    json.dumps(doc, allow_nan=False)  # strict JSON: NaN and infinities are strings


class Counting:
    def __init__(self):
        self.calls = 0

    def __len__(self):
        return 3

    def __getitem__(self, i):
        self.calls += 1
        return np.full((2, 1), self.calls), np.zeros(2)


def test_pitfalls_script_is_installed():
    script = os.path.join(sysconfig.get_path("scripts"), "pitfalls")
    out = subprocess.run([script, "check", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Exit status: 0 clean, 1 findings, 2" in " ".join(
        out.stdout.split()
    )
