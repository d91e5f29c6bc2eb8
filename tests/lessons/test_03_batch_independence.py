"""Beyond the article: a prediction that depends on the rest of its batch.

What is seen. A model evaluated with ``model(x, training=True)`` gives a sample a
different prediction in a different batch: evaluation depends on the batch size
and on the order of the data, and a batch of one sample is normalised to zero, so
its prediction is the same whatever the sample.
BatchNormalization in training mode normalises with the batch's own mean and
variance, so every sample moves every other.

The invariant. Sample i's prediction depends on sample i alone: changing sample j
never moves it. ``assert_batch_independent`` perturbs one sample at a time and
watches the others; it needs no shapes, so it also catches the ``(n,)`` against
``(n, 1)`` loss of lesson 2 at the loss itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pitfalls
from pitfalls import Cause
from pitfalls.reproductions import independence
from tests.lessons import Pitfall, buggy, examples, fixed

PITFALL = Pitfall(
    title="3. a prediction that depends on its batch",
    invariant="sample i's prediction depends on sample i alone: changing sample j never moves it",
    read_more="docs/explanation/pitfalls.md#beyond-the-article-the-pitfalls-next-door",
    pairs=independence.PAIRS,
)


@pytest.fixture(scope="module")
def model(keras):
    return independence.batchnorm_model(seed=0)


@pytest.mark.parametrize("predict", buggy(independence.predict_in_training_mode))
def test_in_training_mode_a_sample_is_predicted_differently_beside_other_samples(model, predict):
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    alone = predict(model, x[:1])[0]
    in_batch = predict(model, x)[0]
    assert not np.allclose(alone, in_batch)  # sample 0, same weights, another batch
    with pytest.raises(pitfalls.BatchDependenceError) as caught:
        pitfalls.assert_batch_independent(lambda batch: predict(model, batch), x)
    print(caught.value)
    assert caught.value.report.cause is Cause.BATCH_DEPENDENCE


@pytest.mark.parametrize("predict", fixed(independence.predict_in_inference_mode))
@examples(5)
@given(n=st.integers(2, 16), seed=st.integers(0, 2**32 - 1))
def test_in_inference_mode_each_prediction_is_the_samples_own(model, predict, n, seed):
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype("float32")
    alone = np.concatenate([predict(model, x[i : i + 1]) for i in range(n)])
    np.testing.assert_allclose(predict(model, x), alone, rtol=1e-5, atol=1e-5)
    pitfalls.assert_batch_independent(lambda batch: predict(model, batch), x)
