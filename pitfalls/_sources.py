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

import inspect
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

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
    return len(obj) if hasattr(type(obj), "__len__") else None


def _by_index(obj: Any) -> Iterator[Any]:
    n = batch_count(obj)
    if n is None:
        for i in itertools.count():
            yield obj[i]
        return
    if n == 0:
        return
    while True:
        for i in range(n):
            yield obj[i]
        end = getattr(obj, "on_epoch_end", None)
        if callable(end):
            end()


def open_source(source: Any, name: str = "source") -> Iterator[Any]:
    """An iterator over the batches of ``source``; TypeError naming ``name`` if none."""
    if isinstance(source, (str, bytes, Mapping)):
        raise TypeError(
            f"{name} must be {_ACCEPTED}; got a {type(source).__name__}"
            + (
                " (a batch, not a source of batches: wrap it in a list)"
                if isinstance(source, Mapping)
                else ""
            )
        )
    if isinstance(source, Iterator):
        return source
    if inspect.isclass(source):
        try:
            inspect.signature(source).bind()
        except TypeError as exc:
            raise TypeError(
                f"{name} is the class {source.__qualname__}, which cannot be made"
                f" without arguments ({exc}); pass an instance or a factory"
            ) from None
        except ValueError:  # no signature to inspect: just call it
            pass
        return _open_made(source(), name, f"{source.__qualname__}()")
    if is_indexable(source):
        return _by_index(source)
    if hasattr(type(source), "__iter__"):
        return iter(source)
    if callable(source):
        try:
            inspect.signature(source).bind()
        except TypeError as exc:
            raise TypeError(
                f"{name} is {_callable_name(source)}, a callable that needs arguments ({exc});"
                " pass a zero-argument factory, e.g. functools.partial or a lambda"
            ) from None
        except ValueError:  # no signature to inspect (some builtins): just call it
            pass
        return _open_made(source(), name, f"{_callable_name(source)}()")
    raise TypeError(f"{name} must be {_ACCEPTED}; got {type(source).__qualname__}")


def _open_made(made: Any, name: str, call: str) -> Iterator[Any]:
    if isinstance(made, Iterator):
        return made
    if is_indexable(made):
        return _by_index(made)
    if hasattr(type(made), "__iter__") and not isinstance(made, (str, bytes)):
        return iter(made)
    raise TypeError(
        f"{name}: calling {call} returned {type(made).__qualname__}, which is not"
        " an iterator, an iterable or an indexable batch source"
    )


def _callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def check_draws(draws: Any, minimum: int = 2) -> int:
    """Validate the ``draws`` option: an int of at least ``minimum``."""
    if isinstance(draws, bool) or not isinstance(draws, int):
        raise TypeError(f"draws must be an int, got {type(draws).__name__} {draws!r}")
    if draws < minimum:
        raise ValueError(
            f"draws={draws} is too small: at least {minimum} batches are needed to see"
            " a batch change as the source advances"
        )
    return draws


def check_timeout(timeout: Any) -> float | None:
    """Validate the ``timeout`` option: None or a positive number of seconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be > 0 seconds")
    return float(timeout)


def _next_within(batches: Iterator[Any], timeout: float, index: int) -> Any:
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["batch"] = next(batches)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"pitfalls-draw-{index}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(
            f"source did not yield batch {index} within {timeout:g} s: it waits for"
            " something that never comes (a queue whose worker died, a lock, a socket);"
            " the draw was abandoned, its thread left waiting"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["batch"]


def draw(batches: Iterator[Any], index: int, draws: int, timeout: float | None = None) -> Any:
    """The next batch; a ValueError if the source ends early, with a note if it raises.

    With ``timeout``, ``next()`` runs in a helper thread and a source that takes
    longer raises ``TimeoutError`` naming the batch.
    """
    try:
        return next(batches) if timeout is None else _next_within(batches, timeout, index)
    except StopIteration:
        raise ValueError(
            f"source stopped after {index} batches, but draws={draws} were asked for;"
            f" pass draws={index} or fewer, or a source that yields more batches"
            + (" (at least 2 are needed)" if index < 2 else "")
        ) from None
    except TimeoutError:
        raise
    except Exception as exc:
        add_note(exc, f"pitfalls: raised by the source while drawing batch {index}")
        raise


def add_note(exc: BaseException, note: str) -> None:
    """PEP 678 note where the Python has it (3.11+)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
