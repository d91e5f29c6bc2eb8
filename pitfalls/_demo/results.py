"""What ``pitfalls demo`` measured: frozen, keyword-only data, rendered elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pitfalls._demo.config import DemoConfig
from pitfalls._report import Report


@dataclass(frozen=True, kw_only=True)
class NextNextRow:
    """The article's ``print(next(it), next(it))`` at batch size 1, for one variant.

    The pairs are as printed, after both draws: a buffer refilled by the
    second draw shows the second batch's inputs in the first pair.
    """

    variant: str
    kind: str
    """``"buggy"`` or ``"fixed"``."""
    first_inputs: tuple[float, ...]
    first_target: float
    second_inputs: tuple[float, ...]
    second_target: float
    consistent: bool
    """The first pair's target is still the mean of the first pair's inputs."""
    overwritten: bool
    """The second draw changed the first pair's memory."""

    @property
    def flagged(self) -> bool:
        """What ``print`` would let a careful reader see: a mismatch or a rewritten pair."""
        return self.overwritten or not self.consistent


@dataclass(frozen=True, kw_only=True)
class CheckerRow:
    """The shared runner's reports (``check_source``) on one generator variant."""

    variant: str
    kind: str
    reports: tuple[Report, ...]

    def report(self, check: str) -> Report:
        """The report of ``check``, e.g. ``"generator_no_aliasing"``."""
        return next(r for r in self.reports if r.check == check)


@dataclass(frozen=True, kw_only=True)
class ReadAheadCount:
    """One variant through ``read_ahead`` at one depth."""

    depth: int
    batches: int
    mismatched: int
    """Batches whose inputs no longer gave their targets when used."""
    overwritten: int
    """Batches whose inputs changed between being yielded and being used."""


@dataclass(frozen=True, kw_only=True)
class ReadAheadRow:
    variant: str
    kind: str
    counts: tuple[ReadAheadCount, ...]

    def at(self, depth: int) -> ReadAheadCount:
        return next(c for c in self.counts if c.depth == depth)


@dataclass(frozen=True, kw_only=True)
class TrainingRun:
    """One variant trained through one consumer."""

    variant: str
    kind: str
    losses: tuple[float, ...]
    """Mean training loss per epoch."""
    prediction: float
    """The model's output for the article's point (73, 57); the truth is 65."""
    mismatched: int | None = None
    """Batches the optimizer saw whose inputs no longer gave their targets (pitfall 1)."""
    batches: int | None = None
    """Batches the optimizer saw (pitfall 1)."""


@dataclass(frozen=True, kw_only=True)
class Consumer:
    """A way of training (Keras 3 fit, a GradientTape loop, ...) and its runs, buggy and fixed."""

    key: str
    """A short stable name: ``fit_generator``, ``fit_pydataset``, ``tape_read_ahead``,
    ``tf_keras_fit``, ``tape_shapes``."""
    title: str
    """What a reader calls it, e.g. ``Keras 3 fit(generator)``."""
    pitfall: int
    deterministic: bool
    """False where the counts depend on thread timing."""
    runs: tuple[TrainingRun, ...]

    def run(self, variant: str) -> TrainingRun:
        return next(r for r in self.runs if r.variant == variant)


@dataclass(frozen=True, kw_only=True)
class PitfallTwo:
    """Pitfall 2's measurements on ``mean_data(samples, seed)``, buggy beside fixed."""

    samples: int
    lambda_buggy_prediction: Any
    """``predict`` of the exact Lambda for (46, 46), as nested lists: ``[46.0]``."""
    lambda_fixed_prediction: Any
    keras_mse_buggy: float
    """``compile(loss="mse")`` on the exact buggy Lambda: Keras 3 reshapes, so 0."""
    keras_mse_fixed: float
    loss_subclass_buggy: float
    """A ``keras.losses.Loss`` subclass on the exact buggy Lambda: 2 Var(y)."""
    loss_subclass_fixed: float
    two_var_y: float
    """2 Var(y) of the data, the loss of an exact model compared with every target."""
    loss_call_independence: tuple[Report, Report]
    """``check_batch_independent`` on the buggy subclass's ``call``: (n,) targets, then (n, 1)."""
    batchnorm_independence: tuple[Report, Report]
    """``check_batch_independent`` on BatchNormalization: training=True, then False."""
    tape_steps: int
    tape_weights_buggy: tuple[float, float, float]
    """The GradientTape loop's (w0, w1, bias) with (n,) targets; (0.5, 0.5, 0) is exact."""
    tape_weights_fixed: tuple[float, float, float]
    numpy_mse_buggy: float
    """``np.mean((y - model.predict(x)) ** 2)`` with (n,) targets, for the fixed loop's model."""
    numpy_mse_fixed: float


@dataclass(frozen=True, kw_only=True)
class EpochMeansRow:
    """Mean input the optimizer saw per epoch of ``fit(PyDataset)``."""

    variant: str
    kind: str
    means: tuple[float, ...]

    @property
    def rewritten(self) -> bool:
        return any(abs(m - self.means[0]) > 1e-6 * abs(self.means[0]) for m in self.means)


@dataclass(frozen=True, kw_only=True)
class EpochOrderRow:
    """The first sample (its row in the data) the optimizer saw per epoch of ``fit(generator)``."""

    variant: str
    kind: str
    first_samples: tuple[int, ...]
    warned: bool
    """Keras warned that ``shuffle=True`` is ignored for a generator."""

    @property
    def reordered(self) -> bool:
        return len(set(self.first_samples)) > 1


@dataclass(frozen=True, kw_only=True)
class ZeroCopyRow:
    """Keras 3 ``fit(generator)`` over one refilled buffer, placed 64-byte aligned or not:
    batches torn inside the training step (tf.data wraps an aligned buffer, copies
    an unaligned one; see :mod:`pitfalls.reproductions.zero_copy`)."""

    aligned: bool
    torn: int
    steps: int


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """Everything ``pitfalls demo`` measured; the text and the figure are drawn from it."""

    config: DemoConfig
    next_next: tuple[NextNextRow, ...]
    checkers: tuple[CheckerRow, ...]
    read_ahead: tuple[ReadAheadRow, ...]
    consumers: tuple[Consumer, ...] = ()
    """The training runs, one entry per consumer; empty without training."""
    pitfall_two: PitfallTwo | None = None
    epoch_means: tuple[EpochMeansRow, ...] = ()
    epoch_orders: tuple[EpochOrderRow, ...] = ()
    zero_copy: tuple[ZeroCopyRow, ...] = ()
    skipped: tuple[str, ...] = ()
    """What was not run, and why."""
    versions: tuple[tuple[str, str], ...] = ()
    """The frameworks trained with, e.g. ``("keras", "3.15.1")``."""
    seconds: float = 0.0
    """Wall time of the training part, framework imports included."""

    def consumer(self, key: str) -> Consumer:
        """The consumer named ``key``; KeyError if it did not run."""
        for consumer in self.consumers:
            if consumer.key == key:
                return consumer
        raise KeyError(f"no consumer {key!r}; ran: {[c.key for c in self.consumers]}")
