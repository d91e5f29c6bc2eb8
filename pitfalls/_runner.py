"""One runner for the source checks: the pytest fixture, the command line and the demo call it.

:func:`check_source` resolves a source once (a class, a factory, an
instance, an iterable, an iterator) and runs every check that applies to it,
so that every entry point gives the same verdicts on the same source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS, check_generator_no_aliasing
from pitfalls._boundary import asserting, checker
from pitfalls._complete import check_epoch_complete
from pitfalls._order import check_order_shuffled
from pitfalls._randomness import Randomness
from pitfalls._repeatable import check_epoch_repeatable
from pitfalls._report import Cause, Report
from pitfalls._sources import Source, resolve
from pitfalls._stability import check_index_stable
from pitfalls._targets import targets_report
from pitfalls._words import say


def _read_once(check: str, source: Source, parameters: dict[str, Any]) -> Report:
    """The report of a check that a source read only once cannot feed."""
    return Report(
        check=check,
        parameters=parameters,
        cause=Cause.NOT_RUN,
        inconclusive=say("common", Cause.NOT_RUN, source_kind=source.kind).text,
        source=source.description,
    )


@checker
def check_source(
    source: Any,
    target_fn: Callable[[Any], Any] | None = None,
    *,
    draws: int = DEFAULT_DRAWS,
    timeout: float | None = validate.DEFAULT_TIMEOUT,
    epochs: bool | None = None,
    shuffled: bool = False,
    steps_per_epoch: int | None = None,
    unpack: Callable[[Any], tuple[Any, Any]] | None = None,
    reseed: Callable[[int], Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    dataset: Any = None,
) -> tuple[Report, ...]:
    """Run every data check that applies to ``source``; one report each, in a fixed order.

    1. :func:`check_generator_no_aliasing`, always;
    2. :func:`check_targets_match` when ``target_fn`` is given;
    3. :func:`check_index_stable` for an indexable source (a ``PyDataset``);
    4. :func:`check_epoch_repeatable` when ``epochs`` is True, or, by default
       (None), when the source can be read for two epochs: it has a length or
       ``steps_per_epoch`` is given, and it can be read again;
    5. :func:`check_order_shuffled` when ``shuffled`` is True (the source
       should reorder its samples every epoch: training data);
    6. :func:`check_epoch_complete` when ``dataset`` is given (the samples an
       epoch must deliver, each once: what workers sharing a source drop or
       repeat).

    ``source`` is resolved once: a class is instantiated, a factory called,
    and what it returns is treated exactly like that object passed directly;
    each check reads a fresh copy where the factory can make one. A bare
    iterator feeds the first check only; the others then say they could not
    run (pass a factory). ``timeout`` bounds every read; ``unpack`` splits a
    batch into ``(inputs, targets)`` where the batch convention cannot;
    ``rtol`` and ``atol`` are check 2's tolerances (None: by dtype, see
    :func:`check_targets_match`). When check 1 fails and check 2 finds targets
    wrong as soon as they were yielded, check 2's report says that the inputs
    may have been overwritten before they were compared, and to fix the
    aliasing first.

    Random augmentation is allowed: checks 3-5 reseed every RNG they can reach
    alike before each read they compare, and call ``reseed(seed)`` for the
    generators they cannot (see :func:`check_index_stable`); where randomness
    still hides the comparison, their report is inconclusive, never passed.
    Every RNG is left as it was found, including what checks 1-2 drew.
    """
    draws = validate.draws(draws)
    timeout = validate.timeout("timeout", timeout)
    target_fn = validate.optional_function("target_fn", target_fn)
    rtol = validate.optional_tolerance("rtol", rtol)
    atol = validate.optional_tolerance("atol", atol)
    epochs = validate.optional_flag("epochs", epochs)
    shuffled = validate.flag("shuffled", shuffled)
    steps_per_epoch = validate.optional_integer("steps_per_epoch", steps_per_epoch, minimum=1)
    unpack = validate.optional_function("unpack", unpack)
    reseed = validate.optional_function("reseed", reseed)
    first = resolve(source)
    epoch: dict[str, Any] = {"steps_per_epoch": steps_per_epoch}
    options: dict[str, Any] = {**epoch, "timeout": timeout, "unpack": unpack}
    with Randomness([("self", first.obj)]):  # every RNG left as the checks found it
        aliasing = check_generator_no_aliasing(first, draws=draws, timeout=timeout)
        # the other checks: each its parameters (said when it cannot run) and its call
        checks: dict[str, tuple[dict[str, Any], Callable[[Source], Report]]] = {}
        if target_fn is not None:
            checks["targets_match"] = (
                {"target_fn": target_fn, "draws": draws, "rtol": rtol, "atol": atol},
                lambda src: targets_report(
                    src,
                    target_fn,
                    draws=draws,
                    rtol=rtol,
                    atol=atol,
                    timeout=timeout,
                    unpack=unpack,
                    aliasing=aliasing,  # a failure there is evidence for this report's reason
                ),
            )
        if first.kind == "indexable":  # (an indexable source can always be read again)
            checks["index_stable"] = (
                {},
                lambda src: check_index_stable(src, draws=draws, timeout=timeout, reseed=reseed),
            )
        has_epochs = steps_per_epoch is not None or (
            first.length is not None and first.kind in ("indexable", "iterable")
        )
        if epochs or (epochs is None and has_epochs):
            checks["epoch_repeatable"] = (
                epoch,
                lambda src: check_epoch_repeatable(src, **options, reseed=reseed),
            )
        if shuffled:
            checks["order_shuffled"] = (
                epoch,
                lambda src: check_order_shuffled(src, **options, reseed=reseed),
            )
        if dataset is not None:
            checks["epoch_complete"] = (
                epoch,
                lambda src: check_epoch_complete(src, dataset, **options),
            )
        reports = [aliasing]
        for check, (parameters, run) in checks.items():  # each on a fresh copy of the source
            if first.rereadable:
                reports.append(run(first.fresh()))
            else:
                reports.append(_read_once(check, first, dict(parameters)))
        return tuple(reports)


assert_source = asserting(check_source)
