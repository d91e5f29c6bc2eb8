"""A griffe extension for the reference pages: the package's docstrings are written for
``help()`` and pytest's doctests, in reStructuredText habits; this renders those habits
as Markdown, without changing a docstring.

* ``:func:`check_source```, ``:class:`Report``` and the like become code, linked to the
  reference when the name is public in ``pitfalls``;
* a paragraph of doctest lines (``>>> ...``) becomes a ``pycon`` code block, not a
  nested quotation;
* ``Example::`` before an indented block loses its second colon.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([\w.]+)(?:\(\))?`")
DOCTEST = re.compile(r"^(>>> .*\n(?:\S.*\n)*)", re.M)  # to the blank line after


class RstToMarkdown(griffe.Extension):
    def __init__(self) -> None:
        super().__init__()
        # The public names, from pitfalls.__all__ (read, not imported: no framework loads)
        tree = ast.parse(Path("pitfalls/__init__.py").read_text(encoding="utf-8"))
        names = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
        )
        self.public = set(ast.literal_eval(names))

    def role(self, match: re.Match[str]) -> str:
        name = match.group(1)
        short = name.removeprefix("pitfalls.")
        if short in self.public:
            return f"[`{short}`][pitfalls.{short}]"
        return f"`{name}`"

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = ROLE.sub(self.role, obj.docstring.value)
        text = DOCTEST.sub(lambda m: f"```pycon\n{m.group(1)}```\n", text + "\n").rstrip("\n")
        obj.docstring.value = re.sub(r"(\w)::$", r"\1:", text, flags=re.M)
