"""The lessons table at the end of a run, built from the outcomes of the lessons.

A pytest plugin (the root ``conftest.py`` loads it). At collection, each test of a
lesson module (one with a ``PITFALL``) carries, in its ``user_properties``, what
its module teaches and which variants it is about (its ``lesson`` marks); the
properties travel with the reports, so under pytest-xdist the controller, which
collects nothing, still knows. The table is printed only when lessons ran: a run
of other tests prints nothing of it.

Per pitfall: a buggy variant is caught when every test about it that ran passed; a
fix passes likewise; a variant whose tests were all skipped, or none selected, counts
as neither (``tests/test_lessons.py`` checks that every variant has its tests).
Nothing in the table is written by hand.
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
        """How the lessons about ``name`` in ``role`` went, and which of them failed.

        ``"passed"`` when at least one ran and every one that ran passed; ``"broken"`` when
        one failed; ``"not run"`` when all were skipped; ``"not selected"`` when none was
        in this run (``-k``, a node id, ``--lf``): counted in neither column.
        """
        tests = [node for node, marks in self.about.items() if (role, name) in marks]
        failed = [node for node in tests if self.outcomes[node] == "failed"]
        skipped = [node for node in tests if self.outcomes[node] == "skipped"]
        if not tests:
            return "not selected", []
        if failed:
            return "broken", failed
        return ("not run" if len(skipped) == len(tests) else "passed"), []


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
        # a failure in any phase sticks; a skip (in setup) outranks a pass
        if report.failed:
            row.outcomes[report.nodeid] = "failed"
        elif report.skipped and row.outcomes.get(report.nodeid) != "failed":
            row.outcomes[report.nodeid] = "skipped"
            row.not_run.update(dict(report.user_properties).get("not_run", "").split())
        else:
            row.outcomes.setdefault(report.nodeid, "passed")

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not self.rows or hasattr(config, "workerinput"):
            return
        terminalreporter.section("lessons: each pitfall, its bugs caught, its fixes passing")
        for line in table(self.rows):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            "A variant counts when every lesson about it that ran passed: a bug, when the checker"
            " caught it and its demonstrations held; a fix, when it kept the invariant."
        )


def table(rows: dict[str, Row]) -> list[str]:
    """The lines of the lessons table, pitfalls in reading order (module name).

    Counts are over the variants whose lessons ran; variants whose every lesson was
    skipped (their framework not installed, say) are counted on a line of their own, and
    variants none of whose lessons this run selected are left out.
    """
    width = max(len(row.title) for row in rows.values()) + 2
    lines = [f"{'pitfall':<{width}}{'buggy caught':<14}{'fixes pass':<12}read more"]
    for _, row in sorted(rows.items()):
        counts, notes, not_run = [], [], 0
        for role, verb in (("buggy", "not caught"), ("fixed", "not passing")):
            ok = ran = 0
            for name in getattr(row, role):
                verdict, failed = row.verdict(role, name)
                if verdict == "not run":
                    not_run += 1
                if verdict in ("not run", "not selected"):
                    continue
                ran += 1
                ok += verdict == "passed"
                if verdict == "broken":
                    total = sum((role, name) in marks for marks in row.about.values())
                    names = ", ".join(sorted(b.rpartition("::")[2] for b in failed))
                    notes.append(
                        f"  {verb}: {name} ({len(failed)} of its {total} lessons failed: {names})"
                    )
            counts.append(f"{ok}/{ran}" if ran else "-")
        lines.append(f"{row.title:<{width}}{counts[0]:<14}{counts[1]:<12}{row.read_more}")
        lines.append(f"  invariant: {row.invariant}")
        lines.extend(notes)
        if not_run:
            why = f"need {' and '.join(sorted(row.not_run))}" if row.not_run else "were skipped"
            lines.append(f"  not run here: the lessons of {not_run} variants {why}")
    return lines
