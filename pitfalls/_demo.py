"""``pitfalls demo``: the article reproduced through real consumers on the installed stack.

Each pitfall is trained through the consumers a user has, and what the article
reported is printed beside what was measured now. Counts that depend on thread
timing (Keras' prefetch, PyDataset workers) are measured and reported, never
assumed; the read-ahead loop is deterministic.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pitfalls._independence import check_batch_independent
from pitfalls._readahead import read_ahead
from pitfalls.reproductions import generators as gen
from pitfalls.reproductions import independence, shapes

ARTICLE_POINT = (73.0, 57.0)  # the article predicts 49.65 here with the buggy generator

ARTICLE_SAYS = {
    "shared_input_buffer": "loss ~415 after 100 epochs; (73, 57) -> 49.65",
    "shared_input_and_target_buffers": "its 'fix': loss 0.003 by epoch 3",
    "fresh_per_yield": "correct",
    "copy_on_yield": "correct",
    "fresh_vectorized": "(not in the article)",
    "pydataset_shared_buffer": "(not in the article)",
    "pydataset_fresh": "(not in the article)",
}


@dataclass
class Run:
    """One training run: a variant through a consumer."""

    pitfall: str
    consumer: str
    variant: str
    kind: str  # "buggy" or "fixed"
    losses: list[float] = field(default_factory=list)
    mismatched: int | None = None
    batches: int | None = None
    prediction: float | None = None
    note: str = ""
    deterministic: bool = False


class Progress:
    """One line per run on stderr, rewritten in place on a terminal."""

    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, text: str) -> None:
        line = f"[{self.done + 1}/{self.total}] {text}"
        if self.tty:
            self.stream.write("\r" + line.ljust(100)[:100])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish_run(self) -> None:
        self.done += 1

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices are not for a learner
    return keras


def _counting_mean_model(keras: Any) -> Any:
    """The article's Dense(1), counting inside train_step the batches whose inputs
    no longer give their targets: the count is what the optimizer actually saw."""
    from keras import ops

    class CountingMeanModel(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.mismatched = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="mismatched"
            )
            self.seen = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False, name="seen"
            )

        def call(self, x: Any) -> Any:
            return self.dense(x)

        def train_step(self, data: Any) -> Any:
            x, y = data
            rule = (x[:, 0] + x[:, 1]) / 2
            bad = ops.any(ops.abs(rule - ops.reshape(y, (-1,))) > 1e-6)
            self.mismatched.assign_add(ops.cast(bad, "int32"))
            self.seen.assign_add(1)
            return super().train_step(data)

    return CountingMeanModel()


def _predict_point(model: Any) -> float:
    return float(np.asarray(model(np.array([ARTICLE_POINT], dtype=np.float32))).ravel()[0])


def _epoch_progress(base: type, run: Run, args: Any, progress: Progress) -> Any:
    """A callback (of Keras 3's or tf_keras' ``Callback`` class) reporting each epoch."""

    class EpochProgress(base):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            progress.update(f"{run.consumer}: {run.variant}, epoch {epoch + 1}/{args.epochs}")

    return EpochProgress()


def keras_fit(keras: Any, run: Run, batches: Any, args: Any, progress: Progress) -> None:
    """Keras 3 ``model.fit`` on a generator or PyDataset (tf.data, prefetch, peeked batches)."""

    keras.utils.set_random_seed(args.seed)
    model = _counting_mean_model(keras)
    model.compile(loss="mse", optimizer=keras.optimizers.RMSprop(args.learning_rate))
    history = model.fit(
        batches,
        steps_per_epoch=args.steps,
        epochs=args.epochs,
        verbose=0,
        shuffle=False,
        callbacks=[_epoch_progress(keras.callbacks.Callback, run, args, progress)],
    )
    run.losses = [float(v) for v in history.history["loss"]]
    run.mismatched, run.batches = int(model.mismatched.numpy()), int(model.seen.numpy())
    run.prediction = _predict_point(model)


def tape_loop(keras: Any, run: Run, batches: Iterator[Any], args: Any, progress: Progress) -> None:
    """A custom ``tf.GradientTape`` loop fed through :func:`read_ahead` (deterministic)."""
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    model = shapes.mean_model()
    optimizer = keras.optimizers.RMSprop(args.learning_rate)

    @tf.function(reduce_retracing=True)
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(y - model(x)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    stream = read_ahead(batches, args.depth)
    run.mismatched = run.batches = 0
    for epoch in range(args.epochs):
        progress.update(f"{run.consumer}: {run.variant}, epoch {epoch + 1}/{args.epochs}")
        total = 0.0
        for _ in range(args.steps):
            x, y = next(stream)
            run.mismatched += not np.allclose((x[:, 0] + x[:, 1]) / 2, y)
            run.batches += 1
            total += float(step(x.astype(np.float32), y.reshape(-1, 1).astype(np.float32)))
        run.losses.append(total / args.steps)
    run.prediction = _predict_point(model)
    run.deterministic = True


def legacy_fit(run: Run, batches: Any, args: Any, progress: Progress) -> None:
    """tf_keras (Keras 2) ``fit`` with its queue of 10 batches, as the article ran."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(args.seed)
    counter = {"mismatched": 0, "seen": 0}

    class Counting(tf_keras.Model):
        def train_step(self, data: Any) -> Any:
            x, y = data
            bad = tf.reduce_any(tf.abs((x[:, 0] + x[:, 1]) / 2 - tf.reshape(y, (-1,))) > 1e-6)
            tf.py_function(lambda b: _tally(counter, bool(b)), [bad], [])
            return super().train_step(data)

    x_in = tf_keras.Input((2,))
    model = Counting(x_in, tf_keras.layers.Dense(1)(x_in))
    model.compile(loss="mse", optimizer=tf_keras.optimizers.RMSprop(args.learning_rate))

    history = model.fit(
        batches,
        steps_per_epoch=args.steps,
        epochs=args.epochs,
        verbose=0,
        workers=1,
        max_queue_size=10,
        callbacks=[_epoch_progress(tf_keras.callbacks.Callback, run, args, progress)],
    )
    run.losses = [float(v) for v in history.history["loss"]]
    run.mismatched, run.batches = counter["mismatched"], counter["seen"]
    run.prediction = float(model.predict(np.array([ARTICLE_POINT]), verbose=0).ravel()[0])


