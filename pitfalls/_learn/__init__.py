"""``pitfalls learn``: exercises that fail until the learner fixes the pitfall.

``pitfalls learn init DIR`` writes numbered exercises, each a small buggy
module and a test that fails with a pitfalls checker's message;
``status DIR [N]``, ``hint DIR N`` and ``reset DIR N`` follow the learner's
progress; ``show-messages [N]`` prints the message each shipped exercise
fails with, without writing anything.

The command line wires it in with :func:`add_learn_parser` and
:func:`run_learn`; :func:`main` runs it alone::

    from pitfalls._learn import main
    main(["learn", "init", "ex"])
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pitfalls import _validate as validate
from pitfalls._learn._catalog import EXERCISES, Exercise, by_number
from pitfalls._learn._hints import exercise_hint
from pitfalls._learn._workspace import LearnError, hint, init, reset, status, status_of

_N_HELP = "its number, or its folder's name (01_shared_buffer, or DIR/01_shared_buffer/)"

__all__ = ["EXERCISES", "add_learn_parser", "exercise_hint", "main", "run_learn", "show_messages"]


def add_learn_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``learn`` command (and its own sub-commands) to ``subparsers``."""
    learn = subparsers.add_parser(
        "learn",
        help="exercises that fail until you fix the pitfall",
        description="Learn by fixing: numbered exercises, each a small buggy module and a"
        " test that fails with a pitfalls checker's message until the module is fixed."
        f" {len(EXERCISES)} exercises; the numpy ones first, the Keras ones skip without"
        " Keras.",
    )
    commands = learn.add_subparsers(dest="learn_command", required=True, metavar="COMMAND")
    i = commands.add_parser(
        "init",
        help="write the exercises into DIR",
        description="Write the exercises, a README and a pytest.ini into DIR; then run"
        " 'pytest DIR -x'. Refuses a DIR that is not empty unless --force.",
    )
    i.add_argument("dir", metavar="DIR")
    i.add_argument(
        "--force", action="store_true", help="write into a DIR that is not empty (overwrites)"
    )
    s = commands.add_parser(
        "status",
        help="which exercises pass, with a progress bar",
        description="Run the exercises' tests (one pytest subprocess) and show which pass, in"
        " order, with a progress bar and what each newly passed one taught. With N:"
        " exercise N alone, with its failure message or its lesson. Exit status 0 when all"
        " shown pass, 1 otherwise.",
    )
    s.add_argument("dir", metavar="DIR")
    s.add_argument("number", metavar="N", nargs="?", help="one exercise only: " + _N_HELP)
    h = commands.add_parser(
        "hint",
        help="the next hint for exercise N",
        description="Graded hints: the first call says the symptom, the second the cause,"
        " the third the fix. The level is remembered in DIR.",
    )
    h.add_argument("dir", metavar="DIR")
    h.add_argument("number", metavar="N", help=_N_HELP)
    r = commands.add_parser(
        "reset",
        help="restore exercise N's module and test",
        description="Restore exercise N's module and test file as shipped. A module you"
        " changed is kept first, beside it, as NAME.py.bak (then .bak2, ...).",
    )
    r.add_argument("dir", metavar="DIR")
    r.add_argument("number", metavar="N", help=_N_HELP)
    m = commands.add_parser(
        "show-messages",
        help="print the message each shipped exercise fails with",
        description="Run each exercise's test on its shipped module, in this process, and"
        " print the checker's message it fails with: the teaching suite's failures, without"
        " writing a folder. Exit status 1 if an exercise does not fail as intended.",
    )
    m.add_argument("number", metavar="N", nargs="?", help="one exercise only: " + _N_HELP)
    return learn


def _exercise(number: Any) -> Exercise:
    """The exercise a learner named: by number (``3``), or by its folder as a shell
    completes it (``03_uint8_overflow``, ``ex/03_uint8_overflow/``)."""
    if isinstance(number, str) and not number.strip().lstrip("+-").isdigit():
        name = os.path.basename(number.strip().rstrip("/" + os.sep))
        for exercise in EXERCISES:
            if name in (exercise.folder, exercise.slug):
                return exercise
        folders = ", ".join(e.folder for e in EXERCISES[:2])
        raise LearnError(
            f"N={number!r} is not an exercise: give its number, 1 to {len(EXERCISES)},"
            f" or its folder ({folders}, ...)"
        )
    try:
        return by_number(validate.integer("N", int(number), minimum=1))
    except TypeError as exc:
        raise LearnError(str(exc)) from None


def show_messages(numbers: Sequence[int], out: TextIO) -> int:
    """Print the failure of each shipped exercise; 1 if one does not fail as intended."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up banner
    import pitfalls
    from pitfalls._learn._inprocess import run_in_process

    wrong = []
    for number in numbers:
        exercise = by_number(number)
        outcome = run_in_process(exercise)
        print(f"{exercise.folder}: {exercise.title}", file=out)
        if outcome.status == "skipped":
            print(f"  skipped: {outcome.message}", file=out)
        elif outcome.status == "failed" and outcome.error is not None:
            name = type(outcome.error).__name__
            print(textwrap.indent(f"pitfalls.{name}: {outcome.message}", "  "), file=out)
            if not isinstance(outcome.error, getattr(pitfalls, exercise.error)):
                wrong.append(f"{exercise.folder} failed with {name}, not {exercise.error}")
        else:
            print("  passed", file=out)
            wrong.append(f"{exercise.folder} passed as shipped")
        print(file=out)
    for line in wrong:
        print(f"NOT AS INTENDED: {line}", file=out)
    return 1 if wrong else 0


def run_learn(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out a parsed ``pitfalls learn`` command; the exit status.

    0: done (``status``: every exercise shown passes); 1: ``status`` shows an
    exercise not passing, or ``show-messages`` one that does not fail as
    intended; 2: the command cannot be carried out (one line on stderr).
    """
    out = sys.stdout if out is None else out
    command = args.learn_command
    try:
        if command == "show-messages":
            numbers = (
                [e.number for e in EXERCISES]
                if args.number is None
                else [_exercise(args.number).number]
            )
            return show_messages(numbers, out)
        shown = shlex.quote(str(args.dir))  # as the learner would type it again
        directory = Path(args.dir)
        code = 0
        if command == "init":
            lines = init(directory, force=args.force, shown=shown)
        elif command == "status" and args.number is None:
            code, lines = status(directory, shown=shown)
        elif command == "status":
            code, lines = status_of(directory, _exercise(args.number), shown=shown)
        elif command == "hint":
            lines = hint(directory, _exercise(args.number), shown=shown)
        elif command == "reset":
            lines = reset(directory, _exercise(args.number), shown=shown)
        else:
            raise LearnError(f"unknown command {command!r}")
    except (LearnError, ValueError, OSError) as exc:
        print(f"pitfalls learn {command}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines), file=out)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``pitfalls learn ...`` alone: ``main(["learn", "status", "ex"])``."""
    parser = argparse.ArgumentParser(prog="pitfalls")
    add_learn_parser(parser.add_subparsers(dest="command", required=True))
    return run_learn(parser.parse_args(argv))
