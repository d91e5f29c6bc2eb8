"""``run_demo``: measure everything ``pitfalls demo`` shows, into a :class:`DemoResult`.

The numpy part needs no framework. The training part imports Keras 3 and
TensorFlow (and tf_keras, if installed) only when it runs.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from pitfalls._demo.config import DemoConfig
from pitfalls._demo.results import (
    CheckerRow,
    Consumer,
    DemoResult,
    EpochMeansRow,
    EpochOrderRow,
    NextNextRow,
    PitfallTwo,
    ReadAheadCount,
    ReadAheadRow,
    TrainingRun,
    ZeroCopyRow,
)
from pitfalls._independence import check_batch_independent
from pitfalls._readahead import read_ahead
from pitfalls._runner import check_source
from pitfalls.reproductions import generators as gen

Progress = Callable[[str, int, int, str], None]
"""Called as ``progress(phase, done, total, what)``: of ``phase``'s ``total`` units
(a step, or an epoch of a training run), ``done`` are finished and ``what`` is under
way; the last call of a phase has ``done == total``. The phases come in order, each
once: :data:`PHASES` names them."""

PHASES = (
    "numpy part",
    "importing Keras",
    "pitfall 1 trained",
    "pitfall 2",
    "beyond the article",
    "zero-copy",
)

Variant = Callable[..., Iterator[Any]]

VARIANTS: tuple[tuple[Variant, str], ...] = (
    *((v, "buggy") for v in gen.BUGGY),
    *((v, "fixed") for v in gen.FIXED),
)
"""Every generator of pitfall 1, for the numpy part."""

TRAINED: tuple[tuple[Variant, str], ...] = (
    (gen.shared_input_buffer, "buggy"),
    (gen.shared_input_and_target_buffers, "buggy"),
    (gen.fresh_per_yield, "fixed"),
    (gen.copy_on_yield, "fixed"),
)
"""The article's four generators, trained through every consumer."""

PYDATASETS = ((gen.pydataset_shared_buffer, "buggy"), (gen.pydataset_fresh, "fixed"))
BEYOND_MEANS = (("scaled_in_place", "buggy"), ("scaled_copy", "fixed"))
BEYOND_ORDER = (("same_order_every_epoch", "buggy"), ("reshuffled_every_epoch", "fixed"))


class _Steps:
    """Counts the units of one phase at a time for ``progress``."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.phase, self.total, self.done = progress, "", 0, 0

    def begin(self, phase: str, total: int) -> None:
        """Start ``phase``, of ``total`` units (the last phase is ended first)."""
        self.end()
        self.phase, self.total, self.done = phase, total, 0

    def start(self, what: str, epochs: int = 1) -> Callable[[int], None]:
        """Begin the next ``epochs`` units; returns an ``on_epoch`` that reports each."""
        base = self.done
        self.done += epochs
        self.say(base, what)
        if epochs == 1:
            return lambda epoch: None
        return lambda epoch: self.say(base + epoch - 1, f"{what}, epoch {epoch}/{epochs}")

    def end(self) -> None:
        """End the phase under way, if any: its units are all done."""
        if self.phase:
            self.say(self.total, "")
            self.phase = ""

    def say(self, done: int, what: str) -> None:
        if self.progress is not None:
            self.progress(self.phase, done, self.total, what)


# The numpy part ---------------------------------------------------------------------


def next_next(variant: Variant, kind: str, seed: int) -> NextNextRow:
    """The article's ``print(next(it), next(it))`` at batch size 1."""
    it = variant(1, seed=seed, form="pair")
    x1, y1 = next(it)
    as_yielded = x1.copy()
    x2, y2 = next(it)
    return NextNextRow(
        variant=variant.__name__,
        kind=kind,
        first_inputs=tuple(float(v) for v in x1.ravel()),
        first_target=float(y1[0]),
        second_inputs=tuple(float(v) for v in x2.ravel()),
        second_target=float(y2[0]),
        consistent=bool(np.allclose(gen.mean_target(x1), y1)),
        overwritten=not np.array_equal(x1, as_yielded),
    )


