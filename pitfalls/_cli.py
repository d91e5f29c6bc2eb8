"""``pitfalls`` on the command line: ``demo``, ``check``, ``learn`` (or ``python -m pitfalls``)."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pitfalls import __version__
from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS
from pitfalls._demo import add_demo_parser, run_demo_command
from pitfalls._learn import add_learn_parser, run_learn
from pitfalls._runner import check_source

JSON_SCHEMA = "pitfalls.check/2"
"""Names the shape of ``pitfalls check --json``: docs/report.schema.json."""


class Unusable(Exception):
    """The target of ``pitfalls check`` cannot be used: exit status 2, one line."""


def _import_file(path: str, said: str) -> Any:
    """The module at ``path``, imported as a script's neighbours expect: its folder on
    sys.path (as ``python path/to/file.py`` puts it), its name the file's stem."""
    if not os.path.isfile(path):
        raise Unusable(f"{said}no file {path!r} (looked from {os.getcwd()})")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules:  # a file named like a module in use (json.py) must not replace it
        name = f"{name}__from_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise Unusable(f"{said}cannot import {path!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and the module's own imports find it
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise Unusable(f"{said}cannot import {path!r}: {type(exc).__name__}: {exc}") from exc
    return module


def load(spec: str, what: str) -> Any:
    """``module:attr`` (dots allowed in both) imported from the current directory, or
    ``path/to/file.py:attr``, as pytest users type paths.

    ``what`` names the argument in every error but the target's own, e.g. ``--target-fn``.
    """
    module_name, sep, attr_path = spec.rpartition(":")  # a Windows path holds a colon too
    said = "" if what == "target" else f"{what} {spec}: "
    if not sep or not module_name or not attr_path:
        raise Unusable(
            f"{what} must be MODULE:ATTR or path/to/file.py:ATTR, e.g."
            f" my_pipeline:train_batches; got {spec!r}"
        )
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        obj: Any = _import_file(module_name, said)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            obj = importlib.import_module(module_name)
        except Exception as exc:
            raise Unusable(
                f"{said}cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise Unusable(f"{said}{module_name!r} has no attribute {attr_path!r}") from None
    return obj


class _Option:
    """A function given on the command line (``--target-fn``, ...), called through a
    wrapper that remembers what it raised, so that an error names the right argument."""

    def __init__(self, option: str, spec: str) -> None:
        self.name = f"{option} {spec}"
        fn = load(spec, option)
        if not callable(fn):
            raise Unusable(f"{self.name}: must be a function, got {type(fn).__name__} {fn!r}")
        self.raised: list[BaseException] = []

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                self.raised.append(exc)
                raise

        if not hasattr(fn, "__name__"):  # a callable object: reports name its class
            call.__name__ = type(fn).__name__
        self.fn = call


def _blamed(exc: BaseException, target: str, options: Sequence[_Option]) -> str:
    """Who raised ``exc`` (or what it was raised about): an option's function, else the target."""
    for option in options:
        if any(exc is raised or exc.__context__ is raised for raised in option.raised):
            return option.name
    return target


def _skipped_epochs(args: argparse.Namespace, reports: Sequence[Any]) -> str:
    """A line saying that the epoch comparison did not run by default, and what to pass."""
    if args.epochs is not None or any(r.check == "epoch_repeatable" for r in reports):
        return ""
    return (
        "skipped: epoch_repeatable (two epochs compared): the source has no length, so"
        " its epochs cannot be told apart. Pass --steps-per-epoch N to read it as epochs"
        " of N batches, or --no-epochs to skip the comparison without this line."
    )


_KEYWORDS = re.compile(
    r"\b(draws|steps_per_epoch|target_fn|unpack|reseed|dataset|timeout|rtol|atol)=(\w*)"
)


def _as_options(text: str) -> str:
    """A check's message in the command line's words: ``pass draws=5`` is ``--draws 5``,
    a bare ``steps_per_epoch=`` is ``--steps-per-epoch N``."""
    return _KEYWORDS.sub(lambda m: f"--{m[1].replace('_', '-')} {m[2] or 'N'}", text)


def check(args: argparse.Namespace, out: Any = None) -> int:
    """Run the data checks on a user's batch source; 0 clean, 1 findings, 2 unusable.

    The reports go to ``out``, by default ``sys.stdout`` as it is when called.
    """
    out = sys.stdout if out is None else out
    source = load(args.target, "target")
    given = {
        name: _Option(option, spec)
        for name, option, spec in (
            ("target_fn", "--target-fn", args.target_fn),
            ("unpack", "--unpack", args.unpack),
            ("reseed", "--reseed", args.reseed),
        )
        if spec
    }
    functions = {name: given[name].fn if name in given else None for name in given}
    try:
        reports = check_source(
            source,
            functions.get("target_fn"),
            draws=args.draws,
            timeout=args.timeout,
            epochs=args.epochs,
            shuffled=args.shuffled,
            steps_per_epoch=args.steps_per_epoch,
            unpack=functions.get("unpack"),
            reseed=functions.get("reseed"),
            rtol=args.rtol,
            atol=args.atol,
            dataset=None if args.dataset is None else load(args.dataset, "--dataset"),
        )
    except (TypeError, ValueError, TimeoutError) as exc:
        who = _blamed(exc, args.target, list(given.values()))
        raise Unusable(f"{who}: {_as_options(str(exc))}") from exc
    except Exception as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        who = _blamed(exc, args.target, list(given.values()))
        raise Unusable(f"{who} raised {type(exc).__name__}: {exc} {notes}".rstrip()) from exc
    ok = all(r.ok for r in reports)
    skipped = _skipped_epochs(args, reports)
    if args.json:
        doc = {
            "schema": JSON_SCHEMA,
            "target": args.target,
            "ok": ok,
            "reports": [r.to_dict() for r in reports],
        }
        print(json.dumps(doc, indent=2), file=out)
        if skipped:  # on stderr: the JSON keeps its shape
            out.flush()  # a reader that went away stops us here, before a word on stderr
            print(f"pitfalls check: {skipped}", file=sys.stderr)
    else:
        print("\n\n".join(str(r) for r in reports), file=out)
        if skipped:
            print(f"\n{skipped}", file=out)
    return 0 if ok else 1


def _parsed(convert: Callable[[str], Any], check: Callable[[Any], Any]) -> Callable[[str], Any]:
    """An argparse type: the text as ``convert`` reads it (else argparse's ``invalid int
    value: 'x'``), then checked by ``check``, the API's own check of that argument, so
    that both say one thing in one way."""

    def parse(text: str) -> Any:
        value = convert(text)
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = convert.__name__
    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= validate.MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0, up to a week")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pitfalls", description="Make silent ML bugs loud.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(commands)

    c = commands.add_parser(
        "check",
        help="run the data checks on your batch source",
        description="Import MODULE:ATTR or path/to/file.py:ATTR (a generator function,"
        " factory, class, iterable or PyDataset) and run every data check that applies, as"
        " pitfalls.check_source does:"
        " batches are not rewritten after they are handed out, targets follow --target-fn,"
        " an indexable source re-reads the same, and two epochs hold the same samples (where"
        " the source has a length) and, with --shuffled, come in another order."
        " Exit status: 0 clean, 1 findings (or a check that could not judge), 2 the target"
        " cannot be used.",
    )
    c.add_argument(
        "target",
        metavar="MODULE:ATTR",
        help="the batch source, e.g. pipeline:batches or src/pipeline.py:batches",
    )
    c.add_argument("--target-fn", metavar="MODULE:ATTR", help="the rule: targets = f(inputs)")
    c.add_argument(
        "--dataset",
        metavar="MODULE:ATTR",
        help="the samples one epoch must deliver, each once (an array, rows on axis 0):"
        " runs epoch_complete",
    )
    c.add_argument(
        "--draws",
        type=_parsed(int, lambda value: validate.draws(value, "--draws")),
        default=DEFAULT_DRAWS,
        help="batches to draw (default: %(default)s)",
    )
    c.add_argument(
        "--rtol",
        type=_parsed(float, functools.partial(validate.tolerance, "--rtol")),
        default=None,
        metavar="R",
        help="relative tolerance of the targets check (default: by dtype, 1.3e-06 for float32,"
        " 1e-07 for float64, exact for integers)",
    )
    c.add_argument(
        "--atol",
        type=_parsed(float, functools.partial(validate.tolerance, "--atol")),
        default=None,
        metavar="A",
        help="absolute tolerance of the targets check (default: by dtype, 1e-05 for float32,"
        " 1e-07 for float64, exact for integers; smaller for targets below 1)",
    )
    c.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        help="seconds a batch may take to arrive (default: %(default)s)",
    )
    epochs = c.add_mutually_exclusive_group()
    epochs.add_argument(
        "--epochs",
        dest="epochs",
        action="store_true",
        default=None,
        help="compare two epochs (default: when the source has a length or --steps-per-epoch)",
    )
    epochs.add_argument(
        "--no-epochs", dest="epochs", action="store_false", help="skip the epoch comparison"
    )
    c.add_argument(
        "--shuffled",
        action="store_true",
        help="training data: require the order of samples to change between epochs",
    )
    c.add_argument(
        "--steps-per-epoch",
        type=_parsed(int, lambda n: validate.integer("--steps-per-epoch", n, minimum=1)),
        metavar="N",
        help="read an endless source as epochs of N batches",
    )
    c.add_argument(
        "--unpack",
        metavar="MODULE:ATTR",
        help="a function batch -> (inputs, targets), where the batch convention cannot tell",
    )
    c.add_argument(
        "--reseed",
        metavar="MODULE:ATTR",
        help="a function seed -> None that reseeds your own RNGs before each compared read",
    )
    c.add_argument(
        "--json", action="store_true", help="print the reports as JSON (docs/report.schema.json)"
    )
    add_learn_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``pitfalls ...`` with ``argv`` (default: ``sys.argv[1:]``); the exit status.

    Misuse of the options exits (``SystemExit``, status 2) as argparse does;
    ``--help`` and ``--version`` exit with status 0.
    """
    try:
        try:
            return _run(build_parser().parse_args(argv))
        finally:
            # A reader that went away (pitfalls check --json | head) shows here at the
            # latest, not when the interpreter flushes what is left at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # Stop quietly, as the Python docs advise: what is still buffered goes to
        # /dev/null, so that no "Exception ignored ... BrokenPipeError" follows at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return run_demo_command(args)
    if args.command == "learn":
        return run_learn(args)
    try:
        return check(args)
    except Unusable as exc:
        print(f"pitfalls check: {exc}", file=sys.stderr)
        return 2
