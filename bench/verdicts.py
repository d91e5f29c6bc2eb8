"""Every verdict the checks give on the lessons, one JSON line each, to compare versions.

    PYTHONPATH=/path/to/a/checkout .venv/bin/python bench/verdicts.py > verdicts.jsonl

Runs every applicable check on every reproduction variant (each ``PAIRS`` entry of
each ``pitfalls.reproductions`` module, the extra variants the modules define, in
the forms the suite reads them) and on the cases of ``tests/test_evidence.py``,
rebuilt here. Prints one line per (module, variant, check)::

    {"module": ..., "variant": ..., "role": "buggy" | "correct", "check": ...,
     "status": ..., "cause": ..., "message": ..., "blame": {...} | null, ...}

``check`` is ``source/<name>`` for a report of ``check_source`` and ``<name>`` for a
check called on its own. ``status`` is ``error`` (with the exception) when a check
raised, ``skipped`` when the variant needs a framework that is not installed.
``timing: true`` marks the few verdicts that may depend on thread timing (worker
processes filling shared memory); everything else is seeded before every case.

The ``pitfalls`` imported is whichever comes first on ``sys.path``: set PYTHONPATH
to the checkout to judge (its path is printed on stderr). ``--only MODULE ...``
runs some modules only; ``--compare OLD.jsonl NEW.jsonl`` prints, as Markdown, every
verdict that changed between two runs, the counts, and every blamed line of a report
failed in both that moved or disappeared. The frameworks are imported in an order that keeps forking
safe: forked workers first, then torch's, then JAX and TensorFlow.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import pitfalls
from pitfalls.reproductions import epochs as E
from pitfalls.reproductions import generators as G
from pitfalls.reproductions import independence as IND
from pitfalls.reproductions import pipelines as P
from pitfalls.reproductions import shapes as S
from pitfalls.reproductions import targets as T
from pitfalls.reproductions import workers as W

TIMEOUT = 120.0  # seconds, on every source check that takes one: a hang is a verdict too
Reports = list[tuple[str, Any]]  # (check label, Report)


def _seed(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _source(source: Any, target_fn: Any = None, **options: Any) -> Reports:
    try:
        reports = pitfalls.check_source(source, target_fn, timeout=TIMEOUT, **options)
    except Exception as exc:  # a check that raised: its verdict is the exception
        return [("source/*", exc)]
    return [(f"source/{r.check}", r) for r in reports]


def _alone(label: str, call: Callable[[], Any]) -> Reports:
    try:
        return [(label, call())]
    except Exception as exc:
        return [(label, exc)]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def _blame(report: Any) -> dict[str, Any] | None:
    blame = getattr(report, "blame", None)
    if blame is None:
        return None
    frames = getattr(blame, "frames", ())
    top = frames[0] if frames else None
    file = getattr(top, "file", "") if top else ""
    for part in ("pitfalls", "bench"):  # the same file in two checkouts: compare from there
        if part + os.sep in file:
            file = file[file.rindex(part + os.sep) :]
            break
    return {
        "found": bool(frames),
        "file": file or None,
        "line": getattr(top, "line", None) if top else None,
        "function": getattr(top, "function", None) if top else None,
        "code": getattr(top, "code", None) if top else None,
        "reason": _first_line(getattr(blame, "reason", "")),
    }


def _record(case: dict[str, Any], label: str, report: Any) -> dict[str, Any]:
    if isinstance(report, Exception):
        error = _first_line(f"{type(report).__name__}: {report}")
        return {**case, "check": label, "status": "error", "error": error}
    cause = getattr(report, "cause", None)
    return {
        **case,
        "check": label,
        "status": report.status,
        "cause": None if cause is None else str(getattr(cause, "value", cause)),
        "message": _first_line(str(report)),
        "reason": _first_line(getattr(report, "reason", "")) if report.status == "failed" else "",
        "inconclusive": _first_line(getattr(report, "inconclusive", "")),
        "notes": [_first_line(n) for n in getattr(report, "notes", ())],
        "findings": [f"{f.batch}:{f.path}" for f in report.findings][:5],
        "blame": _blame(report),
    }


CASES: list[tuple[dict[str, Any], str | None, Callable[[], Reports]]] = []


def case(module: str, variant: str, role: str, *, needs: str | None = None, timing: bool = False):
    """Register ``fn() -> [(label, Report)]`` for one variant; ``needs`` a framework."""

    def add(fn: Callable[[], Reports]) -> Callable[[], Reports]:
        info: dict[str, Any] = {"module": module, "variant": variant, "role": role}
        if timing:
            info["timing"] = True
        CASES.append((info, needs, fn))
        return fn

    return add


def role_of(fn: Any, pairs: Any) -> str:
    buggy = {b for b, _ in pairs}
    return "buggy" if fn in buggy else "correct"


def unique(pairs: Any) -> list[Any]:
    return list(dict.fromkeys(v for pair in pairs for v in pair))


# Forked workers first: nothing but numpy imported yet --------------------------------

WORKER_X = np.zeros(4)
for init in unique(W.PAIRS[1:]):
    case("workers", init.__name__, role_of(init, W.PAIRS))(
        functools.partial(
            lambda init: _alone(
                "worker_randomness",
                lambda: pitfalls.check_worker_randomness(
                    lambda: W.augment_with_global_rng(WORKER_X), workers=3, worker_init=init
                ),
            ),
            init,
        )
    )


def _round_robin(cls: type, data: np.ndarray) -> Callable[[], Iterator[Any]]:
    return lambda: iter(W.round_robin(cls(data, 4), 16, 2))  # two workers taking turns


for cls in unique(W.PAIRS[:1]):
    data = np.arange(64 * 2, dtype=np.float64).reshape(64, 2)
    role = role_of(cls, W.PAIRS)

    def run(cls: type = cls, data: np.ndarray = data) -> Reports:
        source = _round_robin(cls, data)
        return [
            *_source(source, epochs=True, steps_per_epoch=16),
            *_alone("epoch_complete", lambda: pitfalls.check_epoch_complete(source(), data)),
        ]

    case("workers", f"{cls.__name__}[round_robin, 2 workers]", role)(run)


# Numpy-only lessons ---------------------------------------------------------------------

for fn in unique(G.PAIRS):
    for form in ("article", "pair"):
        case("generators", f"{fn.__name__}[form={form}]", role_of(fn, G.PAIRS))(
            functools.partial(
                lambda fn, form: _source(
                    functools.partial(fn, 16, seed=0, form=form), G.mean_target
                ),
                fn,
                form,
            )
        )


def _images(seed: int = 0, n: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 4, 4)).astype(np.float32)


def _row_sums(x: Any) -> Any:
    return np.asarray(x).reshape(len(x), -1).sum(axis=1)


for fn in unique(E.PAIRS[:1]):  # one epoch per call: the stored data between epochs

    def run_scaled(fn: Any = fn) -> Reports:
        data = _images()
        return _source(functools.partial(fn, data, 16), _row_sums, draws=4, epochs=True)

    case("epochs", fn.__name__, role_of(fn, E.PAIRS))(run_scaled)

for fn in unique(E.PAIRS[1:]):  # endless: the order between epochs

    def run_order(fn: Any = fn) -> Reports:
        data = _images()
        source = functools.partial(fn, data, 16)
        return [
            *_source(source, _row_sums, shuffled=True, steps_per_epoch=4),
            *_alone(
                "epoch_complete",
                lambda: pitfalls.check_epoch_complete(source, data, steps_per_epoch=4),
            ),
        ]

    case("epochs", fn.__name__, role_of(fn, E.PAIRS))(run_order)

for fn in unique(T.PAIRS):
    case("targets", fn.__name__, role_of(fn, T.PAIRS))(
        functools.partial(lambda fn: _source(functools.partial(fn, 32, seed=0), T.mean_target), fn)
    )

IMAGES, LABELS = P.image_data()


def _pipeline(cls: Any, kind: str) -> Reports:
    """As tests/test_pipelines.py reads them: check_source(source, rule, shuffled=True)."""
    images = IMAGES.copy()  # the in-place bugs write the stored images
    if issubclass(cls, P.BrightnessLoader):
        return _source(cls(images, 4), P.mean_brightness, shuffled=True)
    if kind == "plain":
        source: Any = cls(images, LABELS)
    else:
        made = P.pydataset(cls)
        source = made(images, LABELS) if kind == "PyDataset" else (lambda: made(images, LABELS))
    return _source(source, P.brighter_side, shuffled=True)


for cls in unique(P.PAIRS):
    loader = issubclass(cls, P.BrightnessLoader)
    kinds: tuple[str, ...] = ("loader",) if loader else ("plain", "PyDataset", "factory")
    for kind in kinds:
        case(
            "pipelines",
            f"{cls.__name__}[{kind}]",
            role_of(cls, P.PAIRS),
            needs="keras" if kind in ("PyDataset", "factory") else None,
        )(functools.partial(_pipeline, cls, kind))


# tests/test_evidence.py's cases, rebuilt ------------------------------------------------

N, BATCH = 50, 8


def _data(n: int = N, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(n, features)).astype("float32"), np.arange(n, dtype="float32")


class ShufflingSequence:
    """The much-copied Keras Sequence: floor(n / batch) batches, reshuffled in on_epoch_end."""

    def __init__(self, x: Any, y: Any, batch_size: int = BATCH, rng: str = "global") -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(0) if rng == "self.rng" else None
        self.use = rng
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.floor(len(self.x) / self.batch_size)

    def __getitem__(self, i: int) -> Any:
        idx = self.indexes[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self) -> None:
        self.indexes = np.arange(len(self.x))
        if self.use == "global":
            np.random.shuffle(self.indexes)
        elif self.use == "self.rng":
            assert self.rng is not None
            self.rng.shuffle(self.indexes)
        elif self.use == "random":
            order = list(self.indexes)
            random.shuffle(order)
            self.indexes = np.array(order)


class NoShuffleSequence(ShufflingSequence):
    def on_epoch_end(self) -> None:
        self.indexes = np.arange(len(self.x))


class ReseedingSequence(ShufflingSequence):
    def on_epoch_end(self) -> None:
        self.indexes = np.arange(len(self.x))
        np.random.seed(42)  # the bug: the same permutation every epoch
        np.random.shuffle(self.indexes)


class WritingSequence(ShufflingSequence):
    def __getitem__(self, i: int) -> Any:
        idx = self.indexes[i * self.batch_size : (i + 1) * self.batch_size]
        self.x[idx] *= 1.5  # the bug: preprocessing written into the stored data
        return self.x[idx], self.y[idx]


for rng in ("global", "self.rng", "random"):

    def run_sequence(rng: str = rng) -> Reports:
        x, y = _data()
        reports = _source(lambda: ShufflingSequence(x, y, rng=rng), shuffled=True)
        if rng != "random":
            reports += _alone(
                "epoch_complete",
                lambda: pitfalls.check_epoch_complete(lambda: ShufflingSequence(x, y, rng=rng), x),
            )
        return reports

    case("test_evidence", f"ShufflingSequence[rng={rng}]", "correct")(run_sequence)


@case("test_evidence", "NoShuffleSequence", "buggy")
def _no_shuffle() -> Reports:
    x, y = _data()
    return _source(lambda: NoShuffleSequence(x, y), shuffled=True)


@case("test_evidence", "ReseedingSequence", "buggy")
def _reseeding() -> Reports:
    x, y = _data()
    return _source(lambda: ReseedingSequence(x, y), shuffled=True)


@case("test_evidence", "WritingSequence", "buggy")
def _writing() -> Reports:
    x, y = _data()
    return _source(lambda: WritingSequence(x.copy(), y))


def _in_batch(full: bool) -> Callable[[], Iterator[Any]]:
    x, y = _data(48)
    rng = np.random.default_rng(0)  # made once: each epoch shuffles anew

    def within() -> Iterator[Any]:
        for start in range(0, 48, BATCH):
            order = rng.permutation(BATCH) + start
            yield x[order], y[order]

    def everything() -> Iterator[Any]:
        order = np.random.default_rng().permutation(48)  # unseeded, as the test has it
        for start in range(0, 48, BATCH):
            idx = order[start : start + BATCH]
            yield x[idx], y[idx]

    return everything if full else within


@case("test_evidence", "shuffled only inside each batch", "buggy")
def _within_batch() -> Reports:
    return _alone("order_shuffled", lambda: pitfalls.check_order_shuffled(_in_batch(False)))


@case("test_evidence", "full shuffle (unseeded default_rng)", "correct")
def _full_shuffle() -> Reports:
    return _alone("order_shuffled", lambda: pitfalls.check_order_shuffled(_in_batch(True)))


@case("test_evidence", "locals rebound to new images", "correct")
def _locals_rebound() -> Reports:
    x, y = _data(32, features=1)

    def batches() -> Iterator[Any]:
        rng = np.random.default_rng(3)
        for start in range(0, 32, 4):
            images = []
            for i in range(start, start + 4):
                img = np.full((64, 64), x[i, 0], dtype="float32")
                img = img + rng.normal(scale=0.01, size=img.shape).astype("float32")
                images.append(img)
            yield np.stack(images), y[start : start + 4]

    return _alone("epoch_repeatable", lambda: pitfalls.check_epoch_repeatable(batches))


class FreshRngAugmenting:
    """A PyDataset-like source augmenting with a generator made in ``__getitem__``."""

    def __init__(self, x: Any, y: Any, seeded: bool) -> None:
        self.x, self.y, self.seeded, self.epoch = x, y, seeded, 0

    def __len__(self) -> int:
        return len(self.x) // BATCH

    def __getitem__(self, i: int) -> Any:
        rng = np.random.default_rng((self.epoch, i) if self.seeded else None)
        xb = self.x[i * BATCH : (i + 1) * BATCH]
        noise = rng.normal(scale=0.1, size=xb.shape).astype("float32")
        return xb + noise, self.y[i * BATCH : (i + 1) * BATCH]

    def on_epoch_end(self) -> None:
        self.epoch += 1


for seeded in (False, True):

    def run_fresh(seeded: bool = seeded) -> Reports:
        x, y = _data(48)
        return _source(lambda: FreshRngAugmenting(x, y, seeded))

    name = "seeded from (epoch, index)" if seeded else "unseeded"
    case("test_evidence", f"FreshRngAugmenting[{name}]", "correct")(run_fresh)


@case("test_evidence", "in-place write into 264 MB stored data", "buggy")
def _big_in_place() -> Reports:
    x = np.ones((1032, 64_000), dtype="float32")
    y = np.arange(1032, dtype="float32")

    class Augmenting:
        def __init__(self) -> None:
            self.x, self.y = x, y

        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> Any:
            xb = self.x[i * 8 : (i + 1) * 8]
            xb *= 1.01  # the bug: a view of the stored data scaled in place
            noise = np.random.normal(size=(8, 1)).astype("float32")
            return xb[:, :16] + noise, self.y[i * 8 : (i + 1) * 8]

        def on_epoch_end(self) -> None:
            pass

    reports = _alone("epoch_repeatable", lambda: pitfalls.check_epoch_repeatable(Augmenting))
    return reports


def _refilled(shape: tuple[int, ...], draws: int, reuse: bool) -> Iterator[Any]:
    buf = np.zeros(shape, dtype="float32")
    for i in range(draws):
        if not reuse:
            buf = np.zeros(shape, dtype="float32")
        buf[: shape[0] // 2] = i
        yield buf, np.zeros(shape[0], dtype="float32")


for reuse in (True, False):

    def run_refilled(reuse: bool = reuse) -> Reports:
        shape = (32, 64, 64, 3)
        once = pitfalls.check_generator_no_aliasing(_refilled(shape, 4, reuse), draws=4)
        factory = pitfalls.check_generator_no_aliasing(lambda: _refilled(shape, 4, reuse), draws=4)
        return [("generator_no_aliasing[read once]", once), ("generator_no_aliasing", factory)]

    case("test_evidence", f"big batches refilled[reuse={reuse}]", "buggy" if reuse else "correct")(
        run_refilled
    )


class Counter:
    """``__getitem__`` ignoring its index for a counter."""

    def __init__(self) -> None:
        self.calls = 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> Any:
        self.calls += 1
        return np.full((2, 2), float(self.calls * 10 + i)), np.zeros(2)

    def on_epoch_end(self) -> None:
        pass


@case("test_evidence", "Counter", "buggy")
def _counter() -> Reports:
    return _source(Counter)


def refilled_stream() -> Iterator[Any]:
    """An endless generator re-yielding one buffer (the article's bug)."""
    x = np.zeros((4, 2))
    i = 0
    while True:
        x[:] = i  # the write the blame names
        i += 1
        yield x, x.mean(axis=1)


@case("test_evidence", "refilled_stream", "buggy")
def _refilled_stream() -> Reports:
    return _source(refilled_stream, lambda x: x.mean(axis=1))


# torch's DataLoader (workers fork here, before JAX and TensorFlow are imported) --------

TORCH_DATA = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)


