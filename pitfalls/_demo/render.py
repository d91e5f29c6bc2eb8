"""The text of ``pitfalls demo``, drawn from a :class:`DemoResult` alone."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from pitfalls._demo.results import Consumer, DemoResult, NextNextRow, PitfallTwo
from pitfalls._report import Report

ARTICLE_SAYS = (
    "The article: shared_input_buffer trains to loss ~415 after 100 epochs and predicts"
    " 49.65 for (73, 57); its 'fix', shared_input_and_target_buffers, reaches loss 0.003"
    " by epoch 3; fresh_per_yield and copy_on_yield are correct."
)

READ_AHEAD_NOTE = """\
Mismatched pairs train the model on inputs with another batch's targets. Overwritten
but consistent batches (the article's 'fix') only shift the stream in this strict
FIFO; a consumer that holds several at once (Keras 3 keeps the first two to infer
shapes; tf.data batches and prefetches) trains on repeated or torn batches."""

VERSION_NAMES = {
    "numpy": "numpy",
    "tensorflow": "TensorFlow",
    "keras": "Keras",
    "tf_keras": "tf_keras",
}


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def _pair(inputs: Sequence[float], target: float) -> str:
    return f"([{list(inputs)}], [{target}])"


def _next_next_verdict(row: NextNextRow) -> str:
    if not row.consistent:
        return "MISMATCH"
    return "OVERWRITTEN" if row.overwritten else "consistent"


def _verdict(report: Report) -> str:
    if report.ok:
        return "pass"
    if not report.findings:
        return report.status
    whens = sorted({f.when for f in report.findings})
    return f"FAIL {len(report.bad_batches)}/{report.batches} ({', '.join(whens)})"


def _independence(report: Report) -> str:
    if report.ok:
        return "independent"
    worst = max(report.findings, key=lambda f: f.mismatched)
    return f"MIXED: {worst.path} moved {worst.mismatched}/{worst.total} others"


def _losses(losses: Sequence[float]) -> str:
    return " ".join(f"{v:.3g}" for v in losses)


def numpy_part(result: DemoResult) -> list[str]:
    """The article's check, the checkers and the read-ahead counts: numpy alone."""
    config = result.config
    w = max(len(r.variant) for r in result.next_next)
    lines = [
        "Pitfall 1: a batch generator that re-yields one numpy buffer",
        f"(batch size {config.batch_size}, seed {config.seed}; this part runs on numpy alone)",
        "",
        "The article's check, print(next(it), next(it)) at batch size 1. MISMATCH: the first",
        "pair's target is not the mean of its inputs; OVERWRITTEN: it shows the second draw.",
    ]
    for r in result.next_next:
        first, second = (
            _pair(r.first_inputs, r.first_target),
            _pair(r.second_inputs, r.second_target),
        )
        lines.append(f"  {r.variant.ljust(w)}  {first} {second}  {_next_next_verdict(r)}")
    lines.append("")

    checks = [report.check for report in result.checkers[0].reports]
    lines.append(f"Checkers, draws={config.draws} (pitfalls.check_source: {', '.join(checks)}):")
    cells = [[r.variant, r.kind, *(_verdict(rep) for rep in r.reports)] for r in result.checkers]
    header = ["variant", "kind", *checks]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    lines += [_row(c, widths) for c in [header, *cells]]
    lines.append("")

    lines += [
        f"A deterministic read-ahead consumer over {config.batches} batches (pitfalls.read_ahead):",
        "depth d means batch i is used after batch i+d was drawn, as Keras 2's queue and",
        "tf.data's prefetch do. Cells: mismatched pairs / inputs overwritten before use.",
    ]
    widths = [w] + [13] * len(config.depths)
    lines.append(_row(["variant", *(f"depth {d}" for d in config.depths)], widths))
    for row in result.read_ahead:
        counts = [f"{c.mismatched} / {c.overwritten}" for c in row.counts]
        lines.append(_row([row.variant, *counts], widths))
    lines += ["", *READ_AHEAD_NOTE.splitlines()]
    return lines


def _consumer_table(consumer: Consumer, w: int) -> list[str]:
    timing = "deterministic" if consumer.deterministic else "depends on thread timing"
    lines = [
        f"  {consumer.title} ({timing}):",
        f"    {'variant':{w}}  kind   {'mismatched':>10}  (73, 57)  loss per epoch",
    ]
    for r in consumer.runs:
        seen = f"{r.mismatched}/{r.batches}" if r.batches is not None else "-"
        lines.append(
            f"    {r.variant:{w}}  {r.kind:5}  {seen:>10}  {r.prediction:8.2f}  {_losses(r.losses)}"
        )
    return lines


def pitfall_one_part(result: DemoResult) -> list[str]:
    """Pitfall 1 trained through each consumer."""
    ones = [c for c in result.consumers if c.pitfall == 1]
    if not ones:
        return []
    c = result.config
    w = max(len(r.variant) for consumer in ones for r in consumer.runs)
    lines = [
        f"Pitfall 1 trained: {c.epochs} epochs of {c.steps} steps, batch {c.batch_size},"
        f" RMSprop {c.learning_rate:g}. Per run: the",
        "batches the optimizer saw with inputs that no longer gave their targets, the",
        "prediction for (73, 57) (the mean is 65), and the loss per epoch.",
        *textwrap.wrap(ARTICLE_SAYS, 88),
    ]
    for consumer in ones:
        lines += ["", *_consumer_table(consumer, w)]
    return lines


def pitfall_two_part(two: PitfallTwo, tape: Consumer | None) -> list[str]:
    """Pitfall 2's paths, the article beside now."""
    bw, bb, bias_b = two.tape_weights_buggy
    fw, ff, bias_f = two.tape_weights_fixed
    losses = {r.kind: f"; loss {r.losses[-1]:.4g}" for r in tape.runs} if tape else {}
    rows = [
        (
            "Lambda predict((46, 46))",
            "[46.] instead of [[46.]]",
            repr(two.lambda_buggy_prediction),
            repr(two.lambda_fixed_prediction),
        ),
        (
            'compile(loss="mse") on the exact Lambda',
            "~830 without expand_dims",
            f"{two.keras_mse_buggy:.4g} (Keras 3 reshapes)",
            f"{two.keras_mse_fixed:.4g}",
        ),
        (
            "keras.losses.Loss subclass, exact Lambda",
            "~830",
            f"{two.loss_subclass_buggy:.4g} (2 Var(y) = {two.two_var_y:.4g})",
            f"{two.loss_subclass_fixed:.4g}",
        ),
        (
            "assert_batch_independent(Loss.call)",
            "(beyond the article)",
            _independence(two.loss_call_independence[0]),
            _independence(two.loss_call_independence[1]),
        ),
        (
            "BatchNormalization, training=True/False",
            "(beyond the article)",
            _independence(two.batchnorm_independence[0]),
            _independence(two.batchnorm_independence[1]),
        ),
        (
            f"GradientTape loop, {two.tape_steps} Adam steps",
            "(NOTES) w=(0.32, 0.31), b=12.6",
            f"w=({bw:.2f}, {bb:.2f}), b={bias_b:.1f}{losses.get('buggy', '')}",
            f"w=({fw:.2f}, {ff:.2f}), b={bias_f:.1f}{losses.get('fixed', '')}",
        ),
        (
            "np.mean((y - model.predict(x)) ** 2)",
            "(NOTES) 472.5 reported, 57.7 true",
            f"{two.numpy_mse_buggy:.4g} reported",
            f"{two.numpy_mse_fixed:.4g} true",
        ),
    ]
    header = ("path", "article", "buggy now", "fixed now")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"Pitfall 2: (n,) against (n, 1) on {two.samples} samples, the article beside now:"]
    lines += ["  " + _row(r, widths) for r in [header, *rows]]
    return lines


