"""Shapes that silently broadcast: ``(n,)`` against ``(n, 1)`` becomes ``(n, n)``.

Numpy only: shapes are read from ``.shape`` (numpy arrays, TensorFlow, torch
and JAX tensors, Keras symbolic tensors, with ``None`` for unknown sizes) or
from nested lists via ``numpy.shape``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from pitfalls import _validate as validate
from pitfalls._boundary import asserting, checker
from pitfalls._report import (
    BroadcastError,
    Cause,
    Finding,
    Report,
    safe_repr,
)
from pitfalls._sources import noted
from pitfalls._words import say

Shape = tuple[int | None, ...]
F = TypeVar("F", bound=Callable[..., Any])


def shape_of(value: Any, name: str) -> Shape | None:
    """The shape of ``value`` with None for unknown sizes; None when even the rank is unknown."""
    if value is None or isinstance(value, (str, bytes, Mapping, set, frozenset)):
        raise TypeError(
            f"{name} must be an array, a tensor or a nested list of numbers;"
            f" got {'None' if value is None else type(value).__qualname__ + ' ' + safe_repr(value)}"
        )
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, np.ndarray) and not callable(shape):
        try:
            dims = list(shape)
        except (TypeError, ValueError):  # tf.TensorShape of unknown rank
            return None
        return tuple(None if d is None else int(d) for d in dims)
    try:
        return tuple(int(d) for d in np.shape(value))
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} has no shape: {exc}") from None
    except Exception as exc:  # an __array__ that raises
        raise TypeError(
            f"{name}: cannot read {type(value).__qualname__} as an array"
            f" ({type(exc).__name__}: {exc})"
        ) from exc


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy's broadcasting rule, with None (unknown) dims; None if it would raise."""
    out: list[int | None] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or x == y or y is None:
            out.append(x)
        elif x is None:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def _same(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _count(shape: Shape) -> int | None:
    return None if None in shape else math.prod(shape)  # type: ignore[arg-type]


def check_no_broadcast(y_true: Any, y_pred: Any) -> Report:
    """Would an elementwise ``y_true - y_pred`` broadcast or reshape either?

    Passes only when the two shapes are equal (unknown sizes, None, match
    anything). ``(n,)`` against ``(n, 1)`` fails, and so does ``(1,)`` against
    ``(1, 1)``, where the element count hides the bug at batch size 1.
    """
    a, b = shape_of(y_true, "y_true"), shape_of(y_pred, "y_pred")
    params = {
        "y_true": "?" if a is None else str(a),
        "y_pred": "?" if b is None else str(b),
    }
    if a is None or b is None or _same(a, b):
        known = a is not None and b is not None
        summary = say("no_broadcast", "passed", None if known else "unknown").text
        return Report(check="no_broadcast", parameters=params, summary=summary)
    joint = _broadcast(a, b)
    if joint is None:
        problem = f"shapes {a} and {b} do not broadcast: the operation would raise"
    else:
        meant, got = _count(b), _count(joint)
        problem = f"broadcasts to {joint}"
        if meant is not None and got is not None:
            problem += f": {got} elements where {meant} were meant"
            if got == meant:
                problem += " (equal only because a size is 1: (n, n) for larger n)"
    words = say("no_broadcast", Cause.BROADCAST, "raises" if joint is None else None)
    return Report(
        check="no_broadcast",
        cause=Cause.BROADCAST,
        parameters=params,
        findings=(Finding(path="y_true - y_pred", problem=problem),),
        reason=words.text,
        hint=words.hint,
    )


assert_no_broadcast = asserting(check_no_broadcast)


def strict_loss(fn: F) -> F:
    """Make a loss raise instead of broadcasting: a strict mode for custom training code.

    Wraps ``fn(y_true, y_pred, ...)`` (or a method ``call(self, y_true,
    y_pred, ...)``, as in a ``keras.losses.Loss`` subclass) so that every call
    first checks the two shapes with :func:`check_no_broadcast` and raises
    :class:`BroadcastError` on a mismatch. Inside ``tf.function`` the check
    runs once, at trace time, on static shapes (``None`` matches anything).
    Use it as a decorator::

        @strict_loss
        def mse(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_true - y_pred))
    """
    if not callable(fn):
        raise TypeError(f"strict_loss wraps a loss function, got {type(fn).__qualname__}")
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    params = list(inspect.signature(target).parameters)
    skip = 1 if params[:1] == ["self"] and inspect.isfunction(fn) else 0
    name = getattr(fn, "__qualname__", type(fn).__qualname__)

    @functools.wraps(fn)
    def strict(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        rest = list(args[skip:])
        if len(rest) < sum(key not in kwargs for key in ("y_true", "y_pred")):
            raise TypeError(f"{name} needs y_true and y_pred, got {len(rest)} arguments")
        y_true = kwargs["y_true"] if "y_true" in kwargs else rest.pop(0)
        y_pred = kwargs["y_pred"] if "y_pred" in kwargs else rest.pop(0)
        report = check_no_broadcast(y_true, y_pred)
        if not report.ok:
            raise BroadcastError(report, f"raised by strict_loss around {name}")
        return fn(*args, **kwargs)

    return strict  # type: ignore[return-value]


# Predictions -----------------------------------------------------------------------


def _rows(x: Any) -> int:
    first = x
    while isinstance(first, (dict, list, tuple)) and first:
        first = next(iter(first.values())) if isinstance(first, dict) else first[0]
    shape = shape_of(first, "x")
    if not shape or shape[0] is None:
        raise ValueError("x must be an array (or a list or dict of arrays) with a batch axis")
    return shape[0]


def _declared(model: Any) -> list[Shape]:
    shape = getattr(model, "output_shape", None)
    if shape is None:
        raise ValueError(
            f"{type(model).__qualname__} declares no output_shape: pass expected=, e.g."
            " expected=(None, 1) for one output per sample"
        )
    if isinstance(shape, Mapping):  # a functional model with named outputs
        shape = list(shape.values())
    if isinstance(shape, list):
        return [tuple(s) for s in shape]
    return [tuple(shape)]


def _as_expected(expected: Any) -> list[Shape]:
    if isinstance(expected, list):
        return [_as_expected(e)[0] for e in expected]
    if not isinstance(expected, tuple) or not all(
        d is None or (validate.is_int(d) and d >= 0) for d in expected
    ):
        raise TypeError(
            f"expected must be a shape tuple of ints and None (or a list of them), got {expected!r}"
        )
    return [tuple(None if d is None else int(d) for d in expected)]


@checker
def check_prediction_shape(model: Any, x: Any, *, expected: Any = None) -> Report:
    """Does ``model`` predict the shape it declares, with the batch size filled in?

    ``model.predict(x)`` is used where the model has it (Keras), else
    ``model(x)``. By default the expected shape is ``model.output_shape`` with
    its batch axis set to the number of rows of ``x``: a ``Lambda`` that
    declares ``output_shape=(1,)`` and returns ``(n,)`` fails. ``expected``
    overrides it: a tuple such as ``(None, 1)`` (None matches any size), or a
    list of tuples for a model with several outputs.
    """
    n = _rows(x)
    if expected is None:
        declared = _declared(model)
        shapes = [(n if s and s[0] is None else s[0], *s[1:]) if s else s for s in declared]
        params = {"declared": _fmt_many(declared), "rows": n}
    else:
        shapes = _as_expected(expected)
        params = {"expected": _fmt_many(shapes)}
    call = "model.predict(x)" if hasattr(model, "predict") else "model(x)"
    with noted(f"pitfalls: raised by {call}"):
        pred = model.predict(x, verbose=0) if hasattr(model, "predict") else model(x)
    paths = ["prediction"] if len(shapes) == 1 else [f"prediction[{i}]" for i in range(len(shapes))]
    if isinstance(pred, Mapping):  # named outputs, sorted by name as Keras flattens them
        paths = [f"prediction[{name!r}]" for name in sorted(pred)]
        pred = [pred[name] for name in sorted(pred)]
    outputs: Sequence[Any] = pred if isinstance(pred, (list, tuple)) else [pred]
    if len(outputs) != len(shapes):
        raise ValueError(
            f"{call} returned {len(outputs)} outputs, but {len(shapes)} shapes are expected"
        )
    findings = []
    for out, want, path in zip(outputs, shapes, paths):
        got = shape_of(out, "prediction")
        if got is None or not _same(got, want):
            findings.append(
                Finding(
                    path=path,
                    problem=f"{call} returned shape {got or ()}, expected {want}",
                )
            )
    returned = _fmt_many([shape_of(o, "prediction") or () for o in outputs])
    verdict = Cause.PREDICTION_SHAPE if findings else "passed"
    words = say("prediction_shape", verdict, call=call, shapes=returned)
    return Report(
        check="prediction_shape",
        cause=Cause.PREDICTION_SHAPE,
        parameters=params,
        findings=tuple(findings),
        reason=words.text if findings else "",
        hint=words.hint,
        summary=words.text,
    )


def _fmt_many(shapes: Sequence[Shape]) -> str:
    return str(shapes[0]) if len(shapes) == 1 else str(list(shapes))


assert_prediction_shape = asserting(check_prediction_shape)
