"""pitfalls' speed, as ratios measured side by side in one run.

    .venv/bin/python bench/run.py            # everything (about two minutes)
    .venv/bin/python bench/run.py --quick    # skip the test-suite and training parts
    .venv/bin/python bench/run.py --demo     # the demo's wall time alone
    .venv/bin/python bench/run.py --learn    # a learner's pytest and status alone

Machines here are noisy, so every figure is a ratio of two things measured in
the same run, interleaved, each the median of several repeats. Targets (issue
"Performance") are printed beside each ratio with MET or MISSED and by how much.
Nothing here is asserted in the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pitfalls  # noqa: E402

REPEATS = 5


def median_seconds(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(
    a: Callable[[], object], b: Callable[[], object], repeats: int = REPEATS
) -> tuple[float, float]:
    """Median seconds of a and of b, measured alternately so drift hits both."""
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def verdict(ratio: float, target: float) -> str:
    if ratio <= target:
        return f"MET (target <= {target:g}x)"
    return f"MISSED by {ratio / target:.2f}x (target <= {target:g}x)"


def section(title: str) -> None:
    print(f"\n== {title}")


# 1. import time -----------------------------------------------------------------------


def bench_import() -> None:
    section("import pitfalls against import numpy (fresh interpreters)")

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's machine: bytecode cached

    def run(code: str) -> Callable[[], object]:
        return lambda: subprocess.run([sys.executable, "-c", code], check=True, env=env)

    check = "import sys, pitfalls; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, env=env)
    t_np, t_pf = interleaved(run("import numpy"), run("import pitfalls"), repeats=9)
    t_bare = median_seconds(run("pass"), repeats=9)
    ratio = (t_pf - t_bare) / (t_np - t_bare)
    print(f"python -c pass      {t_bare * 1e3:7.1f} ms (subtracted from both)")
    print(f"import numpy        {(t_np - t_bare) * 1e3:7.1f} ms")
    print(
        f"import pitfalls     {(t_pf - t_bare) * 1e3:7.1f} ms   (tensorflow, keras: not imported)"
    )
    print(f"ratio               {ratio:7.2f}x   {verdict(ratio, 1.2)}")


# 2. checker cost per batch ---------------------------------------------------------------

SHAPES = [
    ((64, 2), np.float64),
    ((64, 32, 32, 3), np.float32),
    ((64, 128, 128, 3), np.float32),
    ((64, 224, 224, 3), np.float32),
]


def bench_batch(
    shape: tuple[int, ...], dtype: type, draws: int
) -> tuple[int, float, float, float, float]:
    """(bytes per batch, copy s, aliasing s per batch, targets s per batch, peak extra / drawn).

    The copy copies every batch drawn into memory made for it beforehand, timed per
    batch: the checks read every batch drawn, so a copy of one batch again and again
    would time a batch held in the CPU's cache against checks that read ``draws``
    batches from memory, and a copy into new memory would time the allocator's page
    faults too."""
    rng = np.random.default_rng(0)
    inputs = [rng.random(shape, dtype=np.float32).astype(dtype) for _ in range(draws)]
    batches = [(x, x[:, 0].copy()) for x in inputs]
    nbytes = inputs[0].nbytes + batches[0][1].nbytes

    copies = [(np.empty_like(x), np.empty_like(y)) for x, y in batches]

    def copy() -> object:
        for (x, y), (cx, cy) in zip(batches, copies):
            np.copyto(cx, x)
            np.copyto(cy, y)
        return copies

    def aliasing() -> object:
        return pitfalls.check_generator_no_aliasing(batches, draws=draws)

    def first_column(x: np.ndarray) -> np.ndarray:
        return x[:, 0]

    def targets() -> object:
        return pitfalls.check_targets_match(batches, first_column, draws=draws)

    repeats = 3 if nbytes > 10e6 else 15
    t_copy, t_alias = interleaved(copy, aliasing, repeats)
    _, t_targets = interleaved(copy, targets, repeats)
    t_copy /= draws
    tracemalloc.start()
    aliasing()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return nbytes, t_copy, t_alias / draws, t_targets / draws, peak / (nbytes * draws)


def bench_checkers(draws: int) -> None:
    section(f"checker cost per drawn batch against one np.copy of its bytes (draws={draws})")
    print(
        f"{'batch':>22} {'MB':>7} {'copy ms':>8} {'aliasing':>9} {'ratio':>6}"
        f" {'targets':>8} {'ratio':>6}  peak extra / drawn"
    )
    worst = worst_peak = 0.0
    for shape, dtype in SHAPES:
        nbytes, t_copy, per_alias, per_targets, peak = bench_batch(shape, dtype, draws)
        r_alias, r_targets = per_alias / t_copy, per_targets / t_copy
        label = "x".join(map(str, shape)) + f" {np.dtype(dtype).name}"
        print(
            f"{label:>22} {nbytes / 1e6:7.2f} {t_copy * 1e3:8.3f} {per_alias * 1e3:9.3f}"
            f" {r_alias:6.2f} {per_targets * 1e3:8.3f} {r_targets:6.2f}  {peak:.2f}"
        )
        if nbytes > 10e6:
            worst = max(worst, r_alias)
            worst_peak = max(worst_peak, peak)
    print(f"aliasing, large batches (> 10 MB): worst {worst:.2f}x a copy   {verdict(worst, 1.0)}")
    print(
        f"aliasing, large batches: peak extra memory {worst_peak:.3f}x the bytes drawn"
        f"   {verdict(worst_peak, 0.1)}"
    )
    print(
        "(a batch is sealed as it is drawn: 16 bytes of XXH3 digest per 64 KiB; tiny batches"
        " are copied, where Python objects dominate the peak anyway)"
    )


# 3. the test suite -------------------------------------------------------------------------

FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "torch", "jax", "datasets", "matplotlib.pyplot")
"""What the suite imports at some point, in one process: the floor of any serial run."""

LEARNER_PLUGIN = '''"""Written by bench/run.py: the suite as the README's test install has it."""
import sys

