"""Pipelines as people write them: a PyDataset that augments, and a PyTorch-style loader.

Two small families, each a correct class and one buggy subclass per planted
bug (a one-method difference), with the same constructor:

* ``FlipBatches`` and its bugs: a ``keras.utils.PyDataset``-style dataset of
  grey images with integer class labels (1 where the right half is brighter,
  :func:`brighter_side`). ``self.indices`` is shuffled in ``on_epoch_end``;
  each image is flipped left-right at random, which swaps its label.
  ``ScaledCopy`` / ``ScaledInPlace`` scale the stored images a batch's
  indices name, into a new array or in place.
* ``BrightnessLoader`` and its bugs: an iterable with ``__iter__`` and
  ``__len__`` that draws a new order of the samples every epoch, as a PyTorch
  ``DataLoader`` with ``shuffle=True`` does (no torch needed), with a float regression target (the
  mean brightness, :func:`mean_brightness`) and a random brightness scaling.

The classes are plain Python; :func:`pydataset` turns one into a real
``keras.utils.PyDataset`` subclass (Keras imported only then). All randomness
comes from ``self.rng``, a ``numpy.random.Generator`` seeded in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def image_data(n: int = 64, size: int = 6, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey ``size`` x ``size`` images (float32 pixels in 0..255) and their labels.

    Each image's halves differ in brightness by at least 20, so that the label
    (:func:`brighter_side`) never ties; labels are int64, about half of them 1.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 200, size=(n, size, size)).astype(np.float32)
    right = rng.random(n) < 0.5
    images[right, :, size // 2 :] += 50
    images[~right, :, : size // 2] += 50
    return images, brighter_side(images)


def brighter_side(x: Any) -> np.ndarray:
    """The label rule: 1 where an image's right half is brighter than its left, else 0."""
    x = np.asarray(x)
    half = x.shape[2] // 2
    return (x[:, :, half:].mean(axis=(1, 2)) > x[:, :, :half].mean(axis=(1, 2))).astype(np.int64)


def mean_brightness(x: Any) -> np.ndarray:
    """The regression target rule: each image's mean pixel."""
    return np.asarray(x).mean(axis=(1, 2))


def pydataset(cls: type) -> type:
    """The Keras version of one of these classes: a ``keras.utils.PyDataset`` subclass.

    ``pydataset(FlipBatches)(images, labels)`` is a real PyDataset (its
    ``__init__`` passes ``workers=`` and the other Keras options on).
    """
    import keras

    return type(cls.__name__, (cls, keras.utils.PyDataset), {"__module__": __name__})


# A PyDataset-style dataset: shuffled indices, random flips, integer labels -------------


