"""Does the output for one sample depend on other samples of the batch?

The check from "use backprop to chart dependencies" (Karpathy's recipe),
done by perturbation so that it needs no framework: change sample j alone and
see which outputs move. Per-sample outputs of a model, or per-sample losses,
must move only at j. A ``(n,)`` against ``(n, 1)`` broadcast in a loss moves
all of them, and so does a batch-mixing layer (BatchNormalization in training
mode), without the checker knowing any shape.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from pitfalls import _frameworks as frameworks
from pitfalls import _validate as validate
from pitfalls._boundary import asserting, checker
from pitfalls._report import MAX_SHOWN, Cause, Finding, Location, Report
from pitfalls._sources import noted
from pitfalls._tree import LeafError, as_array
from pitfalls._words import say

DEFAULT_PERTURBED = 8


def _call(fn: Any, args: list[Any], training: bool | None, when: str) -> np.ndarray:
    kwargs = {} if training is None else {"training": training}
    with noted(f"pitfalls: raised by fn on {when}"):
        out = fn(*args, **kwargs)
    if isinstance(out, (list, tuple, dict)):
        raise ValueError("fn returned several outputs; check one output at a time")
    try:
        return np.array(as_array(out, "fn's output"), copy=True)
    except LeafError as exc:
        raise TypeError(
            f"fn returned {type(out).__qualname__}, which numpy cannot read: {exc}"
        ) from None


def _perturbed(x: np.ndarray, j: int, rng: np.random.Generator) -> np.ndarray:
    out = x.copy()
    if x.dtype.kind in "fc":
        scale = float(np.nanstd(x)) + 1.0 if x.size else 1.0
        out[j] = x[j] + rng.normal(scale=scale, size=x[j].shape).astype(x.dtype)
    elif x.dtype.kind == "b":
        out[j] = ~x[j]
    elif x.dtype.kind in "iu":  # token ids, labels: another value that stays in range
        out[j] = np.where(x[j] == x.max(), x.min(), x[j] + 1) if x.size else x[j]
    else:
        raise TypeError(
            f"cannot perturb an array of dtype {x.dtype}: pass numbers (floats, ints, bools)"
        )
    return out


def _argument_names(fn: Any, count: int) -> list[str]:
    """The names of fn's first ``count`` positional parameters, for paths like ``y_true[0]``."""
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count:
        return params[:count]
    return ["x"] if count == 1 else [f"args[{k}]" for k in range(count)]


def _batch_arrays(args: tuple[Any, ...]) -> list[np.ndarray]:
    if not args:
        raise TypeError("pass fn's arguments after it: check_batch_independent(model, x)")
    arrays = []
    for k, arg in enumerate(args):
        try:
            arrays.append(np.asarray(arg))
        except Exception as exc:
            raise TypeError(
                f"argument {k + 1} after fn is not an array ({type(exc).__name__}: {exc})"
            ) from None
    shapes = [a.shape for a in arrays]
    if any(a.ndim == 0 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError(f"fn's arguments must all hold one batch on axis 0, got shapes {shapes}")
    if arrays[0].shape[0] < 2:
        raise ValueError(f"the batch must hold at least 2 samples, got shapes {shapes}")
    return arrays


@checker
def check_batch_independent(
    fn: Callable[..., Any],
    *args: Any,
    max_perturbed: int = DEFAULT_PERTURBED,
    training: bool | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Report:
    """Perturb samples one at a time; report outputs of *other* samples that move.

    ``fn(*args)`` is called exactly as written: ``check_batch_independent(model,
    x)`` calls ``model(x)``, ``check_batch_independent(loss, y_true, y_pred)``
    calls ``loss(y_true, y_pred)``. Every argument holds one batch on axis 0,
    and ``fn`` must return one value or row per sample: use ``reduction=None``
    or a Loss's ``call``, not a reduced scalar. Each argument is perturbed in
    turn, sample by sample (a ``(n,)`` target against a ``(n, 1)`` output
    mixes the targets, not the predictions). ``training`` is passed to ``fn``
    when given (BatchNormalization mixes samples only with ``training=True``).
    The first ``max_perturbed`` samples are perturbed (all, if fewer), each by
    seeded noise of the data's scale (integers: by one step). Outputs compare
    with ``numpy.isclose(rtol, atol)``.
    """
    fn = validate.function("fn", fn)
    max_perturbed = validate.integer("max_perturbed", max_perturbed, minimum=1)
    training = validate.optional_flag("training", training)
    seed = validate.seed("seed", seed)
    rtol, atol = validate.tolerance("rtol", rtol), validate.tolerance("atol", atol)
    arrays = _batch_arrays(args)
    n = arrays[0].shape[0]
    base = _call(fn, list(args), training, "the batch as given")
    if base.ndim == 0 or base.shape[0] != n:
        raise ValueError(
            f"fn returned shape {base.shape} for a batch of {n}: one output per sample is"
            " needed (a loss with reduction=None, or a Loss's call), batch on axis 0"
        )
    rng = np.random.default_rng(seed)
    perturbed = min(max_perturbed, n)
    findings = []
    names = _argument_names(fn, len(arrays))
    for k, (name, values) in enumerate(zip(names, arrays)):
        for j in range(perturbed):
            changed = list(args)  # only argument k, sample j perturbed
            # as the kind of tensor the user passed: fn sees what its training loop gives it
            changed[k] = frameworks.tensor_like(_perturbed(values, j, rng), args[k])
            moved = _call(fn, changed, training, f"the batch with {name}[{j}] perturbed")
            same = np.isclose(moved, base, rtol=rtol, atol=atol, equal_nan=True)
            same = same.reshape(n, -1).all(axis=1)
            others = [i for i in range(n) if i != j and not same[i]]
            if not others:
                continue
            first = tuple(
                Location((i,), _summary(base[i]), _summary(moved[i])) for i in others[:MAX_SHOWN]
            )
            findings.append(
                Finding(
                    path=f"{name}[{j}]",
                    when="perturbed",
                    mismatched=len(others),
                    total=n - 1,
                    locations=first,
                    problem=f"changing it moved the outputs of {len(others)} / {n - 1} other"
                    " samples" + (" (first values shown)" if base[0].size > 1 else ""),
                )
            )
    parameters: dict[str, Any] = {"max_perturbed": perturbed, "batch": n}
    if training is not None:
        parameters["training"] = training
    words = say("batch_independent", Cause.BATCH_DEPENDENCE)
    return Report(
        cause=Cause.BATCH_DEPENDENCE,
        check="batch_independent",
        parameters=parameters,
        findings=tuple(findings),
        reason=words.text,
        hint=words.hint,
        columns=("output before", "after"),
        summary=say("batch_independent", "passed", perturbed=perturbed).text,
    )


def _summary(row: Any) -> Any:
    """A sample's output as one number: itself, or its first value."""
    return np.asarray(row).ravel()[0] if np.size(row) else None


assert_batch_independent = asserting(check_batch_independent)