def checker_row(variant: Variant, kind: str, config: DemoConfig) -> CheckerRow:
    """The shared runner on a factory of ``variant``, with its target rule."""

    def factory() -> Iterator[Any]:
        return variant(config.batch_size, seed=config.seed)

    factory.__name__ = variant.__name__
    reports = check_source(factory, gen.mean_target, draws=config.draws)
    return CheckerRow(variant=variant.__name__, kind=kind, reports=reports)


def read_ahead_count(variant: Variant, depth: int, config: DemoConfig) -> ReadAheadCount:
    """Pairs mismatched, and inputs overwritten, when batch i is used after i + depth was drawn."""

    def with_copies() -> Iterator[Any]:
        for x, y in variant(config.batch_size, seed=config.seed, form="pair"):
            yield x, y, x.copy()

    mismatched = overwritten = 0
    stream = read_ahead(with_copies(), depth)
    for _, (x, y, as_yielded) in zip(range(config.batches), stream):
        mismatched += not np.allclose(gen.mean_target(x), y)
        overwritten += not np.array_equal(x, as_yielded)
    return ReadAheadCount(
        depth=depth, batches=config.batches, mismatched=mismatched, overwritten=overwritten
    )


# The training part ------------------------------------------------------------------


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _version(module: str) -> str:
    return str(getattr(sys.modules.get(module), "__version__", "?"))