def _row_means(x: Any) -> Any:
    return np.asarray(x).mean(axis=1)


def _loaders() -> Any:
    from pitfalls.reproductions import loaders

    return loaders


def _torch_case(name: str, pair: int, run: Callable[[Any, Any], Reports]) -> None:
    pairs = _loader_pairs()
    for fn_name in pairs[pair]:
        role = "buggy" if fn_name == pairs[pair][0] else "correct"
        timing = name == "collate" and role == "buggy"

        def call(fn_name: str = fn_name) -> Reports:
            loaders = _loaders()
            return run(loaders, getattr(loaders, fn_name))

        case("loaders", fn_name, role, needs="torch", timing=timing)(call)


def _loader_pairs() -> list[tuple[str, str]]:  # names, so that loaders imports no torch here
    return [
        ("iterable_unsharded", "iterable_sharded"),
        ("epoch_on_dataset", "epoch_in_shared_memory"),
        ("rng_copied_into_workers", "rng_seeded_per_worker"),
        ("buffer_on_dataset", "fresh_tensor_per_batch"),
        ("collate_into_one_buffer", "collate_fresh"),
    ]


def _iterable(loaders: Any, fn: Any) -> Reports:
    return [
        *_source(fn(TORCH_DATA, num_workers=2), _row_means, draws=8, epochs=True),
        *_alone(
            "epoch_complete",
            lambda: pitfalls.check_epoch_complete(fn(TORCH_DATA, num_workers=2), TORCH_DATA),
        ),
    ]


