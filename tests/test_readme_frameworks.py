"""The README's "Every framework" section stays true: each test file in it passes as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def section(title):
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def readme_files():
    """Each ```python block, by the file name its first line gives: {name: (code, tests)}."""
    files = {}
    for code in re.findall(r"```python\n(.*?)```", section("Every framework"), re.S):
        name = re.match(r"# (test_\w+)\.py", code)
        assert name, f"a block must start with '# test_NAME.py': {code[:40]!r}"
        files[name.group(1)] = (code, len(re.findall(r"^def test_", code, re.M)))
    return files


def test_the_section_has_a_test_file_per_framework():
    code = "\n".join(code for code, _ in readme_files().values())
    for framework in ("import torch", "import jax", "from datasets import", "import tensorflow"):
        assert framework in code, framework
    assert "check_batches" in code


@pytest.mark.usefixtures("torch", "jax", "hf_datasets", "tf")  # CI: each must be installed
def test_every_test_file_in_the_section_passes(pytester):
    files = readme_files()
    pytester.makepyfile(**{name: code for name, (code, _) in files.items()})
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=sum(tests for _, tests in files.values()))
