"""Mutation testing of the core: does the suite notice when the code that compares,
flattens and reads sources is broken?

    .venv/bin/python bench/mutation.py                  # mutmut + hand-made mutants (~30 min
                                                        # on 2 busy cores; 1,600 mutants)
    .venv/bin/python bench/mutation.py --keep /tmp/mut  # keep the work directory to inspect
    .venv/bin/python bench/mutation.py --results /tmp/mut   # report on it again, run nothing
    .venv/bin/python bench/mutation.py --no-mutmut      # the hand-made mutants alone (~1 min)
    .venv/bin/python bench/mutation.py --exclude test_mutants.py   # the suite without a file

Two kinds of mutants are tried against the fast, framework-free tests:

* mutmut's, generated inside every function of ``pitfalls/_tree.py``,
  ``_aliasing.py``, ``_targets.py``, ``_matching.py``, ``_sources.py`` and
  ``_fingerprint.py`` (an ``and`` made
  ``or``, a ``+ 1`` made ``+ 2``, an argument made ``None``, ...);
* hand-made ones that mutmut cannot make, because it mutates function bodies
  only: module constants (``ROLES``, ``TARGET_KEYS``, ...) and whole
  statements deleted (the dtype check of ``diff_arrays``).

Nothing in the repository is touched: the four modules, the tests, ``conftest.py``
and ``pyproject.toml`` are copied into a temporary directory, where mutmut is
configured by a ``setup.cfg`` written here (so ``pyproject.toml`` stays free of
it) and run. No framework is imported (tests that need TensorFlow or torch
skip or are deselected). mutmut runs the tests several times in one process,
so a test must be repeatable (pytest-repeat's ``--count`` checks the same).

The output is the score and every surviving mutant by file:line, sorted into

* **matters**: a survivor that a real bug could look like; the target is none;
* **wording**: only the words of a message or note changed (pinned instead by
  one exact-text test per message format, tests/test_messages.py);
* **hints**: code that picks a hint's or a note's words, or feeds the blame
  diagnosis (``HINTS``): what a failure says, not whether it fails;
* **out of reach**: code only a framework's tests reach (the torch fallback);
* **harmless**: a change no input can observe, or one that only takes a
  slower road to the same verdict (listed in ``HARMLESS`` below, each with
  the reason).

Only the first kind counts against the core score; the exit status is 1
while any survives (or any hand-made mutant does).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).with_name("mutmut")

MODULES = (
    "pitfalls/_tree.py",
    "pitfalls/_aliasing.py",
    "pitfalls/_targets.py",
    "pitfalls/_matching.py",
    "pitfalls/_sources.py",
    "pitfalls/_fingerprint.py",
)
"""What is mutated: the modules that compare, flatten, fingerprint and read sources (the
framework layer, reached only by the frameworks' tests, is left out with them)."""

TESTS = (
    "tests/lessons",  # those needing Keras deselected by the plugin below, torch's skipped
    "tests/test_article.py",
    "tests/test_no_aliasing.py",
    "tests/test_targets_match.py",
    "tests/test_index_stable.py",
    "tests/test_properties.py",
    "tests/test_read_ahead.py",
    "tests/test_strategies.py",
    "tests/test_messages.py",
    "tests/test_beyond_the_article.py",
    "tests/test_batch_independence.py",
    "tests/test_pipelines.py",
    "tests/test_blame.py",
    "tests/test_mutants.py",
    "tests/test_hints.py",
    "tests/test_misuse.py",
    "tests/test_words.py",
)
"""The tests run against each mutant: fast, in-process, no TensorFlow.

Left out: the Keras, demo and README tests (minutes of training for no extra
reach into these modules); test_cli.py and test_plugin.py, whose
``pitfalls check`` runs in a subprocess that imports the installed package,
not the mutant; test_public_api.py, which reads the code objects that
mutmut's trampolines replace; test_fuzz.py, whose hypothesis examples, re-run
for every mutant, would double a run (the crashes it guards against are
pinned by explicit cases in test_mutants.py)."""

PLUGIN = '''"""Written by bench/mutation.py: no framework is imported, nor tests that need one."""

import sys

FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "torch", "jax")
FRAMEWORK_FIXTURES = {"keras", "recording_model_class"}


def pytest_configure(config):
    # importorskip (and so the keras fixture, even asked for by getfixturevalue) skips,
    # and no framework is imported to be forked into every mutant's worker
    for name in FRAMEWORKS:
        sys.modules.setdefault(name, None)


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & FRAMEWORK_FIXTURES:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
'''

PYTEST_ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "pitfalls_mutation_plugin")


