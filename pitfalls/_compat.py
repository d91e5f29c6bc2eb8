"""What older supported releases lack, done in one place."""

from __future__ import annotations

import ast
import functools
import linecache
from types import CodeType


def qualname(code: CodeType) -> str:
    """``code.co_qualname`` (3.11+), or on 3.10 the same name read from the source file:
    ``Class.method``, ``outer.<locals>.inner``; the bare ``co_name`` where the source is
    not to be had."""
    name = getattr(code, "co_qualname", None)
    if isinstance(name, str):
        return name
    text = "".join(linecache.getlines(code.co_filename))
    return _qualnames(text).get((code.co_firstlineno, code.co_name), code.co_name)


@functools.lru_cache(maxsize=64)
def _qualnames(text: str) -> dict[tuple[int, str], str]:
    """Each function's and class's qualified name in ``text``, by (first line, name); the
    first line is both the ``def``'s and its first decorator's."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    found: dict[tuple[int, str], str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                for line in (child.lineno, *(d.lineno for d in child.decorator_list)):
                    found.setdefault((line, child.name), name)
                inner = ".<locals>." if not isinstance(child, ast.ClassDef) else "."
                visit(child, name + inner)
            elif isinstance(child, ast.Lambda):
                found.setdefault((child.lineno, "<lambda>"), prefix + "<lambda>")
                visit(child, prefix + "<lambda>.<locals>.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found
