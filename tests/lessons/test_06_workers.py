"""Beyond the article: several workers, one source.

What is seen. With several workers some batches come twice and some never, and
nothing raises; or every worker process applies the same "random" augmentation,
so an epoch holds each augmentation once per worker.

* ``SharedPositionBatches`` keeps its position on the source and advances it in
  two steps (read, then write back): two workers between those steps take the
  same batch, and the one after it is skipped. ``workers.round_robin`` plays the
  workers taking turns step by step, an interleaving a scheduler may pick, so the
  race shows without depending on timing.
* ``fork`` copies the parent's seeded global RNG into every worker; an
  initializer that does nothing (Keras' PyDataset pool passes no seed) leaves the
  copies identical.

The invariants. An epoch delivers every sample exactly once, however many workers
read it; and workers draw different random numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import workers
from tests.fresh_python import printed_json
from tests.lessons import Pitfall, buggy, fixed

PITFALL = Pitfall(
    title="6. workers share a position or a stream",
    invariant="an epoch delivers every sample exactly once, and workers draw different numbers",
    read_more="docs/explanation/pitfalls.md#beyond-the-article-the-pitfalls-next-door",
    pairs=workers.PAIRS,
)

DATA = np.arange(64 * 2, dtype=np.float64).reshape(64, 2)


@pytest.mark.parametrize("source", buggy(workers.SharedPositionBatches))
@given(n_workers=st.integers(2, 4), batch_size=st.sampled_from([2, 4, 8]))
def test_a_shared_position_delivers_some_batches_twice_and_some_never(
    source, n_workers, batch_size
):
    delivered = workers.round_robin(source(DATA, batch_size), 64 // batch_size, n_workers)
    assert len(delivered) == 64 // batch_size  # the epoch looks complete...
    report = pitfalls.check_epoch_complete(delivered, DATA)
    assert {f.when for f in report.findings} == {"duplicated", "dropped"}  # ...and is not
    assert report.cause is Cause.SAMPLES_TWICE


@pytest.mark.parametrize("source", fixed(workers.LockedPositionBatches))
@given(n_workers=st.integers(1, 4), batch_size=st.sampled_from([2, 4, 8]))
def test_a_position_claimed_under_a_lock_delivers_every_sample_once(source, n_workers, batch_size):
    delivered = workers.round_robin(source(DATA, batch_size), 64 // batch_size, n_workers)
    pitfalls.assert_epoch_complete(delivered, DATA)


FORKED = """
import json
import numpy as np
import pitfalls
from pitfalls.reproductions import workers

x = np.zeros(4)
np.random.seed(123)  # reproducible training code seeds the parent
out = {}
for init in (workers.inherit_parent_rng, workers.seed_per_worker):
    report = pitfalls.check_worker_randomness(
        lambda: workers.augment_with_global_rng(x), workers=3, worker_init=init
    )
    out[init.__name__] = {"status": report.status, "cause": report.cause, "text": str(report)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def forked():
    """Both initializers checked in a new Python importing numpy and pitfalls only."""
    return printed_json(FORKED)


@pytest.mark.parametrize("init", buggy(workers.inherit_parent_rng))
def test_forked_workers_repeat_the_parents_random_numbers(forked, init):
    verdict = forked[init.__name__]
    print(verdict["text"])
    assert (verdict["status"], verdict["cause"]) == ("failed", Cause.SHARED_RNG)


@pytest.mark.parametrize("init", fixed(workers.seed_per_worker))
def test_seeding_each_worker_gives_each_its_own_stream(forked, init):
    assert forked[init.__name__]["status"] == "passed", forked[init.__name__]["text"]
