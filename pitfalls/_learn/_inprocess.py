"""Run one exercise's test in this process, on its shipped module or another version.

``pitfalls learn show-messages`` and the project's own suite use it: the module
source is compiled into a fresh module under the exercise's module name, the
shipped test file into another, and each ``test_*`` function is called. No
pytest session, no files written.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

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
    cannot be imported. ``sys.modules`` is restored afterwards. pytest is not
    imported for a numpy exercise (it is most of a fresh interpreter's start);
    a test that skips has imported it to raise the skip.
    """
    if exercise.needs_keras:
        try:
            importlib.import_module("keras")
        except ImportError:  # what pytest.importorskip("keras") turns into a skip
            return Outcome(status="skipped", message=NEEDS_KERAS)
    source = exercise.shipped_module() if module_source is None else module_source
    name = exercise.slug
    saved = sys.modules.get(name, _ABSENT)
    module = types.ModuleType(name)
    module.__file__ = f"{exercise.folder}/{exercise.module_file}"
    sys.modules[name] = module
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        tests = types.ModuleType(f"test_{name}")
        tests.__file__ = f"{exercise.folder}/{exercise.test_file}"
        exec(compile(exercise.shipped_test(), tests.__file__, "exec"), tests.__dict__)
        for attr, fn in list(vars(tests).items()):
            if attr.startswith("test_") and callable(fn):
                fn()
    except Exception as error:
        return Outcome(status="failed", error=error, message=str(error))
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
