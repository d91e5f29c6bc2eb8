"""Does reading the same index of a PyDataset twice give the same batch?"""

from __future__ import annotations

from typing import Any

from pitfalls._report import Finding, IndexStabilityError, Report
from pitfalls._sources import add_note, batch_count, is_indexable
from pitfalls._tree import diff_snapshot, flatten, snapshot

DEFAULT_INDICES = 8


def _read(source: Any, index: int, when: str) -> Any:
    try:
        return source[index]
    except Exception as exc:
        add_note(exc, f"pitfalls: raised by source[{index}] ({when})")
        raise


def check_index_stable(source: Any, *, indices: int = DEFAULT_INDICES) -> Report:
    """Read indices ``0 .. indices-1`` in order, then again in reverse, and compare.

    For an indexable batch source such as ``keras.utils.PyDataset``: Keras'
    workers read indices in any order, so ``source[i]`` must depend on ``i``
    alone. A counter or an unseeded RNG advanced per call fails; so does random
    augmentation drawn per read (seed it with the index and epoch if batches
    must be reproducible). The first read is copied, so a reused buffer does
    not hide or fake a difference. ``on_epoch_end`` is not called.
    """
    if not is_indexable(source):
        raise TypeError(
            "source must be an indexable batch source with __getitem__ and a length"
            f" (like keras.utils.PyDataset), got {type(source).__qualname__}"
        )
    if isinstance(indices, bool) or not isinstance(indices, int) or indices < 1:
        raise ValueError(f"indices={indices!r} must be an int >= 1")
    length = batch_count(source)
    count = indices if length is None else min(indices, length)
    if count < 1:
        raise ValueError("source has no batches to read")
    first = {}
    for i in range(count):
        first[i] = snapshot(flatten(_read(source, i, "first read")))
    findings: list[Finding] = []
    for i in reversed(range(count)):
        diffs, structure = diff_snapshot(first[i], flatten(_read(source, i, "second read")))
        when = "read again"
        if structure is not None:
            findings.append(Finding(i, structure[0], when, 0, 0, (), structure[1]))
        findings += [
            Finding(i, d.path, when, d.mismatched, d.total, d.first, d.problem) for d in diffs
        ]
    findings.sort(key=lambda f: (f.batch, f.path))
    return Report(
        "index_stable",
        f"indices={count}",
        count,
        tuple(findings),
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
        unit="index",
    )


def assert_index_stable(
    source: Any, *, indices: int = DEFAULT_INDICES, msg: str | None = None
) -> None:
    """Fail when ``source[i]`` differs between two reads. See :func:`check_index_stable`."""
    __tracebackhide__ = True
    report = check_index_stable(source, indices=indices)
    if not report.ok:
        raise IndexStabilityError(report, msg)
