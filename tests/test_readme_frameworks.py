"""Each framework has a how-to page holding a complete test file for it; tests/test_docs.py
runs each of them as written (CI installs every framework, so none is skipped there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_docs import blocks_of

HOW_TO = Path(__file__).parent.parent / "docs" / "how-to"


@pytest.mark.parametrize(
    ("page", "framework"),
    [
        ("pytorch.md", "torch"),
        ("jax.md", "jax"),
        ("huggingface.md", "hf_datasets"),
        ("tfdata.md", "tf"),
    ],
)
def test_the_page_holds_a_test_file_on_its_framework(page, framework):
    files = [b for b in blocks_of(HOW_TO / page) if b.lang == "python" and b.is_test_file]
    assert files, f"{page} holds no test file (# test_NAME.py)"
    assert any(framework in b.frameworks and "check_batches" in b.code for b in files), page
