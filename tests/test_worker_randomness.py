"""Worker randomness: do the workers draw different random numbers?

A forked worker starts as a copy of its parent, every RNG state included. Which
of those states something reseeds per worker depends on who made the workers:
a process pool or Keras' PyDataset reseeds nothing; a torch DataLoader reseeds
Python's ``random``, torch's and numpy's global RNGs, never a generator the
dataset holds. So the check models the workers the user will run: plain forked
processes, or, when a torch Dataset is involved, a real DataLoader's workers,
where a ``worker_init_fn`` written with ``get_worker_info()`` works as it will
in training. And a ``fn`` whose values never vary cannot show a shared stream:
that is "could not judge", not a failure.
"""

from __future__ import annotations

import numpy as np
import pytest

import pitfalls
from tests.fresh_python import printed_json

# Plain forked workers, forked from a fresh interpreter ---------------------------------

FORK_SCRIPT = """
import itertools, json, random, types
import numpy as np
import pitfalls

def report(fn, **kwargs):
    try:
        r = pitfalls.check_worker_randomness(fn, **kwargs)
    except Exception as exc:
        return {"status": "error", "text": f"{type(exc).__name__}: {exc}", "findings": None}
    findings = [f.path for f in r.findings]
    return {"status": r.status, "text": str(r), "findings": findings, "notes": r.notes}

counter = itertools.count()
elsewhere = types.ModuleType("elsewhere")  # a generator fn refers to through a module
elsewhere.rng = random.Random(3)
print(json.dumps({
    "constant": report(lambda: 0.0),
    "draws_but_constant": report(lambda: np.random.normal(size=2) * 0.0),
    "one_constant_call": report(lambda: np.zeros(2), calls=1),
    "one_random_call": report(lambda: np.random.normal(size=2), calls=1),
    "counter": report(lambda: next(counter)),
    "pair": report(lambda: (np.random.normal(size=2), np.float32(1.0))),
    "elsewhere": report(lambda: elsewhere.rng.random()),
}))
"""


@pytest.fixture(scope="module")
def forked():
    """What each case reported, run in one new Python importing numpy and pitfalls only."""
    return printed_json(FORK_SCRIPT)


def test_a_fn_with_no_randomness_could_not_judge_rather_than_fail(forked):
    """Every worker returning 0.0 is what a shared stream would look like, and what no
    stream at all looks like: the check cannot tell them apart and says so."""
    out = forked["constant"]
    assert out["status"] == "inconclusive"
    assert out["text"] == (
        "worker_randomness(workers=2, calls=3, seed=0) could not judge\n"
        "fn drew no randomness: every worker returned the same constant values (0.0 first)"
        " on each of its 3 calls, and no RNG it can reach moved, so whether the workers share"
        " one RNG stream cannot be told. Pass a fn that returns what it draws (the augmented"
        " sample, the noise)."
    )


def test_a_fn_that_draws_but_returns_a_constant_could_not_judge_either(forked):
    out = forked["draws_but_constant"]
    assert out["status"] == "inconclusive"
    assert (
        out["text"]
        .splitlines()[1]
        .startswith("fn drew from numpy's global RNG but every worker returned the same values")
    )


def test_with_one_call_a_draw_tells_a_copied_stream_from_a_constant(forked):
    """One call per worker shows no variation: a value that moved an RNG still fails,
    a value that moved none cannot be judged."""
    assert forked["one_random_call"]["findings"] == ["workers 0 and 1"]
    out = forked["one_constant_call"]
    assert out["status"] == "inconclusive"
    assert out["text"].endswith("Pass calls=2 or more, and a fn that returns what it draws.")


def test_state_copied_into_every_worker_still_fails(forked):
    """A counter (or a hand-written RNG pitfalls does not recognise) copied at the fork
    repeats in every worker: the values vary per call, so the repeat is a finding."""
    assert forked["counter"]["findings"] == ["workers 0 and 1"]
    assert forked["pair"]["findings"] == ["workers 0 and 1"]  # a tuple, compared leaf by leaf


def test_a_generator_fn_is_seen_drawing_from_is_named_as_it_started(forked):
    """fn reaches its generator through a module, which nothing fn refers to holds: the
    workers watch fn draw (as the checks watch a read), and the one drawn from in two
    calls is compared as it was before its first draw: copied into both workers."""
    out = forked["elsewhere"]
    assert out["findings"] == ["workers 0 and 1"]
    assert out["notes"][-1] == (
        "Randomness: fn drew from random.Random #3 (seen drawing), which started in the same"
        " state in every worker (copied at the fork)."
    )


# A torch DataLoader's workers ------------------------------------------------------------


@pytest.fixture(scope="module")
def datasets(torch):
    """Map-style torch Datasets drawing noise from three RNGs, made once torch is imported."""
    from torch.utils.data import Dataset, IterableDataset, get_worker_info

    class OwnGenerator(Dataset):
        """Draws from ``self.rng``, made in ``__init__``: copied into every worker."""

        def __init__(self):
            self.rng = np.random.default_rng(0)

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return np.float32(i) + self.rng.normal(size=2).astype(np.float32)

    class GlobalNumpy(OwnGenerator):
        def __getitem__(self, i):
            return np.float32(i) + np.random.normal(size=2).astype(np.float32)

    class GlobalTorch(OwnGenerator):
        def __getitem__(self, i):
            return i + torch.randn(2)

    class Stream(IterableDataset):
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def __iter__(self):
            while True:
                yield self.rng.normal(size=2)

    def reseed(worker_id):
        """The standard worker_init_fn: a generator per worker, from DataLoader's seed."""
        info = get_worker_info()
        info.dataset.rng = np.random.default_rng(info.seed % 2**32)

    return {
        "own": OwnGenerator,
        "numpy": GlobalNumpy,
        "torch": GlobalTorch,
        "stream": Stream,
        "reseed": reseed,
    }


