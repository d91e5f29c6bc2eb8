"""Shared test set-up: hypothesis profiles, explicit seeds, lazy Keras.

* Hypothesis runs derandomized with no deadline by default and in CI (profile
  ``ci``, chosen when ``CI`` is set), so a run is reproducible and a loaded
  2-core machine cannot make it flaky. ``--hypothesis-profile=explore`` searches
  randomly with more examples.
* Every test starts with Python's and numpy's global RNGs (and Keras, once
  imported) seeded from its node id, by pitfalls' own pytest plugin and its
  ``pitfalls_seed`` fixture; the seed is shown when a test fails.
* ``keras`` is a fixture: TensorFlow is imported only by the tests that ask for
  it. Without it those tests skip, except in CI, where a missing framework is an
  error rather than a quiet skip.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

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


@pytest.fixture(scope="session")
def keras():  # type: ignore[no-untyped-def]
    """Keras 3 on TensorFlow, imported only by the tests that use it."""
    if os.environ.get("CI"):
        import keras as module  # CI installs the tf extra: missing is a failure
    else:
        module = pytest.importorskip("keras", reason="the tf extra is not installed")
    module.utils.set_random_seed(0)
    return module


@pytest.fixture(scope="session")
def recording_model_class(keras):  # type: ignore[no-untyped-def]
    """A Dense(1) Keras model class whose train_step remembers each (x, y) it received."""
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
            return super().train_step(data)

    return Recording
