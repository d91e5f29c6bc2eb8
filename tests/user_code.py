"""A user's batch pipeline, as source text: written into temporary projects by the
plugin tests (pytester) and the command-line tests (pitfalls check)."""

PIPELINE = """
import time
import numpy as np

def good(batch_size=8):
    rng = np.random.default_rng(0)
    while True:
        x = rng.normal(size=(batch_size, 2))
        yield x, x.mean(axis=1)

def reused(batch_size=8):
    rng = np.random.default_rng(0)
    x = np.empty((batch_size, 2))
    while True:
        x[:] = rng.normal(size=x.shape)
        yield x, x.mean(axis=1)

def rule(x):
    return x.mean(axis=1)
"""
