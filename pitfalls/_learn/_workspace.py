"""A learner's folder: writing the exercises, running their tests, hints and resets.

The folder holds one sub-folder per exercise (the module to edit and its
test), a README, a ``pytest.ini`` (numbered order, no cache) and a small state
file remembering hint levels and which lessons were shown. The reference
solutions stay in the package. ``status`` runs the tests in one pytest
subprocess and reads each exercise's outcome from its JUnit XML; a test file
that differs from the shipped copy is reported, not run.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitfalls._learn._catalog import ARTICLE, EXERCISES, INSTALL_KERAS, NEEDS_KERAS, Exercise

STATE_FILE = ".pitfalls-learn.json"
TEST_TIMEOUT = 60
"""Seconds one exercise's test may take (pytest-timeout): a Keras one, TensorFlow's
import included, takes a few; a deadlock would take for ever."""
INI = f"""\
[pytest]
# The exercises run in their numbered order (pytest-randomly would shuffle them),
# without a cache folder, each failure shown short: the checker's message.
addopts = -p no:randomly -p no:cacheprovider --tb=short -rfEs
# No test waits for ever: pytest-timeout fails one that takes longer (seconds).
timeout = {TEST_TIMEOUT}
"""
BAR_WIDTH = 40
TEXT_WIDTH = 78
NBSP = "\u00a0"
PYTEST_TIMEOUT = 1800.0
"""Seconds the tests of all exercises may take together (about 10 with Keras)."""


class LearnError(Exception):
    """The command cannot be carried out: exit status 2, one line on stderr."""


# The folder -----------------------------------------------------------------------------


def _is_workspace(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()


def _require_workspace(directory: Path) -> None:
    if not _is_workspace(directory):
        raise LearnError(
            f"{directory} is not an exercises folder (no {STATE_FILE}):"
            f" run 'pitfalls learn init {directory}' first"
        )


def _load_state(directory: Path) -> dict[str, Any]:
    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    if not isinstance(state, dict):
        state = {}
    hints = state.get("hints")
    explained = state.get("explained")
    return {
        "format": 1,
        "hints": hints if isinstance(hints, dict) else {},
        "explained": explained if isinstance(explained, list) else [],
    }


def _save_state(directory: Path, state: dict[str, Any]) -> None:
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    (directory / STATE_FILE).write_text(text, encoding="utf-8")


def _write_exercise(directory: Path, exercise: Exercise) -> None:
    folder = directory / exercise.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / exercise.module_file).write_text(exercise.shipped_module(), encoding="utf-8")
    (folder / exercise.test_file).write_text(exercise.shipped_test(), encoding="utf-8")


def readme(shown: str) -> str:
    """The README written into a new exercises folder; ``shown`` is the folder as typed."""
    numpy_last = max(e.number for e in EXERCISES if not e.needs_keras)
    rows = "\n".join(
        f"| {e.number} | `{e.folder}` | {e.title} | {'Keras' if e.needs_keras else 'numpy'} |"
        for e in EXERCISES
    )
    commands = "\n".join(
        f"| `pitfalls learn {command}` | {what} |"
        for command, what in (
            (
                f"status {shown}",
                "which exercises pass, in order, with a progress bar, and the"
                " lesson of each newly passed one",
            ),
            (f"status {shown} N", "exercise N alone: its failure message, or its lesson"),
            (f"hint {shown} N", "a hint for exercise N: the symptom, then the cause, then the fix"),
            (
                f"reset {shown} N",
                "restore exercise N's module and test as shipped (your module kept as .bak)",
            ),
        )
    )
    return f"""\
# Learn by fixing: machine-learning pitfalls

Each folder here holds one silent bug from real training code: a small module
(the one to edit) and its test (leave it as it is). Every test fails now, with
the message of the `pitfalls` checker that catches the bug. Read the module's
docstring, read the failure, and fix the module until its test passes.

Start with the first failing exercise:

```sh
pytest {shown} -x
```

or one at a time, in any order: `pytest {shown}/{EXERCISES[0].folder}`.

| command | what it does |
|---|---|
{commands}

Exercises 1 to {numpy_last} need numpy only. The others need Keras
(`{INSTALL_KERAS}`) and are skipped without it.

| N | folder | the pitfall | needs |
|---|---|---|---|
{rows}

Edit only the modules: `status` compares each test file with its shipped copy
and says so when one was changed or deleted.

