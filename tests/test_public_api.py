"""The public surface: small, re-exported, typed, and free of TensorFlow."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pitfalls


def test_all_lists_exactly_the_public_names():
    # dir(): the checkers are imported on first use, so they are not all in vars() yet
    public = {
        name
        for name in dir(pitfalls)
        if not name.startswith("_") and not inspect.ismodule(getattr(pitfalls, name))
    }
    assert set(pitfalls.__all__) == public
    assert len(pitfalls.__all__) == len(set(pitfalls.__all__))


def test_importing_pitfalls_does_not_import_a_framework():
    # Nor hypothesis: pitfalls.strategies is imported explicitly (tests/test_strategies.py).
    code = (
        "import sys, pitfalls, pitfalls.reproductions.generators;"
        "heavy = ('tensorflow', 'keras', 'torch', 'jax', 'hypothesis', 'pitfalls.strategies');"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_pitfalls_imports_its_reports_only_and_a_checker_when_first_used():
    # import pitfalls costs little more than numpy: the checkers load when first used
    code = (
        "import sys, pitfalls;"
        "before = sorted(m for m in sys.modules if m.startswith('pitfalls'));"
        "pitfalls.check_no_broadcast;"
        "print(before, 'pitfalls._shapes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['pitfalls', 'pitfalls._report'] True"
    with pytest.raises(AttributeError, match="has no attribute 'check_nothing'"):
        pitfalls.check_nothing  # noqa: B018


def test_every_assert_has_a_check_twin_with_the_same_options_plus_msg():
    asserts = [n for n in pitfalls.__all__ if n.startswith("assert_")]
    assert asserts
    for name in asserts:
        check = getattr(pitfalls, "check_" + name.removeprefix("assert_"))
        a_params = inspect.signature(getattr(pitfalls, name)).parameters
        c_params = inspect.signature(check).parameters
        assert list(a_params) == [*c_params, "msg"], name
        for p in c_params.values():
            assert a_params[p.name].default == p.default, (name, p.name)
            assert a_params[p.name].kind == p.kind, (name, p.name)
        # options are keyword-only; an optional *data* argument (the target_fn of
        # assert_source(source[, target_fn])) may stay positional
        options = [
            p
            for p in c_params.values()
            if p.default is not inspect.Parameter.empty and p.name != "target_fn"
        ]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options), name


def test_every_assert_hides_its_frame_from_pytest_tracebacks():
    for name in (n for n in pitfalls.__all__ if n.startswith("assert_")):
        assert "__tracebackhide__" in getattr(pitfalls, name).__code__.co_varnames, name


def test_errors_are_assertion_errors_with_public_names():
    errors = [getattr(pitfalls, n) for n in pitfalls.__all__ if n.endswith("Error")]
    assert len(errors) == 13  # PitfallError, InconclusiveError and one per check
    for error in errors:
        assert issubclass(error, pitfalls.PitfallError)
        assert issubclass(error, AssertionError)
        assert f"{error.__module__}.{error.__qualname__}" == f"pitfalls.{error.__name__}"


def test_every_check_raises_its_own_error_named_after_the_failure():
    from pitfalls._report import ERRORS, InconclusiveError, PitfallError

    checks = {n.removeprefix("check_") for n in pitfalls.__all__ if n.startswith("check_")}
    assert set(ERRORS) == checks - {"source"}  # check_source runs the others
    assert len(set(ERRORS.values())) == len(ERRORS)  # one error class per check
    public = {getattr(pitfalls, n) for n in pitfalls.__all__ if n.endswith("Error")}
    assert set(ERRORS.values()) == public - {PitfallError, InconclusiveError}


def test_the_package_is_typed():
    assert (Path(pitfalls.__file__).parent / "py.typed").exists()


def test_every_reproduction_says_symptom_cause_and_fix():
    from pitfalls.reproductions import generators as gen

    for variant in gen.BUGGY:
        doc = inspect.getdoc(variant)
        assert doc.startswith("BUGGY") and "Symptom:" in doc and "Cause:" in doc and "Fix:" in doc
    for variant in gen.FIXED:
        doc = inspect.getdoc(variant)
        assert doc.startswith("FIXED") and "Symptom:" in doc
    signatures = {str(inspect.signature(v)) for v in gen.BUGGY + gen.FIXED}
    assert len(signatures) == 1  # paired: identical signatures


def test_paired_reproductions_are_paired_and_documented():
    import importlib
    import pkgutil

    import pitfalls.reproductions as package

    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    modules = [importlib.import_module(f"pitfalls.reproductions.{name}") for name in names]
    for module in modules:  # every lesson module pairs its variants, and is listed
        assert module.PAIRS, module.__name__
        assert f":mod:`{module.__name__}`" in package.__doc__, module.__name__
    pairs = [pair for module in modules for pair in module.PAIRS]
    for buggy, fixed in pairs:
        assert inspect.signature(buggy) == inspect.signature(fixed), buggy.__name__
        doc = inspect.getdoc(buggy)
        assert doc.startswith("BUGGY") and "Symptom:" in doc and "Cause:" in doc and "Fix:" in doc
        assert inspect.getdoc(fixed).startswith("FIXED")
