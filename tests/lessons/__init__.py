"""The lessons: one module per pitfall, in reading order, each a page of the story.

A lesson module says what was seen, states the invariant, shows the buggy
variant breaking it (the checker's own message printed, its cause asserted) and
the fix keeping it. It declares what it teaches in ``PITFALL``; its tests take
their variants from :func:`buggy` and :func:`fixed`, which mark each test with
the variant it is about. ``tests/lessons/summary.py`` turns the outcomes into the
table printed at the end of the run: per pitfall, buggy variants caught k/k and
fixes passing k/k, so editing a reproduction changes its row.

Run them alone, in reading order, with ``python -m pytest tests/lessons -p no:randomly``;
``-rP`` also prints each checker's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import settings


@dataclass(frozen=True)
class Pitfall:
    """What a lesson module teaches: its title, its invariant, where to read more, and
    the ``(buggy, fixed)`` pairs of its reproductions (every variant needs a test)."""

    title: str
    invariant: str
    read_more: str
    pairs: tuple[tuple[Any, Any], ...] = field(repr=False)

    def variants(self, role: str) -> list[str]:
        """The names of the buggy (``role="buggy"``) or fixed variants, in pair order."""
        column = 0 if role == "buggy" else 1
        return list(dict.fromkeys(name_of(pair[column]) for pair in self.pairs))

    def expect(self, report: Any, variant: Any, cause: Any) -> None:
        """A buggy variant's report shows the pitfall: printed (``-rP`` shows it), its
        cause asserted; a fixed variant's report passed."""
        if any(variant is buggy for buggy, _ in self.pairs):
            print(report)
            assert report.cause is cause, str(report)
        else:
            assert report.ok, str(report)


def name_of(variant: Any) -> str:
    return getattr(variant, "__name__", repr(variant))


def _params(role: str, variants: Iterable[Any]) -> list[Any]:
    return [
        pytest.param(v, id=name_of(v), marks=pytest.mark.lesson(role, name_of(v))) for v in variants
    ]


def buggy(*variants: Any) -> list[Any]:
    """Parametrize a test over buggy variants: it passes when the pitfall is caught."""
    return _params("buggy", variants)


def fixed(*variants: Any) -> list[Any]:
    """Parametrize a test over fixed variants: it passes when the fix keeps the invariant."""
    return _params("fixed", variants)


def teaches(role: str, variant: Callable[..., Any] | type) -> pytest.MarkDecorator:
    """Mark one test as being about one variant (for tests that are not parametrized)."""
    return pytest.mark.lesson(role, name_of(variant))


def unique(variants: Iterable[Any]) -> tuple[Any, ...]:
    """The variants once each, in order (a fix can pair with several bugs)."""
    return tuple(dict.fromkeys(variants))


def examples(n: int) -> settings:
    """``n`` examples under the derandomized profiles (the default and CI), each a fixed
    draw; ``--hypothesis-profile=explore`` keeps its own, larger count."""
    return settings(max_examples=n) if settings.default.derandomize else settings()


def best_mean_model(x: Any, y: Any) -> tuple[Any, float, float]:
    """The mean model's best fit to targets ``y`` (least squares: where its training goes):
    its two weights, its bias and its MSE. On exact means: (0.5, 0.5), 0 and 0."""
    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef[:2], float(coef[2]), float(np.mean((design @ coef - y) ** 2))
