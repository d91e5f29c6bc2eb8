"""The pytest plugin, tried as a user's project would: with pytester.

Each test writes a user's test file into a temporary project and runs pytest
on it. The inner runs are hermetic: plugin autoloading is off and only our
plugin is loaded (``-p pitfalls.plugin``), so whatever else is installed
(pytest-randomly, say) cannot change their outcome; the tests that are about
pytest-randomly load it by name. One test checks the pytest11 entry point, as
after ``pip install pitfalls``.
"""

from __future__ import annotations

import pytest

from tests import user_code


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p pitfalls.plugin")
    pytester.makepyfile(pipeline=user_code.PIPELINE)
    return pytester


def test_the_plugin_is_registered_by_its_entry_point_and_names_the_seeds_it_used(
    pytester, monkeypatch
):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile("def test_seeded(pitfalls_seed): pass")
    result = pytester.runpytest("--pitfalls-seed", "7", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["pitfalls: per-test seeds from node ids, base 7 (--pitfalls-seed);*"]
    )


def test_without_pytest_randomly_the_base_is_0(project):
    project.makepyfile("def test_seeded(pitfalls_seed): pass")
    result = project.runpytest()
    result.stdout.fnmatch_lines(
        [
            "pitfalls: per-test seeds from node ids, base 0 (the default);"
            " reproduce with --pitfalls-seed=0"
        ]
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_run_where_no_test_uses_the_seed_fixture_prints_nothing_of_ours(
    project, monkeypatch, workers
):
    """Bug: the seed line was a header of every run of a project with pitfalls installed."""
    if workers:
        pytest.importorskip("xdist")
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p pitfalls.plugin -p xdist.plugin")
    project.makepyfile(
        test_plain="def test_plain(): pass",
        test_other="def test_other(tmp_path): pass",
    )
    result = project.runpytest_subprocess(*workers)
    result.assert_outcomes(passed=2)
    assert not [line for line in result.stdout.lines if "pitfalls" in line]

    # One test that uses the fixture, here or in a worker, brings the line back, once.
    project.makepyfile(test_seeded="def test_seeded(pitfalls_seed): pass")
    result = project.runpytest_subprocess(*workers)
    result.assert_outcomes(passed=3)
    assert [line for line in result.stdout.lines if line.startswith("pitfalls: ")] == [
        "pitfalls: per-test seeds from node ids, base 0 (the default);"
        " reproduce with --pitfalls-seed=0"
    ]


RESEEDED = """
import random
import numpy as np
from pitfalls.plugin import seed_for

def test_body_sees_the_fixture_seed(request, pitfalls_seed):
    first = (random.random(), np.random.random())
    random.seed(pitfalls_seed)
    np.random.seed(pitfalls_seed)
    assert first == (random.random(), np.random.random())
"""


def test_under_pytest_randomly_the_seed_holds_in_the_body_and_randomly_sets_the_base(project):
    # pytest-randomly reseeds random and numpy at the start of every call phase,
    # after fixtures ran; the plugin applies the test's seed again after it.
    project.makepyfile(RESEEDED)
    result = project.runpytest("-p", "pytest_randomly", "--randomly-seed=5")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "Using --randomly-seed=5",
            "pitfalls: per-test seeds from node ids, base 5 (pytest-randomly's --randomly-seed);"
            " reproduce with --pitfalls-seed=5",
        ]
    )
    # an explicit --pitfalls-seed wins, and the body still sees it
    again = project.runpytest("-p", "pytest_randomly", "--randomly-seed=5", "--pitfalls-seed=9")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(
        ["pitfalls: per-test seeds from node ids, base 9 (--pitfalls-seed)*"]
    )


def test_options_live_in_their_own_help_group(project):
    result = project.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "pitfalls: make silent ML bugs loud:",
            "*--pitfalls-seed=N*",
            "*--pitfalls-draws=N*",
            "*--pitfalls-rtol=R*",
            "*--pitfalls-atol=A*",
        ]
    )


def test_the_marker_is_registered_for_strict_markers(project):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.pitfalls_seed(123)
        def test_fixed(pitfalls_seed):
            assert pitfalls_seed == 123
        """
    )
    project.runpytest("--strict-markers").assert_outcomes(passed=1)


def test_check_batches_passes_good_data_and_fails_bad_data_with_the_fix(project):
    project.makepyfile(
        """
        from pipeline import good, reused, rule

        def test_good(check_batches):
            reports = check_batches(good, rule)
            assert [(r.check, r.ok) for r in reports] == [
                ("generator_no_aliasing", True),
                ("targets_match", True),
            ]

        def test_bad(check_batches):
            check_batches(reused, rule, msg="my pipeline")
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*check_batches(reused, rule, msg="my pipeline")',
            "E*pitfalls.AliasingError: generator_no_aliasing(draws=16) failed",
            "E*Memory: inputs in all 16 batches share one buffer, refilled in place.",
            "E*Hint: allocate a new array for every batch*",
            "E*my pipeline",
        ]
    )
    assert "plugin.py" not in result.stdout.str()  # __tracebackhide__: the user's line is shown


