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
import importlib.util
import io
import json
import os
import re
import subprocess
import sys

import pytest

import pitfalls
from pitfalls._learn import EXERCISES, exercise_hint, main, run_learn
from pitfalls._learn._catalog import NEEDS_KERAS, by_number
from pitfalls._learn._inprocess import run_in_process
from pitfalls._learn._workspace import STATE_FILE, TEST_TIMEOUT, bar

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
        else:  # exercise 2 too: reset restored its module and test; none of them is run
            expected = f"not started: fails with {exercise.error} until fixed (not run)"
        assert f"  {exercise.folder:<24}  {expected}" in out
    assert f"was deleted; pitfalls learn reset {ex} {deleted.number} restores it" in out
    assert f"Next: {second.folder}." in out


def test_status_runs_only_the_exercises_a_learner_changed(tmp_path, capsys, monkeypatch):
    """Bug: `pitfalls learn status ex` took 6-8 s: it ran every exercise, TensorFlow's
    import for the Keras ones included, before the learner had touched one."""
    from pitfalls._learn import _workspace

    ex = tmp_path / "ex"
    assert learn(capsys, "init", ex)[0] == 0
    ran = []
    real = _workspace._run_pytest
    monkeypatch.setattr(
        _workspace,
        "_run_pytest",
        lambda d, exs: ran.append([e.number for e in exs]) or real(d, exs),
    )
    assert learn(capsys, "status", ex)[0] == 1
    assert ran == []  # nothing changed: nothing to run
    first, third = EXERCISES[0], EXERCISES[2]
    (ex / first.folder / first.module_file).write_text(first.solution())
    with open(ex / third.folder / third.module_file, "a") as module:
        module.write("# still buggy\n")
    code, out, _ = learn(capsys, "status", ex)
    assert ran == [[1, 3]] and code == 1
    assert f"  {first.folder:<24}  passed" in out
    assert f"  {third.folder:<24}  failing: {third.error}" in out
    # One exercise's status runs it even as shipped: it shows the failure's message.
    code, out, _ = learn(capsys, "status", ex, 2)
    assert ran[-1] == [2] and "generator_no_aliasing(draws=16) failed" in out


def test_without_keras_an_untouched_keras_exercise_says_it_will_skip(tmp_path, capsys, monkeypatch):
    from pitfalls._learn import _workspace

    assert learn(capsys, "init", tmp_path)[0] == 0
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "keras" else real(name, *a)
    )
    monkeypatch.setattr(_workspace, "_run_pytest", lambda *a: pytest.fail("ran pytest"))
    _, out, _ = learn(capsys, "status", tmp_path)
    for exercise in KERAS:
        assert f"  {exercise.folder:<24}  skipped: {NEEDS_KERAS}" in out