@dataclass(frozen=True)
class Handmade:
    """A mutant mutmut cannot make: ``old`` replaced by ``new`` in ``module``."""

    module: str
    old: str
    new: str
    bug: str  # the real bug it stands for


HANDMADE = (
    Handmade(
        "pitfalls/_tree.py",
        '        return Diff(path, size, size, (), f"dtype {dtype} became {now.dtype}")\n',
        "        pass\n",
        "a batch read again as float32 instead of float64 (or int as float) counts as unchanged",
    ),
    Handmade(
        "pitfalls/_tree.py",
        'ROLES = ("inputs", "targets", "sample_weights")',
        'ROLES = ("inputs", "targets")',
        "the sample weights of a 3-tuple batch are dropped, so their changes go unseen",
    ),
    Handmade(
        "pitfalls/_tree.py",
        'TARGET_KEYS = ("y", "label", "labels", "target", "targets")',
        'TARGET_KEYS = ("y", "labels", "target", "targets")',
        "a Hugging Face batch {'pixel_values': ..., 'label': ...} has no targets",
    ),
    Handmade(
        "pitfalls/_tree.py",
        'WEIGHT_KEYS = ("sample_weight", "sample_weights")',
        "WEIGHT_KEYS = ()",
        "a dict batch's sample weights are taken for inputs",
    ),
    Handmade(
        "pitfalls/_tree.py",
        "_MAX_DEPTH = 64",
        "_MAX_DEPTH = 100_000",
        "a batch nested thousands deep crashes with RecursionError instead of a ValueError",
    ),
    Handmade(
        "pitfalls/_tree.py",
        "_SCALARS = (type(None), bool, int, float, complex, str, bytes, np.generic)",
        "_SCALARS = (type(None), bool, int, float, complex, np.generic)",
        "a batch holding file names (str) or raw records (bytes) is rejected",
    ),
    Handmade(
        "pitfalls/_aliasing.py",
        "DEFAULT_DRAWS = 16",
        "DEFAULT_DRAWS = 8",
        "Keras 2's queue of 10 batches (a ring of 10 buffers) passes by default",
    ),
    Handmade(
        "pitfalls/_sources.py",
        "            end()\n",
        "            pass\n",
        "a PyDataset's on_epoch_end (its reshuffle) is never called between epochs",
    ),
    Handmade(
        "pitfalls/_targets.py",
        '            findings += comparer.compare(i, batch, "after later draws")\n',
        "            pass\n",
        "targets are checked when yielded only, not after later draws",
    ),
    Handmade(
        "pitfalls/_tree.py",
        "    seen.discard(id(node))\n",
        "    pass\n",
        "an autoencoder's batch (xs, xs), one list twice, is taken for a batch containing itself",
    ),
)


@dataclass(frozen=True)
class Harmless:
    """Survivors that do not matter: in ``function`` of ``module``, a mutation of a line
    matching ``old`` into one matching ``new`` (regular expressions searched in the
    stripped lines; ``""`` matches any), for the reason given."""

    module: str
    function: str
    old: str
    new: str
    why: str


