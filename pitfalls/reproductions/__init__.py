"""The lessons: each pitfall reproduced, buggy and fixed, with identical signatures.

Every module lists its ``(buggy, fixed)`` variants in ``PAIRS``; each buggy
docstring says the symptom, the cause and the one-line fix.

* :mod:`pitfalls.reproductions.generators`: pitfall 1, a batch generator that
  re-yields one numpy buffer (and the same in a ``PyDataset``).
* :mod:`pitfalls.reproductions.shapes`: pitfall 2, a model output of shape
  ``(n,)`` against targets ``(n, 1)``, and the loss paths where it still
  broadcasts on Keras 3 (Keras imported lazily).
* :mod:`pitfalls.reproductions.independence`: a prediction that depends on the
  other samples of its batch (BatchNormalization in training mode).
* :mod:`pitfalls.reproductions.epochs`: data rewritten between epochs, and an
  order that never changes.
* :mod:`pitfalls.reproductions.targets`: integer targets that wrap around or
  floor.
* :mod:`pitfalls.reproductions.workers`: workers sharing a position without a
  lock, and forked workers sharing one RNG stream.
* :mod:`pitfalls.reproductions.pipelines`: pipelines as people write them: a
  PyDataset that shuffles and flips at random, a PyTorch-style loader, and one
  buggy subclass per planted bug (buffer on self, in-place scaling, shuffle
  ignored or reseeded identically, labels computed before the augmentation).
* :mod:`pitfalls.reproductions.loaders`: PyTorch DataLoader pitfalls (an
  IterableDataset under workers, set_epoch with persistent workers, a Generator
  copied into workers, batch_size=None over a buffer, a collate_fn reusing its
  tensor).
* :mod:`pitfalls.reproductions.zero_copy`: tf.data and jax.device_put wrapping
  a 64-byte aligned numpy buffer; Keras 3 fit over an aligned against an
  unaligned shared buffer.
"""
