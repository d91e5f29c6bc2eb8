"""The command line: `pitfalls check`, and the `demo` and `learn` commands it dispatches.

The commands run in this process, through the entry point itself
(`pitfalls._cli.main`), from a user's project folder in tmp_path; the one test
at the end starts real processes, for what only they show.
"""

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
from pitfalls._cli import main
from tests import user_code

PIPELINE = (
    user_code.PIPELINE
    + """
import threading

def wrong_rule(x):
    return x.sum(axis=1)

def nudged(batch_size=8):
    rng = np.random.default_rng(0)
    while True:
        x = rng.normal(size=(batch_size, 2)).astype(np.float32)
        yield x, x.mean(axis=1) + np.float32(1e-4)  # off by 1e-4: a tolerance decides

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

RELEASE = threading.Event()  # set by the test, so that no thread is left waiting

def hangs():
    yield np.zeros(1)
    RELEASE.wait(60)

def needs(n):
    return iter(range(n))

NOT_A_SOURCE = 42

def bad_rule(x):
    return x.nope

def two_arguments(x, y):
    return x
"""
)

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

USER_MODULES = ("pipeline", "epochs")


@pytest.fixture(scope="module")
def validate_report():
    """Validates a document against docs/report.schema.json, the schema checked once."""
    schema = json.loads(
        (pathlib.Path(__file__).parent.parent / "docs" / "report.schema.json").read_text()
    )
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema).validate


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project, the current folder, as `pitfalls check` is run from it.

    `check` imports MODULE:ATTR from the current folder (and puts it on
    sys.path): sys.path is restored and the user's modules are forgotten after
    the test, so that every test imports its own copy.
    """
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "epochs.py").write_text(EPOCHS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # restores sys.path as it was, afterwards
    for name in USER_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    if "pipeline" in sys.modules:
        sys.modules["pipeline"].RELEASE.set()  # pipeline:hangs' thread ends
    for name in USER_MODULES:
        sys.modules.pop(name, None)


def pitfalls_cli(capsys, *argv):
    """``pitfalls ARGV`` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# Options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--batch-size", "0"], "0 is not >= 1"),
        (["demo", "--depths", "1,x"], "is not a comma-separated list of ints"),
        (["demo", "--depths", "-1"], "depths must be >= 0"),
        (["check", "x:y", "--draws", "1"], "argument --draws: --draws=1 must be at least 2"),
        (["check", "x:y", "--timeout", "0"], "0 is not a number of seconds above 0, up to a week"),
        (["check", "x:y", "--rtol", "-1"], "argument --rtol: --rtol=-1.0 must be at least 0"),
        (["check", "x:y", "--atol", "nan"], "argument --atol: --atol=nan must be a finite number"),
        (["check", "x:y", "--atol", "abc"], "argument --atol: invalid float value: 'abc'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_check_help_names_the_exit_statuses_and_every_default(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["check", "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "Exit status: 0 clean, 1 findings (or a check that" in " ".join(out.split())
    assert "batches to draw (default: 16)" in out  # every default is shown
    assert "(default: 60.0)" in out


def test_demo_and_learn_are_commands_of_pitfalls(capsys):
    # The numpy part alone, as small as it goes: tests/test_demo.py judges its numbers.
    small = ["--batches", "2", "--depths", "0", "--draws", "2", "--no-train"]
    code, out, _ = pitfalls_cli(capsys, "demo", *small)
    assert code == 0
    assert out.startswith("Pitfall 1: a batch generator that re-yields one numpy buffer")
    code, out, _ = pitfalls_cli(capsys, "learn", "show-messages", "1")
    assert code == 0 and out.startswith("01_shared_buffer: ")


# pitfalls check ---------------------------------------------------------------------------


def test_check_a_clean_source_exits_0(project, capsys):
    code, out, err = pitfalls_cli(capsys, "check", "pipeline:good", "--target-fn", "pipeline:rule")
    assert code == 0, err
    assert out.splitlines()[0].startswith("generator_no_aliasing(draws=16) passed")
    assert "targets_match(target_fn=rule, draws=16, rtol=1e-07, atol=1e-07) passed" in out


def test_check_passes_rtol_and_atol_to_the_targets_check(project, capsys):
    """Bug: `pitfalls check` had no --rtol or --atol, so float32 targets a tolerance must
    admit could not be checked from the shell."""
    args = ["check", "pipeline:nudged", "--target-fn", "pipeline:rule", "--draws", "2"]
    code, out, _ = pitfalls_cli(capsys, *args)
    assert code == 1 and "rtol=1.3e-06, atol=1e-05) failed" in out  # float32's defaults
    code, out, err = pitfalls_cli(capsys, *args, "--atol", "1e-3")
    assert code == 0, err
    assert "targets_match(target_fn=rule, draws=2, rtol=1.3e-06, atol=0.001) passed" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pipeline:reused"], "Memory: inputs in all 16 batches share one buffer"),
        (["pipeline:good", "--target-fn", "pipeline:wrong_rule"], "targets, when yielded"),
        (["pipeline:CountsCalls"], "derive each batch from its index alone"),
    ],
)
def test_check_a_finding_exits_1_with_the_report(project, capsys, args, expected):
    code, out, err = pitfalls_cli(capsys, "check", *args)
    assert code == 1, err
    assert expected in out


