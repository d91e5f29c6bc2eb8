"""Every code block of the README and of the documentation site runs, and shows what it says.

A ```python block whose first line names a test file (``# test_NAME.py``) runs under pytest
and must pass; any other ```python block runs as a script. A ```text block says what it
shows in an HTML comment on the line before it:

* ``<!-- output-of: above -->``: the output of the closest ```python block above it, a
  script's printout, or, for a test file, pytest's report with each
  ``with pytest.raises(...):`` unwrapped, so that the failure it guards is shown;
* ``<!-- output-of: shell -->``: a terminal session; each ``$ COMMAND`` runs in a fresh
  folder and prints the lines shown below it.

Shown lines must appear in that order in the real output (pytest's ``E`` prefix aside);
a line ``...`` stands for lines cut, and a line ending in ``...`` is cut there. A block
that cannot run says why instead: ``<!-- not-run: REASON -->``.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"<!-- ([\w-]+):? ?(.*?) -->")

# The frameworks a block may import, by the conftest fixture that provides each: missing,
# the block's test skips, and fails in CI.
FRAMEWORKS = {
    "torch": "torch",
    "jax": "jax",
    "datasets": "hf_datasets",
    "tensorflow": "tf",
    "keras": "keras",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    """The line of the opening fence, counted from 1."""
    lang: str
    code: str
    marker: tuple[str, str]
    """The HTML comment on the line before the fence: ("output-of", "above"), or ("", "")."""
    above: Block | None
    """The closest ```python block before this one on its page."""

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file_name(self) -> str:
        """The file name the block's first line gives (``# test_x.py: ...``), or example.py."""
        named = re.match(r"# (\w+\.py)\b", self.code)
        return named.group(1) if named else "example.py"

    @property
    def is_test_file(self) -> bool:
        return self.file_name.startswith("test_")

    @property
    def tests(self) -> int:
        return len(re.findall(r"^def test_", self.code, re.M))

    @property
    def frameworks(self) -> list[str]:
        imported = re.findall(r"^(?:import|from) (\w+)", self.code, re.M)
        return [FRAMEWORKS[name] for name in dict.fromkeys(imported) if name in FRAMEWORKS]


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    above = None
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)", lines[i])
        if not fence:
            i += 1
            continue
        end = lines.index("```", i + 1)
        marker = MARKER.fullmatch(lines[i - 1]) if i else None
        block = Block(
            page=page,
            line=i + 1,
            lang=fence.group(1),
            code="\n".join(lines[i + 1 : end]) + "\n",
            marker=(marker.group(1), marker.group(2)) if marker else ("", ""),
            above=above,
        )
        found.append(block)
        if block.lang == "python":
            above = block
        i = end + 1
    return found


BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON = [b for b in BLOCKS if b.lang == "python" and b.marker[0] != "not-run"]
SHOWN = [b for b in BLOCKS if b.lang == "text" and b.marker[0] == "output-of"]


def unwrap_raises(code: str) -> str:
    """The test file with each ``with pytest.raises(...):`` removed and its body dedented."""

    def unwrap(match: re.Match[str]) -> str:
        return textwrap.indent(textwrap.dedent(match.group(2)), match.group(1))

    pattern = r"^( *)with pytest\.raises\(.*\):\n((?:\1    .*\n|\n)+)"
    return re.sub(pattern, unwrap, code, flags=re.M)


def run(block: Block, request: pytest.FixtureRequest, *, show_failures: bool = False) -> str:
    """Run a ```python block as its page says; return what it printed."""
    for fixture in block.frameworks:
        request.getfixturevalue(fixture)
    pytester = request.getfixturevalue("pytester")
    if block.is_test_file:
        code = unwrap_raises(block.code) if show_failures else block.code
        pytester.makepyfile(**{block.file_name.removesuffix(".py"): code})
        result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
        if not show_failures:
            result.assert_outcomes(passed=block.tests)
        return str(result.stdout)
    path = pytester.path / block.file_name
    path.write_text(block.code, encoding="utf-8")
    capsys = request.getfixturevalue("capsys")
    runpy.run_path(str(path), run_name="__main__")
    return str(capsys.readouterr().out)