_DEFAULT_NAME = (
    "every caller resolves with the default name, 'source', which a dropped argument falls back to"
)
_FAST_PATH = (
    "bitwise_equal is a fast path: this only makes it answer False (or compare more"
    " slowly), and then the elementwise comparison gives the same verdict"
)
HARMLESS = (
    Harmless(
        "pitfalls/_tree.py", "bitwise_equal", r"^if then\.dtype\.hasobject or", "", _FAST_PATH
    ),
    Harmless(
        "pitfalls/_tree.py",
        "diff_arrays",
        r"^if rtol is None and bitwise_equal",
        r"rtol is not None",
        "equal bytes are equal with or without a tolerance; elsewhere the full comparison runs",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "diff_arrays",
        r"^atol: float = 0.0",
        "",
        "every caller that passes rtol passes atol; without rtol atol is unused",
    ),
    Harmless(
        "pitfalls/_tree.py", "snapshot", r"copy=True", r"\), \)\)", "np.array copies by default"
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_walk",
        r'\("keys", keys\)',
        r'"(XXkeysXX|KEYS)"',
        "a tag compared only with itself; _structure_change tests for 'len' alone",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_equal_mask",
        r'old.dtype.kind == "c" and new.dtype.kind == "c"',
        r'( or |kind != "c")',
        "differs only when one side alone is complex: the dtype check excludes it without a tolerance, and with one only non-numbers reach here, unequal to complex numbers either way",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_close_mask",
        r'"biufc"',
        r'"XXbiufcXX"',
        "the longer string still holds every numeric kind, and no dtype's kind is 'X'",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "split_batch",
        r'^return Parts\(batch, None, "batch", "targets"\)',
        r'"batch", (None|"XXtargetsXX"|"TARGETS")\)',
        "the path of targets that are None is never read",
    ),
    Harmless(
        "pitfalls/_aliasing.py",
        "check_generator_no_aliasing",
        r"^changed_paths.add\(path\)$",
        r"None",
        "a structure change is at a container's path, which no leaf has, so the memory notes (made from leaves) never read it",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "batches",
        r'^if self.kind in \("generator", "iterator"\):',
        "",
        "a generator or iterator falls through to iter(self.obj), which is itself",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "article",
        r'in "aeiou"',
        r'"XXaeiouXX"',
        "the longer string still holds every vowel, and no noun starts with 'X' in lower case",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "resolve",
        r"^kind = None if inspect.isclass\(source\)",
        "",
        "only a class whose metaclass is iterable (an Enum) could tell them apart",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "resolve",
        r"^return Source\(source, kind, None, name\)$",
        "",
        "a source passed as itself is never resolved again, so its name is never read",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "open_source",
        r"resolve\(source, name\)",
        "",
        "every caller uses the default name",
    ),
    Harmless(
        "pitfalls/_sources.py",
        "fresh",
        r"resolve\(self.made_by, self.name\)",
        r"resolve\(self.made_by, \)",
        _DEFAULT_NAME,
    ),
    Harmless(
        "pitfalls/_sources.py",
        "resolve",
        r"^return Source\(made, kind, source, name\)$",
        r"source, \)$",
        _DEFAULT_NAME,
    ),
    Harmless(
        "pitfalls/_sources.py",
        "_iterations",
        r"^empty = False$",
        r"^empty = None$",
        "None and False are both false",
    ),
    Harmless(
        "pitfalls/_aliasing.py",
        "_memory_notes",
        r"as_array\(leaf, path\)",
        r"as_array\(leaf, None\)",
        "these leaves were read once already, when snapshotted: the path, used only in a read error, is never shown",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_equal_mask",
        r'"mM"',
        r'"XXmMXX"',
        "the longer string still holds both kinds, and no dtype's kind is 'X'",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_equal_mask",
        r'raise TypeError\("elementwise comparison failed"\)',
        "",
        "with numpy 2, == on two arrays is elementwise or raises: this line is not reached",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "as_array",
        r"return leaf if type\(leaf\) is np.ndarray else np.asarray\(leaf\)",
        r"(and False|type\(None\))",
        "np.asarray of a plain ndarray is that very array",
    ),
    Harmless(
        "pitfalls/_targets.py",
        "_weigh",
        r'"iub"',
        r'"XXiubXX"',
        "the longer string still holds the same kinds",
    ),
    Harmless(
        "pitfalls/_tree.py",
        "_close_mask",
        r"^eq = np.asarray\(actual == desired\)",
        "",
        _FAST_PATH,
    ),
    Harmless(
        "pitfalls/_matching.py",
        "_magnitude",
        r'"fc"',
        r'(\(a.dtype.kind in "fc"\) or True|"XXfcXX"|astype\(None\)|else 1\.0)',
        "integers have no NaN nor infinity to leave out, astype(None) is float64, and an"
        " empty leaf compares no element whatever its atol",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "_magnitude",
        r"if m.size else 0.0",
        r"else 1\.0",
        "an empty leaf compares no element whatever its atol",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "_dtype",
        r'getattr\(leaf, "dtype", default\)',
        r'getattr\(leaf, "dtype", \)',
        "getattr without a default raises AttributeError, which the except returns default for",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "tolerance",
        r'"biufc"',
        r'"XXbiufcXX"',
        "the longer string still holds every numeric kind, and no dtype's kind is 'X'",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "floor",
        r"(atol >= TOLERANCES|floor > atol)",
        "",
        "only asked after a mismatch: an atol no larger than the one applied fails as well,"
        " and one equal to the table's leaves no floor above it",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "compare",
        r"^wider = None if diff is None else",
        r"and False",
        "a floor asked for a leaf that matched only widens an atol it already passed",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "coarsest",
        r"key=_COARSEST_FIRST.index",
        "",
        "the precisions' names sort alphabetically in the same order, coarsest first",
    ),
    Harmless(
        "pitfalls/_matching.py",
        "__init__",
        r"^self\.(shapes = False|leaves = \(\))",
        r"None",
        "None is as false, and as empty to iterate, where these are read",
    ),
)

