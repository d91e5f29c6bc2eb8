"""Shared test set-up: hypothesis profiles, explicit seeds, lazy Keras.

* Hypothesis runs derandomized with no deadline by default and in CI (profile
  ``ci``, chosen when ``CI`` is set), so a run is reproducible and a loaded
  2-core machine cannot make it flaky. ``--hypothesis-profile=explore`` searches
  randomly with more examples.
* Every test starts with Python's and numpy's global RNGs (and Keras, once
  imported) seeded from its node id, by pitfalls' own pytest plugin and its
  ``pitfalls_seed`` fixture; the seed is shown when a test fails.
* Frameworks are fixtures, imported only by the tests that ask for them:
  ``keras`` (Keras 3 on the backend ``KERAS_BACKEND`` names, TensorFlow by
  default), ``tf``, ``torch``, ``jax``, ``hf_datasets``. Without one, its tests
  are not run: they count as "not run" (not as skipped), and one line at the end
  names the missing frameworks and the extras to install. In CI a missing
  framework is an error rather than a quiet skip, unless ``PITFALLS_MAY_LACK``
  names it (CI's extra environments, which hold fewer frameworks: see ``.ci/run``).
* The lessons (``tests/lessons/``) end the run with their table:
  ``tests/lessons/summary.py``, loaded here as a plugin.
* Backend-neutral Keras tests are marked ``keras_backend``; CI runs them once
  more per backend: ``KERAS_BACKEND=jax pytest -m keras_backend``. Under a
  backend other than TensorFlow, a test that needs Keras on TensorFlow (it
  asks for ``keras`` or ``tf`` and is not marked) is skipped with a reason.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester", "tests.lessons.summary"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ banner quiet

settings.register_profile(
    "default",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("default"), print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(autouse=True)
def _seed_every_test(pitfalls_seed: int) -> int:
    return pitfalls_seed


KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
"""The backend Keras 3 will load: read from the environment before keras is first imported."""

_MAY_BE_ABSENT = frozenset(os.environ.get("PITFALLS_MAY_LACK", "").split())
"""Frameworks a CI environment leaves out on purpose (``PITFALLS_MAY_LACK="torch jax"``):
their tests skip there, while any other missing framework still fails under ``CI``."""

_EXTRAS = {"tensorflow": "tf", "keras": "tf", "torch": "torch", "jax": "jax", "datasets": "hf"}

_NEEDS = {
    "keras": (KERAS_BACKEND, "keras"),
    "tf": ("tensorflow", "keras"),
    "torch": ("torch",),
    "jax": ("jax",),
    "hf_datasets": ("datasets",),
}
"""The frameworks each framework fixture imports (a test needs those of all its fixtures)."""


def _missing(name: str) -> bool:
    """Whether a framework is absent here, and allowed to be (not in CI, unless named)."""
    if os.environ.get("CI") and name not in _MAY_BE_ABSENT:
        return False  # CI installs every extra: the test runs, and fails if it is missing
    if name in sys.modules:
        return sys.modules[name] is None
    return importlib.util.find_spec(name) is None


def framework(name: str) -> Any:
    """Import a framework for a test: missing, the test skips locally and fails in CI.

    What the import made (half a million objects for TensorFlow, torch and JAX) is
    moved out of the garbage collector's reach (``gc.freeze``): it lives as long as
    the session, and every full collection would walk it again (1.2 s each here).
    """
    if os.environ.get("CI") and name not in _MAY_BE_ABSENT:
        module = importlib.import_module(name)  # CI installs every extra: missing fails
    else:
        extra = _EXTRAS.get(name, name)
        module = pytest.importorskip(
            name, reason=f"{name} is not installed: pip install -e '.[{extra}]' to run these tests"
        )
    gc.freeze()
    return module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what cannot run here as "not run", said once at the end rather than per test.

    ``@pytest.mark.keras_backend("jax")`` runs only under ``KERAS_BACKEND=jax``;
    without arguments, under every backend. A test whose framework fixture needs a
    framework missing here is not run either. Under a backend other than TensorFlow,
    a test that needs Keras on TensorFlow is skipped with a reason.
    """
    missing = {name for needs in _NEEDS.values() for name in needs if _missing(name)}
    not_run = pytest.mark.skip(reason="not run here: said once at the end of the run")
    for item in items:
        marker = item.get_closest_marker("keras_backend")
        if marker is not None and marker.args and KERAS_BACKEND not in marker.args:
            item.user_properties.append(("not_run_backend", " ".join(marker.args)))
            item.add_marker(not_run)
        asks = {*getattr(item, "fixturenames", ())}
        asks.update(f for mark in item.iter_markers("frameworks") for f in mark.args)
        needs = {n for f in asks for n in _NEEDS.get(f, ())}
        if needs & missing:  # the framework fixture skips it: not installed
            item.user_properties.append(("not_run", " ".join(sorted(needs & missing))))
    if KERAS_BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(
        reason=f"needs Keras on TensorFlow; under KERAS_BACKEND={KERAS_BACKEND} run the"
        " backend-neutral tests only: pytest -m keras_backend"
    )
    for item in items:
        needs = {"keras", "tf"} & set(getattr(item, "fixturenames", ()))
        if needs and item.get_closest_marker("keras_backend") is None:
            item.add_marker(skip)


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    properties = dict(getattr(report, "user_properties", ()))  # a CollectReport has none
    if report.skipped and ("not_run" in properties or "not_run_backend" in properties):
        return "not run", "n", "NOT RUN"
    return None