def test_a_check_that_asks_for_an_option_names_it_as_the_command_line_spells_it(project, capsys):
    """Bug: the command line said "pass steps_per_epoch=", the keyword of the function."""
    code, _, err = pitfalls_cli(capsys, "check", "pipeline:good", "--epochs")
    assert code == 2
    assert "pass --steps-per-epoch N, the batches of one epoch" in err
    assert "steps_per_epoch=" not in err


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
            "pitfalls check: target must be MODULE:ATTR or path/to/file.py:ATTR, e.g. my_pipeline:train_batches; got 'pipeline'",
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
            ["pipeline:hangs", "--timeout", "0.1"],
            "pitfalls check: pipeline:hangs: source did not yield batch 1 within 0.1 s: it waits for something that never comes (a queue whose worker died, a lock, a socket); the call was abandoned, its thread left waiting",
        ),
        (
            ["epochs:make_series"],
            "pitfalls check: epochs:make_series: source must be an iterator, an iterable, an indexable batch source with __getitem__ and __len__ (like keras.utils.PyDataset), or a zero-argument callable returning one; calling make_series() returned an ndarray: an array is a dataset, not a source of batches (iterating it gives rows, one at a time); pass the generator, PyDataset or DataLoader that cuts it into batches, or [array] for one batch",
        ),
    ],
)
def test_check_an_unusable_target_exits_2_with_one_line(project, capsys, args, line):
    code, out, err = pitfalls_cli(capsys, "check", *args)
    assert code == 2
    assert err.splitlines() == [line]
    assert out == ""


def test_check_accepts_a_file_path_as_pytest_users_type_it(project, capsys):
    """Bug: `pitfalls check mydata/pipeline.py:make` said No module named 'mydata/pipeline'."""
    (project / "mydata").mkdir()
    (project / "mydata" / "helpers.py").write_text("def rule(x):\n    return x.mean(axis=1)\n")
    (project / "mydata" / "pipeline.py").write_text(PIPELINE + "\nfrom helpers import rule\n")
    args = ["--target-fn", "mydata/pipeline.py:rule", "--no-epochs"]
    code, out, err = pitfalls_cli(capsys, "check", "mydata/pipeline.py:good", *args)
    assert (code, err) == (0, "")
    assert "targets_match(target_fn=rule, draws=16" in out  # a sibling import worked too
    code, out, err = pitfalls_cli(capsys, "check", "mydata/pipeline.py:reused", *args)
    assert code == 1 and "Memory: inputs in all 16 batches share one buffer" in out
    # A file named like a module in use is imported beside it, not in its place.
    (project / "mydata" / "json.py").write_text(PIPELINE)
    code, out, err = pitfalls_cli(capsys, "check", "mydata/json.py:good", "--json", *args[2:])
    assert code == 0 and json.loads(out)["ok"] is True and json.dumps is not None
    assert sys.modules["json"].__file__ != str(project / "mydata" / "json.py")
    code, _, err = pitfalls_cli(capsys, "check", "mydata/nowhere.py:good")
    assert code == 2 and err.startswith("pitfalls check: no file 'mydata/nowhere.py' (looked from ")
    sys.modules.pop("helpers", None)


@pytest.mark.parametrize(
    ("target_fn", "line"),
    [
        (
            "pipeline:bad_rule",
            "pitfalls check: --target-fn pipeline:bad_rule raised AttributeError: 'numpy.ndarray' object has no attribute 'nope'",
        ),
        (
            "pipeline:two_arguments",
            "pitfalls check: --target-fn pipeline:two_arguments: two_arguments() missing 1 required positional argument: 'y'",
        ),
        (
            "pipeline:NOT_A_SOURCE",
            "pitfalls check: --target-fn pipeline:NOT_A_SOURCE: must be a function, got int 42",
        ),
        (
            "nowhere:rule",
            "pitfalls check: --target-fn nowhere:rule: cannot import 'nowhere': ModuleNotFoundError: No module named 'nowhere'",
        ),
        (
            "pipeline:nope",
            "pitfalls check: --target-fn pipeline:nope: 'pipeline' has no attribute 'nope'",
        ),
    ],
)
def test_a_wrong_target_fn_is_named_not_the_source(project, capsys, target_fn, line):
    """Bug: a --target-fn that raised was reported as 'pipeline:good raised ...'."""
    code, out, err = pitfalls_cli(capsys, "check", "pipeline:good", "--target-fn", target_fn)
    assert (code, out) == (2, "")
    assert err.startswith(line)
    assert "pipeline:good" not in err


