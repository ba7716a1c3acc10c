"""MNIST and the Paired MNIST dataset of the FactorGAN paper (section 4.1).

A Paired MNIST sample is an upper and a lower digit stacked to 56x28 and flattened to
1568 values in [0, 1]. With probability `same_digit_prob` (lambda) the lower digit has
the upper digit's label; otherwise its label is drawn from the empirical label
distribution. The lower image is then drawn uniformly among the images of that label in
the same subset. Pairings are fixed once per dataset from a seed ("fixed", the paper's
stated intent) or drawn anew at every pass over the data ("redraw_each_epoch"): the
original code caches its pairing in a DataLoader worker that is a new process every
epoch, so in effect its paired samples get new lower digits each epoch.
"""

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

IMAGE_SIZE = 28
DIGIT_SIZE = IMAGE_SIZE * IMAGE_SIZE
PAIR_SIZE = 2 * DIGIT_SIZE
NUM_CLASSES = 10
TRAIN_SIZE = 60000
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
MANUAL_DIR_FLAG = "--mnist_manual_dir"
FIXED = "fixed"
REDRAW_EACH_EPOCH = "redraw_each_epoch"
PAIRINGS = (FIXED, REDRAW_EACH_EPOCH)


@dataclasses.dataclass(frozen=True)
class Digits:
    """images: uint8 [N, 28, 28] in 0..255; labels: int64 [N] in 0..9."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)

    def subset(self, count: int) -> "Digits":
        return Digits(self.images[:count], self.labels[:count])


def check_manual_dir(manual_dir: str) -> None:
    """Fails with the expected layout when the offline MNIST folder is incomplete."""
    missing = [f for f in MNIST_FILES if not os.path.isfile(os.path.join(manual_dir, f))]
    if missing:
        raise FileNotFoundError(
            f"MNIST folder {manual_dir!r} (from {MANUAL_DIR_FLAG}) lacks "
            f"{', '.join(missing)}; it must hold the four official files "
            f"{', '.join(MNIST_FILES)}. Leave {MANUAL_DIR_FLAG} empty to download MNIST."
        )


def load_mnist(
    split: str, manual_dir: Optional[str] = None, data_dir: Optional[str] = None
) -> Digits:
    """Loads an MNIST split ("train" or "test") through tensorflow-datasets.

    With `manual_dir` (a folder of the four official idx .gz files) the dataset is
    prepared offline; without it tensorflow-datasets downloads MNIST. Prepared data is
    stored under `data_dir` (tensorflow-datasets' default when None).
    """
    import tensorflow_datasets as tfds  # heavy import, only needed here

    if split not in ("train", "test"):
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")
    builder = tfds.builder("mnist", data_dir=data_dir)
    download_config = None
    if manual_dir:
        check_manual_dir(manual_dir)
        download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=download_config)
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return Digits(data["image"][..., 0].astype(np.uint8), data["label"].astype(np.int64))


def pair_digits(labels: np.ndarray, same_digit_prob: float, seed: int) -> np.ndarray:
    """Chooses a lower digit for every upper digit.

    Args:
      labels: int [N] labels of the images that serve as upper digits, in order.
      same_digit_prob: lambda in [0, 1].
      seed: fixes the pairing.

    Returns:
      int64 [N, 2]: (upper index, lower index) into the same N images; row i has
      upper index i.
    """
    if not 0.0 <= same_digit_prob <= 1.0:
        raise ValueError(f"--same_digit_prob must lie in [0, 1], got {same_digit_prob}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = len(labels)
    label_probs = np.bincount(labels, minlength=NUM_CLASSES) / n
    keep_label = rng.random(n) < same_digit_prob
    drawn_label = rng.choice(NUM_CLASSES, size=n, p=label_probs)
    lower_labels = np.where(keep_label, labels, drawn_label)
    lower = np.empty(n, dtype=np.int64)
    for digit in range(NUM_CLASSES):
        slots = np.flatnonzero(lower_labels == digit)
        candidates = np.flatnonzero(labels == digit)
        lower[slots] = candidates[rng.integers(len(candidates), size=len(slots))]
    return np.stack([np.arange(n, dtype=np.int64), lower], axis=1)


@dataclasses.dataclass(frozen=True)
class PairedDigits:
    """Digits and a fixed pairing of them; `pairs` is int64 [N, 2] (upper, lower)."""

    digits: Digits
    pairs: np.ndarray

    @classmethod
    def build(cls, digits: Digits, same_digit_prob: float, seed: int) -> "PairedDigits":
        return cls(digits, pair_digits(digits.labels, same_digit_prob, seed))

    def __len__(self):
        return len(self.pairs)

    def samples(self) -> np.ndarray:
        """float32 [N, 1568] in [0, 1]: flattened 56x28 stacks (upper digit first)."""
        flat = self.digits.images.reshape(-1, DIGIT_SIZE)
        return np.concatenate([flat[self.pairs[:, 0]], flat[self.pairs[:, 1]]], 1) / np.float32(255)


def pair_gatherer(
    paired: PairedDigits,
    part: Optional[int] = None,
    pairing: str = FIXED,
    same_digit_prob: float = 0.0,
    seed: int = 0,
):
    """Returns `indices [B] -> float32 samples` of `paired`, values in [0, 1].

    part None gives whole pairs [B, 1568]; part 0 / 1 gives only the upper / lower
    digits [B, 784]. With pairing "fixed" the lower digit is `paired.pairs`'; with
    "redraw_each_epoch" every call draws it anew for each upper digit as
    `pair_digits` does (label kept with probability `same_digit_prob`, else drawn
    from the label frequencies; then a uniform image of that label), from a random
    generator seeded by `seed`. Every index stream visits each item once per epoch,
    so this is the original code's per-epoch redraw.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"--pairing must be one of {PAIRINGS}, got {pairing!r}")
    images = tf.constant(paired.digits.images.reshape(-1, DIGIT_SIZE))
    columns = [0, 1] if part is None else [part]
    width = DIGIT_SIZE * len(columns)
    if pairing == FIXED:
        pairs = tf.constant(paired.pairs[:, columns])
        lookup = lambda indices: tf.gather(pairs, indices)
    else:
        lookup = _redrawn_pairs(paired.digits.labels, same_digit_prob, seed, columns)

    def gather(indices):
        flat = tf.gather(images, tf.reshape(lookup(indices), [-1]))
        return tf.reshape(tf.cast(flat, tf.float32) / 255.0, [-1, width])

    return gather


def _redrawn_pairs(labels: np.ndarray, same_digit_prob: float, seed: int, columns: list[int]):
    """`upper indices [B] -> int64 [B, len(columns)]` (upper, lower) index columns with
    a freshly drawn lower digit per row; the in-graph twin of `pair_digits`."""
    labels = np.asarray(labels, np.int64)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    by_label = tf.constant(np.argsort(labels, kind="stable"))
    offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]))
    counts_t = tf.constant(counts)
    label_cdf = tf.constant(np.cumsum(counts) / len(labels), tf.float32)
    labels_t = tf.constant(labels)
    generator = tf.random.Generator.from_seed(seed)

    def lookup(indices):
        indices = tf.cast(indices, tf.int64)
        size = tf.shape(indices)
        upper_labels = tf.gather(labels_t, indices)
        keep = generator.uniform(size) < same_digit_prob
        drawn = tf.searchsorted(label_cdf[:-1], generator.uniform(size), side="right")
        lower_labels = tf.where(keep, upper_labels, tf.cast(drawn, tf.int64))
        count = tf.gather(counts_t, lower_labels)
        rank = tf.minimum(
            tf.cast(generator.uniform(size) * tf.cast(count, tf.float32), tf.int64), count - 1
        )
        lower = tf.gather(by_label, tf.gather(offsets, lower_labels) + rank)
        return tf.gather(tf.stack([indices, lower], axis=1), columns, axis=1)

    return lookup