def pytest_configure(config):
    # not installed there (the torch, jax and hf extras): importing them fails, so their
    # tests skip with the extra to install, as on a learner's machine
    for name in ("torch", "jax", "jaxlib", "datasets"):
        sys.modules[name] = None
'''


def _summary(out: bytes) -> str:
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else "(no output)"


def bench_suite() -> None:
    section("the test suite and the lessons, each beside its import floor")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("CI", None)  # CI turns a missing framework into a failure; here it skips
    # As on a learner's machine: pytest caches the modules it rewrites (tests, conftest,
    # the pitfalls plugin's package) as bytecode, unless bytecode writing is off.
    no_bytecode = env.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    outputs: dict[str, bytes] = {}

    def collect(extra: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:randomly"]
        subprocess.run(cmd, cwd=ROOT, env={**env, **extra}, check=True, capture_output=True)

    collect({})  # writes the caches the measured runs then read
    if no_bytecode:
        off, on = interleaved(
            lambda: collect({"PYTHONDONTWRITEBYTECODE": "1"}), lambda: collect({}), 3
        )
        print(
            f"PYTHONDONTWRITEBYTECODE is set here: unset for these runs. With it, pytest cannot"
            f" cache its rewritten modules: collection takes {off:.1f} s instead of {on:.1f} s,"
            " in every run"
        )

    def pytest_run(
        name: str, *args: str, run_env: dict[str, str] | None = None
    ) -> Callable[[], None]:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]

        def go() -> None:
            done = subprocess.run(cmd, cwd=ROOT, env=run_env or env, capture_output=True)
            outputs[name] = done.stdout
            if done.returncode != 0:
                raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{_summary(done.stdout)}")

        return go

    def importing(modules: list[str]) -> Callable[[], None]:
        code = "import pytest, hypothesis, pitfalls, " + ", ".join(modules)
        return lambda: subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True
        )

    available = [m for m in FRAMEWORKS if importlib.util.find_spec(m.split(".")[0])]
    learner_frameworks = [m for m in ("tensorflow", "keras") if m in available]

    with tempfile.TemporaryDirectory() as plugin_dir:
        Path(plugin_dir, "pitfalls_bench_learner.py").write_text(LEARNER_PLUGIN)
        learner_env = {**env, "PYTHONPATH": plugin_dir}
        as_learner = ("-p", "pitfalls_bench_learner")
        lessons = pytest_run(
            "lessons", "tests/lessons", "-p", "no:randomly", *as_learner, run_env=learner_env
        )
        learner = pytest_run("learner", *as_learner, run_env=learner_env)

        t_floor, t_serial = interleaved(importing(available), pytest_run("serial"), repeats=1)
        t_floor = min(t_floor, median_seconds(importing(available), repeats=3))
        t_lessons_floor, t_lessons = interleaved(importing(learner_frameworks), lessons, 3)
        t_parallel = median_seconds(pytest_run("-n 2", "-n", "2"), repeats=1)
        t_learner = median_seconds(learner, repeats=1)

    beyond = t_lessons - t_lessons_floor
    met = "MET" if beyond <= 6.0 else f"MISSED by {beyond - 6.0:.1f} s"
    print(
        f"lessons             {t_lessons:7.1f} s   the README's lessons command on the tests'"
        f" install (no torch, JAX, datasets): [{_summary(outputs['lessons'])}]"
    )
    print(
        f"  import floor      {t_lessons_floor:7.1f} s   one interpreter importing pytest,"
        f" hypothesis, pitfalls, {', '.join(learner_frameworks)}"
    )
    print(f"  beyond the floor  {beyond:7.1f} s   target <= 6 s: {met}")
    print(f"whole suite, serial {t_serial:7.1f} s   [{_summary(outputs['serial'])}]")
    print(
        f"  import floor      {t_floor:7.1f} s   one interpreter importing {', '.join(available)}"
    )
    print(f"  ratio             {t_serial / t_floor:7.2f}x   {verdict(t_serial / t_floor, 3.0)}")
    print(
        f"-n 2                {t_parallel:7.1f} s   speed-up {t_serial / t_parallel:.2f}x (each worker pays the imports)"
    )
    print(
        f"learner's install   {t_learner:7.1f} s   the whole suite with the README's test extras"
        f" only: [{_summary(outputs['learner'])}]"
    )


# 4. assert_fits against the article's training -------------------------------------------


def bench_fits() -> None:
    section("the mean model: assert_fits' budget against the article's rmsprop")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from pitfalls.reproductions import shapes

    x_eval, y_eval = shapes.mean_data(1024, seed=99)
    y_eval = y_eval[:, None]

    def steps_to(
        optimizer: object, batch: Callable[[int], tuple[np.ndarray, np.ndarray]], cap: int
    ) -> tuple[int | None, float]:
        keras.utils.set_random_seed(0)
        model = shapes.mean_model()
        xs, ys = tf.constant(x_eval), tf.constant(y_eval)

        @tf.function
        def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(y - model(x)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def mse() -> tf.Tensor:
            return tf.reduce_mean(tf.square(ys - model(xs)))

        start = time.perf_counter()
        for i in range(1, cap + 1):
            step(*batch(i))
            if (i <= 1000 or i % 100 == 0) and float(mse()) < 1e-3:
                return i, time.perf_counter() - start
        return None, time.perf_counter() - start

    fixed_x, fixed_y = shapes.mean_data(256, seed=1)
    fixed = (tf.constant(fixed_x), tf.constant(fixed_y[:, None]))
    ours, t_ours = steps_to(keras.optimizers.Adam(1.0), lambda i: fixed, cap=3000)

    def stream(i: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = shapes.mean_data(64, seed=i)  # the article's generator: fresh batches of 64
        return x, y[:, None]

    cap = 30000
    article, t_article = steps_to(keras.optimizers.RMSprop(1e-3), stream, cap=cap)
    start = time.perf_counter()
    report = pitfalls.check_fits(shapes.mean_model, fixed_x, fixed_y[:, None], max_loss=1e-3)
    t_check = time.perf_counter() - start
    print(
        f"Adam(1.0), full batch of 256:      MSE < 1e-3 after {ours} steps ({t_ours:.2f} s in a tf.function loop)"
    )
    if article is None:
        print(
            f"RMSprop(1e-3), batches of 64:      not below 1e-3 after {cap} steps ({t_article:.1f} s): more than {cap / ours:.0f}x the steps"
        )
    else:
        print(
            f"RMSprop(1e-3), batches of 64:      MSE < 1e-3 after {article} steps ({t_article:.1f} s): {article / ours:.0f}x the steps"
        )
    print(
        f"check_fits(mean_model, 300 steps): {t_check:.2f} s wall, tracing included; {report.summary}"
    )


def bench_demo() -> None:
    """``pitfalls demo`` with its defaults, as a user runs it: a fresh interpreter,
    TensorFlow's import included. Target: 30 s or less on 2 cores."""
    section("pitfalls demo, defaults")
    if importlib.util.find_spec("keras") is None:
        print("skipped: Keras 3 is not installed (pip install 'pitfalls[tf]')")
        return
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pitfalls", "demo"], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(f"failed with status {done.returncode}: {done.stderr.strip()[-300:]}")
        return
    met = "MET" if seconds <= 30 else f"MISSED by {seconds / 30:.2f}x"
    load = os.getloadavg()[0]
    print(
        f"pitfalls demo: {seconds:.1f} s wall, {cpu:.1f} s CPU on {os.cpu_count()} cores"
        f" (load average {load:.1f} meanwhile: other work slows the wall time), {met}"
        " (target <= 30 s)"
    )


def bench_learn() -> None:
    """A learner's first commands on a fresh exercises folder, exercise 1 (numpy) failing:
    ``pytest ex -x`` (target <= 3 s) and ``pitfalls learn status ex``."""
    section("pitfalls learn: a learner's feedback, exercise 1 failing")
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]  # this checkout's pitfalls
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pitfalls", "learn", "init", "ex"],
            cwd=tmp,
            env=env,
            check=True,
            capture_output=True,
        )

        def command(*args: str) -> Callable[[], object]:
            return lambda: subprocess.run(
                [sys.executable, "-m", *args], cwd=tmp, env=env, capture_output=True
            )

        t_pytest = median_seconds(command("pytest", "ex", "-x", "-q"), repeats=3)
        t_status = median_seconds(command("pitfalls", "learn", "status", "ex"), repeats=3)
    met = "MET" if t_pytest <= 3 else f"MISSED by {t_pytest / 3:.2f}x"
    print(f"pytest ex -x                {t_pytest:5.2f} s   target <= 3 s: {met}")
    print(f"pitfalls learn status ex    {t_status:5.2f} s   (untouched exercises are not run)")


def python_loop() -> float:
    """A fixed pure-Python workload, so that seconds from two machines can be compared."""

    def loop() -> None:
        total = 0
        for i in range(10_000_000):
            total += i

    return median_seconds(loop, repeats=3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the suite and training parts")
    parser.add_argument("--suite", action="store_true", help="the test-suite part alone")
    parser.add_argument("--demo", action="store_true", help="the demo's wall time alone")
    parser.add_argument("--learn", action="store_true", help="the learner's commands alone")
    parser.add_argument("--draws", type=int, default=pitfalls.DEFAULT_DRAWS)
    args = parser.parse_args()
    print(
        f"numpy {np.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cores;"
        f" this machine's speed: a 10M-step Python loop takes {python_loop():.2f} s"
    )
    if args.suite:
        bench_suite()
        return
    if args.demo:
        bench_demo()
        return
    if args.learn:
        bench_learn()
        return
    bench_import()
    bench_checkers(args.draws)
    bench_learn()
    if not args.quick:
        bench_suite()
        bench_fits()
        bench_demo()


if __name__ == "__main__":
    main()
