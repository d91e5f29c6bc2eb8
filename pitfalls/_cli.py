"""``pitfalls`` on the command line: ``pitfalls demo`` (also ``python -m pitfalls demo``)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pitfalls._aliasing import DEFAULT_DRAWS, check_generator_no_aliasing
from pitfalls._readahead import read_ahead
from pitfalls._report import Report
from pitfalls._runner import check_source
from pitfalls._targets import check_targets_match
from pitfalls.reproductions import generators as gen


def _verdict(report: Report) -> str:
    if report.ok:
        return "pass"
    whens = sorted({f.when for f in report.findings})
    return f"FAIL {len(report.bad_batches)}/{report.batches} ({', '.join(whens)})"


def _with_copies(batches: Iterator[Any]) -> Iterator[Any]:
    for x, y in batches:
        yield x, y, x.copy()


def _consumer_counts(
    variant: Callable[..., Iterator[Any]], batch_size: int, batches: int, seed: int, depth: int
) -> tuple[int, int]:
    """(pairs whose inputs no longer give their targets, batches overwritten before use)."""
    mismatched = overwritten = 0
    stream = read_ahead(_with_copies(variant(batch_size, seed=seed, form="pair")), depth)
    for _, (x, y, as_yielded) in zip(range(batches), stream):
        mismatched += not np.allclose(gen.mean_target(x), y)
        overwritten += not np.array_equal(x, as_yielded)
    return mismatched, overwritten


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def demo(args: argparse.Namespace, out: Any = sys.stdout) -> int:
    def say(line: str = "") -> None:
        print(line, file=out)

    variants = [(v, "buggy") for v in gen.BUGGY] + [(v, "fixed") for v in gen.FIXED]
    name_w = max(len(v.__name__) for v, _ in variants)

    say("Pitfall 1: a batch generator that re-yields one numpy buffer")
    say(f"(batch size {args.batch_size}, seed {args.seed}; numpy only, no training)")
    say()
    say("The article's check, print(next(it), next(it)) at batch size 1: is the first")
    say("pair's target still the mean of the first pair's inputs?")
    for variant, _ in variants:
        it = variant(1, seed=args.seed, form="pair")
        (x1, y1), (x2, y2) = next(it), next(it)
        first_ok = np.allclose(gen.mean_target(x1), y1)
        say(
            f"  {variant.__name__.ljust(name_w)}  ({x1.tolist()}, {y1.tolist()})"
            f" ({x2.tolist()}, {y2.tolist()})  {'consistent' if first_ok else 'MISMATCH'}"
        )
    say()

    say(
        f"Checkers, draws={args.draws} (pitfalls.check_generator_no_aliasing, check_targets_match):"
    )
    widths = [name_w, 5, 30, 30]
    say(_row(["variant", "kind", "no_aliasing", "targets_match"], widths))
    for variant, kind in variants:

        def factory(variant: Callable[..., Iterator[Any]] = variant) -> Iterator[Any]:
            return variant(args.batch_size, seed=args.seed)

        aliasing = check_generator_no_aliasing(factory, draws=args.draws)
        targets = check_targets_match(factory, gen.mean_target, draws=args.draws)
        say(_row([variant.__name__, kind, _verdict(aliasing), _verdict(targets)], widths))
    say()

    depths = args.depths
    say(f"A deterministic read-ahead consumer over {args.batches} batches (pitfalls.read_ahead):")
    say("depth d means batch i is used after batch i+d was drawn,")
    say(
        "as Keras 2's queue and tf.data's prefetch do. Cells: mismatched pairs / inputs overwritten"
    )
    say("before use.")
    widths = [name_w] + [13] * len(depths)
    say(_row(["variant"] + [f"depth {d}" for d in depths], widths))
    for variant, _ in variants:
        cells = []
        for d in depths:
            m, r = _consumer_counts(variant, args.batch_size, args.batches, args.seed, d)
            cells.append(f"{m} / {r}")
        say(_row([variant.__name__, *cells], widths))
    say()
    say("Mismatched pairs train the model on inputs with another batch's targets. Overwritten")
    say("but consistent batches (the article's 'fix') only shift the stream in this strict")
    say("FIFO; a consumer that holds several at once (Keras 3 keeps the first two to infer")
    say("shapes; tf.data batches and prefetches) trains on repeated or torn batches.")
    return 0


JSON_SCHEMA = "pitfalls.check/1"
"""Names the shape of ``pitfalls check --json``: docs/report.schema.json."""


class Unusable(Exception):
    """The target of ``pitfalls check`` cannot be used: exit status 2, one line."""


def load(spec: str, what: str) -> Any:
    """``module:attr`` (dots allowed in both) imported from the current directory."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise Unusable(f"{what} must be MODULE:ATTR, e.g. my_pipeline:train_batches; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise Unusable(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise Unusable(f"{module_name!r} has no attribute {attr_path!r}") from None
    return obj


def check(args: argparse.Namespace, out: Any = sys.stdout) -> int:
    """Run the data checks on a user's batch source; 0 clean, 1 findings, 2 unusable."""
    source = load(args.target, "target")
    target_fn = load(args.target_fn, "--target-fn") if args.target_fn else None
    try:
        reports = check_source(source, target_fn, draws=args.draws, timeout=args.timeout)
    except (TypeError, ValueError, TimeoutError) as exc:
        raise Unusable(f"{args.target}: {exc}") from exc
    except Exception as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        raise Unusable(
            f"{args.target} raised {type(exc).__name__}: {exc} {notes}".rstrip()
        ) from exc
    ok = all(r.ok for r in reports)
    if args.json:
        doc = {
            "schema": JSON_SCHEMA,
            "target": args.target,
            "ok": ok,
            "reports": [r.to_dict() for r in reports],
        }
        print(json.dumps(doc, indent=2), file=out)
    else:
        print("\n\n".join(str(r) for r in reports), file=out)
    return 0 if ok else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def _pitfalls(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(p not in ("1", "2") for p in chosen):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from 1 and 2, e.g. 1,2")
    return chosen


def _depths(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of ints"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("depths must be >= 0")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pitfalls", description="Make silent ML bugs loud.")
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser(
        "demo",
        help="reproduce the article's pitfalls on the installed stack",
        description="Reproduce the article: the checkers on every generator variant, a"
        " deterministic read-ahead consumer, then training through Keras 3's fit (generator"
        " and PyDataset with workers), a GradientTape loop and, if installed, tf_keras.",
    )
    d.add_argument("--pitfalls", type=_pitfalls, default=["1", "2"], help="which: 1, 2 or 1,2")
    d.add_argument("--batch-size", type=_positive, default=64, help="the article's 64")
    d.add_argument("--epochs", type=_positive, default=5)
    d.add_argument("--steps", type=_positive, default=200, help="steps per epoch")
    d.add_argument("--learning-rate", type=float, default=0.01, help="RMSprop's, pitfall 1")
    d.add_argument("--depth", type=int, default=2, help="read-ahead of the GradientTape loop")
    d.add_argument("--workers", type=_positive, default=2, help="PyDataset worker threads")
    d.add_argument("--batches", type=_positive, default=200, help="batches per consumer count")
    d.add_argument("--draws", type=int, default=DEFAULT_DRAWS, help="batches each checker draws")
    d.add_argument(
        "--depths", type=_depths, default=[0, 1, 2, 10], help="read-ahead depths, e.g. 0,1,10"
    )
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--plot", metavar="PATH", help="write loss curves to a PNG (needs matplotlib)")
    d.add_argument("--no-train", action="store_true", help="numpy only: skip the training part")

    c = commands.add_parser(
        "check",
        help="run the data checks on your batch source",
        description="Import MODULE:ATTR (a generator function, factory, class, iterable or"
        " PyDataset) and check that batches are not rewritten after they are handed out,"
        " that targets follow --target-fn, and that an indexable source re-reads the same."
        " Exit status: 0 clean, 1 findings, 2 the target cannot be used.",
    )
    c.add_argument("target", metavar="MODULE:ATTR", help="the batch source, e.g. pipeline:batches")
    c.add_argument("--target-fn", metavar="MODULE:ATTR", help="the rule: targets = f(inputs)")
    c.add_argument("--draws", type=_positive, default=DEFAULT_DRAWS, help="batches to draw")
    c.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a batch may take (default 60)"
    )
    c.add_argument("--json", action="store_true", help="print the reports as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        status = demo(args)
        if args.no_train:
            return status
        from pitfalls._demo import train_and_report

        print(file=sys.stdout)
        return train_and_report(args, sys.stdout)
    try:
        return check(args)
    except Unusable as exc:
        print(f"pitfalls check: {exc}", file=sys.stderr)
        return 2