def test_pitfalls_draws_rtol_and_atol_set_the_fixtures_defaults(project):
    """Bug: rtol and atol could not reach the targets check from the fixture or its options.

    The options set the fixture's defaults; its own keywords override them.
    """
    project.makepyfile(
        """
        from pipeline import good, rule

        def tolerances(report):
            return report.parameters["rtol"], report.parameters["atol"]

        def test_draws_and_tolerances(check_batches):
            aliasing, targets = check_batches(good, rule)
            assert aliasing.batches == 5
            assert tolerances(targets) == (0.25, 0.5)
            _, targets = check_batches(good, rule, rtol=0.0, atol=1.0)
            assert tolerances(targets) == (0.0, 1.0)
        """
    )
    result = project.runpytest(
        "--pitfalls-draws", "5", "--pitfalls-rtol", "0.25", "--pitfalls-atol", "0.5"
    )
    result.assert_outcomes(passed=1)


def test_bad_option_values_are_usage_errors_in_the_validators_words(project):
    project.makepyfile("def test_nothing(): pass")
    result = project.runpytest("--pitfalls-atol", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pitfalls-atol=-1.0 must be at least 0*"])


def test_the_seed_is_per_test_stable_applied_and_reported_on_failure(project):
    project.makepyfile(
        """
        import random
        import numpy as np
        from pitfalls.plugin import seed_for

        def test_applied(request, pitfalls_seed):
            assert pitfalls_seed == seed_for(request.node.nodeid, 0)
            first = np.random.random()
            np.random.seed(pitfalls_seed)
            assert np.random.random() == first  # numpy's global RNG was seeded with it
            random.seed(pitfalls_seed)

        def test_other(pitfalls_seed):
            assert pitfalls_seed != seed_for("test_seed.py::test_applied", 0)

        def test_fails(pitfalls_seed):
            assert False
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    shown = [line for line in result.stdout.lines if line.startswith("pitfalls_seed = ")]
    seed = int(shown[0].removeprefix("pitfalls_seed = "))  # the failing test's argument
    result.stdout.fnmatch_lines(["*- pitfalls -*", f"pitfalls_seed was {seed}"])


def test_the_seed_does_not_outlive_its_test(project):
    """Bug: the fixture seeded random and numpy (and Keras, TensorFlow) and left them so:
    a later test without it ran under another test's seed, depending on the order."""
    project.makepyfile(
        """
        import random
        import numpy as np

        BEFORE = random.getstate(), np.random.get_state()[1].copy()

        def test_seeded(pitfalls_seed):
            assert pitfalls_seed

        def test_later_sees_what_was_there():
            assert random.getstate() == BEFORE[0]
            np.testing.assert_array_equal(np.random.get_state()[1], BEFORE[1])
        """
    )
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_bad_marker_argument_is_misuse(project):
    project.makepyfile(
        """
        import pytest

        @pytest.mark.pitfalls_seed("abc")
        def test_bad(pitfalls_seed):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TypeError: @pytest.mark.pitfalls_seed takes one int*"])


def test_fixture_docstrings_show_in_pytest_fixtures(project):
    # pytest shows a plugin's fixtures, with their docstrings, under -v
    result = project.runpytest("--fixtures", "-v")
    # pytest sorts fixtures by "file:line" as text, so their order follows line numbers
    result.stdout.fnmatch_lines(
        ["check_batches -- *plugin.py*", "*Run every data check that applies to a batch source*"]
    )
    result.stdout.fnmatch_lines(
        [
            "pitfalls_seed -- *plugin.py*",
            "*A per-test seed, already applied to random, numpy and (if imported) Keras.",
        ]
    )


def test_a_keras_project_catches_a_pydataset_and_a_loss_broadcast_and_is_seeded(project, keras):
    # A buffer-reusing PyDataset and a (n,) against (n, 1) loss are caught;
    # the seed fixture reaches Keras. (In-process: Keras is imported once.)
    project.makepyfile(
        """
        import keras
        import numpy as np
        import pytest
        import pitfalls

        class Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()
                self.data = np.random.default_rng(0).normal(size=(64, 2))
                self.x = np.empty((8, 2))
            def __len__(self):
                return 8
            def __getitem__(self, i):
                self.x[:] = self.data[i * 8:(i + 1) * 8]
                return self.x, self.x.sum(axis=1)

        def test_pydataset(check_batches):
            check_batches(Batches(), lambda x: x.sum(axis=1))

        @pitfalls.strict_loss
        def mse(y_true, y_pred):
            return keras.ops.mean(keras.ops.square(y_true - y_pred))

        def test_loss():
            y = np.zeros(8, dtype="float32")
            pred = keras.ops.zeros((8, 1))
            mse(y, pred)

        def test_keras_is_seeded(pitfalls_seed):
            first = keras.ops.convert_to_numpy(keras.random.uniform((3,)))
            pitfalls.plugin.apply_seed(pitfalls_seed)  # as the plugin did before the test
            again = keras.ops.convert_to_numpy(keras.random.uniform((3,)))
            np.testing.assert_array_equal(first, again)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AliasingError: generator_no_aliasing(draws=16) failed*",
            "*Hint: allocate the batch inside __getitem__*",
            "*BroadcastError: no_broadcast(y_true=(8,), y_pred=(8, 1)) failed*",
            "*broadcasts to (8, 8): 64 elements where 8 were meant*",
            "*raised by strict_loss around mse*",
        ]
    )
