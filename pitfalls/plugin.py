"""The pytest plugin: options, markers, fixtures and a line about their seeds. Nothing else.

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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS
from pitfalls._randomness import global_rngs_kept
from pitfalls._report import Report
from pitfalls._runner import assert_source

_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pitfalls", "pitfalls: make silent ML bugs loud")
    group.addoption(
        "--pitfalls-seed",
        type=int,
        default=None,
        metavar="N",
        help="base of the per-test seeds of the pitfalls_seed fixture (default: pytest-randomly's"
        " --randomly-seed when it is active, else 0)",
    )
    group.addoption(
        "--pitfalls-draws",
        type=int,
        default=DEFAULT_DRAWS,
        metavar="N",
        help=f"batches the check_batches fixture draws (default: {DEFAULT_DRAWS})",
    )
    group.addoption(
        "--pitfalls-rtol",
        type=float,
        default=None,
        metavar="R",
        help="relative tolerance of the check_batches fixture's targets check (default: by"
        " dtype, e.g. 1.3e-06 for float32)",
    )
    group.addoption(
        "--pitfalls-atol",
        type=float,
        default=None,
        metavar="A",
        help="absolute tolerance of the check_batches fixture's targets check (default: by"
        " dtype, e.g. 1e-05 for float32)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The options' values are checked once, with the words every checker uses.
    try:
        validate.draws(config.getoption("--pitfalls-draws"), "--pitfalls-draws")
        validate.optional_tolerance("--pitfalls-rtol", config.getoption("--pitfalls-rtol"))
        validate.optional_tolerance("--pitfalls-atol", config.getoption("--pitfalls-atol"))
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.addinivalue_line(
        "markers",
        "pitfalls_seed(seed): give this test's pitfalls_seed fixture a fixed seed",
    )
    config.pluginmanager.register(_SeedLine(config), "pitfalls-seed-line")


def base_seed(config: pytest.Config) -> tuple[int, str]:
    """The base of the per-test seeds, and where it came from.

    ``--pitfalls-seed`` when given; else pytest-randomly's ``--randomly-seed``
    when that plugin is active (so one ``-p randomly`` seed reproduces both
    the order and the data); else 0.
    """
    explicit = config.getoption("--pitfalls-seed")
    if explicit is not None:
        return explicit, "--pitfalls-seed"
    randomly = config.getoption("randomly_seed", None)  # None unless pytest-randomly is active
    if isinstance(randomly, int) and not isinstance(randomly, bool):
        return randomly, "pytest-randomly's --randomly-seed"
    return 0, "the default"


def seed_line(config: pytest.Config) -> str:
    """The line saying where the per-test seeds came from, and how to reproduce them."""
    base, origin = base_seed(config)
    return (
        f"pitfalls: per-test seeds from node ids, base {base} ({origin});"
        f" reproduce with --pitfalls-seed={base}"
    )


class _SeedLine:
    """Says where the seeds came from at the end of a run, if a test used the fixture.

    It hears the reports where they arrive: in the controller under pytest-xdist,
    whose workers send a report's attributes along.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.used = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "pitfalls_seed", None) is not None:
            self.used = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        # A project that has pitfalls installed without using the fixture sees no line.
        if self.used:
            terminalreporter.write_line(seed_line(self.config))


def seed_for(nodeid: str, base: int = 0) -> int:
    """The seed of a test: a CRC32 of its node id, offset by ``base``, in [0, 2**32)."""
    return (zlib.crc32(nodeid.encode()) + base) % 2**32


def apply_seed(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and, if already imported, Keras."""
    random.seed(seed)
    np.random.seed(seed)
    if sys.modules.get("keras") is not None:
        from pitfalls._frameworks.tensorflow import seed_keras

        seed_keras(seed)


@pytest.fixture
def pitfalls_seed(request: pytest.FixtureRequest) -> Iterator[int]:
    """A per-test seed, already applied to random, numpy and (if imported) Keras.

    Derived from the node id, so it is stable across runs and differs between
    tests; ``--pitfalls-seed`` shifts all of them, ``@pytest.mark.pitfalls_seed(N)``
    fixes one. A failing test's report shows it. After the test, the global RNGs
    and seeds it set (TensorFlow's included) are put back as they were, so that
    no later test runs under them. Example::

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
        seed = seed_for(request.node.nodeid, base_seed(request.config)[0])
    request.node.stash[_SEED_KEY] = seed
    with global_rngs_kept():
        apply_seed(seed)
        yield seed


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    # Apply the test's seed again right before its body runs: plugins such as
    # pytest-randomly reseed random and numpy at the start of the call phase,
    # after fixtures ran, which would make the fixture's promise false.
    seed = pyfuncitem.stash.get(_SEED_KEY, None)
    if seed is not None:
        apply_seed(seed)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    seed = item.stash.get(_SEED_KEY, None)
    if seed is not None:
        report.pitfalls_seed = seed  # sent along to xdist's controller
        if report.failed:
            report.sections.append(("pitfalls", f"pitfalls_seed was {seed}"))
    return report


@pytest.fixture
def check_batches(request: pytest.FixtureRequest) -> Callable[..., tuple[Report, ...]]:
    """Run every data check that applies to a batch source; fail with the first finding.

    ``check_batches(source, target_fn=None, *, draws=None, rtol=None, atol=None,
    timeout=60.0, epochs=None, shuffled=False, steps_per_epoch=None, unpack=None,
    reseed=None, dataset=None, msg=None)``
    is :func:`pitfalls.assert_source`: aliasing; targets when ``target_fn`` is
    given; for an indexable source (a PyDataset) a re-read of each index; two
    epochs when the source has a length. ``draws`` defaults to
    ``--pitfalls-draws``; ``rtol`` and ``atol`` to ``--pitfalls-rtol`` and
    ``--pitfalls-atol``, else to the targets check's tolerances for the dtypes it
    compares. Returns the reports. Example::

        def test_my_batches(check_batches):
            check_batches(MyPyDataset, lambda x: x.mean(axis=1))
    """
    config = request.config
    defaults = {
        "draws": config.getoption("--pitfalls-draws"),
        "rtol": config.getoption("--pitfalls-rtol"),
        "atol": config.getoption("--pitfalls-atol"),
    }

    def check(
        source: Any,
        target_fn: Callable[[Any], Any] | None = None,
        *,
        draws: int | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        **options: Any,
    ) -> tuple[Report, ...]:
        __tracebackhide__ = True
        return assert_source(
            source,
            target_fn,
            draws=defaults["draws"] if draws is None else draws,
            rtol=defaults["rtol"] if rtol is None else rtol,
            atol=defaults["atol"] if atol is None else atol,
            **options,
        )

    return check
