"""`pitfalls demo`: the README's first command, run small."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pitfalls._cli import build_parser, demo
from pitfalls.reproductions import generators as gen


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
        [sys.executable, "-m", "pitfalls", "demo", "--batches", "5", "--depths", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("Pitfall 1: a batch generator that re-yields one numpy buffer")