def beyond_part(result: DemoResult) -> list[str]:
    """The two pitfalls next door, through Keras 3's fit."""
    if not (result.epoch_means or result.epoch_orders):
        return []
    lines = ["Beyond the article, through Keras 3's fit (measured inside train_step):"]
    if result.epoch_means:
        lines.append("  fit(PyDataset), mean input per epoch:")
        for m in result.epoch_means:
            cells = " ".join(f"{v:>8.3g}" for v in m.means)
            verdict = "data rewritten each epoch" if m.rewritten else "same data every epoch"
            lines.append(f"    {m.variant:24} {m.kind:5} {cells}   {verdict}")
    if result.epoch_orders:
        lines.append("  fit(generator, shuffle=True), first sample per epoch:")
        for o in result.epoch_orders:
            cells = " ".join(f"{'#' + str(v):>8}" for v in o.first_samples)
            verdict = "reordered" if o.reordered else "same order every epoch"
            verdict += "; Keras warned shuffle is ignored" if o.warned else ""
            lines.append(f"    {o.variant:24} {o.kind:5} {cells}   {verdict}")
    return lines


def zero_copy_part(result: DemoResult) -> list[str]:
    """Keras 3 fit(generator) over one refilled buffer, aligned or not."""
    if not result.zero_copy:
        return []
    lines = [
        "Zero-copy: Keras 3 fit(generator) over one refilled buffer (measured inside train_step):"
    ]
    for row in result.zero_copy:
        where = "64-byte aligned" if row.aligned else "unaligned      "
        how = "tf.data wraps it" if row.aligned else "tf.data copies it"
        lines.append(f"  {where}  torn batches {row.torn:>4} / {row.steps}   ({how})")
    lines.append(
        "  The same generator is harmless or corrupting by where numpy's allocator put the"
        " buffer; the aligned count depends on thread timing."
    )
    return lines


def render_text(result: DemoResult) -> str:
    """Everything ``pitfalls demo`` prints, as one string ending in a newline."""
    parts = [numpy_part(result), pitfall_one_part(result)]
    if result.pitfall_two is not None:
        tape = next((c for c in result.consumers if c.key == "tape_shapes"), None)
        parts.append(pitfall_two_part(result.pitfall_two, tape))
    parts.append(zero_copy_part(result))
    parts.append(beyond_part(result))
    footer = [f"skipped: {s}" for s in result.skipped]
    if result.versions:
        stack = ", ".join(f"{VERSION_NAMES.get(n, n)} {v}" for n, v in result.versions)
        footer.append(f"trained with {stack} in {result.seconds:.1f} s (imports included)")
    parts.append(footer)
    return "\n\n".join("\n".join(p) for p in parts if p) + "\n"