def run_session(transcript: str, folder: Path) -> list[tuple[str, str, list[str]]]:
    """Each ``$ COMMAND`` of a terminal session run in ``folder``: (command, output, shown)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    programs = {".venv/bin/pitfalls": "pitfalls", ".venv/bin/pytest": "pytest"}
    steps: list[tuple[str, str, list[str]]] = []
    for part in re.split(r"^\$ ", transcript, flags=re.M)[1:]:
        command, *shown = part.splitlines()
        argv = shlex.split(command, comments=True)
        assert argv[0] in programs, f"the session runs only {sorted(programs)}: {command}"
        done = subprocess.run(
            [sys.executable, "-m", programs[argv[0]], *argv[1:]],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        steps.append((command, done.stdout + done.stderr, shown))
    return steps


def plain(line: str) -> str:
    """A line as compared: no surrounding space, no pytest ``E`` prefix."""
    return re.sub(r"^E(?:\s+|$)", "", line.strip())


def assert_shown(shown: list[str], output: str, where: str) -> None:
    printed = [plain(line) for line in output.splitlines()]
    at = 0
    for want in map(plain, shown):
        if not want or want == "...":
            continue
        cut = want.endswith("...")
        prefix = want.removesuffix("...").rstrip()
        for i in range(at, len(printed)):
            if printed[i].startswith(prefix) if cut else printed[i] == want:
                at = i + 1
                break
        else:
            raise AssertionError(f"{where}: not printed (in this order): {want!r}\n{output}")


def test_every_block_runs_or_says_why_not():
    for block in BLOCKS:
        kind, detail = block.marker
        if kind == "not-run":
            assert len(detail.split()) >= 4, f"{block.id}: say why it does not run"
        elif block.lang == "text":
            assert kind == "output-of" and detail in ("above", "shell"), (
                f"{block.id}: a text block says what it shows: <!-- output-of: above -->, "
                "<!-- output-of: shell --> or <!-- not-run: REASON -->"
            )
            if detail == "above":
                assert block.above is not None, f"{block.id}: no python block above"
    not_run = [b.id for b in BLOCKS if b.marker[0] == "not-run"]
    assert len(not_run) <= 3, f"keep the blocks that cannot run few: {not_run}"
    # The README and the site hold code to run: losing the blocks would pass vacuously.
    assert len(PYTHON) >= 12 and len(SHOWN) >= 6, (len(PYTHON), len(SHOWN))


def test_the_rules_of_this_file_catch_what_they_should():
    # unwrap_raises exposes the guarded call; assert_shown keeps order and honours cuts
    code = "def test_x():\n    with pytest.raises(E):\n        f()\n    g()\n"
    assert unwrap_raises(code) == "def test_x():\n    f()\n    g()\n"
    assert_shown(["E   one", "...", "three is cut ..."], "one\ntwo\nthree is cut here", "ok")
    with pytest.raises(AssertionError, match="in this order"):
        assert_shown(["two", "one"], "one\ntwo", "swapped")
    with pytest.raises(AssertionError, match="not printed"):
        assert_shown(["four"], "one\ntwo", "absent")


def on_every_backend(block: Block) -> object:
    """A block that imports keras also runs in CI's runs per Keras backend (-m keras_backend);
    every block asks for its frameworks' fixtures, so that one missing is said, not run."""
    marks = [pytest.mark.frameworks(*block.frameworks)] if block.frameworks else []
    if "keras" in block.frameworks:
        marks.append(pytest.mark.keras_backend)
    return pytest.param(block, marks=marks, id=block.id)


@pytest.mark.parametrize("block", [on_every_backend(block) for block in PYTHON])
def test_python_block_runs(block, request):
    run(block, request)


def test_python_blocks_are_formatted_as_the_code_is():
    # ruff format, with the project's settings: a copied example reads like our code, and
    # the line numbers a failure message shows stay where the page says
    unformatted = []
    for block in [b for b in BLOCKS if b.lang == "python"]:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--diff", "--stdin-filename", "block.py"],
            input=block.code,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            unformatted.append(f"{block.id}:\n{done.stdout}{done.stderr}")
    assert not unformatted, "\n".join(unformatted)


@pytest.mark.parametrize("block", SHOWN, ids=lambda block: block.id)
def test_text_block_shows_the_real_output(block, request, tmp_path):
    if block.marker[1] == "shell":
        for command, output, shown in run_session(block.code, tmp_path):
            assert_shown(shown, output, f"{block.id}: $ {command}")
    else:
        assert block.above is not None
        output = run(block.above, request, show_failures=True)
        assert_shown(block.code.splitlines(), output, block.id)