HINTS = (
    # (module, function, pattern in the original line; "" for the whole function)
    ("pitfalls/_aliasing.py", "source_style", ""),
    ("pitfalls/_aliasing.py", "fix_kind", ""),
    ("pitfalls/_aliasing.py", "_memory_notes", r'(^|\()"(buffer|views|ring)",'),
    ("pitfalls/_aliasing.py", "check_generator_no_aliasing", r"^(hint=|blame=)"),
    ("pitfalls/_aliasing.py", "check_generator_no_aliasing", r"array_library\(|fix_kind\("),
    ("pitfalls/_aliasing.py", "array_library", ""),  # the library a hint is worded for
    ("pitfalls/_aliasing.py", "later_fix", ""),
    ("pitfalls/_targets.py", "_words", ""),
    # The cause of a mismatch, from the evidence (rounding, integers, read-ahead, memory
    # rewritten or shared, sampling, augmentation): the reason, the hint and the notes.
    ("pitfalls/_targets.py", "_weigh", ""),
    ("pitfalls/_matching.py", "_explain", ""),
    ("pitfalls/_matching.py", "_integers", ""),
    ("pitfalls/_matching.py", "_note", ""),
    ("pitfalls/_matching.py", "rounding", ""),
    ("pitfalls/_targets.py", "_suggest", ""),
    ("pitfalls/_targets.py", "_sampled_from", ""),
    ("pitfalls/_targets.py", "_arrays", ""),
    ("pitfalls/_targets.py", "_stored", ""),
    ("pitfalls/_matching.py", "_varies", ""),
    ("pitfalls/_targets.py", "_shared_inputs", ""),
    ("pitfalls/_matching.py", "narrow", ""),
    ("pitfalls/_matching.py", "scale", ""),
    ("pitfalls/_matching.py", "changed", ""),  # inputs rewritten since: the cause
    ("pitfalls/_matching.py", "read_ahead", ""),
    ("pitfalls/_matching.py", "_matches", ""),
    ("pitfalls/_matching.py", "loosest", ""),  # the blame diagnosis' tolerance
    ("pitfalls/_matching.py", "parameter", ""),  # the tolerance shown, not the one applied
    ("pitfalls/_matching.py", "_record", ""),  # which tolerance the report shows
    ("pitfalls/_matching.py", "compare", r"^self\._record\("),
    (
        "pitfalls/_matching.py",
        "compare",
        r"self\._explain\(|^self\.shapes = |^self\.expected\[index\] = "
        r"|^want = self\._expected\(index",  # the batch a misuse error names
    ),
    # How a source is named in a message (a factory's call, a class, a partial)
    ("pitfalls/_sources.py", "_unwrapped", ""),
    ("pitfalls/_sources.py", "_callable_name", ""),
    ("pitfalls/_sources.py", "_call_text", ""),
    ("pitfalls/_sources.py", "_object_name", ""),
    ("pitfalls/_sources.py", "_stopped", ""),  # which words a consumed source's error has
    (
        "pitfalls/_targets.py",
        "targets_report",
        r"Randomness\(|^if i == 0:|add_root|^watch\.|^comparer\.library = |^fix = later_fix\(|^given = "
        r'|^"(rtol|atol)": comparer\.parameter|comparer\.loosest|^(timeout|unpack)=\w+,$',
    ),
)
"""Code that picks the words of a hint or a note, or feeds the blame diagnosis (added
beside this bench, with its own tests): a survivor here changes what a report *says*
about a failure, never whether it fails. Listed apart, and not counted."""