def _epoch_state(loaders: Any, fn: Any) -> Reports:
    return [
        *_source(fn(TORCH_DATA, num_workers=2), _row_means, draws=8, epochs=True, shuffled=True),
        *_alone(
            "epoch_complete",
            lambda: pitfalls.check_epoch_complete(fn(TORCH_DATA, num_workers=2), TORCH_DATA),
        ),
    ]


def _rng_workers(loaders: Any, fn: Any) -> Reports:
    loader = fn(TORCH_DATA)
    dataset, init = loader.dataset, loader.worker_init_fn
    return [
        *_source(fn(TORCH_DATA)),
        *_alone(
            "epoch_complete",
            lambda: pitfalls.check_epoch_complete(fn(TORCH_DATA), TORCH_DATA),
        ),
        *_alone(
            "worker_randomness",
            lambda: pitfalls.check_worker_randomness(
                lambda: dataset[0][0], dataset=dataset, worker_init=init
            ),
        ),
    ]


def _buffers(loaders: Any, fn: Any) -> Reports:
    return _source(fn(TORCH_DATA), _row_means, draws=8)


for name, pair, run_loader in (
    ("iterable", 0, _iterable),
    ("epoch", 1, _epoch_state),
    ("rng", 2, _rng_workers),
    ("batch_size=None", 3, _buffers),
    ("collate", 4, _buffers),
):
    _torch_case(name, pair, run_loader)


