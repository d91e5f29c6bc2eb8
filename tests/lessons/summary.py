"""The lessons table at the end of a run, built from the outcomes of the lessons.

A pytest plugin (the root ``conftest.py`` loads it). At collection, each test of a
lesson module (one with a ``PITFALL``) carries, in its ``user_properties``, what
its module teaches and which variants it is about (its ``lesson`` marks); the
properties travel with the reports, so under pytest-xdist the controller, which
collects nothing, still knows. The table is printed only when lessons ran: a run
of other tests prints nothing of it.

Per pitfall: a buggy variant is caught when every test about it passed; a fix
passes when every test about it passed; a variant no test is about counts as
neither, and is named. Nothing in the table is written by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

PROPERTY = "pitfalls_lesson"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lesson(role, variant): a lesson test about one variant of its module's PITFALL"
        " (role 'buggy': passes when the pitfall is caught; 'fixed': when the fix holds)",
    )
    config.pluginmanager.register(Lessons(), "pitfalls-lessons")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        pitfall = getattr(getattr(item, "module", None), "PITFALL", None)
        if pitfall is None:
            continue
        about = [list(mark.args) for mark in item.iter_markers("lesson")]
        tag = {
            "module": item.module.__name__.rpartition(".")[2],  # type: ignore[attr-defined]
            "title": pitfall.title,
            "invariant": pitfall.invariant,
            "read_more": pitfall.read_more,
            "buggy": pitfall.variants("buggy"),
            "fixed": pitfall.variants("fixed"),
            "about": about,
        }
        item.user_properties.append((PROPERTY, json.dumps(tag)))


@dataclass
class Row:
    """One pitfall: what it teaches, and the outcome of each of its tests."""

    module: str
    title: str
    invariant: str
    read_more: str
    buggy: list[str]
    fixed: list[str]
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> outcome
    about: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # node id -> marks
    not_run: set[str] = field(default_factory=set)  # frameworks its skipped tests needed

    def verdict(self, role: str, name: str) -> tuple[str, list[str]]:
        """``"passed"`` when every test about ``name`` in ``role`` passed, ``"not run"`` when
        all were skipped, else ``"broken"``; and the tests that did not pass."""
        tests = [node for node, marks in self.about.items() if (role, name) in marks]
        if tests and all(self.outcomes[node] == "skipped" for node in tests):
            return "not run", tests
        bad = [node for node in tests if self.outcomes[node] != "passed"]
        return ("passed" if tests and not bad else "broken"), bad


class Lessons:
    """Hears every report (in the controller under xdist) and prints the table."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tag = dict(report.user_properties).get(PROPERTY)
        if tag is None:
            return
        data = json.loads(tag)
        about = [tuple(pair) for pair in data.pop("about")]
        row = self.rows.setdefault(data["module"], Row(**data))
        row.about[report.nodeid] = about  # type: ignore[assignment]
        before = row.outcomes.get(report.nodeid, "passed")
        if report.failed:
            row.outcomes[report.nodeid] = "failed"
        elif report.skipped and before != "failed":
            row.outcomes[report.nodeid] = "skipped"
            row.not_run.update(dict(report.user_properties).get("not_run", "").split())
        elif report.when == "call" or report.nodeid not in row.outcomes:
            row.outcomes.setdefault(report.nodeid, "passed")

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not self.rows or hasattr(config, "workerinput"):
            return
        terminalreporter.section("lessons: each pitfall, its bugs caught, its fixes passing")
        for line in table(self.rows):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            "A variant counts when every lesson about it passed: a bug, when the checker"
            " caught it and its demonstrations held; a fix, when it kept the invariant."
        )


def table(rows: dict[str, Row]) -> list[str]:
    """The lines of the lessons table, pitfalls in reading order (module name).

    Counts are over the variants whose lessons ran; variants whose every lesson was
    skipped (their framework not installed) are counted on a line of their own.
    """
    width = max(len(row.title) for row in rows.values()) + 2
    lines = [f"{'pitfall':<{width}}{'buggy caught':<14}{'fixes pass':<12}read more"]
    for _, row in sorted(rows.items()):
        counts, notes, not_run = [], [], 0
        for role, verb in (("buggy", "not caught"), ("fixed", "not passing")):
            ok = ran = 0
            for name in getattr(row, role):
                verdict, bad = row.verdict(role, name)
                if verdict == "not run":
                    not_run += 1
                    continue
                ran += 1
                ok += verdict == "passed"
                if verdict == "broken" and not bad:
                    notes.append(f"  {verb}: {name} (no lesson is about it)")
                elif verdict == "broken":
                    total = sum((role, name) in marks for marks in row.about.values())
                    failed = ", ".join(sorted(b.rpartition("::")[2] for b in bad))
                    notes.append(
                        f"  {verb}: {name} ({len(bad)} of its {total} lessons failed: {failed})"
                    )
            counts.append(f"{ok}/{ran}" if ran else "-")
        lines.append(f"{row.title:<{width}}{counts[0]:<14}{counts[1]:<12}{row.read_more}")
        lines.append(f"  invariant: {row.invariant}")
        lines.extend(notes)
        if not_run:
            needs = " and ".join(sorted(row.not_run)) or "what was skipped"
            lines.append(f"  not run here: {not_run} variants need {needs}")
    return lines
