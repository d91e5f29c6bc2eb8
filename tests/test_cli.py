"""The command line: `pitfalls demo` (the README's first command, run small) and `pitfalls check`."""

from __future__ import annotations

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
from pitfalls._cli import build_parser
from tests import user_code


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
    assert out.returncode == 0 and "Exit status: 0 clean, 1 findings (or a check that" in " ".join(
        out.stdout.split()
    )
    assert "batches to draw (default: 16)" in out.stdout  # every default is shown
    assert "(default: 60.0)" in out.stdout


EPOCHS = """
import numpy as np

DATA = np.arange(64.0).reshape(32, 2)

class ScaledInPlace:
    # the pitfall next door: x /= 255 on a slice writes the stored data
    def __init__(self):
        self.data = DATA.copy()
    def __len__(self):
        return 4
    def __getitem__(self, i):
        x = self.data[i * 8:(i + 1) * 8]
        x /= 255.0
        return x.copy(), x.sum(axis=1)
    def on_epoch_end(self):
        pass

def make_series():
    return np.arange(10.0)
"""


@pytest.fixture
def epochs_project(tmp_path):
    (tmp_path / "epochs.py").write_text(EPOCHS)
    return tmp_path


def test_check_runs_the_epoch_checks_where_the_source_has_a_length(epochs_project):
    out = pitfalls_check(epochs_project, "epochs:ScaledInPlace", "--json")
    assert out.returncode == 1, out.stderr
    reports = {r["check"]: r["status"] for r in json.loads(out.stdout)["reports"]}
    assert reports["epoch_repeatable"] == "failed"
    skipped = pitfalls_check(epochs_project, "epochs:ScaledInPlace", "--no-epochs", "--json")
    assert "epoch_repeatable" not in {r["check"] for r in json.loads(skipped.stdout)["reports"]}


def test_check_refuses_an_array_as_a_source(epochs_project):
    out = pitfalls_check(epochs_project, "epochs:make_series")
    assert out.returncode == 2
    assert "an array is a dataset, not a source of batches" in out.stderr


def test_version_and_a_closed_pipe_end_quietly(pipeline):
    version = subprocess.run(
        [sys.executable, "-m", "pitfalls", "--version"], capture_output=True, text=True
    )
    assert version.stdout.strip() == f"pitfalls {pitfalls.__version__}"
    piped = subprocess.run(
        f"'{sys.executable}' -m pitfalls check pipeline:reused --json | head -n 1",
        shell=True,
        cwd=pipeline,
        capture_output=True,
        text=True,
    )
    assert piped.stdout == "{\n" and piped.stderr == ""  # no BrokenPipeError traceback