OUT_OF_REACH = (
    (
        "pitfalls/_targets.py",
        "targets_report",
        r"^graph = _tfdata\.graph|^tf_ops = graph\.random_ops",
        "a tf.data pipeline's random ops: tests/test_tfdata.py pins them",
    ),
    (
        "pitfalls/_sources.py",
        "add_note",
        r"sys\.version_info|__notes__|^notes = \[\]|^if notes is None|^notes\.append",
        "PEP 678 notes before Python 3.11: the floor environment (Python 3.10) runs these",
    ),
    (
        "pitfalls/_sources.py",
        "resolve",
        r"_MADE\[-1\]\.append|^if _MADE and frameworks\.torch\.persistent",
        "the worker pool a torch DataLoader came with: tests/test_torch.py pins it",
    ),
    (
        "pitfalls/_matching.py",
        "tolerance",
        r"_dtype\((actual|desired), ",
        "a leaf's own dtype differs from numpy's reading of it only for torch's bfloat16:"
        " tests/test_torch.py pins it",
    ),
    (
        "pitfalls/_matching.py",
        "compare",
        r"self\.tolerance\(a, actual, d, desired\)",
        "the leaves themselves matter only for torch's bfloat16: tests/test_torch.py pins it",
    ),
    (
        "pitfalls/_sources.py",
        "resolve",
        r"keep_if_from_hf",
        "keeps a Hugging Face to_tf_dataset pipeline alive: tests/test_huggingface.py pins it",
    ),
    (
        "pitfalls/_tree.py",
        "as_array",
        r"torch\.as_array|^from pitfalls\._frameworks import torch",
        "the torch fallback: tests/test_torch.py pins it, left out here with torch",
    ),
)
"""Survivors in code that only a framework's tests reach: listed apart, not counted."""


# Running ----------------------------------------------------------------------------


def copy_tree(work: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for name in ("pitfalls", "tests"):
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, work / name)
    (work / "pitfalls_mutation_plugin.py").write_text(PLUGIN)


EXCLUDED: set[str] = set()  # --exclude: test files left out, to measure the suite without them


def tests_present(work: Path) -> list[str]:
    return [t for t in TESTS if (work / t).exists() and Path(t).name not in EXCLUDED]