class FlipBatches:
    """FIXED: a new batch per call, indices shuffled in place each epoch, labels flipped too.

    Symptom: none. Each ``__getitem__`` allocates its batch; ``on_epoch_end``
    shuffles ``self.indices`` with ``self.rng.shuffle``; a flipped image gets
    the flipped label (``1 - label``).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int = 8,
        *,
        seed: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)  # keras.utils.PyDataset's workers=, ... when made by pydataset()
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.indices = np.arange(len(images))
        self.rng.shuffle(self.indices)

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def rows(self, i: int) -> np.ndarray:
        return self.indices[i * self.batch_size : (i + 1) * self.batch_size]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows(i)
        x = self.images[rows] / 255.0  # fancy indexing: a new array
        flip = self.rng.random(len(rows)) < 0.5
        x = np.where(flip[:, None, None], x[:, :, ::-1], x)
        y = np.where(flip, 1 - self.labels[rows], self.labels[rows])
        return x, y

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.indices)


class BufferOnSelf(FlipBatches):
    """BUGGY: ``__getitem__`` refills one buffer kept on ``self`` and returns it.

    Symptom: with Keras' workers or any read-ahead, batches change after they
    were handed out: inputs of one index beside the labels of another.
    Cause: ``self.batch[:] = ...`` reuses one array for every index.
    Fix: allocate the batch inside ``__getitem__`` (:class:`FlipBatches`).
    """

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = super().__getitem__(i)
        if not hasattr(self, "batch"):
            self.batch = np.empty_like(x)
        self.batch[:] = x
        return self.batch, y


class ShuffleIgnored(FlipBatches):
    """BUGGY: ``on_epoch_end`` calls ``self.rng.permutation(self.indices)`` and drops the result.

    Symptom: every epoch visits the images in one order. Cause:
    ``Generator.permutation`` returns a shuffled copy; ``shuffle`` is the one
    that works in place. Fix: ``self.rng.shuffle(self.indices)``
    (:class:`FlipBatches`).
    """

    def on_epoch_end(self) -> None:
        self.rng.permutation(self.indices)


class SameSeedEveryEpoch(FlipBatches):
    """BUGGY: ``on_epoch_end`` draws the order from a generator made with the same seed each time.

    Symptom: the order is shuffled once and then repeats every epoch.
    Cause: ``np.random.default_rng(self.seed)`` inside ``on_epoch_end`` restarts
    the same stream. Fix: draw from ``self.rng``, made once in ``__init__``
    (:class:`FlipBatches`).
    """

    def on_epoch_end(self) -> None:
        self.indices = np.random.default_rng(self.seed).permutation(len(self.images))


class LabelsBeforeFlip(FlipBatches):
    """BUGGY: the labels are looked up before the flip, and not flipped with the image.

    Symptom: about half of the labels are wrong, differently every epoch; the
    model learns a coin toss. Cause: the stored label describes the unflipped
    image. Fix: flip the label with the image, or compute it from the
    augmented image (:class:`FlipBatches`).
    """

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x, _ = super().__getitem__(i)
        return x, self.labels[self.rows(i)]


class ScaledCopy(FlipBatches):
    """FIXED: the batch's stored images, scaled into a new array (``x = self.images[rows] / 255``).

    Symptom: none. The samples are shuffled each epoch, as :class:`FlipBatches` does.
    """

    def scaled(self, i: int) -> np.ndarray:
        return self.images[self.rows(i)] / 255.0

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.scaled(i)
        flip = self.rng.random(len(x)) < 0.5
        labels = self.labels[self.rows(i)]
        return np.where(flip[:, None, None], x[:, :, ::-1], x), np.where(flip, 1 - labels, labels)


class ScaledInPlace(ScaledCopy):
    """BUGGY: ``self.images[rows] /= 255`` scales the stored images in place.

    Symptom: the pixels shrink by 255 at every read: the second epoch trains
    on nearly black images (and Keras reads two indices early to infer
    shapes). Cause: an augmented assignment through an index writes back into
    ``self.images``. Fix: ``x = self.images[rows] / 255`` (:class:`ScaledCopy`).
    """

    def scaled(self, i: int) -> np.ndarray:
        rows = self.rows(i)
        self.images[rows] /= 255.0
        return self.images[rows]


# A PyTorch-style loader: a new sample order per epoch, random brightness, float targets


class BrightnessLoader:
    """FIXED: a new order of the samples from ``self.rng`` every epoch, targets computed
    after scaling.

    Symptom: none. Like ``DataLoader(dataset, batch_size, shuffle=True)``:
    ``iter(loader)`` is one epoch. Each batch takes the images its indices
    name, scaled into a new array, then multiplied by a random brightness in
    [0.8, 1.2]; the target is the mean brightness of the image as yielded.
    """

    def __init__(
        self, images: np.ndarray, batch_size: int = 8, *, seed: int = 0, shuffle: bool = True
    ) -> None:
        self.images, self.batch_size, self.shuffle = images, batch_size, shuffle
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.targets = mean_brightness(images) / 255.0  # precomputed, for the unscaled images

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def order(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self.images)
        return rng.permutation(n) if self.shuffle else np.arange(n)

    def scaled(self, rows: np.ndarray) -> np.ndarray:
        return self.images[rows] / 255.0

    def batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = self.scaled(rows)
        brightness = rng.uniform(0.8, 1.2, size=len(x)).astype(np.float32)
        x = x * brightness[:, None, None]
        return x, mean_brightness(x)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order, size = self.order(self.rng), self.batch_size
        for b in range(len(self)):
            yield self.batch(order[b * size : (b + 1) * size], self.rng)


class LoaderBufferOnSelf(BrightnessLoader):
    """BUGGY: every batch is written into one buffer kept on ``self``.

    Symptom: a consumer that keeps batches (a prefetch queue, a list) holds
    copies of the newest one. Cause: ``self.buffer[:] = x`` reuses one array.
    Fix: yield the new array (:class:`BrightnessLoader`).
    """

    def batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, y = super().batch(rows, rng)
        if not hasattr(self, "buffer"):
            self.buffer = np.empty_like(x)
        self.buffer[:] = x
        return self.buffer, y


class LoaderScaledInPlace(BrightnessLoader):
    """BUGGY: ``self.images[rows] /= 255`` scales the stored images in place.

    Symptom: each epoch's images are 255 times darker than the last. Cause:
    an augmented assignment through an index writes back into ``self.images``.
    Fix: ``x = self.images[rows] / 255`` (:class:`BrightnessLoader`).
    """

    def scaled(self, rows: np.ndarray) -> np.ndarray:
        self.images[rows] /= 255.0
        return self.images[rows]


class LoaderShuffleIgnored(BrightnessLoader):
    """BUGGY: ``shuffle=True`` is stored and never read: batches come in stored order.

    Symptom: every epoch visits the samples in one order. Cause: the order is
    ``np.arange(len(self.images))`` whatever ``self.shuffle`` says. Fix: draw a
    permutation from ``self.rng`` (:class:`BrightnessLoader`).
    """

    def order(self, rng: np.random.Generator) -> np.ndarray:
        return np.arange(len(self.images))


class LoaderSameSeedEveryEpoch(BrightnessLoader):
    """BUGGY: ``__iter__`` makes its generator from ``self.seed`` at every epoch.

    Symptom: the samples are shuffled, and so are the brightnesses, but
    identically every epoch. Cause: ``np.random.default_rng(self.seed)``
    inside ``__iter__`` restarts the same stream. Fix: make the generator once,
    in ``__init__`` (:class:`BrightnessLoader`).
    """

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(self.seed)
        order, size = self.order(rng), self.batch_size
        for b in range(len(self)):
            yield self.batch(order[b * size : (b + 1) * size], rng)


class LoaderTargetsBeforeScaling(BrightnessLoader):
    """BUGGY: the targets are the precomputed brightness of the images before the scaling.

    Symptom: targets are off by the random factor (up to 20%), differently
    every epoch. Cause: ``self.targets`` describes the unscaled images. Fix:
    compute the target from the scaled image (:class:`BrightnessLoader`), or
    scale it by the same factor.
    """

    def batch(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, _ = super().batch(rows, rng)
        return x, self.targets[rows]


PAIRS = (
    (BufferOnSelf, FlipBatches),
    (ScaledInPlace, ScaledCopy),
    (ShuffleIgnored, FlipBatches),
    (SameSeedEveryEpoch, FlipBatches),
    (LabelsBeforeFlip, FlipBatches),
    (LoaderBufferOnSelf, BrightnessLoader),
    (LoaderScaledInPlace, BrightnessLoader),
    (LoaderShuffleIgnored, BrightnessLoader),
    (LoaderSameSeedEveryEpoch, BrightnessLoader),
    (LoaderTargetsBeforeScaling, BrightnessLoader),
)
"""Each planted bug and its fixed twin (the same constructor)."""
