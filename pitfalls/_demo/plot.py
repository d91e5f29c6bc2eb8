"""The figure of ``pitfalls demo``: one panel per consumer, buggy (red) against fixed (blue)."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from pitfalls._demo.results import Consumer, DemoResult, EpochMeansRow

STYLES = {
    "buggy": (("#d62728", "-", "o"), ("#ff7f0e", "--", "v")),
    "fixed": (("#1f77b4", "-", "s"), ("#17becf", ":", "D")),
}
"""Colour, line style and marker of the first and second variant of each kind."""


def _curve(ax: Any, values: tuple[float, ...], kind: str, nth: int, label: str) -> str:
    """Plot one run; fixed wide and pale underneath, buggy thin on top. Returns its colour."""
    colour, line, marker = STYLES[kind][min(nth, 1)]
    buggy = kind == "buggy"
    ax.plot(
        range(1, len(values) + 1),
        [max(v, 1e-12) for v in values],
        line,
        color=colour,
        marker=marker,
        ms=5 if buggy else 8,
        lw=1.8 if buggy else 5.0,
        alpha=1.0 if buggy else 0.5,
        zorder=3 if buggy else 2,
        label=label,
    )
    return colour


def _label_ends(ax: Any, ends: list[tuple[float, str]], fmt: str) -> None:
    """Write each curve's last value beside it, once per distinct value, the first one's colour."""
    shown: list[float] = []
    for value, colour in ends:
        if value <= 0 or any(abs(math.log10(value / s)) < 0.25 for s in shown):
            continue
        shown.append(value)
        x = len(ax.lines[0].get_xdata())
        ax.annotate(
            format(value, fmt),
            (x, value),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            color=colour,
            fontsize=9,
            fontweight="bold",
        )


def _style(
    ax: Any, title: str, deterministic: bool, epochs: int, legend: str | None = None
) -> None:
    from matplotlib.ticker import MaxNLocator

    timing = "deterministic" if deterministic else "thread timing: varies per run"
    ax.set_title(f"{title}\n({timing})", fontsize=10)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_xlim(0.7, epochs + 0.9)  # room for the end labels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=legend, title_fontsize=8, loc="center right", framealpha=0.9)


def _consumer_panel(ax: Any, consumer: Consumer) -> None:
    seen = {"buggy": 0, "fixed": 0}
    ends = []
    for run in sorted(consumer.runs, key=lambda r: r.kind != "fixed"):
        label = run.variant
        if run.batches is not None:
            label += f": {run.mismatched}/{run.batches}"
        colour = _curve(ax, run.losses, run.kind, seen[run.kind], label)
        seen[run.kind] += 1
        ends.append((run.losses[-1], colour))
    _label_ends(ax, ends, ".3g")
    counted = any(r.batches is not None for r in consumer.runs)
    epochs = max(len(r.losses) for r in consumer.runs)
    title = f"Pitfall {consumer.pitfall}: {consumer.title}"
    _style(ax, title, consumer.deterministic, epochs, "mismatched" if counted else None)
    ax.set_ylabel("training loss (MSE)")


def _means_panel(ax: Any, rows: tuple[EpochMeansRow, ...]) -> None:
    seen = {"buggy": 0, "fixed": 0}
    ends = []
    for row in sorted(rows, key=lambda r: r.kind != "fixed"):
        colour = _curve(ax, row.means, row.kind, seen[row.kind], row.variant)
        seen[row.kind] += 1
        ends.append((row.means[-1], colour))
    _label_ends(ax, ends, ".2g")
    title = "Beyond the article: x /= 255 on a view\nKeras 3 fit(PyDataset)"
    _style(ax, title, True, max(len(r.means) for r in rows))
    ax.set_ylabel("mean input the optimizer saw")


def build_figure(result: DemoResult) -> Any:
    """A matplotlib Figure: a panel per consumer that trained, then the epoch-means probe.

    None if nothing was trained. Not laid out yet: :func:`render_figure` runs
    ``tight_layout``, which measures every tick label, just before it saves.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.consumers:
        return None
    panels = len(result.consumers) + bool(result.epoch_means)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.4 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax, consumer in zip(flat, result.consumers):
        _consumer_panel(ax, consumer)
    losses = flat[: len(result.consumers)]
    low = min(ax.get_ylim()[0] for ax in losses)
    high = max(ax.get_ylim()[1] for ax in losses)
    for ax in losses:  # one scale for every loss panel, so panels compare at a glance
        ax.set_ylim(low, high)
    if result.epoch_means:
        _means_panel(flat[len(result.consumers)], result.epoch_means)
    for ax in flat[panels:]:
        ax.set_visible(False)
    c = result.config
    lines = [
        "pitfalls demo: buggy (red, orange) against fixed (blue, cyan), one panel per consumer"
    ]
    if any(consumer.pitfall == 1 for consumer in result.consumers):
        epochs = f"{c.epochs} epoch{'s' if c.epochs != 1 else ''}"
        lines.append(
            f"pitfall 1: {epochs} of {c.steps} steps, batch {c.batch_size}; mismatched: batches"
            " the optimizer saw whose inputs no longer gave their targets"
        )
    lines.append("at the right of each curve: its last epoch's value")
    text = "; ".join(lines[1:])
    width = 60 * cols  # characters that fit across the panels
    fig.suptitle("\n".join([lines[0], *textwrap.wrap(text, width)]), fontsize=11)
    return fig


def render_figure(result: DemoResult, path: Any) -> None:
    """Write the figure to ``path`` (a PNG); needs matplotlib. ValueError if nothing trained."""
    fig = build_figure(result)
    if fig is None:
        raise ValueError("nothing was trained: the figure needs the training part")
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