def write_setup_cfg(work: Path) -> None:
    lines = ["[mutmut]", "source_paths = pitfalls", "only_mutate ="]
    lines += [f"    {m}" for m in MODULES]
    lines += ["also_copy =", "    conftest.py", "    pitfalls_mutation_plugin.py"]
    lines += ["pytest_add_cli_args ="] + [f"    {a}" for a in PYTEST_ARGS]
    lines += ["pytest_add_cli_args_test_selection ="]
    lines += [f"    {t}" for t in tests_present(work)]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")


def run_mutmut(work: Path, children: int) -> Path:
    write_setup_cfg(work)
    log = work / "mutmut.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CI")}
    with log.open("w") as out:
        code = subprocess.run(
            [str(MUTMUT), "run", "--max-children", str(children)],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        ).returncode
    if code != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-40:]
        sys.exit(f"mutmut run failed (exit {code}); the end of {log}:\n" + "\n".join(tail))
    return log


def run_handmade(work: Path) -> list[tuple[Handmade, bool]]:
    """Apply each hand-made mutant in turn to a copy; killed when the tests fail."""
    outcomes = []
    tests = tests_present(work)
    for mutant in HANDMADE:
        path = work / mutant.module
        original = path.read_text()
        if original.count(mutant.old) != 1:
            sys.exit(f"hand-made mutant no longer applies to {mutant.module}: {mutant.old!r}")
        path.write_text(original.replace(mutant.old, mutant.new))
        try:
            code = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", *PYTEST_ARGS, *tests],
                cwd=work,
                capture_output=True,
                env={
                    **{k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "CI")},
                    "PYTHONPATH": str(work),
                },
            ).returncode
        finally:
            path.write_text(original)
        outcomes.append((mutant, code != 0))
    return outcomes


# Reading mutmut's results -------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    status: str
    line: int
    old: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line}"


def read_results(work: Path) -> list[Mutant]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    mutants = []
    cwd = Path.cwd()
    os.chdir(work)
    try:
        for module in MODULES:
            meta = json.loads((work / "mutants" / (module + ".meta")).read_text())
            source = (work / module).read_text().splitlines()
            spans = _function_spans((work / module).read_text())
            for name, code in meta["exit_code_by_key"].items():
                status = status_by_exit_code[code]
                if status == "killed":
                    mutants.append(Mutant(name, module, status, 0, (), ()))
                    continue
                diff = get_diff_for_mutant(name, path=module).splitlines()
                old, new, offset = _changed(diff)
                line = _locate(name, spans, source, old, offset)
                mutants.append(Mutant(name, module, status, line, old, new))
    finally:
        os.chdir(cwd)
    return mutants


def _function_spans(text: str) -> dict[str, tuple[int, int]]:
    """First and last line of every function, by mutmut's name for it (xǁClassǁmethod)."""
    spans = {}
    for node in ast.parse(text).body:
        items = [(node, "")]
        if isinstance(node, ast.ClassDef):
            items = [(n, f"ǁ{node.name}ǁ") for n in node.body]
        for fn, prefix in items:
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
                key = f"x{prefix}{fn.name}" if prefix else f"x_{fn.name}"
                spans[key] = (first, fn.end_lineno or fn.lineno)
    return spans


