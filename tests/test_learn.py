"""`pitfalls learn`: exercises that fail until the learner fixes the pitfall.

The suite proves every exercise: as shipped, its test fails with the error of
the checker that teaches it (the checker's own message, with a hint), and with
the reference solution, a change of a few lines, it passes. The exercises run
in this process (the Keras ones share the session's Keras); the one that
forks worker processes runs in a fresh interpreter, since forking a process
that runs TensorFlow's threads could deadlock. Then the commands, end to end,
on a folder in tmp_path: one `status` run (a pytest subprocess, as a learner's)
shows every state an exercise can be in, with Keras hidden so that it stays fast.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
import subprocess
import sys

import pytest

import pitfalls
from pitfalls._learn import EXERCISES, main, run_learn
from pitfalls._learn._catalog import NEEDS_KERAS, by_number
from pitfalls._learn._inprocess import run_in_process
from pitfalls._learn._workspace import STATE_FILE, bar

FORKS = "forked_workers"
IN_PROCESS = [e for e in EXERCISES if not e.needs_keras and e.slug != FORKS]
KERAS = [e for e in EXERCISES if e.needs_keras]
ids = [e.folder for e in EXERCISES]

# The pitfalls the README lists, each taught by at least one exercise.
README_PITFALLS = {
    "the article's generator re-yielding one buffer",
    "the article's false fix sharing input and target buffers",
    "the (n,) vs (n, 1) Lambda",
    "the Keras 3 loss paths that still broadcast: a Loss subclass",
    "the Keras 3 loss paths that still broadcast: a GradientTape loop",
    "the Keras 3 loss paths that still broadcast: numpy evaluation",
    "in-place scaling across epochs",
    "an unshuffled generator",
    "uint8 target overflow",
    "integer division",
    "a shared position across workers",
    "forked workers sharing one RNG",
    "BatchNormalization in training mode",
}


def changed_lines(before: str, after: str) -> int:
    """Lines that differ, a replaced line counted once."""
    a, b = before.splitlines(), after.splitlines()
    opcodes = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in opcodes if tag != "equal")


def assert_fails_as_intended(exercise, outcome):
    assert outcome.status == "failed", f"{exercise.folder} {outcome.status} as shipped"
    assert type(outcome.error) is getattr(pitfalls, exercise.error), outcome.message
    # The checker's own message: what was checked, then the fix.
    assert outcome.message.splitlines()[0].endswith(" failed")
    assert "\nHint: " in outcome.message


# The catalogue ---------------------------------------------------------------------------


def test_the_exercises_are_numbered_numpy_first_and_cover_every_pitfall():
    assert 10 <= len(EXERCISES) <= 14
    assert [e.number for e in EXERCISES] == list(range(1, len(EXERCISES) + 1))
    assert [e.needs_keras for e in EXERCISES] == sorted(e.needs_keras for e in EXERCISES)
    assert {e.pitfall for e in EXERCISES} >= README_PITFALLS
    for exercise in EXERCISES:
        assert issubclass(getattr(pitfalls, exercise.error), pitfalls.PitfallError)
        assert all(len(hint) > 40 for hint in exercise.hints), exercise.folder
        assert len(exercise.explanation) > 200, exercise.folder


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_each_file_is_python_that_tells_its_story_and_points_to_the_article(exercise):
    module = ast.parse(exercise.shipped_module())
    story = ast.get_docstring(module)
    assert story.startswith(f"Exercise {exercise.number}: ")
    assert "docs/article.md" in story
    assert f"pitfalls learn hint DIR {exercise.number}" in story
    test = exercise.shipped_test()
    assert "Do not edit it" in ast.get_docstring(ast.parse(test))
    assert f"import {exercise.slug} as exercise" in test
    assert (f'reason="{NEEDS_KERAS}"' in test) == exercise.needs_keras
    for source in (exercise.shipped_module(), test, exercise.solution()):
        assert max(len(line) for line in source.splitlines()) <= 100


@pytest.mark.parametrize("exercise", EXERCISES, ids=ids)
def test_the_reference_solution_is_a_small_change(exercise):
    shipped, solution = exercise.shipped_module(), exercise.solution()
    assert 1 <= changed_lines(shipped, solution) <= 6
    assert ast.get_docstring(ast.parse(solution)) == ast.get_docstring(ast.parse(shipped))


def test_by_number_names_the_range():
    assert by_number(1) is EXERCISES[0]
    with pytest.raises(
        ValueError, match=rf"N=0 is not an exercise: choose from 1 to {len(EXERCISES)}"
    ):
        by_number(0)


# Every exercise, proved -----------------------------------------------------------------


@pytest.mark.parametrize("exercise", IN_PROCESS, ids=[e.folder for e in IN_PROCESS])
def test_a_numpy_exercise_fails_with_its_checker_until_solved(exercise):
    assert_fails_as_intended(exercise, run_in_process(exercise))
    solved = run_in_process(exercise, exercise.solution())
    assert solved.status == "passed", solved.message


@pytest.mark.parametrize("exercise", KERAS, ids=[e.folder for e in KERAS])
def test_a_keras_exercise_fails_with_its_checker_until_solved(keras, exercise):
    assert_fails_as_intended(exercise, run_in_process(exercise))
    solved = run_in_process(exercise, exercise.solution())
    assert solved.status == "passed", solved.message


FORK_SCRIPT = """
import json
import pitfalls
from pitfalls._learn._catalog import EXERCISES
from pitfalls._learn._inprocess import run_in_process