def _tally(counter: dict[str, int], bad: bool) -> None:
    counter["mismatched"] += bad
    counter["seen"] += 1


GENERATORS: list[tuple[Callable[..., Iterator[Any]], str]] = [
    (gen.shared_input_buffer, "buggy"),
    (gen.shared_input_and_target_buffers, "buggy"),
    (gen.fresh_per_yield, "fixed"),
    (gen.copy_on_yield, "fixed"),
]


def pitfall_one(keras: Any, args: Any, progress: Progress, skipped: list[str]) -> list[Run]:
    runs: list[Run] = []
    for variant, kind in GENERATORS:
        run = Run("1", "keras fit(generator)", variant.__name__, kind)
        keras_fit(keras, run, variant(args.batch_size, seed=args.seed, form="pair"), args, progress)
        runs.append(run)
        progress.finish_run()
    for factory, kind in ((gen.pydataset_shared_buffer, "buggy"), (gen.pydataset_fresh, "fixed")):
        run = Run("1", f"keras fit(PyDataset, workers={args.workers})", factory.__name__, kind)
        data = factory(args.batch_size, seed=args.seed, batches=args.steps, workers=args.workers)
        keras_fit(keras, run, data, args, progress)
        runs.append(run)
        progress.finish_run()
    for variant, kind in GENERATORS:
        run = Run("1", f"GradientTape + read_ahead(depth={args.depth})", variant.__name__, kind)
        tape_loop(keras, run, variant(args.batch_size, seed=args.seed, form="pair"), args, progress)
        runs.append(run)
        progress.finish_run()
    if importlib.util.find_spec("tf_keras") is None:
        skipped.append(
            "legacy Keras 2 fit (tf_keras is not installed: pip install tf-keras to compare"
            " with the article's queue, where the damage is strongest)"
        )
        progress.finish_run()
    else:
        for variant, kind in GENERATORS:
            run = Run("1", "tf_keras fit (Keras 2 queue)", variant.__name__, kind)
            legacy_fit(run, variant(args.batch_size, seed=args.seed, form="pair"), args, progress)
            runs.append(run)
        progress.finish_run()
    return runs


@dataclass
class ShapeRow:
    path: str
    article: str
    buggy: str
    fixed: str


