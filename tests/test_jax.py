"""JAX: a JAX project's iterator checked as is, device_put's zero-copy, and rank promotion.

JAX arrays are immutable, yet on CPU ``jax.device_put`` wraps a 64-byte
aligned numpy buffer instead of copying it (jax-ml/jax#37830), so a pipeline
that refills one buffer corrupts arrays it has already handed out.
``zero_copy.placed`` allocates aligned or unaligned on purpose, so each case
reproduces every time.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pitfalls
from pitfalls.reproductions import zero_copy

DATA = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)


def row_means(x):
    return np.asarray(x).mean(axis=1)


def jax_batches(data, *, batch_size=8, seed=0):
    """A JAX project's iterator: shuffled in numpy every epoch, each batch put on the device."""
    import jax

    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(data))
        for start in range(0, len(data), batch_size):
            rows = data[order[start : start + batch_size]]  # fancy indexing: a new array
            yield jax.device_put({"x": rows, "y": rows.mean(axis=1)})


def test_a_jax_iterator_passes_every_check(jax):
    batch = next(jax_batches(DATA))
    assert isinstance(batch["x"], jax.Array)
    reports = pitfalls.assert_source(
        lambda: jax_batches(DATA), row_means, steps_per_epoch=8, shuffled=True
    )
    assert [r.check for r in reports] == [
        "generator_no_aliasing",
        "targets_match",
        "epoch_repeatable",
        "order_shuffled",
    ]
    pitfalls.assert_epoch_complete(lambda: jax_batches(DATA), DATA, steps_per_epoch=8)


def key_batches(data, *, carry=True, seed=0, legacy=False):
    """An iterator in JAX's own style: PRNG keys split for each epoch's permutation and
    each batch's noise. ``carry=False`` is the bug: the key is split but never carried
    forward, so every epoch permutes with the same key. ``legacy``: a ``PRNGKey``, a plain
    uint32 array that nothing but a name tells from data."""
    import jax

    key = jax.random.PRNGKey(seed) if legacy else jax.random.key(seed)
    while True:
        if carry:
            key, perm_key, noise_key = jax.random.split(key, 3)
        else:
            perm_key, noise_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, len(data))
        for start in range(0, len(data), 8):
            noise_key, sub = jax.random.split(noise_key)
            x = data[order[start : start + 8]] + 0.1 * jax.random.normal(sub, (8, data.shape[1]))
            yield x, x.mean(axis=1)


def test_jax_keys_are_randomness_pitfalls_names_but_cannot_reseed(jax):
    """Bug: a correct iterator splitting its keys failed epoch_repeatable, "nothing pitfalls
    can see explains it", with a reseed= hint no key can follow. A key held by the source is
    now named: the epochs cannot be compared, and a key never carried forward is the cause
    of an order that never changes."""
    data = jax.numpy.asarray(DATA)
    report = pitfalls.check_epoch_repeatable(lambda: key_batches(data), steps_per_epoch=8)
    assert report.status == "inconclusive"
    assert report.inconclusive.startswith("The source holds a JAX PRNG key (key_batches()'s key")
    stuck = pitfalls.check_order_shuffled(lambda: key_batches(data, carry=False), steps_per_epoch=8)
    assert stuck.status == "failed" and "JAX PRNG key (key_batches()'s key)" in stuck.reason
    assert stuck.hint.startswith("carry the key forward every epoch: key, sub = jax.random.split")
    # A legacy PRNGKey is data (no name rule): the epochs cannot be told apart, never failed
    legacy = pitfalls.check_epoch_repeatable(
        lambda: key_batches(data, legacy=True), steps_per_epoch=8
    )
    assert legacy.status == "inconclusive" and "pass reseed=" in legacy.inconclusive.lower()


def test_a_jax_iterator_seeded_anew_every_epoch_is_not_shuffled(jax):
    def same_order_every_epoch():
        while True:
            yield from itertools.islice(jax_batches(DATA, seed=0), 8)  # one epoch, same seed

    with pytest.raises(pitfalls.OrderNotShuffledError, match="repeats epoch 1's order"):
        pitfalls.assert_order_shuffled(same_order_every_epoch, steps_per_epoch=8)


def test_device_put_shares_an_aligned_buffer_and_copies_an_unaligned_one(jax):
    for aligned in (True, False):
        buffer = zero_copy.placed((4, 2), aligned=aligned)
        buffer[:] = 1.0
        array = jax.device_put(buffer)
        buffer[:] = 2.0  # written after the "copy" was made
        assert float(array[0, 0]) == (2.0 if aligned else 1.0), aligned
    # Pinned, measured on JAX 0.10 (CPU): may_alias=False still shares; jnp.array copies.
    buffer = zero_copy.placed((4, 2), aligned=True)
    no_alias, copied = jax.device_put(buffer, may_alias=False), jax.numpy.array(buffer)
    buffer[:] = 3.0
    assert float(no_alias[0, 0]) == 3.0 and float(copied[0, 0]) == 0.0


# A strict mode: strict_loss, and JAX's rank promotion ----------------------------


@pitfalls.strict_loss
def mse(y_true, y_pred):
    import jax.numpy as jnp

    return jnp.mean(jnp.square(y_true - y_pred))


def test_strict_loss_raises_at_trace_time_under_jit(jax):
    y, pred = jax.numpy.zeros(8), jax.numpy.zeros((8, 1))
    with pytest.raises(pitfalls.BroadcastError, match=r"y_true=\(8,\), y_pred=\(8, 1\)"):
        jax.jit(mse)(y, pred)  # tracers carry their static shapes
    assert float(jax.jit(mse)(y[:, None], pred)) == 0.0
    grad = jax.jit(jax.grad(lambda p: mse(y[:, None], p)))(pred)  # and under grad
    assert grad.shape == (8, 1)


def test_rank_promotion_raise_against_strict_loss(jax):
    jnp = jax.numpy
    with jax.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'"):
            jnp.zeros((8, 1)) - jnp.zeros(8)  # the article's (n, 1) - (n,): caught
        with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'"):
            jnp.zeros((1, 1)) - jnp.zeros(1)  # at batch size 1 too
        assert (jnp.zeros((8, 1)) - jnp.zeros((1, 8))).shape == (8, 8)  # same rank: silent
    with pytest.raises(pitfalls.BroadcastError):
        mse(jnp.zeros((8, 1)), jnp.zeros((1, 8)))  # strict_loss compares whole shapes


@pytest.mark.keras_backend("jax")  # runs in CI's KERAS_BACKEND=jax pass
def test_rank_promotion_raise_breaks_keras_itself(keras, jax):
    # Dense adds a (units,) bias to (n, units): a rank promotion. So the option
    # cannot guard a Keras model on JAX; strict_loss on the loss can.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with jax.numpy_rank_promotion("raise"), pytest.raises(ValueError, match="add on shapes"):
        model(np.zeros((4, 2), dtype=np.float32))


def test_jax_arrays_a_source_holds_are_read_as_its_stored_data(jax):
    """The witness of data written while reading reads what a source holds: numpy arrays,
    torch tensors and JAX arrays (which may share a numpy buffer's memory on CPU)."""
    from pitfalls._randomness import held_by
    from pitfalls._written import stored_arrays

    class Holds:
        def __init__(self):
            self.images = jax.numpy.asarray(DATA)

    held = held_by([("self", Holds())])
    assert "self.images" in held.arrays  # (and the module's DATA, the class's module)
    array, rows = stored_arrays(held, 2)["self.images"]
    assert array is held.arrays["self.images"] and rows.total() == len(DATA)
