"""The README stays true: its example runs, its tables name what the code has."""

from __future__ import annotations

import re
from pathlib import Path

import pitfalls
from pitfalls.reproductions import epochs, independence, shapes, targets, workers
from pitfalls.reproductions import generators as gen

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def section(title):
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_usage_example_passes_as_a_users_test_file(pytester):
    block = re.search(r"```python\n(.*?)```", section("Using the checkers in your project"), re.S)
    pytester.makepyfile(test_my_pipeline=block.group(1))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_without_pytest_raises_the_example_fails_with_the_message_shown(pytester):
    block = re.search(r"```python\n(.*?)```", section("Using the checkers in your project"), re.S)
    code = block.group(1).replace(
        '    with pytest.raises(AliasingError, match="share one buffer"):\n'
        "        assert_generator_no_aliasing(reused)",
        "    assert_generator_no_aliasing(reused)",
    )
    pytester.makepyfile(test_my_pipeline=code)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    printed = {line.removeprefix("E").strip() for line in result.stdout.lines}
    shown = re.search(r"```text\n(.*?)```", section("Using the checkers in your project"), re.S)
    for line in shown.group(1).splitlines():
        if line.strip() != "...":  # where the README cuts the listing
            assert line.strip() in printed, line
    # pytest shows the user's line, not pitfalls' internals (__tracebackhide__)
    assert "assert_generator_no_aliasing(reused)" in result.stdout.str()
    assert "_aliasing.py" not in result.stdout.str()


def test_the_pitfall_tables_name_every_reproduction():
    table = section("The pitfalls")
    lessons = [*gen.BUGGY, *gen.FIXED, shapes.mean_model, shapes.keras_mse]
    lessons += [fn for pair in shapes.PAIRS for fn in pair]
    for fn in lessons:
        assert f"`{fn.__name__}" in table, fn.__name__
    for module in (independence, epochs, targets, workers):
        for pair in module.PAIRS:
            for fn in pair:
                short = module.__name__.rsplit(".", 1)[1]
                assert f"`{short}.{fn.__name__}`" in table or f"`{fn.__name__}`" in table, (
                    fn.__name__
                )


def test_the_api_table_names_every_public_callable():
    table = section("Using the checkers in your project")
    for name in pitfalls.__all__:
        if name == "DEFAULT_DRAWS":
            continue
        if name.startswith("check_"):  # "check_... for each assert_... above"
            name = "assert_" + name.removeprefix("check_")
        assert f"`{name}" in table, name


def test_ci_runs_the_readmes_commands():
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "demo-command" in ci and "test-command" in ci
    for marker in ("demo-command", "test-command"):
        assert re.search(rf"<!-- {marker} -->\n```sh\n.+\n```", README), marker