def pitfall_two(keras: Any, args: Any, progress: Progress) -> tuple[list[ShapeRow], list[Run]]:
    keras.utils.set_random_seed(args.seed)
    x, y = shapes.mean_data(args.batch_size * 16, seed=args.seed)
    progress.update("pitfall 2: shapes and built-in loss")
    buggy, fixed = shapes.lambda_mean_buggy(), shapes.lambda_mean_fixed()
    point = np.array([[46.0, 46.0]], dtype=np.float32)
    rows = [
        ShapeRow(
            "Lambda predict((46, 46))",
            "[46.] instead of [[46.]]",
            repr(buggy.predict(point, verbose=0).tolist()),
            repr(fixed.predict(point, verbose=0).tolist()),
        ),
        ShapeRow(
            'compile(loss="mse") on the exact Lambda',
            "~830 without expand_dims",
            f"{shapes.keras_mse(buggy, x, y):.4g} (Keras 3 reshapes)",
            f"{shapes.keras_mse(fixed, x, y):.4g}",
        ),
    ]
    progress.update("pitfall 2: Loss subclass")
    rows.append(
        ShapeRow(
            "keras.losses.Loss subclass, exact Lambda",
            "~830",
            f"{shapes.loss_subclass_mse(buggy, shapes.mse_loss_subclass_buggy(), x, y):.4g}"
            f" (2 Var(y) = {2 * np.var(y):.4g})",
            f"{shapes.loss_subclass_mse(buggy, shapes.mse_loss_subclass_fixed(), x, y):.4g}",
        )
    )
    progress.update("pitfall 2: batch independence")
    small_x, small_y = x[:16], y[:16]

    def verdict(report: Any) -> str:
        if report.ok:
            return "independent"
        worst = max(report.findings, key=lambda f: f.mismatched)
        return f"MIXED: {worst.path} moved {worst.mismatched}/{worst.total} others"

    rows.append(
        ShapeRow(
            "assert_batch_independent(Loss.call)",
            "(beyond the article)",
            verdict(
                check_batch_independent(
                    shapes.mse_loss_subclass_buggy().call, small_y, small_y[:, None]
                )
            ),
            verdict(
                check_batch_independent(
                    shapes.mse_loss_subclass_buggy().call, small_y[:, None], small_y[:, None]
                )
            ),
        )
    )
    bn = independence.batchnorm_model(args.seed)
    rows.append(
        ShapeRow(
            "BatchNormalization, training=True/False",
            "(beyond the article)",
            verdict(check_batch_independent(bn, small_x, training=True)),
            verdict(check_batch_independent(bn, small_x, training=False)),
        )
    )
    progress.finish_run()
    runs = []
    weights = {}
    steps = 60 * args.epochs
    for kind, train in (
        ("buggy", shapes.gradient_tape_buggy),
        ("fixed", shapes.gradient_tape_fixed),
    ):
        progress.update(f"pitfall 2: GradientTape loop, {kind}")
        run = Run("2", "GradientTape loop, Adam(0.1)", train.__name__, kind, deterministic=True)
        history: list[float] = []
        model = train(x, y, steps=steps, seed=args.seed, history=history)
        run.losses = [float(np.mean(chunk)) for chunk in np.array_split(history, args.epochs)]
        kernel, bias = model.layers[1].get_weights()
        weights[kind] = f"w=({kernel[0, 0]:.2f}, {kernel[1, 0]:.2f}), b={bias[0]:.1f}"
        run.prediction = _predict_point(model)
        runs.append(run)
        progress.finish_run()
    rows.append(
        ShapeRow(
            f"GradientTape loop, {steps} Adam steps",
            "(NOTES) w=(0.32, 0.31), b=12.6",
            weights["buggy"],
            weights["fixed"],
        )
    )
    model = shapes.gradient_tape_fixed(x, y, steps=steps, seed=args.seed)
    rows.append(
        ShapeRow(
            "np.mean((y - model.predict(x)) ** 2)",
            "(NOTES) 472.5 reported, 57.7 true",
            f"{shapes.numpy_mse_buggy(model, x, y):.4g} reported",
            f"{shapes.numpy_mse_fixed(model, x, y):.4g} true",
        )
    )
    return rows, runs


@dataclass
class BeyondRow:
    consumer: str
    variant: str
    kind: str
    per_epoch: list[str]
    verdict: str