def _pitfall_one(keras: Any, config: DemoConfig, steps: _Steps, tf_keras: bool) -> list[Consumer]:
    from pitfalls._demo import training

    def generator(variant: Variant) -> Callable[[], Any]:
        return lambda: variant(config.batch_size, seed=config.seed, form="pair")

    def pydataset(factory: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: factory(
            config.batch_size, seed=config.seed, batches=config.steps, workers=config.workers
        )

    generators = [(v.__name__, kind, generator(v)) for v, kind in TRAINED]
    pydatasets = [(f.__name__, kind, pydataset(f)) for f, kind in PYDATASETS]
    trainers: dict[str, Callable[[], Callable[[Any, Any], training.Fit]]] = {
        "keras": lambda: training.KerasFit(keras, config),
        "tape": lambda: training.TapeLoop(keras, config),
        "tf_keras": lambda: training.TfKerasFit(config),
    }
    plan = [  # (key, title, deterministic, sources, trainer)
        ("fit_generator", "Keras 3 fit(generator)", False, generators, "keras"),
        (
            "fit_pydataset",
            f"Keras 3 fit(PyDataset, workers={config.workers})",
            False,
            pydatasets,
            "keras",
        ),
        (
            "tape_read_ahead",
            f"GradientTape loop + read_ahead(depth={config.depth})",
            True,
            generators,
            "tape",
        ),
    ]
    if tf_keras:
        title = "tf_keras fit(generator, workers=1, max_queue_size=10)"
        plan.append(("tf_keras_fit", title, False, generators, "tf_keras"))
    built: dict[str, Callable[[Any, Any], training.Fit]] = {}  # each traced once, then reused
    consumers = []
    steps.begin(PHASES[2], sum(len(p[3]) for p in plan) * config.epochs)
    for key, title, deterministic, sources, trainer in plan:
        runs = []
        for name, kind, source in sources:
            on_epoch = steps.start(f"{title}: {name}", config.epochs)
            if trainer not in built:
                built[trainer] = trainers[trainer]()
            fitted = built[trainer](source(), on_epoch)
            runs.append(TrainingRun(variant=name, kind=kind, **fitted._asdict()))
        consumers.append(
            Consumer(key=key, title=title, pitfall=1, deterministic=deterministic, runs=tuple(runs))
        )
    return consumers


def _pitfall_two(keras: Any, config: DemoConfig, steps: _Steps) -> tuple[PitfallTwo, Consumer]:
    from pitfalls._demo import training
    from pitfalls.reproductions import independence, shapes

    keras.utils.set_random_seed(config.seed)
    x, y = shapes.mean_data(config.batch_size * 16, seed=config.seed)
    steps.begin(PHASES[3], 3)
    steps.start("shapes, losses, batch independence")
    buggy, fixed = shapes.lambda_mean_buggy(), shapes.lambda_mean_fixed()
    point = np.array([[46.0, 46.0]], dtype=np.float32)
    loss_call_fn = shapes.mse_loss_subclass_buggy().call
    few_x, few_y = x[:16], y[:16]
    batchnorm_model = independence.batchnorm_model(config.seed)
    predictions = [m.predict(point, verbose=0).tolist() for m in (buggy, fixed)]
    keras_mse = [shapes.keras_mse(m, x, y) for m in (buggy, fixed)]
    subclass = [
        shapes.loss_subclass_mse(buggy, loss, x, y)
        for loss in (shapes.mse_loss_subclass_buggy(), shapes.mse_loss_subclass_fixed())
    ]
    loss_call = (
        check_batch_independent(loss_call_fn, few_y, few_y[:, None]),
        check_batch_independent(loss_call_fn, few_y[:, None], few_y[:, None]),
    )
    batchnorm = (
        check_batch_independent(batchnorm_model, few_x, training=True),
        check_batch_independent(batchnorm_model, few_x, training=False),
    )
    tape_steps = 60 * config.epochs
    runs, models = [], {}
    for train, kind in (
        (shapes.gradient_tape_buggy, "buggy"),
        (shapes.gradient_tape_fixed, "fixed"),
    ):
        steps.start(f"GradientTape loop, {kind}")
        model, losses = training.fit_tape_shapes(
            train, x, y, epochs=config.epochs, steps=tape_steps, seed=config.seed
        )
        models[kind] = model
        prediction = training.predict_point(model)
        runs.append(
            TrainingRun(variant=train.__name__, kind=kind, losses=losses, prediction=prediction)
        )
    two = PitfallTwo(
        samples=len(x),
        lambda_buggy_prediction=predictions[0],
        lambda_fixed_prediction=predictions[1],
        keras_mse_buggy=keras_mse[0],
        keras_mse_fixed=keras_mse[1],
        loss_subclass_buggy=subclass[0],
        loss_subclass_fixed=subclass[1],
        two_var_y=float(2 * np.var(y.astype(np.float64))),
        loss_call_independence=loss_call,
        batchnorm_independence=batchnorm,
        tape_steps=tape_steps,
        tape_weights_buggy=training.tape_weights(models["buggy"]),
        tape_weights_fixed=training.tape_weights(models["fixed"]),
        numpy_mse_buggy=shapes.numpy_mse_buggy(models["fixed"], x, y),
        numpy_mse_fixed=shapes.numpy_mse_fixed(models["fixed"], x, y),
    )
    consumer = Consumer(
        key="tape_shapes",
        title="GradientTape loop, Adam(0.1), (n,) targets vs (n, 1) outputs",
        pitfall=2,
        deterministic=True,
        runs=tuple(runs),
    )
    return two, consumer


def _beyond(
    keras: Any, config: DemoConfig, steps: _Steps
) -> tuple[tuple[EpochMeansRow, ...], tuple[EpochOrderRow, ...]]:
    from pitfalls._demo import training

    steps.begin(PHASES[4], len(BEYOND_MEANS) + len(BEYOND_ORDER))
    probe = training.EpochProbe(keras, config.seed)  # traced once, used four times
    means = []
    for variant, kind in BEYOND_MEANS:
        steps.start(f"{variant} through fit(PyDataset)")
        values = probe.epoch_means(variant)
        means.append(EpochMeansRow(variant=variant, kind=kind, means=values))
    orders = []
    for variant, kind in BEYOND_ORDER:
        steps.start(f"{variant} through fit(generator, shuffle=True)")
        firsts, warned = probe.first_samples(variant)
        orders.append(
            EpochOrderRow(variant=variant, kind=kind, first_samples=firsts, warned=warned)
        )
    return tuple(means), tuple(orders)


def run_demo(config: DemoConfig | None = None, progress: Progress | None = None) -> DemoResult:
    """Measure what ``pitfalls demo`` shows; ``progress`` hears of each step as it begins.

    With ``config.train`` False (``--no-train``), or without Keras 3 and
    TensorFlow, only the numpy part runs and no framework is imported.
    """
    config = DemoConfig() if config is None else config
    if not isinstance(config, DemoConfig):
        raise TypeError(f"config must be a DemoConfig, got {type(config).__name__}")
    trainable = config.train and _has("keras") and _has("tensorflow")
    tf_keras = trainable and 1 in config.pitfalls and _has("tf_keras")
    steps = _Steps(progress)

    steps.begin(PHASES[0], 3)
    steps.start("the article's print(next(it), next(it))")
    next_rows = tuple(next_next(v, kind, config.seed) for v, kind in VARIANTS)
    steps.start(f"the checkers, draws={config.draws}")
    checkers = tuple(checker_row(v, kind, config) for v, kind in VARIANTS)
    steps.start(f"read_ahead at depths {', '.join(map(str, config.depths))}")
    counts = tuple(
        ReadAheadRow(
            variant=v.__name__,
            kind=kind,
            counts=tuple(read_ahead_count(v, d, config) for d in config.depths),
        )
        for v, kind in VARIANTS
    )
    numpy_part = DemoResult(
        config=config, next_next=next_rows, checkers=checkers, read_ahead=counts
    )
    steps.end()
    if not config.train:
        return numpy_part
    if not trainable:
        reason = "training (Keras 3 and TensorFlow are not installed: pip install tensorflow keras)"
        return replace(numpy_part, skipped=(reason,))

    start = time.perf_counter()
    from pitfalls._demo import training

    steps.begin(PHASES[1], 1)
    steps.start("TensorFlow and Keras 3")
    keras = training.import_keras()
    skipped = []
    consumers: list[Consumer] = []
    two = None
    if 1 in config.pitfalls:
        consumers += _pitfall_one(keras, config, steps, tf_keras)
        if not tf_keras:
            skipped.append(
                "tf_keras fit (tf_keras is not installed: pip install tf-keras to compare"
                " with the article's Keras 2 queue)"
            )
    if 2 in config.pitfalls:
        two, tape = _pitfall_two(keras, config, steps)
        consumers.append(tape)
    means, orders = _beyond(keras, config, steps)
    torn: tuple[ZeroCopyRow, ...] = ()
    if 1 in config.pitfalls:
        from pitfalls.reproductions import zero_copy

        steps.begin(PHASES[5], 2)
        rows = []
        for aligned in (False, True):
            steps.start(f"fit(generator) over an {'' if aligned else 'un'}aligned buffer")
            mismatches = zero_copy.keras_fit_mismatches(
                aligned, config.steps, batch_size=config.batch_size, seed=config.seed
            )
            rows.append(ZeroCopyRow(aligned=aligned, torn=mismatches, steps=config.steps))
        torn = tuple(rows)
    steps.end()
    used = ("numpy", "tensorflow", "keras") + (("tf_keras",) if tf_keras else ())
    return replace(
        numpy_part,
        consumers=tuple(consumers),
        pitfall_two=two,
        epoch_means=means,
        epoch_orders=orders,
        zero_copy=torn,
        skipped=tuple(skipped),
        versions=tuple((name, _version(name)) for name in used),
        seconds=time.perf_counter() - start,
    )
