"""Every sentence a check says comes from one table, ``pitfalls/words.toml``.

A report's words are chosen by (check, verdict, source kind); these tests read the
table the way a check does, so an entry that names no real check or cause, a field no
check fills, or prose that no longer renders fails here, not in a user's failure.
"""

import pytest

from pitfalls import Cause
from pitfalls._report import ERRORS
from pitfalls._words import entry, fields_of, say, table

ENTRIES = [
    (check, verdict, kind)
    for check, verdicts in table().items()
    for verdict, fields in verdicts.items()
    for kind in [None, *(k for k, v in fields.items() if isinstance(v, dict))]
]


def test_the_table_is_keyed_by_real_checks_and_causes():
    # "common": what any check may say (the short fixes a targets report borrows from the
    # aliasing check's, a source consumed before a check could read it); [blame.<reason>]
    # holds why a blame names no line: keyed by reason, not by a cause.
    verdicts = {cause.name for cause in Cause} | {"passed", "note"}  # note: the evidence
    checks = {check for check, _, _ in ENTRIES}
    assert checks <= set(ERRORS) | {"common", "blame"}
    assert {v for c, v, _ in ENTRIES if c not in ("common", "blame")} <= verdicts
    assert "blame" in checks  # rendered below with the checks' entries


def test_every_blame_reason_in_the_table_is_one_blame_gives():
    from pathlib import Path

    import pitfalls._blame

    code = "".join(p.read_text() for p in Path(pitfalls._blame.__file__).parent.glob("*.py"))
    for reason in table()["blame"]:
        assert f'"{reason}"' in code, reason


@pytest.mark.parametrize(("check", "verdict", "kind"), ENTRIES)
def test_every_entry_renders_with_its_fields(check, verdict, kind):
    fields = entry(check, verdict, kind)
    if verdict == "note" and kind is None:
        return  # [check.note] only groups the notes, one kind each
    assert fields.get("text"), f"[{check}.{verdict}] has no text"
    names = set().union(*(fields_of(text) for text in fields.values()))
    words = say(check, verdict, kind, **{name: f"<{name}>" for name in names})
    assert "{" not in words.text and "}" not in words.text
    for name in names:
        assert f"<{name}>" in words.text + words.hint


def test_a_missing_field_names_the_entry():
    with pytest.raises(KeyError, match=r"index_stable.ANOTHER_INDEX|needs"):
        say("index_stable", Cause.RANDOMNESS_UNREACHED)


def test_an_unknown_entry_is_named():
    with pytest.raises(KeyError, match=r"no entry \[index_stable.SAME_ORDER\]"):
        say("index_stable", Cause.SAME_ORDER)


def test_a_kind_overrides_only_what_it_names(monkeypatch):
    monkeypatch.setitem(
        table(),
        "order_shuffled_test",
        {"SAME_ORDER": {"text": "a", "hint": "h", "gen": {"text": "b"}}},
    )
    assert say("order_shuffled_test", Cause.SAME_ORDER, "gen") == ("b", "h")
    assert say("order_shuffled_test", Cause.SAME_ORDER, "other") == ("a", "h")