def _epoch_probe_model(keras: Any) -> Any:
    """Dense(1) on flattened inputs, recording per epoch the mean input and the first
    sample it trained on: what the optimizer saw, measured inside train_step."""

    class Probe(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.flat = keras.layers.Flatten()
            self.dense = keras.layers.Dense(1)
            self.seen: list[np.ndarray] = []

        def call(self, x: Any) -> Any:
            return self.dense(self.flat(x))

        def train_step(self, data: Any) -> Any:
            self.seen.append(np.array(data[0]))
            return super().train_step(data)

    return Probe()


def _pixels_dataset(keras: Any, data: np.ndarray, scale: Any, steps: int, bs: int) -> Any:
    """A PyDataset whose batches are ``scale`` applied to slices (views) of ``data``."""

    class Pixels(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, i: int) -> Any:
            return next(scale(data[i * bs : (i + 1) * bs], bs))

    return Pixels()


def beyond(keras: Any, args: Any, progress: Progress) -> list[BeyondRow]:
    """Two pitfalls next door through Keras 3's fit: data written between epochs,
    and a generator that is never shuffled (fit's shuffle=True is ignored)."""
    import warnings

    from pitfalls.reproductions import epochs

    rows = []
    n_epochs, steps, bs = 3, 4, 8
    for kind, name in (("buggy", "scaled_in_place"), ("fixed", "scaled_copy")):
        progress.update(f"beyond: {name} through fit(PyDataset)")
        data = np.random.default_rng(args.seed).integers(0, 256, size=(steps * bs, 4, 4))
        data = data.astype(np.float32)
        keras.utils.set_random_seed(args.seed)
        model = _epoch_probe_model(keras)
        model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
        pixels = _pixels_dataset(keras, data, getattr(epochs, name), steps, bs)
        model.fit(pixels, epochs=n_epochs, verbose=0, shuffle=False)
        means = [float(np.mean(model.seen[e * steps : (e + 1) * steps])) for e in range(n_epochs)]
        changed = not np.allclose(means, means[0])
        rows.append(
            BeyondRow(
                "fit(PyDataset), mean input per epoch",
                name,
                kind,
                [f"{m:.3g}" for m in means],
                "data rewritten each epoch" if changed else "same data every epoch",
            )
        )
        progress.finish_run()
    for kind, name in (("buggy", "same_order_every_epoch"), ("fixed", "reshuffled_every_epoch")):
        progress.update(f"beyond: {name} through fit(generator, shuffle=True)")
        numbered = np.arange(steps * bs * 16, dtype=np.float32).reshape(steps * bs, 4, 4)
        keras.utils.set_random_seed(args.seed)
        model = _epoch_probe_model(keras)
        model.compile(loss="mse", optimizer="sgd", run_eagerly=True)
        source = getattr(epochs, name)(numbered, bs, seed=args.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(source, steps_per_epoch=steps, epochs=n_epochs, verbose=0, shuffle=True)
        warned = any("shuffle=True" in str(w.message) for w in caught)
        # epoch e's first sample, named by its row in data (+ up to 2 peeked batches)
        firsts = [int(model.seen[e * steps][0, 0, 0]) // 16 for e in range(n_epochs)]
        repeated = len(set(firsts)) == 1
        rows.append(
            BeyondRow(
                "fit(generator, shuffle=True), first sample per epoch",
                name,
                kind,
                [f"#{f}" for f in firsts],
                ("same order every epoch" if repeated else "reordered")
                + ("; Keras warned shuffle is ignored" if warned else ""),
            )
        )
        progress.finish_run()
    return rows


def print_beyond(rows: list[BeyondRow], out: Any) -> None:
    if not rows:
        return
    print("Beyond the article, through Keras 3's fit (measured inside train_step):", file=out)
    consumer = None
    for r in rows:
        if r.consumer != consumer:
            consumer = r.consumer
            print(f"  {consumer}:", file=out)
        cells = " ".join(f"{c:>8}" for c in r.per_epoch)
        print(f"    {r.variant:24} {r.kind:5} {cells}   {r.verdict}", file=out)
    print(file=out)


def _fmt_losses(losses: list[float]) -> str:
    return " ".join(f"{v:.3g}" for v in losses)


def print_tables(runs: list[Run], rows: list[ShapeRow], out: Any) -> None:
    def say(line: str = "") -> None:
        print(line, file=out)

    one = [r for r in runs if r.pitfall == "1"]
    if one:
        say("Pitfall 1 trained: loss per epoch, batches the optimizer saw with inputs that no")
        say(f"longer matched their targets, and the prediction for {ARTICLE_POINT} (truth 65).")
        consumer = None
        for r in one:
            if r.consumer != consumer:
                consumer = r.consumer
                timing = "deterministic" if r.deterministic else "depends on thread timing"
                say(f"  {consumer} ({timing}):")
                say(f"    {'variant':33} {'kind':5} {'mismatched':>12} {'(73, 57)':>9}  loss/epoch")
            frac = f"{r.mismatched}/{r.batches}" if r.mismatched is not None else "-"
            losses = _fmt_losses(r.losses)
            say(f"    {r.variant:33} {r.kind:5} {frac:>12} {r.prediction or 0.0:9.2f}  {losses}")
            say(f"    {'':33} {'':5} {'':>12} {'':>9}  article: {ARTICLE_SAYS.get(r.variant, '')}")
        say()
    if rows:
        say("Pitfall 2: (n,) against (n, 1), article beside now:")
        w = max(len(row.path) for row in rows)
        say(f"  {'path':{w}}  {'article':34}  {'buggy now':34}  fixed now")
        for row in rows:
            say(f"  {row.path:{w}}  {row.article:34}  {row.buggy:34}  {row.fixed}")
        say()


def summary(runs: list[Run], skipped: list[str], out: Any) -> None:
    def say(line: str = "") -> None:
        print(line, file=out)

    say("Summary:")
    for r in runs:
        if r.pitfall != "1":
            continue
        share = f"{r.mismatched}/{r.batches} mismatched" if r.batches else ""
        final = r.losses[-1]
        say(f"  {r.kind:5} {r.variant:33} via {r.consumer:38} final loss {final:9.4g}  {share}")
    for r in runs:
        if r.pitfall == "2":
            say(f"  {r.kind:5} {r.variant:33} via {r.consumer:38} final loss {r.losses[-1]:9.4g}")
    for s in skipped:
        say(f"  skipped: {s}")


COLORS = {
    "shared_input_buffer": "tab:red",
    "shared_input_and_target_buffers": "tab:orange",
    "pydataset_shared_buffer": "tab:purple",
    "gradient_tape_buggy": "tab:red",
    "fresh_per_yield": "tab:green",
    "copy_on_yield": "tab:blue",
    "pydataset_fresh": "tab:cyan",
    "gradient_tape_fixed": "tab:green",
}


def plot(runs: list[Run], path: str) -> None:
    """Loss per epoch, buggy against fixed: a colour per variant, a line style per consumer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    styles: dict[str, str] = {}
    for r in runs:
        ax = axes[0] if r.pitfall == "1" else axes[1]
        style = styles.setdefault(r.consumer, ["-", "--", ":", "-."][len(styles) % 4])
        ax.plot(
            range(1, len(r.losses) + 1),
            np.maximum(r.losses, 1e-6),
            style,
            color=COLORS.get(r.variant, "tab:gray"),
            marker="o" if r.kind == "buggy" else "s",
            ms=4,
            label=f"{r.kind}: {r.variant} · {r.consumer}",
        )
    axes[0].set_title("Pitfall 1: one numpy buffer re-yielded (MSE, log)")
    axes[1].set_title("Pitfall 2: (n,) targets against (n, 1) outputs (MSE, log)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_and_report(args: Any, out: Any, err: Any = sys.stderr) -> int:
    """The training part of ``pitfalls demo``; returns the exit status."""
    skipped: list[str] = []
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None:
        print(
            "skipped: training (Keras 3 and TensorFlow are not installed:"
            " pip install 'pitfalls[tf]')",
            file=out,
        )
        return 0
    start = time.perf_counter()
    keras = _keras()
    total = (11 if "1" in args.pitfalls else 0) + (3 if "2" in args.pitfalls else 0) + 4
    progress = Progress(total, err)
    runs: list[Run] = []
    rows: list[ShapeRow] = []
    try:
        if "1" in args.pitfalls:
            runs += pitfall_one(keras, args, progress, skipped)
        if "2" in args.pitfalls:
            rows, two = pitfall_two(keras, args, progress)
            runs += two
        next_door = beyond(keras, args, progress)
    finally:
        progress.close()
    print_tables(runs, rows, out)
    print_beyond(next_door, out)
    summary(runs, skipped, out)
    if args.plot:
        try:
            plot(runs, args.plot)
        except ImportError:
            print(
                "skipped: --plot (matplotlib is not installed: pip install 'pitfalls[plot]')",
                file=out,
            )
        else:
            print(f"plot: {args.plot}", file=out)
    print(
        f"trained in {time.perf_counter() - start:.1f} s (TensorFlow's import included)", file=out
    )
    return 0