# JAX and tf.data over a 64-byte aligned buffer ----------------------------------------------


def _zero_copy_mean(x: Any) -> Any:
    return np.asarray(x).mean(axis=1, keepdims=True)


def _zero_copy(fn_name: str, aligned: bool) -> Reports:
    from pitfalls.reproductions import zero_copy

    fn = getattr(zero_copy, fn_name)
    if fn_name.startswith("device_put"):
        return _source(lambda: fn(8, aligned=aligned), _zero_copy_mean, draws=4)
    return _source(fn(aligned=aligned), _zero_copy_mean, draws=4)  # prefetch off: deterministic


for fn_name, role, needs in (
    ("device_put_shared", "buggy", "jax"),
    ("device_put_copied", "correct", "jax"),
    ("from_generator_shared", "buggy", "tensorflow"),
    ("from_generator_copied", "correct", "tensorflow"),
):
    for aligned in (True, False):
        case("zero_copy", f"{fn_name}[aligned={aligned}]", role, needs=needs)(
            functools.partial(_zero_copy, fn_name, aligned)
        )


# Keras: pydatasets, shapes, batch independence --------------------------------------------

for fn in (G.pydataset_shared_buffer, G.pydataset_fresh):
    case(
        "generators",
        f"{fn.__name__}[20 batches]",
        "buggy" if fn is G.pydataset_shared_buffer else "correct",
        needs="keras",
    )(functools.partial(lambda fn: _source(fn(16, batches=20), G.mean_target), fn))


