"""Batch sources: every way a user may hand batches to a checker.

A source is one of:

* an iterator or generator (drawn from directly: the checker consumes it);
* an iterable such as a list of batches or a ``tf.data.Dataset`` (``iter()``);
* an indexable batch source with ``__getitem__`` and a length, such as
  ``keras.utils.PyDataset`` or ``keras.utils.Sequence``: read by index,
  ``0, 1, 2, ...``; past its end ``on_epoch_end()`` is called and reading
  starts again at 0, as Keras does between epochs;
* a zero-argument callable returning one of those: a generator function, a
  factory, or a class. Pass a factory when the checker must not consume the
  iterator your training will use.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls._report import safe_repr
from pitfalls._words import say

_ACCEPTED = (
    "an iterator, an iterable, an indexable batch source with __getitem__ and"
    " __len__ (like keras.utils.PyDataset), or a zero-argument callable returning one"
)


def is_indexable(obj: Any) -> bool:
    cls = type(obj)
    if not hasattr(cls, "__getitem__"):
        return False
    if hasattr(obj, "on_epoch_end"):  # keras.utils.PyDataset / Sequence protocol
        return True
    return hasattr(cls, "__len__") and not hasattr(cls, "__iter__")


def batch_count(obj: Any) -> int | None:
    """Batches per epoch: ``num_batches`` (PyDataset; None means endless), else ``len``."""
    if hasattr(type(obj), "num_batches"):
        try:
            n = obj.num_batches
        except NotImplementedError:  # PyDataset without __len__ or num_batches
            n = None
        return None if n is None else int(n)
    if not hasattr(type(obj), "__len__"):
        return None
    with noted(f"pitfalls: raised by len() of the source {type(obj).__qualname__}"):
        return len(obj)


def _by_index(obj: Any) -> Iterator[Any]:
    n = batch_count(obj)
    while n != 0:  # an endless source (n is None) is read on in its first epoch
        for i in itertools.count() if n is None else range(n):
            yield obj[i]
        end = getattr(obj, "on_epoch_end", None)
        if callable(end):
            end()


@dataclass(frozen=True)
class Source:
    """A source resolved once: what batches are read from, and how to read them again.

    ``kind`` is ``"generator"`` or ``"iterator"`` (read once, consumed),
    ``"indexable"`` (``__getitem__`` and a length, read by index with
    ``on_epoch_end()`` between epochs, like Keras' PyDataset) or
    ``"iterable"`` (``iter()`` starts an epoch: a list, a DataLoader, a
    ``tf.data.Dataset``). ``made_by`` is the factory or class that made
    ``obj``, or None when the user passed ``obj`` itself.
    """

    obj: Any
    kind: str
    made_by: Callable[[], Any] | None = None
    name: str = "source"

    @property
    def length(self) -> int | None:
        """Batches per epoch, where the source says (``len``, ``num_batches``)."""
        if self.kind == "indexable":
            return batch_count(self.obj)
        if self.kind == "iterable":
            try:
                return len(self.obj) if hasattr(type(self.obj), "__len__") else None
            except Exception:  # a __len__ that raises (an IterableDataset's DataLoader)
                return None
        return None

    @property
    def roots(self) -> list[tuple[str, Any]]:
        """What the source is made of, each by the name reports give it: the object
        (``self`` where the user's code reads it so, ``source`` for an iterator or a
        generator) and the factory that made it, if any: where its RNGs and data may be."""
        name = "self" if self.kind in ("indexable", "iterable") else "source"
        factory = [("factory", self.made_by)] if self.made_by is not None else []
        return [(name, self.obj), *factory]

    @property
    def rereadable(self) -> bool:
        """Can a second, fresh read be had: a factory to call again, or an object to re-read."""
        return self.made_by is not None or self.kind in ("indexable", "iterable")

    @property
    def description(self) -> str:
        """What was read, as ``<kind> <name>[ made by <call>]``.

        ``"indexable ImageBatches"``, ``"indexable ImageBatches made by
        train_batches()"``, ``"iterable list"``, ``"iterator map"``. A generator
        is named by its function, not by its type: ``"generator batches"`` for
        the object, ``"generator made by batches()"`` when the function itself
        was passed (its name would only repeat the call's), ``"generator
        batches made by <lambda>()"``. A partial with bound arguments reads
        ``batches(...)``; a callable object, ``MakeBatches.__call__()``.
        """
        call = None if self.made_by is None else _call_text(self.made_by)
        name = _object_name(self.obj)
        maker = str(getattr(unwrapped(self.made_by)[0], "__qualname__", ""))
        if self.kind == "generator" and call is not None and maker == name:
            return f"generator made by {call}"
        what = f"{self.kind} {name}"
        return what if call is None else f"{what} made by {call}"

    def batches(self) -> Iterator[Any]:
        """An iterator over the batches: by index (endlessly, epoch after epoch), or one
        ``iter()`` of an iterable (one epoch; see :meth:`stream`)."""
        if self.kind == "indexable":
            return _by_index(self.obj)
        if self.kind == "generator":
            return self.obj
        # an iterator too: a for loop calls iter() first (a loader resets there)
        with noted(f"pitfalls: raised by iter() of the source {type(self.obj).__qualname__}"):
            return iter(self.obj)

    def stream(self) -> Iterator[Any]:
        """Batches epoch after epoch, as training reads them: like :meth:`batches`, but a
        finite iterable (a list, a DataLoader) is started again with ``iter()`` at its end."""
        if self.kind == "iterable":
            return _iterations(self.obj)
        return self.batches()

    def fresh(self) -> Source:
        """The same source made again by its factory; itself when it has none."""
        if self.made_by is None:
            return self
        return resolve(self.made_by, self.name)


def restarts_itself(obj: Any) -> bool:
    """An iterator whose class defines ``__iter__`` in Python: a loader that starts an
    epoch there (reshuffles, resets its position), as every ``for`` loop over it calls
    it; a generator's or a builtin iterator's ``iter()`` only returns itself."""
    return isinstance(obj, Iterator) and inspect.isfunction(getattr(type(obj), "__iter__", None))


def _iterations(obj: Any) -> Iterator[Any]:
    while True:
        empty = True
        for batch in obj:
            empty = False
            yield batch
        if empty:
            return


def _kind(obj: Any) -> str | None:
    if inspect.isgenerator(obj):
        return "generator"
    if hasattr(obj, "on_epoch_end") and is_indexable(obj):
        # the Keras Sequence protocol first: Keras reads such an object by index, epoch
        # by epoch, even where it is an iterator too (ImageDataGenerator.flow's Iterator)
        return "indexable"
    if isinstance(obj, Iterator):
        return "iterator"
    if is_indexable(obj):
        return "indexable"
    if hasattr(type(obj), "__iter__"):
        return "iterable"
    return None


def article(noun: str) -> str:
    vowel = noun[:1].lower() in "aeiou" or noun.startswith("nd")  # an ndarray
    return ("an " if vowel else "a ") + noun


def _refuse_data(obj: Any, name: str, made: str = "") -> None:
    """A TypeError saying why ``obj`` is not a source of batches, when it is data: text, a
    dict (a batch), an array or the ``(x, y)`` that ``fit`` takes."""
    got = f"{name} must be {_ACCEPTED}; {made or 'got '}{article(type(obj).__qualname__)}"
    if isinstance(obj, (str, bytes)):
        raise TypeError(got)
    if isinstance(obj, Mapping):
        raise TypeError(f"{got}: a batch, not a source of batches (wrap it in a list)")
    if _is_data(obj):
        sizes = " and ".join(str(len(part)) for part in obj)
        raise TypeError(
            f"{got} of {len(obj)} arrays of {sizes} rows: data, as fit(x, y) takes it, not a"
            " source of batches; pass what cuts it into batches (your generator function,"
            " PyDataset or DataLoader), or, to check that data as Keras would batch it, the"
            " batches themselves: [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]"
        )
    if _is_array(obj) and (isinstance(obj, np.ndarray) or not is_indexable(obj)):
        raise TypeError(
            f"{got}: an array is a dataset, not a source of batches (iterating it gives rows,"
            " one at a time); pass the generator, PyDataset or DataLoader that cuts it into"
            " batches, or [array] for one batch"
        )


def _is_data(obj: Any) -> bool:
    """``(x, y)`` or ``(x, y, sample_weight)``: 2 or 3 arrays with one number of rows, the
    data ``fit(x, y)`` takes, handed where a source of batches belongs."""
    if type(obj) is not tuple or len(obj) not in (2, 3):
        return False
    if not all(_is_array(part) and getattr(part, "ndim", 0) >= 1 for part in obj):
        return False
    return len({len(part) for part in obj}) == 1


def _is_array(obj: Any) -> bool:
    """Does ``obj`` convert to an array (numpy's protocols, DLPack): a tensor of any library.

    ``_refuse_data`` refuses such an object unless it declares the batch-source
    protocol (an indexable with ``on_epoch_end``, or ``__getitem__`` and ``__len__``
    without ``__iter__``, which every array library's tensor defines), such as a
    PyDataset that also converts to an array; an ndarray is refused always.
    """
    return (
        hasattr(obj, "__array__")
        or hasattr(obj, "__array_interface__")
        or hasattr(obj, "__array_struct__")
        or hasattr(obj, "__dlpack__")
    ) and not isinstance(obj, (list, tuple))


_MADE: list[list[tuple[Any, Any]]] = []
"""The persistent torch DataLoaders factories returned during each check under way
(innermost last), each with the worker pool (its ``_iterator``) it had then; see
:func:`made_closed`."""


@contextlib.contextmanager
def made_closed() -> Iterator[None]:
    """On exit, stop the persistent worker processes that the check started in the torch
    DataLoaders its factories returned (``persistent_workers=True``; a pool the loader had
    already, a factory handing back the user's loader, is left running): left to the
    garbage collector, a loader held in a reference cycle is collected at some later
    time, maybe in a forked child process, where torch's shutdown fails noisily ("can
    only test a child process")."""
    _MADE.append([])
    try:
        yield
    finally:
        for made, before in _MADE.pop():
            frameworks.torch.stop_pool(made, before)


def resolve(source: Any, name: str = "source") -> Source:
    """Resolve ``source`` once: call a factory or class, and classify what it gives.

    What a factory returns is treated exactly like that object passed directly.
    Raises TypeError naming ``name`` for anything that is not a source.
    """
    if isinstance(source, Source):
        return source
    if inspect.isclass(source):  # a class makes the source: judge what calling it returns
        kind = None
    else:
        _refuse_data(source, name)
        kind = _kind(source)
    if kind is not None:
        return Source(source, kind, None, name)
    if not callable(source):
        raise TypeError(f"{name} must be {_ACCEPTED}; got {type(source).__qualname__}")
    label = (
        f"the class {source.__qualname__}"
        if inspect.isclass(source)
        else f"{_callable_name(source)}, a callable"
    )
    try:
        inspect.signature(source).bind()
    except TypeError as exc:
        raise TypeError(
            f"{name} is {label} that needs arguments ({exc}); pass an instance or a"
            " zero-argument factory (functools.partial or a lambda)"
        ) from None
    except ValueError:  # no signature to inspect (some builtins): just call it
        pass
    with noted(f"pitfalls: raised by the source factory {_call_text(source)}"):
        made = source()
    frameworks.tfdata.keep_if_from_hf(made)  # letting it go would delete the user's HF dataset
    if _MADE and frameworks.torch.persistent(made):
        _MADE[-1].append((made, frameworks.torch.pool(made)))  # with the pool it had
    call = f"calling {_call_text(source)} returned "
    _refuse_data(made, name, call)
    kind = _kind(made)
    if kind is None:
        raise TypeError(
            f"{name}: {call}{article(type(made).__qualname__)}, which is not an iterator, an"
            " iterable or an indexable batch source"
        )
    return Source(made, kind, source, name)


def open_source(source: Any, name: str = "source") -> Iterator[Any]:
    """An iterator over the batches of ``source``; TypeError naming ``name`` if none."""
    return resolve(source, name).batches()


def unwrapped(fn: Any) -> tuple[Any, bool]:
    """The callable under any ``functools.partial``, and whether a partial binds arguments."""
    bound = False
    while isinstance(fn, functools.partial):
        bound = bound or bool(fn.args or fn.keywords)
        fn = fn.func
    return fn, bound


def _callable_name(fn: Callable[..., Any]) -> str:
    """``batches``, ``Loader``, ``C.make``; a partial by its function; a callable object
    (which has no name of its own) by its class's ``__call__``."""
    inner, _ = unwrapped(fn)  # partial(batches, data, 32) names batches
    name = getattr(inner, "__qualname__", None)
    return name if isinstance(name, str) else f"{type(inner).__qualname__}.__call__"


def _call_text(fn: Callable[..., Any]) -> str:
    """The call pitfalls made: ``batches()``, or ``batches(...)`` for a partial that binds
    arguments (``partial(batches, data, 32)``)."""
    return f"{_callable_name(fn)}({'...' if unwrapped(fn)[1] else ''})"


def _object_name(obj: Any) -> str:
    """A generator by its function (``batches``, ``<genexpr>``); anything else by its type."""
    if inspect.isgenerator(obj):
        return str(getattr(obj, "__qualname__", None) or obj.__name__)
    return type(obj).__qualname__


def call_within(
    fn: Callable[[], Any], timeout: float | None, what: str, note: str = "", memory: str = ""
) -> Any:
    """``fn()``; with ``timeout``, in a helper thread, raising TimeoutError after that long.

    ``what`` completes "source did not ... within N s", e.g. "yield batch 3". An
    exception ``fn`` raises goes on with ``note`` added, and ``memory`` instead on a
    MemoryError, where given (see :func:`noted`); the TimeoutError gets none.
    A call that times out is abandoned: its daemon thread is left waiting.
    """
    if note:
        fn = functools.partial(_noted_call, fn, note, memory)
    if timeout is None:
        return fn()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"pitfalls: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(
            f"source did not {what} within {timeout:g} s: it waits for something that"
            " never comes (a queue whose worker died, a lock, a socket); the call was"
            " abandoned, its thread left waiting"
        )
    if "error" in outcome:
        # taken out: left in outcome, which this frame and the worker's hold, the error
        # would hold its traceback, which holds those frames (a cycle keeping the source,
        # and a DataLoader's worker processes, alive until the garbage collector ran)
        raise outcome.pop("error")
    return outcome["value"]


def _noted_call(fn: Callable[[], Any], note: str, memory: str) -> Any:
    with noted(note, memory):
        return fn()


def drawn(
    batches: Iterator[Any], source: Source, draws: int, timeout: float | None
) -> Iterator[Any]:
    """Up to ``draws`` batches of ``batches``, read from ``source``; one that ends after 2
    or more is read whole (:func:`ended_notes` says so). A ValueError if it ends sooner,
    saying why (an iterator already consumed, an empty factory's iterator, an empty
    container); an exception it raises comes through with a note naming the batch.

    With ``timeout``, each ``next()`` runs in a helper thread and a source that takes
    longer raises ``TimeoutError`` naming the batch.
    """
    for index in range(draws):
        consumed = (
            index == 0
            and inspect.isgenerator(batches)
            and inspect.getgeneratorstate(batches) == inspect.GEN_CLOSED
        )
        try:
            batch = call_within(
                lambda: next(batches),
                timeout,
                f"yield batch {index}",
                f"pitfalls: raised by the source while drawing batch {index}",
                f"pitfalls: memory ran out while drawing batch {index} of the source",
            )
        except StopIteration:
            if index >= 2:
                return
            raise ValueError(_stopped(index, draws, source, consumed)) from None
        yield batch


def ended_notes(read: int, asked: int) -> tuple[str, ...]:
    """The note of a check that read a short source whole, if it did."""
    if read == asked:
        return ()
    return (say("common", "note", "ended", read=read, asked=asked).text,)


def no_array_in(batches: list[Any]) -> None:
    """A ValueError when no batch drawn holds an array: a source of None or text (a check
    of it would pass, having compared nothing)."""
    if batches and all(holds_nothing(batch) for batch in batches):
        first = batches[0]
        raise ValueError(
            f"none of the {len(batches)} batches drawn holds an array (batch 0 is"
            f" {type(first).__qualname__} {safe_repr(first)}): a source must yield batches of"
            " arrays (inputs, or (inputs, targets)); one of None or text has nothing to check"
        )


def holds_nothing(batch: Any, depth: int = 0) -> bool:
    """Nothing but None, text and empty containers, nested (a batch of no data)."""
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)) and depth < 8:
        return all(holds_nothing(item, depth + 1) for item in batch)
    return batch is None or isinstance(batch, (str, bytes))


def _stopped(index: int, draws: int, source: Source, consumed: bool) -> str:
    """Why a source gave fewer than 2 batches, and what to pass instead."""
    head = (
        f"source stopped after {index} batch{'es' if index != 1 else ''}, but draws={draws}"
        " were asked for"
    )
    if index == 1:
        return f"{head}; at least 2 are needed: pass a source that yields more"
    by = "(by list(), a for loop or an earlier check)"
    fix = (
        "; pass a factory instead, the generator function itself or lambda: iter(batches),"
        " so that every check reads a fresh one"
    )
    if consumed:
        return f"{head}: the generator was already consumed {by}{fix}"
    if source.kind not in ("generator", "iterator"):
        return f"{head}: the source is empty; at least 2 batches are needed"
    if source.made_by is not None:
        return (
            f"{head}: calling {_call_text(source.made_by)} returned an empty {source.kind};"
            " at least 2 batches are needed"
        )
    return f"{head}: the {source.kind} is empty, or was already consumed {by}{fix}"


@contextlib.contextmanager
def noted(note: str, memory: str = "") -> Iterator[None]:
    """Add ``note`` (:func:`add_note`) to an exception raised inside, which goes on.

    ``memory``, where given, is added to a MemoryError instead: the check holds what it
    read too, so running out is not blamed on the code that was running. StopIteration,
    an end rather than an error, goes on as it is.
    """
    try:
        yield
    except StopIteration:
        raise
    except MemoryError as exc:
        add_note(exc, memory or note)
        raise
    except Exception as exc:
        add_note(exc, note)
        raise


def add_note(exc: BaseException, note: str) -> None:
    """Add a PEP 678 note to ``exc``, as ``add_note`` does on 3.11+ (pytest 8 and the
    ``exceptiongroup`` backport show ``__notes__`` on 3.10 too). An exception type that
    takes no attributes, or whose ``__notes__`` is no list, gets no note."""
    if getattr(exc, "__notes__", None) is None:
        with contextlib.suppress(AttributeError):
            exc.__notes__ = []  # type: ignore[attr-defined]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes.append(note)
