"""What ``pitfalls demo`` measures: one frozen configuration."""

from __future__ import annotations

from dataclasses import dataclass

from pitfalls import _validate as validate
from pitfalls._aliasing import DEFAULT_DRAWS

PITFALLS = (1, 2)
"""The article's two pitfalls: 1, a re-yielded buffer; 2, a (n,) output against (n, 1) targets."""


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Every option of ``pitfalls demo`` that changes what is measured.

    The defaults: 5 epochs of 100 steps at batch size 64, RMSprop at 0.01, a
    read-ahead of 2 batches; they finish in under 30 s on 2 cores (bench/run.py
    --demo measures it). The fixed runs converge within the first epoch.
    """

    pitfalls: tuple[int, ...] = PITFALLS
    """Which pitfalls to train: 1, 2 or both."""
    batch_size: int = 64
    """Samples per batch, everywhere (the article's 64)."""
    epochs: int = 5
    """Epochs of every training run."""
    steps: int = 100
    """Steps per epoch of every pitfall-1 run."""
    learning_rate: float = 0.01
    """RMSprop's learning rate in the pitfall-1 runs."""
    depth: int = 2
    """Read-ahead of the GradientTape loop: batch i is trained on after i + depth was drawn."""
    workers: int = 2
    """Worker threads of the PyDataset run."""
    batches: int = 200
    """Batches per count of the numpy read-ahead table."""
    draws: int = DEFAULT_DRAWS
    """Batches each checker draws."""
    depths: tuple[int, ...] = (0, 1, 2, 10)
    """Read-ahead depths of the numpy table."""
    seed: int = 0
    """Seeds the data, the models and Keras."""
    train: bool = True
    """False: the numpy part alone, without importing a framework (``--no-train``)."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "steps", "workers", "batches"):
            validate.integer(name, getattr(self, name), minimum=1)
        validate.integer("depth", self.depth, minimum=0)
        validate.draws(self.draws)
        validate.seed("seed", self.seed)
        validate.number("learning_rate", self.learning_rate, positive=True)
        validate.flag("train", self.train)
        for name, minimum in (("pitfalls", 1), ("depths", 0)):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)) or not values:
                raise TypeError(f"{name} must be a non-empty tuple of ints, got {values!r}")
            for value in values:
                validate.integer(name, value, minimum=minimum)
            object.__setattr__(self, name, tuple(int(v) for v in values))
        unknown = sorted(set(self.pitfalls) - set(PITFALLS))
        if unknown:
            raise ValueError(f"pitfalls={self.pitfalls!r}: choose from 1 and 2, not {unknown}")