Background: {ARTICLE}: the article these exercises start
from, and what we measured on today's stack.
"""


def init(directory: Path, *, force: bool, shown: str) -> list[str]:
    """Write every exercise, a README and a pytest.ini into ``directory``; return what to say."""
    if directory.exists() and not directory.is_dir():
        raise LearnError(f"{shown} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise LearnError(
            f"{shown} is not empty: choose a new folder, or pass --force to write the"
            " exercises into it (their files are overwritten as shipped)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for exercise in EXERCISES:
        _write_exercise(directory, exercise)
    (directory / "README.md").write_text(readme(shown), encoding="utf-8")
    (directory / "pytest.ini").write_text(INI, encoding="utf-8")
    _save_state(directory, {"format": 1, "hints": {}, "explained": []})
    return [
        f"Wrote {len(EXERCISES)} exercises into {shown} (see {shown}/README.md).",
        f"Every test fails for now. Start with: pytest {shown} -x",
        f"Progress: pitfalls learn status {shown}; a hint: pitfalls learn hint {shown} 1",
    ]


def _backup(path: Path) -> Path:
    """Copy ``path`` to the first free ``NAME.bak``, ``NAME.bak2``, ...; the copy's path."""
    for n in range(1, 1000):
        backup = path.with_name(path.name + (".bak" if n == 1 else f".bak{n}"))
        if not backup.exists():
            backup.write_bytes(path.read_bytes())
            return backup
    raise LearnError(f"{path.name} has 999 backups already: delete some first")


def reset(directory: Path, exercise: Exercise, *, shown: str) -> list[str]:
    """Restore one exercise's module and test as shipped; a module the learner changed
    is kept first, as ``NAME.py.bak`` (or ``.bak2``, ...), and the output says where."""
    _require_workspace(directory)
    module = directory / exercise.folder / exercise.module_file
    kept = ""
    if module.is_file() and module.read_bytes() != exercise.shipped_module().encode():
        kept = f" Your version is kept in {shown}/{exercise.folder}/{_backup(module).name}."
    _write_exercise(directory, exercise)
    state = _load_state(directory)
    state["explained"] = [n for n in state["explained"] if n != exercise.number]
    _save_state(directory, state)
    return [
        f"Restored {shown}/{exercise.folder}/{exercise.module_file} and"
        f" {exercise.test_file} as shipped (hints seen so far are kept).{kept}"
    ]


HINT_NAMES = ("the symptom", "the cause", "the fix")


def hint(directory: Path, exercise: Exercise, *, shown: str) -> list[str]:
    """The next hint for ``exercise``, with the earlier ones; the level is remembered."""
    _require_workspace(directory)
    state = _load_state(directory)
    key = str(exercise.number)
    seen = state["hints"].get(key, 0)
    level = min((seen if isinstance(seen, int) else 0) + 1, len(exercise.hints))
    state["hints"][key] = level
    _save_state(directory, state)
    lines = [f"Exercise {exercise.number}, {exercise.folder}: {exercise.title}", ""]
    for i in range(level):
        lines += _wrap(f"Hint {i + 1} of 3, {HINT_NAMES[i]}: {exercise.hints[i]}", "")
        lines.append("")
    if level < len(exercise.hints):
        lines.append(
            f"Run 'pitfalls learn hint {shown} {exercise.number}' again for {HINT_NAMES[level]}."
        )
    else:
        lines.append(
            f"That was the last hint. Test it: pytest {shown}/{exercise.folder};"
            f" start over: pitfalls learn reset {shown} {exercise.number}"
        )
    return lines


# Status -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Result:
    """One exercise's state in a learner's folder."""

    exercise: Exercise
    state: str
    """``passed``, ``failing``, ``skipped``, ``edited test`` or ``not started`` (the
    module as shipped, known to fail: not run)."""
    detail: str = ""
    """The error's class, why it was skipped, or what was edited."""
    message: str = ""
    """The failure's message, as pytest reported it."""


def _test_edited(directory: Path, exercise: Exercise) -> str:
    """What happened to the exercise's test file, if it is not the shipped one ("" if it is).

    Compared as text, line endings aside, so an editor that saves CRLF is no edit.
    """
    path = directory / exercise.folder / exercise.test_file
    if not path.is_file():
        return f"{exercise.test_file} was deleted"
    try:
        text = path.read_text(encoding="utf-8")  # universal newlines
    except UnicodeDecodeError:
        text = ""
    if text != exercise.shipped_test():
        return f"{exercise.test_file} differs from the shipped copy"
    return ""


