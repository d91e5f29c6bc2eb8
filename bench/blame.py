"""Blame's cost, as ratios measured side by side in one run.

    .venv/bin/python bench/blame.py

1. A passing check costs what it cost before: blame runs only after a check
   failed, and importing it installs nothing (no trace function, no
   sys.monitoring tool). Measured: the check alone against the check followed
   by blame-if-failed (what a checker does), interleaved, on passing sources.
2. The diagnosis's added cost on a failing aliasing check with 64x224x224x3
   float32 batches (target: under a second), for each way a line is found:
   freezing (one buffer refilled), freezing confirmed across a ring of three
   buffers, and tracing (an in-place shuffle through a view made before the
   freeze, which freezing cannot see).
3. Index blame on a failing index-stability check whose source holds ~100 MB
   of images (10 batches of 16x224x224x3 float32): a counter advanced per read
   (traced line by line), and ``x /= 255`` on a slice of the stored images
   (the stored arrays are compared once per read, then frozen to name the line).

Every figure is a median of interleaved repeats; nothing here is asserted in
the test suite.
"""

from __future__ import annotations

import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pitfalls  # noqa: E402
from pitfalls._blame import blame_aliasing, blame_index  # noqa: E402

SHAPE = (64, 224, 224, 3)
DRAWS = pitfalls.DEFAULT_DRAWS


