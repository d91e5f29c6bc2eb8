"""Does the output for one sample depend on other samples of the batch?

The check from "use backprop to chart dependencies" (Karpathy's recipe),
done by perturbation so that it needs no framework: change sample j alone and
see which outputs move. Per-sample outputs of a model, or per-sample losses,
must move only at j. A ``(n,)`` against ``(n, 1)`` broadcast in a loss moves
all of them, and so does a batch-mixing layer (BatchNormalization in training
mode), without the checker knowing any shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls._report import BatchDependenceError, Finding, Report
from pitfalls._targets import check_tolerance

DEFAULT_SAMPLES = 8


def _call(fn: Any, x: np.ndarray, y: Any, training: bool | None) -> np.ndarray:
    kwargs = {} if training is None else {"training": training}
    out = fn(x, **kwargs) if y is None else fn(y, x, **kwargs)
    if isinstance(out, (list, tuple)):
        raise ValueError("fn returned several outputs; check one output at a time")
    return np.asarray(out)


def _perturbed(x: np.ndarray, j: int, rng: np.random.Generator) -> np.ndarray:
    out = x.copy()
    if x.dtype.kind in "fc":
        scale = float(np.nanstd(x)) + 1.0
        out[j] = x[j] + rng.normal(scale=scale, size=x[j].shape).astype(x.dtype)
    else:  # integers (token ids, labels): another value that stays in range
        out[j] = np.where(x[j] == x.max(), x.min(), x[j] + 1) if x.size else x[j]
    return out


def check_batch_independent(
    fn: Callable[..., Any],
    x: Any,
    y: Any = None,
    *,
    samples: int = DEFAULT_SAMPLES,
    training: bool | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Report:
    """Perturb samples one at a time; report outputs of *other* samples that move.

    ``fn(x)`` (a model) or, with ``y``, ``fn(y, x)`` (a loss, ``loss(y_true,
    y_pred)``, with ``x`` the predictions) must return one value or row per
    sample, batch on axis 0: use ``reduction=None`` or a Loss's ``call``, not a
    reduced scalar. With ``y`` the targets are perturbed too, since a ``(n,)``
    target against a ``(n, 1)`` output mixes the targets. ``training`` is
    passed to ``fn`` when given (BatchNormalization mixes samples only with
    ``training=True``). The first ``samples`` samples are perturbed (all, if
    fewer), each by seeded noise of the data's scale (integers: by one step).
    Outputs compare with ``numpy.isclose(rtol, atol)``.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__qualname__}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r} must be an int >= 1")
    rtol, atol = check_tolerance("rtol", rtol), check_tolerance("atol", atol)
    xa = np.asarray(x)
    if xa.ndim == 0 or len(xa) < 2:
        raise ValueError(
            f"x must hold a batch of at least 2 samples on axis 0, got shape {xa.shape}"
        )
    n = len(xa)
    base = _call(fn, xa, y, training)
    if base.ndim == 0 or base.shape[0] != n:
        raise ValueError(
            f"fn returned shape {base.shape} for a batch of {n}: one output per sample is"
            " needed (a loss with reduction=None, or a Loss's call), batch on axis 0"
        )
    rng = np.random.default_rng(seed)
    probes = [("x", xa)]
    if y is not None:  # a loss: targets may mix samples too (the GradientTape case)
        ya = np.asarray(y)
        if ya.ndim >= 1 and len(ya) == n:
            probes.append(("y", ya))
    findings = []
    for name, values in probes:
        for j in range(min(samples, n)):
            changed = _perturbed(values, j, rng)
            moved = (
                _call(fn, changed, y, training) if name == "x" else _call(fn, xa, changed, training)
            )
            same = np.isclose(moved, base, rtol=rtol, atol=atol, equal_nan=True)
            same = same.reshape(n, -1).all(axis=1)
            others = [i for i in range(n) if i != j and not same[i]]
            if not others:
                continue
            first = tuple(((i,), _summary(base[i]), _summary(moved[i])) for i in others[:3])
            findings.append(
                Finding(
                    None,
                    f"{name}[{j}]",
                    "perturbed",
                    len(others),
                    n - 1,
                    first,
                    f"changing it moved the outputs of {len(others)} / {n - 1} other samples"
                    + (" (first values shown)" if base[0].size > 1 else ""),
                )
            )
    params = f"samples={min(samples, n)} of {n}" + (
        "" if training is None else f", training={training}"
    )
    return Report(
        "batch_independent",
        params,
        0,
        tuple(findings),
        reason=(
            "The output for one sample depends on other samples of the batch, so each"
            " sample's gradient leaks into the others: a (n,) against (n, 1) broadcast"
            " in the loss, or a batch-mixing layer such as BatchNormalization in training"
            " mode, or a reduction over axis 0."
        ),
        hint=(
            "give targets the output's shape (np.reshape(y, pred.shape)); evaluate with"
            " training=False where per-sample results are expected; reduce over the batch"
            " only after the per-sample loss."
        ),
        columns=("output before", "after"),
        summary=f"perturbing {min(samples, n)} samples moved no other sample's output",
    )


def _summary(row: Any) -> Any:
    """A sample's output as one number: itself, or its first value."""
    return np.asarray(row).ravel()[0] if np.size(row) else None


def assert_batch_independent(
    fn: Callable[..., Any],
    x: Any,
    y: Any = None,
    *,
    samples: int = DEFAULT_SAMPLES,
    training: bool | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    msg: str | None = None,
) -> None:
    """Fail when an output of one sample depends on another sample of the batch.

    See :func:`check_batch_independent`. Raises :class:`BatchDependenceError`;
    ``msg`` is appended.

    >>> import numpy as np
    >>> def per_sample_mse(y_true, y_pred):  # y_true (n, 1), y_pred (n,): broadcasts
    ...     return np.mean((y_true - y_pred) ** 2, axis=-1)
    >>> assert_batch_independent(per_sample_mse, np.zeros(4), np.zeros((4, 1)))
    Traceback (most recent call last):
    ...
    pitfalls.BatchDependenceError: batch_independent(samples=4 of 4) failed
    ...
    """
    __tracebackhide__ = True
    report = check_batch_independent(
        fn, x, y, samples=samples, training=training, seed=seed, rtol=rtol, atol=atol
    )
    if not report.ok:
        raise BatchDependenceError(report, msg)