def _changed(diff: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """The removed and added lines of a unified diff, and the function line of the first."""
    old, new, offset, start = [], [], 0, 0
    for text in diff[2:]:
        hunk = re.match(r"@@ -(\d+)", text)
        if hunk:
            start = int(hunk.group(1))
            continue
        if text.startswith("-"):
            old.append(text[1:])
            offset = offset or start
        elif text.startswith("+"):
            new.append(text[1:])
        elif not old:
            start += 1
    return tuple(old), tuple(new), offset


def _locate(
    name: str,
    spans: dict[str, tuple[int, int]],
    source: list[str],
    old: tuple[str, ...],
    offset: int,
) -> int:
    key = name.rpartition(".")[2].rsplit("__mutmut_", 1)[0]
    first, last = spans.get(key, (1, len(source)))
    guess = first + offset - 1
    if old and 0 < guess <= len(source) and source[guess - 1].strip() == old[0].strip():
        return guess
    for i in range(first, last + 1):  # fall back to the first line that reads the same
        if old and source[i - 1].strip() == old[0].strip():
            return i
    return first


def _tokens(line: str) -> list[tuple[int, str]] | None:
    try:
        reader = io.StringIO(line.strip() + "\n").readline
        skip = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT}
        return [(t.type, t.string) for t in tokenize.generate_tokens(reader) if t.type not in skip]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def function_of(name: str) -> str:
    """``pitfalls._tree.x_walk__mutmut_3`` -> ``_walk``; ``...xǁSourceǁfresh__mutmut_1`` -> ``fresh``."""
    key = name.rpartition(".")[2].rsplit("__mutmut_", 1)[0]
    return key.rpartition("ǁ")[2] if "ǁ" in key else key[2:]


def classify(m: Mutant) -> tuple[str, str]:
    """("matters" | "wording" | "hints" | "harmless" | "out of reach", why)."""
    for module, function, pattern in HINTS:
        if (
            m.module == module
            and function_of(m.name) == function
            and any(re.search(pattern, line.strip()) for line in m.old)
        ):
            return "hints", "picks a hint's or a note's words, or feeds the blame diagnosis"
    for module, function, pattern, why in OUT_OF_REACH:
        if (
            m.module == module
            and function_of(m.name) == function
            and any(re.search(pattern, line) for line in m.old)
        ):
            return "out of reach", why
    for h in HARMLESS:
        if (
            m.module == h.module
            and function_of(m.name) == h.function
            and any(re.search(h.old, line.strip()) for line in m.old)
            and any(re.search(h.new, line.strip()) for line in m.new or ("",))
        ):
            return "harmless", h.why
    if m.old and len(m.old) == len(m.new):
        wording = True
        for a, b in zip(m.old, m.new):
            ta, tb = _tokens(a), _tokens(b)
            if ta is None or tb is None or len(ta) != len(tb):
                return "matters", ""
            for x, y in zip(ta, tb):
                if x == y:
                    continue
                # only the words of a message: a string with a space in it
                if x[0] != tokenize.STRING or y[0] != tokenize.STRING or " " not in x[1]:
                    wording = False
        if wording:
            return "wording", "words of a message"
    return "matters", ""


# Reporting --------------------------------------------------------------------------


def score_line(killed: int, total: int) -> str:
    pct = 100.0 * killed / total if total else 100.0
    return f"{killed} / {total} ({pct:.1f}%)"