def dataloader_repeats(torch, dataset):
    """The oracle: does a real DataLoader's worker 1 draw what worker 0 drew?"""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=[0, 0],  # index 0 once in each worker: sample k comes from worker k % 2
        num_workers=2,
        generator=torch.Generator().manual_seed(0),
        multiprocessing_context="fork",
    )
    first, second = (np.asarray(x) for x in loader)
    return bool(np.array_equal(first, second))


@pytest.mark.parametrize("rng", ["own", "numpy", "torch"])
def test_the_verdict_is_what_a_real_dataloader_does(torch, datasets, rng):
    """DataLoader reseeds the global RNGs per worker, never the dataset's own generator:
    only the latter repeats, and only the latter fails (torch.randn is not flagged)."""
    dataset = datasets[rng]()
    report = pitfalls.check_worker_randomness(dataset)
    assert report.status == ("failed" if dataloader_repeats(torch, dataset) else "passed")
    assert report.status == ("failed" if rng == "own" else "passed")
    assert report.parameters["dataset"] == type(dataset).__name__
    assert report.notes[0] == (
        f"Workers: 2 processes of a torch DataLoader over {type(dataset).__name__}, with"
        " get_worker_info() set and DataLoader's seeding: numpy's global RNG, Python's random"
        " and torch's global RNG started in a different state in each worker (reseeded per"
        " worker)."
    )


def test_a_worker_init_fn_using_get_worker_info_is_tested_as_it_runs(torch, datasets):
    """The fix torch's docs give reads get_worker_info(), None outside a DataLoader worker:
    it used to raise AttributeError in the check's workers. The Dataset fn refers to is
    found, and its workers are a DataLoader's."""
    dataset = datasets["own"]()
    fixed = pitfalls.check_worker_randomness(lambda: dataset[0], worker_init=datasets["reseed"])
    assert fixed.ok, str(fixed)
    assert fixed.parameters["dataset"] == "OwnGenerator"
    buggy = pitfalls.check_worker_randomness(lambda: dataset[0], calls=2)
    assert [f.path for f in buggy.findings] == ["workers 0 and 1"]
    lines = str(buggy).splitlines()
    assert lines[:2] == [
        "worker_randomness(workers=2, calls=2, seed=0, dataset=OwnGenerator) failed",
        "DataLoader workers drew identical random numbers: every worker started from the same"
        " RNG state (its copy of the dataset's generator, or a seed that does not depend on"
        " the worker), so every worker repeats the same augmentations.",
    ]
    assert lines[-2:] == [
        "Randomness: fn drew from dataset.rng, which started in the same state in every"
        " worker (copied at the fork).",
        "Hint: give each worker its own stream in a worker_init_fn: info ="
        " torch.utils.data.get_worker_info(); info.dataset.rng ="
        " np.random.default_rng(info.seed % 2**32) (DataLoader reseeds its global RNGs per"
        " worker, never a generator the dataset holds), or draw from torch's RNG.",
    ]


def test_a_duck_typed_dataset_is_found_through_a_torch_worker_init(torch):
    """Not a torch Dataset subclass, but worker_init asks get_worker_info(): the object fn
    reads by index is what the DataLoader serves."""
    from pitfalls.reproductions import loaders

    rows = loaders.NoisyRows(np.zeros((8, 2), np.float32))
    fixed = pitfalls.check_worker_randomness(
        lambda: rows[0][0], worker_init=loaders.reseed_dataset_rng
    )
    assert fixed.ok and fixed.parameters["dataset"] == "NoisyRows"
    explicit = pitfalls.check_worker_randomness(lambda: rows[0][0], dataset=rows)
    assert [f.path for f in explicit.findings] == ["workers 0 and 1"]


def test_an_iterable_dataset_is_read_by_its_first_item(torch, datasets):
    report = pitfalls.check_worker_randomness(datasets["stream"]())
    assert [f.path for f in report.findings] == ["workers 0 and 1"]


def test_a_dataloader_worker_init_without_a_dataset_is_misuse(torch, datasets):
    with pytest.raises(ValueError, match="worker_init calls get_worker_info"):
        pitfalls.check_worker_randomness(lambda: 0.0, worker_init=datasets["reseed"])
    a, b = datasets["own"](), datasets["own"]()
    with pytest.raises(ValueError, match=r"fn refers to 2 datasets \(a, b\): pass dataset="):
        pitfalls.check_worker_randomness(lambda: (a[0], b[0]))
    with pytest.raises(TypeError, match="dataset must be the Dataset your DataLoader serves"):
        pitfalls.check_worker_randomness(lambda: 0.0, dataset=3)


def test_the_callers_rngs_are_left_as_they_were(torch, datasets):
    np.random.seed(7)
    torch.manual_seed(7)
    before = (np.random.get_state()[1][:4].tolist(), torch.get_rng_state())
    pitfalls.check_worker_randomness(datasets["torch"](), seed=None)
    after = (np.random.get_state()[1][:4].tolist(), torch.get_rng_state())
    assert before[0] == after[0] and torch.equal(before[1], after[1])