def _run_pytest(directory: Path, exercises: Sequence[Exercise]) -> dict[str, list[ET.Element]]:
    """Run the tests of ``exercises`` in one pytest subprocess; test cases by folder."""
    directory = directory.resolve()
    with tempfile.TemporaryDirectory(prefix="pitfalls-learn-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")  # the learner's pytest.ini is not used
        report = Path(tmp) / "report.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "pytest_timeout",
            "-o",
            f"timeout={TEST_TIMEOUT}",
            "--noconftest",
            "--continue-on-collection-errors",
            "--tb=short",
            "-c",
            str(ini),
            "--rootdir",
            str(directory),
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
            *[f"{e.folder}/{e.test_file}" for e in exercises],
        ]
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up banner
        # The verdict must not depend on the learner's options, nor on the plugins they
        # have installed: the exercises' tests use none, and loading them (pytest-randomly,
        # hypothesis, xdist, anyio, ...) took a third of the run.
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_PLUGINS", None)
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        try:
            done = subprocess.run(
                command,
                cwd=directory,
                env=env,
                capture_output=True,
                text=True,
                timeout=PYTEST_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise LearnError(
                f"the exercises' tests did not finish within {PYTEST_TIMEOUT:g} s"
            ) from None
        if not report.is_file():
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise LearnError(
                f"pytest exited with status {done.returncode} without a report: " + " / ".join(tail)
            )
        root = ET.parse(report).getroot()
    cases: dict[str, list[ET.Element]] = {}
    for case in root.iter("testcase"):
        folder = Path(case.get("file") or case.get("name", "").replace(".", "/")).parts[0]
        cases.setdefault(folder, []).append(case)
    return cases


def _failure(element: ET.Element) -> tuple[str, str]:
    """(the exception's class, its message) from a JUnit failure or error element.

    The message is read from the ``E`` lines of the short traceback (the
    ``message`` attribute is cut after a few lines), the last block of them:
    the exception that ended the test.
    """
    blocks: list[list[str]] = []
    previous = False
    for line in (element.text or "").splitlines():
        if line.startswith("E   ") or line == "E":
            if not previous:
                blocks.append([])
            blocks[-1].append(line[4:])
        previous = line.startswith("E   ") or line == "E"
    message = "\n".join(blocks[-1]) if blocks else element.get("message", "") or "failed"
    head, sep, rest = message.partition(": ")
    if not sep or " " in head:
        return "", message
    return head.removeprefix("pitfalls."), rest


def _skip_reason(element: ET.Element) -> str:
    """Why a test was skipped: JUnit holds ``(path, line, 'Skipped: reason')`` as text."""
    try:
        where = ast.literal_eval((element.text or "").strip())
        reason = str(where[2])
    except (ValueError, SyntaxError, TypeError, IndexError):
        reason = element.get("message", "")
    return reason.removeprefix("Skipped: ") or "skipped"


def _outcome(exercise: Exercise, cases: list[ET.Element]) -> Result:
    if not cases:
        return Result(exercise=exercise, state="failing", detail="no test ran")
    for case in cases:
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            name, message = _failure(bad)
            return Result(exercise=exercise, state="failing", detail=name, message=message)
    for case in cases:
        skipped = case.find("skipped")
        if skipped is not None:
            return Result(exercise=exercise, state="skipped", detail=_skip_reason(skipped))
    return Result(exercise=exercise, state="passed")


def _not_started(directory: Path, exercise: Exercise) -> Result | None:
    """The state of an exercise whose module is still as shipped, without running it
    (the package's own suite proves each shipped module fails); None once it changed."""
    path = directory / exercise.folder / exercise.module_file
    try:
        text = path.read_text(encoding="utf-8")  # universal newlines, as _test_edited
    except (OSError, UnicodeDecodeError):
        return None
    if text != exercise.shipped_module():
        return None
    if exercise.needs_keras and importlib.util.find_spec("keras") is None:
        return Result(exercise=exercise, state="skipped", detail=NEEDS_KERAS)
    return Result(exercise=exercise, state="not started", detail=exercise.error)


def results(
    directory: Path, exercises: Sequence[Exercise], *, run_all: bool = False
) -> list[Result]:
    """Each exercise's state: edited tests are reported and not run, and so are modules
    still as shipped (unless ``run_all``: status of one exercise shows its message); the
    rest run in one pytest subprocess. Not running the untouched Keras exercises keeps a
    learner's status free of TensorFlow's import until they start one."""
    known: dict[int, Result] = {}
    for exercise in exercises:
        edited = _test_edited(directory, exercise)
        if edited:
            known[exercise.number] = Result(exercise=exercise, state="edited test", detail=edited)
        elif not run_all:
            untouched = _not_started(directory, exercise)
            if untouched is not None:
                known[exercise.number] = untouched
    to_run = [e for e in exercises if e.number not in known]
    cases = _run_pytest(directory, to_run) if to_run else {}
    return [known.get(e.number) or _outcome(e, cases.get(e.folder, [])) for e in exercises]


def _wrap(text: str, indent: str) -> list[str]:
    """Wrapped to TEXT_WIDTH; code in backticks is never split across lines."""
    protected = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", NBSP), text)
    lines = textwrap.wrap(
        protected,
        TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent or "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(NBSP, " ") for line in lines] or [indent]


def bar(passed: int, total: int) -> str:
    """``[##########------------------------------] 3 of 13``."""
    filled = round(BAR_WIDTH * passed / total) if total else 0
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {passed} of {total}"


def _row(result: Result, shown: str) -> str:
    state = result.state
    if result.state == "failing" and result.detail:
        state = f"failing: {result.detail}"
    elif result.state == "not started":
        state = f"not started: fails with {result.detail} until fixed (not run)"
    elif result.state == "skipped":
        state = f"skipped: {result.detail}"
    elif result.state == "edited test":
        state = (
            f"edited test: {result.detail}; pitfalls learn reset {shown}"
            f" {result.exercise.number} restores it"
        )
    return f"  {result.exercise.folder:<24}  {state}"


def _lesson(exercise: Exercise) -> list[str]:
    return [
        f"  {exercise.folder}: {exercise.title}",
        *_wrap(exercise.explanation, "    "),
    ]


def status(directory: Path, *, shown: str) -> tuple[int, list[str]]:
    """Every exercise in order, a progress bar, and the lessons of newly passed ones."""
    _require_workspace(directory)
    found = results(directory, EXERCISES)
    passed = [r for r in found if r.state == "passed"]
    state = _load_state(directory)
    new = [r.exercise for r in passed if r.exercise.number not in state["explained"]]
    lines = [
        f"Exercises in {shown}: {len(passed)} of {len(found)} pass",
        bar(len(passed), len(found)),
        "",
    ]
    lines += [_row(r, shown) for r in found]
    if new:
        lines += ["", "Newly passed, and what was wrong:"]
        for exercise in new:
            lines += ["", *_lesson(exercise)]
        state["explained"] = sorted({*state["explained"], *(e.number for e in new)})
        _save_state(directory, state)
    todo = [r for r in found if r.state in ("failing", "edited test", "not started")]
    lines.append("")
    if todo:
        nxt = todo[0].exercise
        lines.append(
            f"Next: {nxt.folder}. Its failure: pitfalls learn status {shown} {nxt.number};"
            f" a hint: pitfalls learn hint {shown} {nxt.number}"
        )
    elif len(passed) == len(found):
        lines.append(
            f"All {len(found)} exercises pass. The checkers their tests use are the ones"
            " to put in your own test suite: see the README of pitfalls."
        )
    else:
        lines.append(f"The other exercises pass; the skipped ones need Keras ({INSTALL_KERAS}).")
    return (0 if len(passed) == len(found) else 1), lines


def status_of(directory: Path, exercise: Exercise, *, shown: str) -> tuple[int, list[str]]:
    """One exercise: its state, and its failure message or its lesson."""
    _require_workspace(directory)
    (result,) = results(directory, [exercise], run_all=True)
    lines = [
        f"Exercise {exercise.number} of {len(EXERCISES)}, {exercise.folder}: {exercise.title}",
        _row(result, shown).strip(),
        "",
    ]
    module = f"{shown}/{exercise.folder}/{exercise.module_file}"
    if result.state == "passed":
        lines += ["What was wrong, and where it bites:", *_wrap(exercise.explanation, "  ")]
        state = _load_state(directory)
        state["explained"] = sorted({*state["explained"], exercise.number})
        _save_state(directory, state)
    elif result.state == "failing":
        lines += [textwrap.indent(result.message, "  "), ""]
        lines.append(f"Fix {module}; a hint: pitfalls learn hint {shown} {exercise.number}")
    elif result.state == "edited test":
        lines.append(
            f"Edit only {module}. To restore the test (and the module):"
            f" pitfalls learn reset {shown} {exercise.number}"
        )
    return (0 if result.state == "passed" else 1), lines