for fn in unique(IND.PAIRS):

    def run_independence(fn: Any = fn) -> Reports:
        model = IND.batchnorm_model()
        x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
        return _alone(
            "batch_independent", lambda: pitfalls.check_batch_independent(lambda a: fn(model, a), x)
        )

    case("independence", fn.__name__, role_of(fn, IND.PAIRS), needs="keras")(run_independence)

for fn in (S.lambda_mean_buggy, S.lambda_mean_fixed):

    def run_lambda(fn: Any = fn) -> Reports:
        x, _ = S.mean_data(64)
        return _alone("prediction_shape", lambda: pitfalls.check_prediction_shape(fn(), x))

    case("shapes", fn.__name__, role_of(fn, S.PAIRS), needs="keras")(run_lambda)

for fn in (S.mse_loss_subclass_buggy, S.mse_loss_subclass_fixed):

    def run_loss(fn: Any = fn) -> Reports:
        x, y = S.mean_data(64)
        loss = fn()
        reports = _alone(  # the fixed Lambda's (n, 1) output against (n, 1) targets
            "batch_independent[Loss.call, (n, 1) vs (n, 1)]",
            lambda: pitfalls.check_batch_independent(loss.call, y[:, None], y[:, None]),
        )
        if fn is S.mse_loss_subclass_buggy:  # the buggy Lambda's (n,): one output per sample
            reports += _alone(
                "batch_independent[Loss.call, (n, 1) vs (n,)]",
                lambda: pitfalls.check_batch_independent(loss.call, y[:, None], y),
            )
        return reports + _alone(  # the mean model fitted to (n,) targets through this loss
            "fits[mean_model, (n,) targets]",
            lambda: pitfalls.check_fits(S.mean_model, x, y, max_loss=1e-3, loss=loss),
        )

    case("shapes", fn.__name__, role_of(fn, S.PAIRS), needs="keras")(run_loss)