def test_collecting_the_exercises_imports_no_framework(tmp_path, capsys):
    """Bug: `pytest ex -x` took 6.5-7.3 s while exercise 1 failed: collecting the Keras
    exercises' tests imported TensorFlow. Now a Keras exercise imports it in its test."""
    ex = tmp_path / "ex"
    assert learn(capsys, "init", ex)[0] == 0
    code = (
        "import sys, pytest\n"
        f"code = pytest.main([{str(ex)!r}, '--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        "heavy = ('tensorflow', 'keras', 'tf_keras', 'torch', 'jax')\n"
        "print(int(code), sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
    assert f"{len(EXERCISES)} tests collected" in done.stdout


def test_a_deadlocked_exercise_fails_at_its_timeout_instead_of_hanging(tmp_path, capsys):
    """Bug: exercise 7 with the lock held across the yields deadlocked; pytest hung."""
    assert importlib.util.find_spec("pytest_timeout"), "pytest-timeout, a dependency, is missing"
    ex = tmp_path / "ex"
    assert learn(capsys, "init", ex)[0] == 0
    seventh = by_number(7)
    module = ex / seventh.folder / seventh.module_file
    locked = seventh.solution().replace(
        """        with self.lock:
            i = self.position
            self.position += 1
        yield
""",
        """        with self.lock:  # held across the yield: the other worker waits for ever
            i = self.position
            self.position += 1
            yield
""",
    )
    assert locked != seventh.solution()
    module.write_text(locked)
    # The shipped test waits 5 s; here 1 s proves the same mechanism, 4 s sooner.
    test_file = module.parent / f"test_{seventh.module_file}"
    shipped = test_file.read_text()
    assert "@pytest.mark.timeout(5)" in shipped
    test_file.write_text(shipped.replace("@pytest.mark.timeout(5)", "@pytest.mark.timeout(1)"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(ex / seventh.folder), "-q", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # pytest-timeout's words: "Timeout (>5.0s) from pytest-timeout" (2.2+), "Timeout >5.0s"
    assert re.search(r"Timeout \(?>1\.0s", done.stdout), done.stdout
    assert f"timeout = {TEST_TIMEOUT}" in (ex / "pytest.ini").read_text()  # every other test


@pytest.mark.parametrize("number", [1, 2, 5])
def test_show_messages_names_the_line_that_wrote_the_batch(number):
    """Bug: show-messages blamed 'C code with no Python line' for exercises 1, 2 and 5,
    where pytest names the line: the module was compiled under a name not on disk."""
    exercise = by_number(number)
    message = run_in_process(exercise).message
    assert f"Written at: {exercise.folder}/{exercise.module_file}:" in message
    assert "cannot tell" not in message


def hint_line(message):
    (line,) = [line for line in message.splitlines() if line.startswith("Hint: ")]
    return line.removeprefix("Hint: ")


def test_exercise_3s_failures_hint_at_the_floor_it_wants_not_at_slash():
    """Bug: the checker's hint said to divide with /, and after that change, to
    np.expand_dims a Dense head's targets; exercise 3 wants the mean rounded down."""
    exercise = by_number(3)
    slash = exercise.shipped_module().replace(
        "y = (x[:, 0] + x[:, 1]) // 2", "y = x.astype(np.float64).sum(axis=1) / 2"
    )
    for source in (exercise.shipped_module(), slash):
        outcome = run_in_process(exercise, source)
        assert type(outcome.error) is pitfalls.TargetMismatchError
        assert hint_line(outcome.message) == exercise.failure_hint
    assert "keep the floor division //" in exercise.failure_hint


def test_exercise_7s_hints_keep_the_yield_outside_the_lock():
    exercise = by_number(7)
    assert hint_line(run_in_process(exercise).message) == exercise.failure_hint
    assert "before the first yield. Not the yields" in exercise.failure_hint
    assert "before the first `yield`" in exercise.fix
    assert "The `yield`s stay outside the lock" in exercise.fix


def test_exercise_12s_hint_reshapes_where_the_targets_are_made(keras):
    exercise = by_number(12)
    outcome = run_in_process(exercise)
    assert type(outcome.error) is pitfalls.BroadcastError
    assert hint_line(outcome.message) == exercise.failure_hint
    assert "A reshape inside mse comes too late" in exercise.failure_hint
    assert outcome.message.endswith("\nraised by strict_loss around mse")  # kept


def test_exercise_hint_passes_other_errors_and_a_pass_unchanged():
    with exercise_hint(3):
        pass
    with pytest.raises(ZeroDivisionError), exercise_hint(3):
        1 / 0  # noqa: B018
    with pytest.raises(ValueError, match="exercise 1 has no failure hint of its own"):
        exercise_hint(1)


def test_reset_keeps_the_learners_module_as_a_backup(tmp_path, capsys):
    """Bug: `pitfalls learn reset ex 3` overwrote solved work without a word."""
    assert learn(capsys, "init", tmp_path)[0] == 0
    third = by_number(3)
    module = tmp_path / third.folder / third.module_file
    module.write_text(third.solution())
    code, out, _ = learn(capsys, "reset", tmp_path, 3)
    assert code == 0 and module.read_text() == third.shipped_module()
    assert out.rstrip().endswith(
        f"Your version is kept in {tmp_path}/{third.folder}/{third.module_file}.bak."
    )
    assert (tmp_path / third.folder / f"{third.module_file}.bak").read_text() == third.solution()
    code, out, _ = learn(capsys, "reset", tmp_path, 3)  # nothing of the learner's to keep
    assert "Your version" not in out
    module.write_text("# another try\n")
    _, out, _ = learn(capsys, "reset", tmp_path, "03_uint8_overflow")
    assert (tmp_path / third.folder / f"{third.module_file}.bak2").read_text() == "# another try\n"
    assert (tmp_path / third.folder / f"{third.module_file}.bak").read_text() == third.solution()


@pytest.mark.parametrize("name", ["01_shared_buffer", "shared_buffer", "{dir}/01_shared_buffer/"])
def test_an_exercise_may_be_named_by_its_folder(tmp_path, capsys, name):
    """Bug: `pitfalls learn hint ex 01_shared_buffer` refused the folder's name."""
    assert learn(capsys, "init", tmp_path)[0] == 0
    code, out, err = learn(capsys, "hint", tmp_path, name.replace("{dir}", str(tmp_path)))
    assert (code, err) == (0, "")
    assert out.startswith("Exercise 1, 01_shared_buffer: ")


def test_status_of_one_exercise_shows_its_message_or_its_lesson(tmp_path, capsys, monkeypatch):
    from pitfalls._learn import _workspace

    assert learn(capsys, "init", tmp_path)[0] == 0
    second = EXERCISES[1]
    failing = _workspace.Result(
        exercise=second, state="failing", detail="AliasingError", message="line 1\nline 2"
    )
    monkeypatch.setattr(_workspace, "results", lambda directory, exercises, **_: [failing])
    code, out, _ = learn(capsys, "status", tmp_path, 2)
    assert code == 1
    assert out.startswith(f"Exercise 2 of {len(EXERCISES)}, {second.folder}: {second.title}\n")
    assert "\n  line 1\n  line 2\n" in out
    assert f"Fix {tmp_path}/{second.folder}/{second.module_file}; a hint:" in out

    passed = _workspace.Result(exercise=second, state="passed")
    monkeypatch.setattr(_workspace, "results", lambda directory, exercises, **_: [passed])
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
        (["hint", "{dir}", "99_nothing"], "N='99_nothing' is not an exercise: give its number"),
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
