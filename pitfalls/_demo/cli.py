"""``pitfalls demo`` on the command line: options in, a DemoConfig; text and a PNG out."""

from __future__ import annotations

import argparse
import importlib.util
import os
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


class _Bars:
    """One progress bar per phase of the demo (rich's), on ``stream``.

    On a terminal the bars move as the demo runs; elsewhere (a CI log, a file)
    rich draws each bar once, finished, when the demo ends.
    """

    def __init__(self, stream: Any) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        # Fixed widths but the last, whose text is cut to the room left: a long run's
        # name is shortened, never the bar.
        console = Console(file=stream)
        self.bars = Progress(
            TextColumn("{task.description}", table_column=Column(width=20, no_wrap=True)),
            BarColumn(bar_width=16),
            MofNCompleteColumn(table_column=Column(width=5)),
            TimeElapsedColumn(table_column=Column(width=7)),
            TextColumn("{task.fields[what]}", table_column=Column(no_wrap=True)),
            console=console,
        )
        self.room = max(console.width - (20 + 16 + 5 + 7 + 5), 10)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def __call__(self, phase: str, done: int, total: int, what: str) -> None:
        if len(what) > self.room:
            what = what[: self.room - 1] + "…"
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.bars.add_task(phase, total=total, what=what)
        if done >= total:  # a finished bar keeps its time, and says nothing more
            self.bars.update(task, completed=total, what="")
            self.bars.stop_task(task)
        else:
            self.bars.update(task, completed=done, what=what)


def _plot_refused(path: str) -> str:
    """Why ``--plot PATH`` cannot be written, found before anything is measured ("" if it can)."""
    if importlib.util.find_spec("matplotlib") is None:
        return "--plot needs matplotlib, which is not installed: pip install matplotlib"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--plot {path}: the folder {folder} does not exist"
    return ""


def run_demo_command(args: argparse.Namespace, out: Any = None, err: Any = None) -> int:
    """``pitfalls demo``: measure, print the text, write the PNG if asked; the exit status.

    2, with one line on ``err``, when ``--plot`` cannot be written (matplotlib
    missing, no such folder): refused before anything is measured.
    """
    from pitfalls._demo.measure import run_demo
    from pitfalls._demo.render import render_text

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    config = config_from_args(args)
    refused = _plot_refused(args.plot) if args.plot and config.train else ""
    if refused:
        print(f"pitfalls demo: {refused}", file=err)
        return 2
    if config.train and importlib.util.find_spec("rich") is not None:
        with _Bars(err) as bars:
            result = run_demo(config, bars)
    else:  # the numpy part alone takes a second: no progress
        result = run_demo(config)
    out.write(render_text(result))
    if args.plot:
        if not result.consumers:
            print("skipped: --plot (nothing was trained)", file=out)
            return 0
        from pitfalls._demo.plot import render_figure

        render_figure(result, args.plot)
        print(f"plot: {args.plot}", file=out)
    return 0