def test_an_endless_source_says_which_checks_it_skipped_and_what_to_pass(project, capsys):
    """Bug: without --steps-per-epoch an endless generator skipped the epoch checks silently."""
    code, out, _ = pitfalls_cli(capsys, "check", "pipeline:good")
    assert code == 0
    assert out.rstrip().endswith(
        "skipped: epoch_repeatable (two epochs compared): the source has no length, so its"
        " epochs cannot be told apart. Pass --steps-per-epoch N to read it as epochs of N"
        " batches, or --no-epochs to skip the comparison without this line."
    )
    code, out, err = pitfalls_cli(capsys, "check", "pipeline:good", "--json")
    assert code == 0 and json.loads(out)["ok"] is True  # the JSON keeps its shape
    assert err.startswith("pitfalls check: skipped: epoch_repeatable")
    for asked in (["--steps-per-epoch", "4"], ["--no-epochs"]):
        code, out, err = pitfalls_cli(capsys, "check", "pipeline:good", *asked)
        assert code == 0 and "skipped" not in out + err
    assert (
        "epoch_repeatable(steps_per_epoch=4) passed"
        in pitfalls_cli(capsys, "check", "pipeline:good", "--steps-per-epoch", "4")[1]
    )


def test_check_json_is_machine_readable(project, capsys, validate_report):
    code, out, _ = pitfalls_cli(
        capsys, "check", "pipeline:reused", "--target-fn", "pipeline:rule", "--json", "--draws", "3"
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["target"] == "pipeline:reused" and doc["ok"] is False
    aliasing, targets = doc["reports"]
    assert aliasing["check"] == "generator_no_aliasing" and aliasing["batches"] == 3
    first = aliasing["findings"][0]
    assert (first["batch"], first["path"], first["when"]) == (0, "inputs", "after later draws")
    assert set(first["locations"][0]) == {"index", "expected", "actual"}
    assert aliasing["columns"] == {"expected": "yielded", "actual": "now"}
    assert targets["columns"] == {"expected": "target_fn", "actual": "yielded"}
    assert targets["findings"][0]["when"] == "after later draws"
    assert doc["schema"] == "pitfalls.check/2"
    validate_report(doc)  # the documented shape, every key fixed


def test_check_runs_the_epoch_checks_where_the_source_has_a_length(project, capsys):
    code, out, err = pitfalls_cli(capsys, "check", "epochs:ScaledInPlace", "--json")
    assert code == 1, err
    reports = {r["check"]: r["status"] for r in json.loads(out)["reports"]}
    assert reports["epoch_repeatable"] == "failed"
    _, skipped, _ = pitfalls_cli(capsys, "check", "epochs:ScaledInPlace", "--no-epochs", "--json")
    assert "epoch_repeatable" not in {r["check"] for r in json.loads(skipped)["reports"]}


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
def test_every_report_follows_the_schema(report, validate_report):
    made = report()
    doc = {"schema": "pitfalls.check/2", "target": "t", "ok": made.ok, "reports": [made.to_dict()]}
    validate_report(doc)
    json.dumps(doc, allow_nan=False)  # strict JSON: NaN and infinities are strings


class Counting:
    def __init__(self):
        self.calls = 0

    def __len__(self):
        return 3

    def __getitem__(self, i):
        self.calls += 1
        return np.full((2, 1), self.calls), np.zeros(2)


# Real processes ---------------------------------------------------------------------------


def test_the_script_and_python_dash_m_run_and_a_closed_pipe_ends_quietly(project):
    """What only a real process shows: the installed `pitfalls` script and `python -m
    pitfalls` start, and a reader that went away (as `head` does in `pitfalls check
    --json | head`) ends the run quietly, with no BrokenPipeError traceback at exit."""
    script = os.path.join(sysconfig.get_path("scripts"), "pitfalls")
    # Whatever the environment says, stdout is block-buffered as in a user's shell: the
    # report waits in the buffer, and would meet the closed pipe only at exit.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    closed, write_end = os.pipe()
    os.close(closed)  # no reader: every write to write_end fails with EPIPE
    # Both processes at once: most of their time is an interpreter's start.
    piped = subprocess.Popen(
        [sys.executable, "-m", "pitfalls", "check", "pipeline:reused", "--json", "--draws", "2"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    os.close(write_end)
    version = subprocess.Popen(
        [script, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    out, err = version.communicate(timeout=120)
    _, piped_err = piped.communicate(timeout=120)
    assert (version.returncode, out, err) == (0, f"pitfalls {pitfalls.__version__}\n", "")
    assert (piped.returncode, piped_err) == (141, "")  # 128 + SIGPIPE, as a shell reports it
