"""Does reading the same index of a PyDataset twice give the same batch?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS
from pitfalls._boundary import asserting, checker
from pitfalls._randomness import Randomness, fresh_entropy, held_by
from pitfalls._reader import change_note
from pitfalls._report import MAX_SHOWN, Cause, Finding, Report
from pitfalls._sources import batch_count, call_within, resolve
from pitfalls._tree import Snapshot, diff_snapshot, flatten, snapshot
from pitfalls._words import say
from pitfalls._written import changed_rows, source_state, state_changed, stored_arrays


def _read(source: Any, index: int, when: str, timeout: float | None) -> Any:
    what = f"source[{index}] ({when})"
    return call_within(
        lambda: source[index], timeout, f"return {what}", f"pitfalls: raised by {what}"
    )


_UNJUDGED = (Cause.RANDOMNESS_UNREACHED, Cause.NOTHING_SEEN, Cause.FRESH_ENTROPY)
"""The causes that leave the reads unjudged: no evidence of a bug either way."""


def _same(a: Snapshot, b: Snapshot, part: str = "") -> bool:
    """Do two reads hold equal arrays (only those under ``part``, e.g. ``"targets"``)?"""
    if a.structure != b.structure:
        return False
    pairs = [(x, y) for (path, x), (_, y) in zip(a.arrays, b.arrays) if path.startswith(part)]
    return bool(pairs) and all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
        for x, y in pairs
    )


@checker
def check_index_stable(
    source: Any,
    *,
    draws: int = DEFAULT_DRAWS,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    reseed: Callable[[int], Any] | None = None,
) -> Report:
    """Read indices ``0 .. draws-1`` in order, then again in reverse, and compare.

    For an indexable batch source such as ``keras.utils.PyDataset`` (or a
    factory or class making one): Keras' workers read indices in any order,
    so ``source[i]`` must depend on ``i`` alone. A counter or an iterator
    advanced per call fails, and so does preprocessing that writes the stored
    data in place. ``draws`` is capped at the source's length. The first read
    is copied, so a reused buffer does not hide or fake a difference.
    ``on_epoch_end`` is not called. ``timeout`` bounds each read.

    Random augmentation is allowed: both reads of index i are made after
    reseeding alike Python's, numpy's, Keras' and torch's global RNGs, the
    generators the source holds (``self.rng``) and, through ``reseed(seed)``,
    any other; all are put back afterwards. When reads still differ, it fails
    only on evidence (``report.cause``): a read that returned another index's
    batch (``ANOTHER_INDEX``), an array the source holds, the same object, that
    reading changed (``STORED_DATA_WRITTEN``), or an attribute of the source's
    own objects the reads changed, a counter (``SOURCE_STATE_CHANGED``).
    Otherwise the report is inconclusive, saying what hid the comparison: a
    generator made during the read without a seed, seen drawing fresh entropy
    (``FRESH_ENTROPY``), a watched one still differing (``RANDOMNESS_UNREACHED``),
    or nothing seen at all (``NOTHING_SEEN``): no evidence of a bug either way.
    """
    from pitfalls import _blame  # imported when first needed

    resolved = resolve(source)
    if resolved.kind != "indexable":
        raise TypeError(
            "source must be an indexable batch source with __getitem__ and a length"
            f" (like keras.utils.PyDataset), or a factory returning one; got"
            f" {resolved.description}"
        )
    obj = resolved.obj
    draws = validate.indices(draws)
    timeout = validate.timeout("timeout", timeout)
    reseed = validate.optional_function("reseed", reseed)
    length = batch_count(obj)
    count = draws if length is None else min(draws, length)
    if count < 1:
        raise ValueError("source has no batches to read (its length is 0)")
    with Randomness(resolved.roots, reseed) as rnd:
        state = source_state(obj)  # what the reads change of it, if anything
        first = {}
        for _ in range(2):  # again when generators were found drawing only as it read
            found = rnd.found_drawing
            for i in range(count):
                rnd.control(i)
                first[i] = snapshot(flatten(_read(obj, i, "first read", timeout)))
                rnd.drew()
            if rnd.found_drawing == found:
                break
        findings: list[Finding] = []
        unstable: list[int] = []
        seconds: dict[int, Snapshot] = {}
        for i in reversed(range(count)):
            rnd.control(i)
            flat = flatten(_read(obj, i, "second read", timeout))
            rnd.drew()
            seconds[i] = snapshot(flat)
            diffs, structure = diff_snapshot(first[i], flat)
            if structure is not None:
                findings.append(
                    Finding(batch=i, path=structure[0], when="read again", problem=structure[1])
                )
            findings += [d.finding(i, "read again") for d in diffs]
            if diffs or structure is not None:
                unstable.append(i)
        cause, notes = None, list[str]()
        if unstable:
            cause, notes = _explain(obj, first, seconds, unstable, rnd, timeout, state)
    findings.sort(key=lambda f: (f.batch, f.path))
    words = say(
        "index_stable",
        cause or "passed",
        drew=", ".join(rnd.seen) or "your reseed=",
        unstable=len(unstable),
        count=count,
        first=unstable[0] if unstable else 0,
        last=count - 1,
        fresh_entropy=say("common", "fresh_entropy").text,
    )
    inconclusive = words.text if cause in _UNJUDGED else ""
    if inconclusive:
        findings = []
    note = rnd.note()
    return Report(
        check="index_stable",
        cause=cause,
        parameters={"draws": count, **({"reseed": reseed} if reseed is not None else {})},
        batches=count,
        unit="index",
        findings=tuple(findings),
        inconclusive=inconclusive,
        reason=words.text if findings else "",
        hint=words.hint,
        notes=tuple(notes) + ((note,) if note else ()),
        columns=("first read", "second read"),
        summary=words.text,
        source=resolved.description,
        blame=_blame.blame_index(resolved, draws=count, timeout=timeout) if findings else None,
    )


def _explain(
    obj: Any,
    first: dict[int, Snapshot],
    seconds: dict[int, Snapshot],
    unstable: list[int],
    rnd: Randomness,
    timeout: float | None,
    state: dict[str, Any],
) -> tuple[Cause, list[str]]:
    """Why reads differ: another index's batch served, stored data written, an attribute
    of the source the reads changed (from ``state``, taken before them), a watched
    generator that drew, fresh entropy drawn, or nothing seen; and the notes saying so."""
    served = []
    for i in sorted(unstable):
        j = next((j for j in first if j != i and _same(first[j], seconds[i])), None)
        if j is None and not _same(first[i], seconds[i], "targets"):  # inputs augmented?
            j = next((j for j in first if j != i and _same(first[j], seconds[i], "targets")), None)
        if j is not None:
            served.append((i, j))
    if served:
        shown = ", ".join(f"index {i} gave index {j}'s batch" for i, j in served[:MAX_SHOWN])
        return Cause.ANOTHER_INDEX, [say("index_stable", "note", "another_index", shown=shown).text]
    before = stored_arrays(held_by([("self", obj)]), 2 * max(map(_rows, first.values())))
    rnd.control(unstable[0])  # one more read, watched: stored data, fresh entropy
    entropy = fresh_entropy(lambda: _read(obj, unstable[0], "read to watch the source", timeout))
    rnd.drew()
    changes = changed_rows(before)
    if changes:
        return Cause.STORED_DATA_WRITTEN, [change_note(changes, "while reading")]
    if rnd.random:
        return Cause.RANDOMNESS_UNREACHED, []
    if entropy:
        return Cause.FRESH_ENTROPY, []
    changed = state_changed(state, source_state(obj))
    if changed:
        shown = ", ".join(changed[:MAX_SHOWN])
        return Cause.SOURCE_STATE_CHANGED, [say("index_stable", "note", "state", shown=shown).text]
    return Cause.NOTHING_SEEN, []


def _rows(snap: Snapshot) -> int:
    """Samples in a batch: the length of its first array with an axis."""
    return next((len(a) for _, a in snap.arrays if a.ndim), 1)


assert_index_stable = asserting(check_index_stable)
