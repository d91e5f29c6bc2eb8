"""``pitfalls demo``: measure the article's pitfalls on the installed stack, then render.

:func:`run_demo` measures into a frozen :class:`DemoResult`;
:func:`render_text` and :func:`render_figure` draw from that data alone.

* ``config``: :class:`DemoConfig`, every option that changes a number;
* ``measure``: :func:`run_demo`, the numpy part and the orchestration;
* ``training``: the models and training loops (Keras imported on call);
* ``results``: the data; ``render``: the text; ``plot``: the figure;
* ``cli``: the ``demo`` sub-command.

Importing this package imports numpy, never a framework or matplotlib.
"""

from pitfalls._demo.cli import add_demo_parser, config_from_args, run_demo_command
from pitfalls._demo.config import DemoConfig
from pitfalls._demo.measure import Progress, run_demo
from pitfalls._demo.plot import build_figure, render_figure
from pitfalls._demo.render import render_text
from pitfalls._demo.results import (
    CheckerRow,
    Consumer,
    DemoResult,
    EpochMeansRow,
    EpochOrderRow,
    NextNextRow,
    PitfallTwo,
    ReadAheadCount,
    ReadAheadRow,
    TrainingRun,
)

__all__ = [
    "CheckerRow",
    "Consumer",
    "DemoConfig",
    "DemoResult",
    "EpochMeansRow",
    "EpochOrderRow",
    "NextNextRow",
    "PitfallTwo",
    "Progress",
    "ReadAheadCount",
    "ReadAheadRow",
    "TrainingRun",
    "add_demo_parser",
    "build_figure",
    "config_from_args",
    "render_figure",
    "render_text",
    "run_demo",
    "run_demo_command",
]