def plural(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per reason some tests were not run: missing frameworks, another backend."""
    reports = [dict(r.user_properties) for r in terminalreporter.stats.get("not run", [])]
    lacking = [p["not_run"] for p in reports if "not_run" in p]
    if lacking:
        names = sorted({n for need in lacking for n in need.split()})
        extras = ",".join(sorted({_EXTRAS.get(n, n) for n in names}))
        terminalreporter.write_line(
            f"not run: {plural(len(lacking))} need {', '.join(names)}, not installed here;"
            f" install them to run these: pip install -e '.[{extras}]' (e.g. .venv/bin/pip)"
        )
    backends = [
        p["not_run_backend"] for p in reports if "not_run" not in p and "not_run_backend" in p
    ]
    if backends:
        names = sorted({n for need in backends for n in need.split()})
        terminalreporter.write_line(
            f"not run: {plural(len(backends))} for Keras on {', '.join(names)} only (this run:"
            f" {KERAS_BACKEND}); KERAS_BACKEND={names[0]} pytest -m keras_backend runs them"
        )


@pytest.fixture(scope="session")
def keras():  # type: ignore[no-untyped-def]
    """Keras 3 on the backend KERAS_BACKEND names (TensorFlow by default), imported lazily."""
    backend = framework(KERAS_BACKEND)  # tensorflow, jax or torch
    if KERAS_BACKEND == "torch":
        # One intra-op thread: on a busy 2-core machine, torch's backward of the (256, 256)
        # broadcast in assert_fits took 114 ms a step on two threads, 0.6 ms on one.
        backend.set_num_threads(1)
    module = framework("keras")
    assert module.backend.backend() == KERAS_BACKEND, (
        f"keras runs on {module.backend.backend()}, but KERAS_BACKEND={KERAS_BACKEND}:"
        " keras was imported before the environment was read"
    )
    module.utils.set_random_seed(0)
    return module


@pytest.fixture(scope="session")
def tf(keras):  # type: ignore[no-untyped-def]
    """TensorFlow itself (tf.data, GradientTape), beside Keras on TensorFlow."""
    return framework("tensorflow")


@pytest.fixture(scope="session")
def torch():  # type: ignore[no-untyped-def]
    """PyTorch (the ``torch`` extra; CI installs the CPU wheel), on one intra-op thread:
    on this 2-core machine a BatchNorm1d forward on 8 rows took 100 ms on two threads,
    0.1 ms on one."""
    module = framework("torch")
    module.set_num_threads(1)
    return module


@pytest.fixture(scope="session")
def jax():  # type: ignore[no-untyped-def]
    """JAX on CPU (the ``jax`` extra)."""
    return framework("jax")


@pytest.fixture(scope="session")
def hf_datasets():  # type: ignore[no-untyped-def]
    """Hugging Face ``datasets`` (the ``hf`` extra)."""
    return framework("datasets")


@pytest.fixture(scope="session")
def recording_model_class(keras):  # type: ignore[no-untyped-def]
    """A Dense(1) Keras model class whose train_step remembers each (x, y) it received
    and trains on nothing: what ``fit`` hands the step is all its tests look at (an eager
    step that also trains took ~40 ms here)."""
    import numpy as np

    class Recording(keras.Model):
        def __init__(self):  # type: ignore[no-untyped-def]
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.seen = []

        def call(self, x):  # type: ignore[no-untyped-def]
            return self.dense(x)

        def train_step(self, data):  # type: ignore[no-untyped-def]
            x, y = data
            self.seen.append((np.array(x), np.array(y)))  # what the step received
            return {"loss": 0.0}

    return Recording
