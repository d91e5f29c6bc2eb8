"""Does reading the same index of a PyDataset twice give the same batch?"""

from __future__ import annotations

from typing import Any

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS
from pitfalls._report import Finding, IndexUnstableError, Report
from pitfalls._sources import add_note, batch_count, call_within, is_indexable
from pitfalls._tree import diff_snapshot, flatten, snapshot


def _read(source: Any, index: int, when: str, timeout: float | None) -> Any:
    try:
        return call_within(lambda: source[index], timeout, f"return source[{index}] ({when})")
    except TimeoutError:
        raise
    except Exception as exc:
        add_note(exc, f"pitfalls: raised by source[{index}] ({when})")
        raise


def check_index_stable(
    source: Any, *, draws: int = DEFAULT_DRAWS, timeout: float | None = None
) -> Report:
    """Read indices ``0 .. draws-1`` in order, then again in reverse, and compare.

    For an indexable batch source such as ``keras.utils.PyDataset``: Keras'
    workers read indices in any order, so ``source[i]`` must depend on ``i``
    alone. A counter or an unseeded RNG advanced per call fails; so does random
    augmentation drawn per read (seed it with the index and epoch if batches
    must be reproducible). ``draws`` is capped at the source's length. The
    first read is copied, so a reused buffer does not hide or fake a
    difference. ``on_epoch_end`` is not called. ``timeout`` bounds each read.
    """
    if not is_indexable(source):
        raise TypeError(
            "source must be an indexable batch source with __getitem__ and a length"
            f" (like keras.utils.PyDataset), got {type(source).__qualname__}"
        )
    draws = validate.integer("draws", draws, minimum=1)
    timeout = validate.timeout("timeout", timeout)
    length = batch_count(source)
    count = draws if length is None else min(draws, length)
    if count < 1:
        raise ValueError("source has no batches to read (its length is 0)")
    first = {}
    for i in range(count):
        first[i] = snapshot(flatten(_read(source, i, "first read", timeout)))
    findings: list[Finding] = []
    when = "read again"
    for i in reversed(range(count)):
        diffs, structure = diff_snapshot(
            first[i], flatten(_read(source, i, "second read", timeout))
        )
        if structure is not None:
            findings.append(Finding(batch=i, path=structure[0], when=when, problem=structure[1]))
        findings += [
            Finding(
                batch=i,
                path=d.path,
                when=when,
                mismatched=d.mismatched,
                total=d.total,
                locations=d.first,
                problem=d.problem,
            )
            for d in diffs
        ]
    findings.sort(key=lambda f: (f.batch, f.path))
    return Report(
        check="index_stable",
        parameters={"draws": count},
        batches=count,
        unit="index",
        findings=tuple(findings),
        reason=(
            "Reading the same index twice gave different batches: __getitem__ depends on"
            " more than its index (a counter, an iterator or an RNG advanced per call), so"
            " workers that read indices in any order see other data than one reader would."
        ),
        hint=(
            "derive each batch from its index alone: slice by index, and seed any random"
            " augmentation with the index (and the epoch)."
        ),
        columns=("first read", "second read"),
        summary=f"indices 0..{count - 1} read twice, the same both times",
    )


def assert_index_stable(
    source: Any,
    *,
    draws: int = DEFAULT_DRAWS,
    timeout: float | None = None,
    msg: str | None = None,
) -> None:
    """Fail when ``source[i]`` differs between two reads. See :func:`check_index_stable`."""
    __tracebackhide__ = True
    report = check_index_stable(source, draws=draws, timeout=timeout)
    if not report.ok:
        raise IndexUnstableError(report, msg)
