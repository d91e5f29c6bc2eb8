"""The README is where a newcomer starts: short, a test to copy near the top, links that
lead somewhere; the site's tables name what the code has. (tests/test_docs.py runs every
code block of the README and of the site.)"""

from __future__ import annotations

import re
from pathlib import Path

import pitfalls
from pitfalls.reproductions import epochs, independence, shapes, targets, workers
from pitfalls.reproductions import generators as gen
from tests.test_docs import blocks_of, run

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def page(name):
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def nav_pages():
    """Every page the site's navigation lists (``- Title: path.md`` in mkdocs.yml)."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return set(re.findall(r"^ *- (?:.+: )?(\S+\.md)$", config, re.M))


def test_the_readme_is_short_and_starts_with_a_test_to_copy():
    assert len(README.encode()) <= 15_000, len(README.encode())
    first = next(b for b in blocks_of(ROOT / "README.md") if b.lang == "python")
    assert first.is_test_file and first.tests >= 2
    end = first.line + first.code.count("\n")  # its closing fence
    assert end <= 80, f"the README's test to copy ends on line {end}"
    install = README.index("## Install")
    assert README.index("pip install '/path/to/pitfalls[tf]'") < README.index("```python")
    assert install < README.index("```python")


def test_the_readme_says_what_is_a_dependency_and_how_to_call_the_venv():
    # numpy, pytest and hypothesis are dependencies, not extras for the plugin
    dependencies = re.search(
        r"dependencies = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.S
    )
    for name in ("numpy", "pytest", "hypothesis"):
        assert name in dependencies.group(1)
        assert name in README[: README.index("```python")]
    assert "only for the plugin" not in README
    # setup never activates .venv: every command of the Learn section calls it by path
    learn = README[README.index("## Learn") : README.index("## A tour")]
    commands = re.findall(r"^(\S+)", learn.split("```sh")[1].split("```")[0], re.M)
    assert commands and all(c.startswith(".venv/bin/") for c in commands), commands


def test_the_readmes_links_lead_to_files_or_pages_of_the_site():
    pages = nav_pages()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if target.startswith("http"):
            continue
        inside = target.removeprefix("docs/")
        assert (ROOT / target).exists() or inside in pages, target


def test_without_pytest_raises_pytest_shows_the_users_line(request):
    first = next(b for b in blocks_of(ROOT / "README.md") if b.lang == "python")
    output = run(first, request, show_failures=True)
    assert "1 failed, 2 passed" in output
    # pytest shows the user's line, not pitfalls' internals (__tracebackhide__)
    assert "assert_generator_no_aliasing(reused)" in output
    assert "_aliasing.py" not in output


def test_the_pitfall_tables_name_every_reproduction():
    table = page("explanation/pitfalls.md")
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
    table = page("reference/api.md").split("## Each name")[0]
    for name in pitfalls.__all__:
        if name == "DEFAULT_DRAWS":
            continue
        if name.startswith("check_"):  # "check_... for each assert_... above"
            name = "assert_" + name.removeprefix("check_")
        assert f"`{name}" in table, name
    assert "::: pitfalls\n" in page("reference/api.md")  # and the docstrings of each


def test_ci_runs_the_readmes_commands_and_builds_the_site():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "demo-command" in ci and "test-command" in ci and "lessons-command" in ci
    for marker in ("demo-command", "test-command", "lessons-command"):
        assert re.search(rf"<!-- {marker} -->\n```sh\n.+\n```", README), marker
    assert re.search(r"mkdocs build --strict", ci)