(exercise,) = [e for e in EXERCISES if e.slug == "forked_workers"]
shipped = run_in_process(exercise)
solved = run_in_process(exercise, exercise.solution())
print(json.dumps({
    "shipped": [shipped.status, type(shipped.error).__name__, shipped.message],
    "solved": [solved.status, solved.message],
}))
"""


def test_the_forked_workers_exercise_fails_until_solved_in_a_fresh_interpreter():
    done = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    status, error, message = out["shipped"]
    assert (status, error) == ("failed", "SharedRngError"), message
    assert "one RNG stream, copied into both" in message and "\nHint: " in message
    assert out["solved"] == ["passed", ""]


def test_without_keras_the_keras_exercises_skip_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras now fails
    for exercise in KERAS:
        outcome = run_in_process(exercise)
        assert (outcome.status, outcome.message) == ("skipped", NEEDS_KERAS)


def test_show_messages_prints_the_checkers_message_of_a_shipped_exercise(capsys):
    assert main(["learn", "show-messages", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("01_shared_buffer: a batch generator that re-yields one numpy buffer\n")
    assert "  pitfalls.TargetMismatchError: targets_match(target_fn=mean_of_columns" in out
    assert "after later draws" in out and "  Hint: " in out


# The commands, end to end -----------------------------------------------------------------


@pytest.fixture
def without_keras(tmp_path, monkeypatch):
    """Subprocesses see a `keras` that cannot be imported: the Keras exercises skip, fast."""
    shadow = tmp_path / "no-keras" / "keras"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'keras' (hidden)\", name='keras')\n"
    )
    paths = [str(shadow.parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


def learn(capsys, *argv):
    code = main(["learn", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_status_hint_reset_as_a_learner_goes(tmp_path, capsys, without_keras):
    ex = tmp_path / "ex"
    assert learn(capsys, "init", ex)[0] == 0
    first, second = EXERCISES[:2]
    module = ex / first.folder / first.module_file
    assert module.read_text() == first.shipped_module()
    assert "pytest " in (ex / "README.md").read_text()
    solutions = {e.solution() for e in EXERCISES}
    assert not any(p.read_text() in solutions for p in ex.rglob("*") if p.is_file())

    # Graded hints: symptom, cause, fix; the level is remembered.
    for level in (1, 2, 3, 3):
        code, out, _ = learn(capsys, "hint", ex, 1)
        assert code == 0 and out.count("Hint ") == level
    assert "Hint 3 of 3, the fix: Allocate `x` inside the loop" in out
    assert json.loads((ex / STATE_FILE).read_text())["hints"] == {"1": 3}

    # Fix exercise 1 by hand; edit exercise 2's test, then reset exercise 2. "Fix" a
    # Keras exercise by editing its test, another by deleting it: the other exercises
    # keep their tests, and the one status run (one pytest subprocess) shows them all.
    module.write_text(first.solution())
    edited, deleted = KERAS[:2]
    for changed in (second, edited):
        with open(ex / changed.folder / changed.test_file, "a") as test:
            test.write("\ndef test_nothing():\n    pass\n")
    (ex / deleted.folder / deleted.test_file).unlink()
    code, out, _ = learn(capsys, "reset", ex, 2)
    assert code == 0 and out.startswith(f"Restored {ex}/{second.folder}/{second.module_file} and")

    code, out, _ = learn(capsys, "status", ex)
    assert code == 1
    assert f"Exercises in {ex}: 1 of {len(EXERCISES)} pass\n{bar(1, len(EXERCISES))}\n" in out
    assert f"  {first.folder:<24}  passed" in out
    assert first.explanation[:60] in " ".join(out.split())  # the lesson of the newly passed
    for exercise in EXERCISES[1:]:
        if exercise is edited:
            expected = f"edited test: {edited.test_file} differs from the shipped copy"
        elif exercise is deleted:
            expected = f"edited test: {deleted.test_file} was deleted"
        elif exercise.needs_keras:
            expected = f"skipped: {NEEDS_KERAS}"  # the others fail, the Keras ones say how
        else:
            expected = f"failing: {exercise.error}"  # exercise 2 too: reset restored its test
        assert f"  {exercise.folder:<24}  {expected}" in out
    assert f"was deleted; pitfalls learn reset {ex} {deleted.number} restores it" in out
    assert f"Next: {second.folder}." in out


def test_status_of_one_exercise_shows_its_message_or_its_lesson(tmp_path, capsys, monkeypatch):
    from pitfalls._learn import _workspace

    assert learn(capsys, "init", tmp_path)[0] == 0
    second = EXERCISES[1]
    failing = _workspace.Result(
        exercise=second, state="failing", detail="AliasingError", message="line 1\nline 2"
    )
    monkeypatch.setattr(_workspace, "results", lambda directory, exercises: [failing])
    code, out, _ = learn(capsys, "status", tmp_path, 2)
    assert code == 1
    assert out.startswith(f"Exercise 2 of {len(EXERCISES)}, {second.folder}: {second.title}\n")
    assert "\n  line 1\n  line 2\n" in out
    assert f"Fix {tmp_path}/{second.folder}/{second.module_file}; a hint:" in out

    passed = _workspace.Result(exercise=second, state="passed")
    monkeypatch.setattr(_workspace, "results", lambda directory, exercises: [passed])
    code, out, _ = learn(capsys, "status", tmp_path, 2)
    assert code == 0 and "What was wrong, and where it bites:" in out
    assert json.loads((tmp_path / STATE_FILE).read_text())["explained"] == [2]


def test_a_failure_is_read_from_the_E_lines_of_pytests_short_traceback():
    import xml.etree.ElementTree as ET

    from pitfalls._learn._workspace import _failure

    message = str(run_in_process(EXERCISES[1]).error)
    element = ET.Element("failure", message="pitfalls.AliasingError: cut after a few lines")
    element.text = (
        "ex/02_articles_fix/test_articles_fix.py:17: in test_every_batch_keeps_its_own_numbers\n"
        "    pitfalls.assert_generator_no_aliasing(exercise.train_batches)\n"
        + "\n".join(f"E   {line}" for line in f"pitfalls.AliasingError: {message}".splitlines())
    )
    assert _failure(element) == ("AliasingError", message)


def test_init_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = learn(capsys, "init", tmp_path)
    assert code == 2 and "is not empty: choose a new folder, or pass --force" in err
    assert learn(capsys, "init", tmp_path, "--force")[0] == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hint", "{dir}", "99"], f"N=99 is not an exercise: choose from 1 to {len(EXERCISES)}"),
        (["reset", "{dir}", "0"], "N=0 must be at least 1"),
        (["status", "{dir}/nowhere"], "is not an exercises folder"),
        (["show-messages", str(len(EXERCISES) + 1)], f"N={len(EXERCISES) + 1} is not an exercise"),
    ],
)
def test_misuse_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert learn(capsys, "init", tmp_path)[0] == 0
    argv = [a.replace("{dir}", str(tmp_path)) for a in argv]
    code, out, err = learn(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1


def test_run_learn_writes_to_the_stream_it_is_given(tmp_path):
    import argparse

    out = io.StringIO()
    args = argparse.Namespace(learn_command="init", dir=tmp_path / "ex", force=False)
    assert run_learn(args, out) == 0
    assert out.getvalue().startswith(f"Wrote {len(EXERCISES)} exercises into ")