for fn in (S.gradient_tape_buggy, S.gradient_tape_fixed):

    def run_tape(fn: Any = fn) -> Reports:
        # the loop's loss inputs, as each variant passes them: y (n,) or y.reshape(-1, 1)
        x, y = S.mean_data(64)
        y_used = y if fn is S.gradient_tape_buggy else np.reshape(y, (-1, 1))
        pred = np.asarray(S.mean_model()(x))
        return _alone(
            "no_broadcast[loop's y, model(x)]", lambda: pitfalls.check_no_broadcast(y_used, pred)
        )

    case("shapes", fn.__name__, role_of(fn, S.PAIRS), needs="keras")(run_tape)

for fn in (S.numpy_mse_buggy, S.numpy_mse_fixed):

    def run_numpy_mse(fn: Any = fn) -> Reports:
        x, y = S.mean_data(64)
        pred = S.mean_model().predict(x, verbose=0)
        y_used = y if fn is S.numpy_mse_buggy else np.reshape(y, pred.shape)
        return _alone(
            "no_broadcast[y, predict(x)]", lambda: pitfalls.check_no_broadcast(y_used, pred)
        )

    case("shapes", fn.__name__, role_of(fn, S.PAIRS), needs="keras")(run_numpy_mse)


def _flow(shuffle: bool) -> Callable[[], Any]:
    import tf_keras

    x = np.random.default_rng(0).normal(size=(40, 4, 4, 1)).astype("float32")
    gen = tf_keras.preprocessing.image.ImageDataGenerator()
    return lambda: gen.flow(x, np.arange(40.0), batch_size=8, shuffle=shuffle, seed=None)