def report(mutants: list[Mutant], handmade: list[tuple[Handmade, bool]], verbose: bool) -> int:
    core_survivors = 0
    if mutants:
        detected = {"killed", "timeout"}  # a mutant that hangs the tests is caught by the timeout
        counts: dict[str, int] = {}
        for m in mutants:
            counts[m.status] = counts.get(m.status, 0) + 1
        alive = [m for m in mutants if m.status not in detected]
        sorted_alive: dict[str, list[tuple[Mutant, str]]] = {
            "matters": [],
            "wording": [],
            "harmless": [],
            "hints": [],
            "out of reach": [],
        }
        for m in alive:
            kind, why = classify(m)
            sorted_alive[kind].append((m, why))
        killed = sum(counts.get(s, 0) for s in detected)
        ignored = sum(
            len(sorted_alive[k]) for k in ("wording", "hints", "harmless", "out of reach")
        )
        print("\n== mutmut on " + ", ".join(MODULES))
        print(
            "   ".join(
                f"{status}: {n}" for status, n in sorted(counts.items(), key=lambda x: -x[1])
            )
        )
        print(f"score (killed or timed out / all):            {score_line(killed, len(mutants))}")
        print(
            "core score (without wording, hints, harmless, out of reach): "
            + score_line(killed, len(mutants) - ignored)
        )
        matters = sorted(sorted_alive["matters"], key=lambda mw: (mw[0].module, mw[0].line))
        core_survivors = len(matters)
        print(f"\nSurvivors that matter: {len(matters)}")
        for m, _ in matters:
            _show(m)
        print(
            f"\nSurvivors that change only a message's words: {len(sorted_alive['wording'])}"
            " (not counted: each message format is pinned by one exact-text test)"
        )
        if verbose:
            for m, _ in sorted(sorted_alive["wording"], key=lambda mw: mw[0].line):
                _show(m)
        print(
            f"\nSurvivors in hint and note selection or the blame diagnosis:"
            f" {len(sorted_alive['hints'])} (not counted: they change what a failure says,"
            " not whether it fails; see HINTS)"
        )
        if verbose:
            for m, _ in sorted(sorted_alive["hints"], key=lambda mw: (mw[0].module, mw[0].line)):
                _show(m)
        print(f"\nSurvivors out of reach here: {len(sorted_alive['out of reach'])}")
        for m, why in sorted(sorted_alive["out of reach"], key=lambda mw: mw[0].line):
            print(f"  {m.where}  {m.name.rpartition('.')[2]}: {why}")
        print(f"\nSurvivors that cannot matter: {len(sorted_alive['harmless'])}")
        for m, why in sorted(sorted_alive["harmless"], key=lambda mw: (mw[0].module, mw[0].line)):
            print(f"  {m.where}  {m.name.rpartition('.')[2]}: {why}")
    if handmade:
        print("\n== hand-made mutants (what mutmut cannot make)")
        for mutant, killed_it in handmade:
            print(f"  {'killed  ' if killed_it else 'SURVIVED'}  {mutant.module}: {mutant.bug}")
        alive_handmade = sum(not k for _, k in handmade)
        print(f"score: {score_line(len(handmade) - alive_handmade, len(handmade))}")
        core_survivors += alive_handmade
    target = "MET (no core mutant survives)" if core_survivors == 0 else "MISSED"
    print(f"\nCore survivors: {core_survivors}  {target}")
    return core_survivors


def _show(m: Mutant) -> None:
    print(f"  {m.where}  {m.status}  {m.name.rpartition('.')[2]}")
    for line in m.old:
        print(f"      - {line.strip()}")
    for line in m.new:
        print(f"      + {line.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-mutmut", action="store_true", help="the hand-made mutants alone")
    parser.add_argument("--no-handmade", action="store_true", help="mutmut's mutants alone")
    parser.add_argument("--verbose", action="store_true", help="list the wording survivors too")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FILE",
        help="leave out this test file (e.g. test_mutants.py), to see what it kills",
    )
    parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="report on a finished run kept with --keep DIR, without running anything",
    )
    args = parser.parse_args()
    EXCLUDED.update(args.exclude)
    if args.results:
        sys.exit(1 if report(read_results(args.results), [], args.verbose) else 0)

    if args.keep:
        if args.keep.exists():
            sys.exit(f"--keep {args.keep}: exists; pass a new directory")
        work = args.keep
        work.mkdir(parents=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="pitfalls-mutation-"))
    start = time.perf_counter()
    try:
        copy_tree(work)
        print(f"work directory: {work}")
        print("tests: " + " ".join(Path(t).name for t in tests_present(work)))
        mutants: list[Mutant] = []
        if not args.no_mutmut:
            if not MUTMUT.exists():
                sys.exit(
                    f"mutmut is not installed beside {sys.executable}: install the bench "
                    "extra (.venv/bin/pip install -e '.[bench]'), or pass --no-mutmut"
                )
            run_mutmut(work, args.children)
            mutants = read_results(work)
        handmade = [] if args.no_handmade else run_handmade(work)
        survivors = report(mutants, handmade, args.verbose)
        print(f"took {time.perf_counter() - start:.0f} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if survivors else 0)


if __name__ == "__main__":
    main()
