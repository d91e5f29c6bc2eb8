"""The lessons: each pitfall reproduced, buggy and fixed, with identical signatures.

* :mod:`pitfalls.reproductions.generators`: pitfall 1, a batch generator that
  re-yields one numpy buffer.
* :mod:`pitfalls.reproductions.shapes`: pitfall 2, a model output of shape
  ``(n,)`` against targets ``(n, 1)``, and the loss paths where it still
  broadcasts on Keras 3 (Keras imported lazily).
"""
