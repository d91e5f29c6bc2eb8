"""Run one exercise's test in this process, on its shipped module or another version.

``pitfalls learn show-messages`` and the project's own suite use it: the module
source is compiled into a fresh module under the exercise's module name, the
shipped test file into another, and each ``test_*`` function is called. No
pytest session; the two files are written into a temporary folder only so that
a message can name their lines.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

from pitfalls._learn._catalog import NEEDS_KERAS, Exercise

_ABSENT = object()


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one run of an exercise's test gave."""

    status: str
    """``"passed"``, ``"failed"`` or ``"skipped"``."""
    error: BaseException | None = None
    """The first exception a test function raised, when it failed."""
    message: str = ""
    """The failure's message (``str(error)``), or why it was skipped."""


def run_in_process(exercise: Exercise, module_source: str | None = None) -> Outcome:
    """Run the exercise's shipped test against ``module_source`` (default: the shipped module).

    Keras exercises are skipped, with the exercises' own reason, when Keras
    cannot be imported. ``sys.modules`` is restored afterwards. Marks such as
    exercise 7's ``timeout`` do nothing here: the shipped modules end.
    """
    if exercise.needs_keras:
        from pitfalls._demo.training import stderr_silenced

        try:
            with stderr_silenced():  # TensorFlow's C++ start-up lines
                importlib.import_module("keras")
        except ImportError:  # what pytest.importorskip("keras") turns into a skip
            return Outcome(status="skipped", message=NEEDS_KERAS)
    source = exercise.shipped_module() if module_source is None else module_source
    name = exercise.slug
    saved = sys.modules.get(name, _ABSENT)
    with tempfile.TemporaryDirectory(prefix="pitfalls-learn-") as tmp:
        # Both files are compiled under real paths, as pytest imports a learner's: a
        # checker that names the line which broke a batch reads it from the file.
        folder = Path(tmp) / exercise.folder
        folder.mkdir()
        module = types.ModuleType(name)
        module.__file__ = str(folder / exercise.module_file)
        tests = types.ModuleType(f"test_{name}")
        tests.__file__ = str(folder / exercise.test_file)
        test_source = exercise.shipped_test()
        Path(module.__file__).write_text(source, encoding="utf-8")
        Path(tests.__file__).write_text(test_source, encoding="utf-8")
        sys.modules[name] = module
        try:
            exec(compile(source, module.__file__, "exec"), module.__dict__)
            exec(compile(test_source, tests.__file__, "exec"), tests.__dict__)
            for attr, fn in list(vars(tests).items()):
                if attr.startswith("test_") and callable(fn):
                    fn()
        except Exception as error:
            # Paths as the learner sees them from the exercises' folder.
            message = str(error).replace(tmp + os.sep, "")
            return Outcome(status="failed", error=error, message=message)
        except BaseException as error:
            pytest = sys.modules.get("pytest")  # pytest.skip raises a BaseException
            if pytest is None or not isinstance(error, pytest.skip.Exception):
                raise
            return Outcome(status="skipped", message=str(error))  # the skip's reason
        finally:
            if saved is _ABSENT:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved  # type: ignore[assignment]
    return Outcome(status="passed")
