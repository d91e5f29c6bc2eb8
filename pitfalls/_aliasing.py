"""Does a batch already handed out change as the source advances?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._boundary import asserting, checker
from pitfalls._report import Cause, Finding, Report
from pitfalls._sources import Source, drawn, ended_notes, no_array_in, resolve
from pitfalls._tree import (
    Flat,
    as_array,
    buffer_of,
    diff_snapshot,
    flatten,
    seal,
    snapshot,
)
from pitfalls._words import say

DEFAULT_DRAWS = 16
"""Batches drawn by default: a buffer reused by any of the next 15 batches is caught,
so rings of up to 15 slots (Keras 2's ``max_queue_size=10`` among them)."""


def source_style(source: Source) -> str:
    """How the source's author wrote it, for hints that name their code.

    ``"dataset"``: ``__getitem__`` (and ``on_epoch_end``), a PyDataset or
    Sequence; ``"loader"``: a class whose ``__iter__`` starts an epoch, as a
    DataLoader; ``"container"``: a list or tuple of batches; ``"generator"``:
    a generator or iterator, read once.
    """
    if source.kind == "indexable":
        return "dataset"
    if source.kind == "iterable":
        return "container" if isinstance(source.obj, (list, tuple)) else "loader"
    return "generator"


def array_library(batch: Any) -> str:
    """Which library made the batch's arrays: ``"torch"``, ``"jax"``, ``"tensorflow"``
    or ``"numpy"`` (anything else), by its first leaf from one of them."""
    try:
        leaves = flatten(batch).leaves
    except Exception:  # a cycle or a nesting too deep: the check itself will say so
        return "numpy"
    found = (frameworks.array_library(leaf) for _, leaf in leaves)
    return next((library for library in found if library != "numpy"), "numpy")


def fix_kind(
    source: Source, library: str = "numpy", views: bool = False
) -> tuple[str, dict[str, str]]:
    """The kind of source a fix is worded for (``words.toml``), and its fields: how the
    source is written (:func:`source_style`), the library of its batches, whether it is a
    torch DataLoader and whether its batches were views of stored data written after."""
    style = source_style(source)
    torch = "_torch" if library == "torch" else ""
    method = {"dataset": "__getitem__", "loader": "__iter__"}.get(style)
    fields = {"method": method or "", "verb": "return" if style == "dataset" else "yield"}
    if frameworks.torch.is_loader(source.obj):
        return "torch_loader_views" if views else "torch_loader", fields
    if library in ("jax", "tensorflow"):
        return library, fields
    if method is None:
        return "generator" + torch, fields
    return ("views" if views else "buffer") + torch, fields


def later_fix(source: Source, library: str = "numpy") -> str:
    """How to make every batch own its memory, in short, for a targets report whose
    batches were rewritten after they were handed out (the check names the buffer)."""
    kind, fields = fix_kind(source, library)
    return say("common", "later", kind.replace("views", "buffer"), **fields).text


@checker
def check_generator_no_aliasing(
    source: Any, *, draws: int = DEFAULT_DRAWS, timeout: float | None = validate.DEFAULT_TIMEOUT
) -> Report:
    """Draw ``draws`` batches, keeping all of them, and report any that changed.

    Each batch is sealed when it is drawn: its nesting (a list cleared and
    refilled counts as a change) and a 16-byte digest of every 64 KiB of its
    bytes (small arrays are copied), so the check holds a 4096th of what it
    drew beyond the batches themselves. After the last draw every batch is
    compared with its seal. When one changed and the source can be read again
    (a factory, an iterable, an indexable source), it is read once more with
    every batch copied, for the elements that changed, their old and new values
    (NaN equals NaN); otherwise the blocks that changed are counted. Memory
    shared harmlessly passes: views of an array nobody writes, one constant
    array yielded every time, inputs and targets that are views of the same
    fresh batch.

    ``draws`` sets how far ahead a reuse is seen: a buffer reused by any of the
    next ``draws - 1`` batches is caught, so the default 16 exposes rings of up
    to 15 buffers. A finite source that ends sooner (2 or more batches) is read
    whole and judged on every batch it gives, with a note. The source's data is
    only read, never written; a generator
    passed itself is consumed (pass its factory to keep it fresh). An indexable
    source shorter than ``draws`` is read on into the next epoch after
    ``on_epoch_end()``, as Keras would, so in-place shuffles are seen too.
    With ``timeout`` (seconds), a source that takes longer to yield a batch
    raises ``TimeoutError`` naming the batch, instead of hanging the test.
    """
    from pitfalls import _blame  # imported when first needed

    draws = validate.draws(draws)
    timeout = validate.timeout("timeout", timeout)
    resolved = resolve(source)
    held = _draw(resolved, draws, timeout, seal)
    asked, draws = draws, len(held)  # a short finite source is read whole
    no_array_in([batch for batch, _, _ in held])
    findings, changed_paths, digested = _changed(held)
    if digested and resolved.rereadable:
        # Only digests were kept: read the batches again, copied, for the elements.
        again = _draw(resolved.fresh(), draws, timeout, snapshot)
        exact, paths, _ = _changed(again)
        if exact:
            held, findings, changed_paths = again, exact, paths

    memory = _memory_notes([flat for _, _, flat in held], changed_paths)
    patterns = {pattern for pattern, _ in memory}
    views = "views" in patterns and "buffer" not in patterns
    kind, fields = fix_kind(resolved, array_library(held[0][0]), views)
    verdict = Cause.BATCH_CHANGED if findings else "passed"
    words = say("generator_no_aliasing", verdict, kind, draws=draws, **fields)
    return Report(
        check="generator_no_aliasing",
        parameters={"draws": draws},
        batches=draws,
        findings=tuple(findings),
        reason=words.text if findings else "",
        hint=words.hint,
        notes=tuple(note for _, note in memory) + ended_notes(draws, asked),
        columns=("yielded", "now"),
        summary=words.text,
        source=resolved.description,
        blame=_blame.blame_aliasing(resolved, draws=draws, timeout=timeout) if findings else None,
        cause=Cause.BATCH_CHANGED,
    )


def _draw(
    resolved: Source, draws: int, timeout: float | None, keep: Callable[[Flat], Any]
) -> list[tuple[Any, Any, Flat]]:
    """``draws`` batches, each held with what ``keep`` makes of it as it is drawn."""
    held = []
    for batch in drawn(resolved.stream(), resolved, draws, timeout):
        flat = flatten(batch)
        held.append((batch, keep(flat), flat))
    return held


def _changed(held: list[tuple[Any, Any, Flat]]) -> tuple[list[Finding], set[str], bool]:
    """The findings of every held batch against what was kept of it, their paths, and
    whether any was told by digests alone (no values to show)."""
    findings: list[Finding] = []
    changed_paths: set[str] = set()
    digested = False
    for i, (batch, kept, _) in enumerate(held):
        diffs, structure = diff_snapshot(kept, flatten(batch))
        if structure is not None:
            path, how = structure
            findings.append(Finding(batch=i, path=path, when="after later draws", problem=how))
            changed_paths.add(path)
        for d in diffs:
            findings.append(d.finding(i, "after later draws"))
            changed_paths.add(d.path)
            digested = digested or not d.exact
    return findings, changed_paths, digested


def _memory_notes(flats: list[Any], paths: set[str]) -> tuple[tuple[str, str], ...]:
    """Say, per changed path, how the batches' memory was shared: (pattern, sentence).

    Patterns: ``"buffer"`` (one buffer refilled), ``"views"`` (views into one
    array written after), ``"ring"`` (a few buffers in turn).
    """
    leaves: dict[str, list[Any]] = defaultdict(list)
    for flat in flats:
        for path, leaf in flat.leaves:
            if path in paths:
                leaves[path].append(leaf)
    notes: list[tuple[str, str]] = []
    for path in sorted(leaves):
        # Hold every array while reading addresses: a temporary copy freed early
        # could hand its address to the next one and fake a shared buffer.
        arrays = [as_array(leaf, path) for leaf in leaves[path]]
        n = len(arrays)
        if n < 2 or any(a.ndim == 0 and a.dtype == object for a in arrays):
            continue
        where = f"all {n} batches" if path == "batch" else f"{path} in all {n} batches"
        buffers = [buffer_of(a) for a in arrays]
        addresses = {address for _, address in buffers}
        owners = {owner for owner, _ in buffers}
        if len(addresses) == 1:
            pattern = "buffer"
        elif len(owners) == 1 and all(a.base is not None for a in arrays):
            pattern = "views"
        elif len(addresses) < n:
            pattern = "ring"
        else:
            continue
        words = say("generator_no_aliasing", "note", pattern, where=where, count=len(addresses))
        notes.append((pattern, words.text))
    return tuple(notes)


assert_generator_no_aliasing = asserting(check_generator_no_aliasing)
