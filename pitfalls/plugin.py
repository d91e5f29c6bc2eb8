"""The pytest plugin: options, markers, a header line and fixtures. Nothing else.

Registered under ``[project.entry-points.pytest11]``, so installing pitfalls
makes it available to every pytest run; it never imports TensorFlow.

Fixtures:

* ``pitfalls_seed``: a per-test seed derived from the test's node id (and
  ``--pitfalls-seed``), applied to Python's ``random``, numpy's global RNG and,
  when Keras is already imported, to Keras (``keras.utils.set_random_seed``).
  Shown in the report of a failing test.
* ``check_batches``: runs the data checks on a batch source.

Marker: ``@pytest.mark.pitfalls_seed(N)`` fixes the seed of one test.
"""

from __future__ import annotations

import random
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pitfalls._aliasing import DEFAULT_DRAWS, check_generator_no_aliasing
from pitfalls._report import AliasingError, IndexStabilityError, Report, TargetMismatchError
from pitfalls._sources import is_indexable
from pitfalls._stability import check_index_stable
from pitfalls._targets import check_targets_match

_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pitfalls", "pitfalls: make silent ML bugs loud")
    group.addoption(
        "--pitfalls-seed",
        type=int,
        default=0,
        metavar="N",
        help="base of the per-test seeds of the pitfalls_seed fixture (default: 0)",
    )
    group.addoption(
        "--pitfalls-draws",
        type=int,
        default=DEFAULT_DRAWS,
        metavar="N",
        help=f"batches the check_batches fixture draws (default: {DEFAULT_DRAWS})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pitfalls_seed(seed): give this test's pitfalls_seed fixture a fixed seed",
    )


def pytest_report_header(config: pytest.Config) -> str:
    base = config.getoption("--pitfalls-seed")
    return (
        f"pitfalls: per-test seeds from node ids, base {base}"
        " (--pitfalls-seed N to change; pitfalls_seed fixture)"
    )


def seed_for(nodeid: str, base: int = 0) -> int:
    """The seed of a test: a CRC32 of its node id, offset by ``base``, in [0, 2**32)."""
    return (zlib.crc32(nodeid.encode()) + base) % 2**32


def apply_seed(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and, if already imported, Keras."""
    random.seed(seed)
    np.random.seed(seed)
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "utils"):
        keras.utils.set_random_seed(seed)


@pytest.fixture
def pitfalls_seed(request: pytest.FixtureRequest) -> int:
    """A per-test seed, already applied to random, numpy and (if imported) Keras.

    Derived from the node id, so it is stable across runs and differs between
    tests; ``--pitfalls-seed`` shifts all of them, ``@pytest.mark.pitfalls_seed(N)``
    fixes one. A failing test's report shows it. Example::

        def test_training(pitfalls_seed):
            rng = np.random.default_rng(pitfalls_seed)
    """
    marker = request.node.get_closest_marker("pitfalls_seed")
    if marker is not None:
        if (
            len(marker.args) != 1
            or isinstance(marker.args[0], bool)
            or not isinstance(marker.args[0], int)
        ):
            raise TypeError("@pytest.mark.pitfalls_seed takes one int, e.g. pitfalls_seed(123)")
        seed = marker.args[0] % 2**32
    else:
        seed = seed_for(request.node.nodeid, request.config.getoption("--pitfalls-seed"))
    request.node.stash[_SEED_KEY] = seed
    apply_seed(seed)
    return seed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    seed = item.stash.get(_SEED_KEY, None)
    if seed is not None and report.failed:
        report.sections.append(("pitfalls", f"pitfalls_seed was {seed}"))
    return report


@dataclass(frozen=True)
class BatchChecks:
    """What ``check_batches`` found: one report per check run."""

    aliasing: Report
    targets: Report | None
    index_stability: Report | None

    @property
    def reports(self) -> tuple[Report, ...]:
        found = (self.aliasing, self.targets, self.index_stability)
        return tuple(r for r in found if r is not None)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def _run_checks(
    source: Any,
    target_fn: Callable[[Any], Any] | None,
    draws: int,
    msg: str | None,
) -> BatchChecks:
    __tracebackhide__ = True
    aliasing = check_generator_no_aliasing(source, draws=draws)
    targets = None if target_fn is None else check_targets_match(source, target_fn, draws=draws)
    stability = check_index_stable(source) if is_indexable(source) else None
    checks = BatchChecks(aliasing, targets, stability)
    for report, error in (
        (aliasing, AliasingError),
        (targets, TargetMismatchError),
        (stability, IndexStabilityError),
    ):
        if report is not None and not report.ok:
            raise error(report, msg)
    return checks


@pytest.fixture
def check_batches(request: pytest.FixtureRequest) -> Callable[..., BatchChecks]:
    """Run the data checks on a batch source; fail the test with the first finding.

    ``check_batches(source, target_fn=None, *, draws=None, msg=None)`` runs
    assert_generator_no_aliasing, assert_targets_match when ``target_fn`` is
    given, and for an indexable source (a PyDataset) a re-read of each index.
    ``draws`` defaults to ``--pitfalls-draws``. Pass a factory when the source
    is an iterator you still need. Example::

        def test_my_batches(check_batches):
            check_batches(MyPyDataset(), lambda x: x.mean(axis=1))
    """
    default_draws = request.config.getoption("--pitfalls-draws")

    def check(
        source: Any,
        target_fn: Callable[[Any], Any] | None = None,
        *,
        draws: int | None = None,
        msg: str | None = None,
    ) -> BatchChecks:
        __tracebackhide__ = True
        return _run_checks(source, target_fn, default_draws if draws is None else draws, msg)

    return check
