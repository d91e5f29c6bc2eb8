"""The lessons and their table: every reproduced pair taught, the table built from outcomes.

The table (``tests/lessons/summary.py``) is computed from what the lessons' tests did:
these tests edit a reproduction as a learner would and watch its row change, and feed
the plugin a report of another test to see that the table stays silent.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import pitfalls.reproductions
import tests.lessons
from tests.lessons import name_of, summary

LESSONS = Path(tests.lessons.__file__).parent


def lesson_modules():
    return [
        importlib.import_module(f"tests.lessons.{info.name}")
        for info in pkgutil.iter_modules([str(LESSONS)])
        if info.name.startswith("test_")
    ]


def marked(module):
    """The (role, variant) pairs the module's tests are marked as being about."""
    about = set()
    for name, test in vars(module).items():
        if not name.startswith("test_"):
            continue
        for mark in getattr(test, "pytestmark", ()):
            if mark.name == "lesson":
                about.add(tuple(mark.args))
            elif mark.name == "parametrize":
                for param in mark.args[1]:
                    about.update(
                        tuple(m.args) for m in getattr(param, "marks", ()) if m.name == "lesson"
                    )
    return about


def test_every_reproduced_pair_has_its_lesson_and_every_variant_a_test():
    reproduced = {
        info.name: importlib.import_module(f"pitfalls.reproductions.{info.name}").PAIRS
        for info in pkgutil.iter_modules(pitfalls.reproductions.__path__)
    }
    taught = {}
    for module in lesson_modules():
        pitfall = module.PITFALL
        taught[pitfall.pairs] = module
        about = marked(module)
        for buggy, fixed in pitfall.pairs:
            assert ("buggy", name_of(buggy)) in about, (module.__name__, buggy)
            assert ("fixed", name_of(fixed)) in about, (module.__name__, fixed)
    for name, pairs in reproduced.items():
        assert pairs in taught, f"pitfalls.reproductions.{name}.PAIRS has no lesson"


def test_lessons_are_numbered_in_reading_order_and_their_titles_say_so():
    modules = lesson_modules()
    numbers = [int(m.__name__.rpartition(".")[2].split("_")[1]) for m in modules]
    assert numbers == list(range(1, len(modules) + 1))
    assert [m.PITFALL.title.split(".")[0] for m in modules] == [str(n) for n in numbers]


EDIT = """
from pitfalls.reproductions import targets

def pytest_configure(config):
    # the learner "fixes" the buggy reproduction: its body is now the fixed one's
    targets.uint8_pixels_buggy.__code__ = targets.uint8_pixels_fixed.__code__
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_table_is_computed_so_editing_a_reproduction_changes_its_row(pytester, workers):
    lesson = str(LESSONS / "test_05_integer_targets.py")
    untouched = pytester.runpytest_subprocess(lesson, "-p", "no:randomly", *workers)
    untouched.assert_outcomes(passed=7)
    row = [line for line in untouched.outlines if line.startswith("5. targets")]
    assert row and row[0].split()[-3:-1] == ["2/2", "2/2"], untouched.outlines

    pytester.makepyfile(learner_edit=EDIT)
    edited = pytester.runpytest_subprocess(
        lesson, "-p", "no:randomly", "-p", "learner_edit", *workers
    )
    assert edited.ret == pytest.ExitCode.TESTS_FAILED
    row = [line for line in edited.outlines if line.startswith("5. targets")]
    assert row[0].split()[-3:-1] == ["1/2", "2/2"], edited.outlines  # the bug no longer caught
    notes = [line.strip() for line in edited.outlines if "not caught:" in line]
    assert notes == [
        "not caught: uint8_pixels_buggy (2 of its 2 lessons failed: test_a_uint8_sum_wraps_past_255,"
        " test_integer_arithmetic_breaks_the_rule_when_the_batch_is_yielded[uint8_pixels_buggy])"
    ]


def test_a_run_without_lessons_prints_no_table():
    written = []

    class Reporter:
        def section(self, *args, **kwargs):
            written.append(args)

        def write_line(self, line):
            written.append(line)

    lessons = summary.Lessons()
    report = pytest.TestReport(
        "tests/test_words.py::test_x",
        ("x", 1, "x"),
        {},
        "passed",
        None,
        "call",
        [],
        user_properties=[],
    )
    lessons.pytest_runtest_logreport(report)
    lessons.pytest_terminal_summary(Reporter(), config=object())
    assert written == []


HIDE = """
import sys

def pytest_configure(config):
    sys.modules["torch"] = None  # as if not installed: importing it fails
"""


def test_lessons_whose_framework_is_missing_are_said_once_and_fail_in_ci(pytester, monkeypatch):
    lesson = str(LESSONS / "test_08_dataloaders.py")
    pytester.makepyfile(hide_torch=HIDE)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PITFALLS_MAY_LACK", raising=False)
    here = pytester.runpytest_subprocess(lesson, "-p", "no:randomly", "-p", "hide_torch", "-rs")
    assert here.ret == pytest.ExitCode.OK
    assert here.outlines[-1].strip("= ").startswith("10 not run in ")
    said = [line for line in here.outlines if line.startswith("not run: ")]
    assert said == [
        "not run: 10 tests need torch, not installed here; install them to run these:"
        " pip install -e '.[torch]' (e.g. .venv/bin/pip)"
    ]
    assert not any("SKIPPED" in line for line in here.outlines)  # not one line per test
    assert "  not run here: the lessons of 10 variants need torch" in here.outlines

    monkeypatch.setenv("CI", "true")  # CI installs every extra: a missing one is an error
    ci = pytester.runpytest_subprocess(lesson, "-p", "no:randomly", "-p", "hide_torch")
    ci.assert_outcomes(errors=10)


def test_variants_a_run_did_not_select_are_counted_in_neither_column(pytester):
    lesson = str(LESSONS / "test_05_integer_targets.py")
    picked = pytester.runpytest_subprocess(lesson, "-p", "no:randomly", "-k", "uint8")
    picked.assert_outcomes(passed=3, deselected=4)
    row = [line for line in picked.outlines if line.startswith("5. targets")]
    assert row[0].split()[-3:-1] == ["1/1", "1/1"]  # integer_division's lessons not selected
    assert not any("not caught" in line or "not passing" in line for line in picked.outlines)
