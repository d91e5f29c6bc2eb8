"""Every sentence a check says, from one table: ``words.toml``, keyed by (check, verdict, kind).

A check decides its verdict from evidence (a :class:`~pitfalls.Cause`, or ``"passed"``)
and asks for its words here; no check writes its own prose, and no code branches on
words. The table is read once, when a check first reports. Entries::

    [index_stable.ANOTHER_INDEX]          # (check, cause)
    text = "Reading ... {count} ..."       # the reason, the inconclusive text or the summary
    hint = "derive each batch ..."         # the fix (optional)

    [order_shuffled.SAME_ORDER.generator]  # (check, cause, source kind): overrides

Fields in braces are filled from the keyword arguments of :func:`say`; a missing one is
a ``KeyError`` naming the entry (``tests/test_words.py`` renders every entry).
"""

from __future__ import annotations

import functools
import string
import sys
from pathlib import Path
from typing import Any, NamedTuple


class Words(NamedTuple):
    """What a report says: ``text`` (reason, inconclusive text or summary) and ``hint``."""

    text: str
    hint: str = ""


@functools.cache
def table() -> dict[str, Any]:
    """The parsed ``words.toml``: check -> verdict -> {text, hint, kind -> {...}}; read
    when a check first reports, not at ``import pitfalls``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(Path(__file__).with_name("words.toml").read_text("utf-8"))


def entry(check: str, verdict: Any, kind: str | None = None) -> dict[str, str]:
    """The raw entry for ``(check, verdict, kind)``: the kind's fields over the verdict's."""
    name = getattr(verdict, "name", verdict)
    try:
        found = table()[check][name]
    except KeyError:
        raise KeyError(f"words.toml has no entry [{check}.{name}]") from None
    fields = {k: v for k, v in found.items() if isinstance(v, str)}
    if kind is not None and isinstance(found.get(kind), dict):
        fields.update(found[kind])
    return fields


def say(check: str, verdict: Any, kind: str | None = None, **values: Any) -> Words:
    """The words for ``verdict`` (a Cause, or ``"passed"``) of ``check`` on a ``kind`` of
    source, with ``values`` filled in."""
    fields = entry(check, verdict, kind)
    try:
        return Words(*(fields.get(k, "").format(**values) for k in ("text", "hint")))
    except KeyError as exc:
        name = getattr(verdict, "name", verdict)
        raise KeyError(f"words.toml [{check}.{name}] needs {exc.args[0]!r}") from None


def fields_of(text: str) -> set[str]:
    """The names in braces in ``text`` (for the test that renders the table)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
