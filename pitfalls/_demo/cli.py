"""``pitfalls demo`` on the command line: options in, a DemoConfig; text and a PNG out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from pitfalls._demo.config import PITFALLS, DemoConfig

DEFAULTS = DemoConfig()


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not >= {minimum}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
    return parse


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a number above 0")
    return value


def _pitfalls(text: str) -> tuple[int, ...]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen or any(p not in ("1", "2") for p in chosen):
        raise argparse.ArgumentTypeError(f"{text!r}: choose from 1 and 2, e.g. 1,2")
    return tuple(sorted({int(p) for p in chosen}))


def _depths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of ints"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("depths must be >= 0")
    return values


def _listed(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


def add_demo_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to the sub-parsers ``commands``; every option's help shows its default."""
    d = DEFAULTS
    p: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="reproduce the article's pitfalls on the installed stack",
        description="Reproduce the article: the checkers on every generator variant, a"
        " deterministic read-ahead consumer, then training through Keras 3's fit (generator"
        " and PyDataset with workers), a GradientTape loop and, if installed, tf_keras.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--pitfalls",
        type=_pitfalls,
        default=_listed(PITFALLS),
        help="which pitfalls to train: 1, 2 or 1,2",
    )
    p.add_argument("--batch-size", type=_at_least(1), default=d.batch_size, help="the article's 64")
    p.add_argument("--epochs", type=_at_least(1), default=d.epochs, help="epochs per training run")
    p.add_argument("--steps", type=_at_least(1), default=d.steps, help="steps per epoch")
    p.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=d.learning_rate,
        help="RMSprop's, pitfall 1",
    )
    p.add_argument(
        "--depth", type=_at_least(0), default=d.depth, help="read-ahead of the GradientTape loop"
    )
    p.add_argument(
        "--workers", type=_at_least(1), default=d.workers, help="PyDataset worker threads"
    )
    p.add_argument(
        "--batches", type=_at_least(1), default=d.batches, help="batches per read-ahead count"
    )
    p.add_argument("--draws", type=_at_least(2), default=d.draws, help="batches each checker draws")
    p.add_argument(
        "--depths",
        type=_depths,
        default=_listed(d.depths),
        help="read-ahead depths of the numpy table, e.g. 0,1,10",
    )
    p.add_argument(
        "--seed", type=_at_least(0), default=d.seed, help="seeds the data, models and Keras"
    )
    p.add_argument(
        "--plot", metavar="PATH", help="write the loss curves to a PNG (needs matplotlib)"
    )
    p.add_argument(
        "--no-train", action="store_true", help="the numpy part alone: no framework is imported"
    )
    return p


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """The DemoConfig that ``pitfalls demo``'s parsed options ask for."""
    values = {f.name: getattr(args, f.name) for f in fields(DemoConfig) if f.name != "train"}
    return DemoConfig(**values, train=not args.no_train)


class _Progress:
    """One line per step on ``stream``, rewritten in place on a terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, step: int, steps: int, what: str) -> None:
        line = f"[{step}/{steps}] {what}"
        self.stream.write("\r" + line.ljust(100)[:100] if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


def run_demo_command(args: argparse.Namespace, out: Any = None, err: Any = None) -> int:
    """``pitfalls demo``: measure, print the text, write the PNG if asked; the exit status."""
    from pitfalls._demo.measure import run_demo
    from pitfalls._demo.render import render_text

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    config = config_from_args(args)
    progress = _Progress(err)  # the numpy part alone takes a second: no progress
    try:
        result = run_demo(config, progress if config.train else None)
    finally:
        progress.close()
    out.write(render_text(result))
    if args.plot:
        if not result.consumers:
            print("skipped: --plot (nothing was trained)", file=out)
            return 0
        from pitfalls._demo.plot import render_figure

        try:
            render_figure(result, args.plot)
        except ImportError:
            print(
                "skipped: --plot (matplotlib is not installed: pip install matplotlib)",
                file=out,
            )
        else:
            print(f"plot: {args.plot}", file=out)
    return 0