def interleaved(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of a and of b, run in ABBA order so drift and warm-up hit both."""
    ta: list[float] = []
    tb: list[float] = []
    for r in range(repeats):
        order = ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta))
        for fn, out in order:
            gc.collect()
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def verdict(value: float, target: float, unit: str = "x") -> str:
    if value <= target:
        return f"MET (target <= {target:g}{unit})"
    return f"MISSED by {value / target:.2f}x (target <= {target:g}{unit})"


def check_then_blame(source: Any) -> object:
    """What a checker does with blame: the check, then a diagnosis only if it failed."""
    report = pitfalls.check_generator_no_aliasing(source, draws=DRAWS)
    if not report.ok:
        blame_aliasing(source, draws=DRAWS)
    return report


# Sources --------------------------------------------------------------------------------


def fresh(shape: tuple[int, ...]) -> Callable[[], Iterator[Any]]:
    def batches() -> Iterator[Any]:
        rng = np.random.default_rng(0)
        while True:
            x = rng.random(shape, dtype=np.float32)  # a new array per batch: passes
            yield x, x[:, 0].copy()

    return batches


def one_buffer() -> Iterator[Any]:
    rng = np.random.default_rng(0)
    x = np.empty(SHAPE, np.float32)
    while True:
        x[:] = rng.random(dtype=np.float32)  # refilled in place: the aliasing bug
        yield x, x[:, 0, 0, 0].copy()


def ring_of_three() -> Iterator[Any]:
    block = np.empty((3, *SHAPE), np.float32)  # three slots carved out of one block
    for k in range(10**9):
        slot = block[k % 3]
        slot[:] = k  # refills the slot handed out three batches ago
        yield slot, slot[:, 0, 0, 0].copy()


def shuffled_through_a_view() -> Iterator[Any]:
    rng = np.random.default_rng(0)
    data = rng.random((4 * SHAPE[0], *SHAPE[1:]), dtype=np.float32).reshape(4, *SHAPE)
    while True:  # data is a view: freezing its base leaves data itself writeable
        for i in range(4):
            yield data[i], data[i, :, 0, 0, 0].copy()
        rng.shuffle(data)  # in place, through the view: only tracing sees it


class StoredImages:
    """An indexable source holding its images, read by index (a PyDataset's protocol)."""

    batch = 16

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.images = rng.random((10 * self.batch, *SHAPE[1:]), dtype=np.float32)
        self.calls = 0

    def __len__(self) -> int:
        return 10

    def on_epoch_end(self) -> None:
        pass


class CountsReads(StoredImages):
    def __getitem__(self, i: int) -> Any:
        j = self.calls % 10
        self.calls += 1  # the state advanced per read: blamed by tracing
        x = self.images[j * self.batch : (j + 1) * self.batch]
        return x, x[:, 0, 0, 0].copy()


class ScalesInPlace(StoredImages):
    def __getitem__(self, i: int) -> Any:
        x = self.images[i * self.batch : (i + 1) * self.batch]
        x /= 255.0  # the stored images divided again at every read
        return x, x[:, 0, 0, 0].copy()


# The benches ------------------------------------------------------------------------------


def bench_passing() -> None:
    print("\n== a passing check, alone and followed by blame-if-failed (interleaved medians)")
    print(f"{'batch':>26} {'check ms':>10} {'+ blame ms':>11} {'ratio':>7}")
    worst = 0.0
    for shape in ((64, 2), (64, 32, 32, 3), SHAPE):
        source = fresh(shape)
        repeats = 8 if np.prod(shape) > 1e6 else 30
        t_check, t_both = interleaved(
            functools.partial(pitfalls.check_generator_no_aliasing, source, draws=DRAWS),
            functools.partial(check_then_blame, source),
            repeats,
        )
        ratio = t_both / t_check
        worst = max(worst, ratio)
        label = "x".join(map(str, shape)) + " float32"
        print(f"{label:>26} {t_check * 1e3:10.2f} {t_both * 1e3:11.2f} {ratio:7.3f}")
    print(
        f"worst ratio {worst:.3f}   {verdict(worst, 1.05)}; the code run is the same, so any"
        " difference is noise (large batches page-fault ~1 GB per check)"
    )
    tools: list[str | None] = []
    if sys.version_info >= (3, 12):
        tools = [sys.monitoring.get_tool(i) for i in range(6)]
    print(
        f"after importing pitfalls._blame: sys.gettrace() is {sys.gettrace()!r};"
        f" sys.monitoring tools in use: {[t for t in tools if t] or 'none'}"
    )


def bench_failing() -> None:
    print(
        f"\n== the diagnosis's added cost on a failing aliasing check, batches"
        f" {'x'.join(map(str, SHAPE))} float32, draws={DRAWS}"
    )
    print(f"{'source':>26} {'check s':>8} {'blame s':>8} {'blame/check':>12}  found  line")
    worst = 0.0
    for source in (one_buffer, ring_of_three, shuffled_through_a_view):
        report = pitfalls.check_generator_no_aliasing(source, draws=DRAWS)
        assert not report.ok, source.__name__
        blame = blame_aliasing(source, draws=DRAWS)
        t_check, t_blame = interleaved(
            functools.partial(pitfalls.check_generator_no_aliasing, source, draws=DRAWS),
            functools.partial(blame_aliasing, source, draws=DRAWS),
            4,
        )
        worst = max(worst, t_blame)
        where = f"{blame.how:6} {blame.frame.code}" if blame.frame else blame.reason
        print(
            f"{source.__name__:>26} {t_check:8.2f} {t_blame:8.2f} {t_blame / t_check:12.2f}"
            f"  {where}"
        )
    print(f"worst added cost {worst:.2f} s   {verdict(worst, 1.0, ' s')}")


def bench_index() -> None:
    print("\n== index blame after a failing index-stability check, ~100 MB of stored images")
    print(f"{'source':>26} {'check s':>8} {'blame s':>8} {'blame/check':>12}  found  line")
    worst = 0.0
    for cls in (CountsReads, ScalesInPlace):
        report = pitfalls.check_index_stable(cls(), draws=10)
        assert not report.ok, cls.__name__
        t_check, t_blame = interleaved(
            functools.partial(pitfalls.check_index_stable, cls(), draws=10),
            lambda cls=cls: blame_index(cls(), draws=10),
            4,
        )
        blame = blame_index(cls(), draws=10)
        worst = max(worst, t_blame)
        where = f"{blame.how:6} {blame.frame.code}" if blame.frame else blame.reason
        print(
            f"{cls.__name__:>26} {t_check:8.2f} {t_blame:8.2f} {t_blame / t_check:12.2f}  {where}"
        )
    print(f"worst added cost {worst:.2f} s   {verdict(worst, 1.0, ' s')}")


def main() -> None:
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}")
    bench_passing()
    bench_failing()
    bench_index()


if __name__ == "__main__":
    main()
