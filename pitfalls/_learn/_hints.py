"""The hint an exercise's failure shows, where the checker's general one would mislead.

A checker's hint is written for every project (``divide with /, not //``); an
exercise may want something else (exercise 3's labels are meant to be rounded
down). The exercise's own hint lives in the catalog, and its test wraps the
checks in :class:`exercise_hint` so that the failure shows it in place of the
checker's::

    with exercise_hint(3):
        pitfalls.assert_targets_match(exercise.pixel_pairs, average_brightness)
"""

from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Literal

from pitfalls._learn._catalog import by_number
from pitfalls._report import PitfallError, format_report


class exercise_hint:  # lower case: used as a context manager, named like contextlib's
    """Inside the block, a checker's failure carries exercise ``number``'s own hint.

    The error keeps its class, its report (but the hint) and the words a caller
    appended (``strict_loss``'s "raised by ..."); anything else passes unchanged.
    """

    def __init__(self, number: int) -> None:
        self.hint = by_number(number).failure_hint
        if not self.hint:
            raise ValueError(f"exercise {number} has no failure hint of its own in the catalog")

    def __enter__(self) -> exercise_hint:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        __tracebackhide__ = True
        if not isinstance(error, PitfallError):
            return False
        said, text = format_report(error.report), str(error)
        appended = text[len(said) + 1 :] if text.startswith(said + "\n") else None
        report = dataclasses.replace(error.report, hint=self.hint)
        raise type(error)(report, appended).with_traceback(traceback) from None