for shuffle in (True, False):
    case(
        "test_evidence",
        f"ImageDataGenerator.flow[shuffle={shuffle}]",
        "correct" if shuffle else "buggy",
        needs="tf_keras",
    )(functools.partial(lambda shuffle: _source(_flow(shuffle), shuffled=True), shuffle))


@case("test_evidence", "TimeseriesGenerator[shuffle=True]", "correct", needs="tf_keras")
def _timeseries() -> Reports:
    import tf_keras

    data = np.arange(100.0).reshape(50, 2)
    series = tf_keras.preprocessing.sequence.TimeseriesGenerator(
        data, data[:, 0], length=5, batch_size=8, shuffle=True
    )
    return _alone("order_shuffled", lambda: pitfalls.check_order_shuffled(series))


# Running ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", metavar="MODULE", help="run these modules only")
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), help="compare two runs")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    print(f"pitfalls from {os.path.dirname(pitfalls.__file__)}", file=sys.stderr)
    start = time.monotonic()
    rank = {None: 0, "torch": 1, "jax": 2}  # then TensorFlow, Keras and tf_keras
    for info, needs, fn in sorted(CASES, key=lambda c: rank.get(c[1], 3)):
        if args.only and info["module"] not in args.only:
            continue
        if needs is not None and not _has(needs):
            print(json.dumps({**info, "check": "*", "status": "skipped", "needs": needs}))
            continue
        if needs == "torch":
            import torch

            torch.set_num_threads(1)
        _seed()
        began = time.monotonic()
        try:
            reports = fn()
        except Exception as exc:  # a check that raised: its verdict is the exception
            line = {
                **info,
                "check": "*",
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}",
            }
            print(json.dumps({**line, "error": _first_line(line["error"])}), flush=True)
            continue
        for label, report in reports:
            print(json.dumps(_record(info, label, report)), flush=True)
        gc.collect()  # lets a DataLoader a check stopped reading shut its workers down here
        took = time.monotonic() - began
        print(f"{took:6.1f} s  {info['module']}: {info['variant']}", file=sys.stderr)
    print(f"{time.monotonic() - start:.0f} s in all", file=sys.stderr)
    return 0


def _load(path: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    with open(path) as lines:
        return {(r["module"], r["variant"], r["check"]): r for r in map(json.loads, lines)}


def _where(blame: dict[str, Any] | None) -> str:
    if not blame or not blame.get("found"):
        return "no line" + (f" ({blame['reason']})" if blame and blame.get("reason") else "")
    return f"`{blame['file']}:{blame['line']}` `{blame['code']}`"


def compare(old_path: str, new_path: str) -> int:
    """Markdown: the verdicts that changed, the counts, the blamed lines that moved."""
    old, new = _load(old_path), _load(new_path)
    print("| Module | Variant | Role | Check | Old | New | New cause |")
    print("|---|---|---|---|---|---|---|")
    changed, wrong = 0, []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        was = before["status"] if before else "(no report)"
        now = after["status"] if after else "(no report)"
        if was == now:
            continue
        changed += 1
        role = (after or before or {})["role"]
        cause = (after or {}).get("cause") or ""
        print(f"| {key[0]} | {key[1]} | {role} | {key[2]} | {was} | {now} | {cause} |")
        if (was, now, role) in (("failed", "passed", "buggy"), ("passed", "failed", "correct")):
            wrong.append(key)
    both = old.keys() & new.keys()
    print(f"\nreports: {len(old)} old, {len(new)} new, {len(both)} in both; changed: {changed}")
    for was, now, role in (("failed", "passed", "buggy"), ("passed", "failed", "correct")):
        n = sum(
            1
            for k in wrong
            if (old[k]["status"], new[k]["status"], old[k]["role"]) == (was, now, role)
        )
        print(f"{was} -> {now} on a {role} source: {n}")
    print("\n| Module | Variant | Check | Old blamed line | New blamed line |")
    print("|---|---|---|---|---|")
    for key in sorted(both):
        if old[key]["status"] == new[key]["status"] == "failed":
            a, b = old[key].get("blame"), new[key].get("blame")
            strip = ("file", "line", "function", "code")
            if a and (not b or any(a.get(f) != b.get(f) for f in strip)):
                print(f"| {key[0]} | {key[1]} | {key[2]} | {_where(a)} | {_where(b)} |")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
