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
import gzip
import os
import shutil
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.config import SettingError, SettingPathError

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
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
# Where tensorflow-datasets fetches the official files from.
OFFICIAL_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
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
        raise SettingPathError(
            f"MNIST folder {manual_dir!r} (from {{mnist_manual_dir}}) lacks "
            f"{', '.join(missing)}; it must hold the four official files "
            f"{', '.join(MNIST_FILES)}. Leave {{mnist_manual_dir}} empty to download MNIST."
        )


def read_idx(path: str, magic: int, shape: tuple) -> np.ndarray:
    """The uint8 array of one official MNIST file (gzip'd IDX: big-endian magic
    number, one int32 per dimension, then the values in row-major order), in the
    file's order; `shape` is what the file must hold (-1: any count)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable gzip file ({error})") from None
    dims = raw[3] if len(raw) >= 4 else 0
    header = 4 + 4 * dims
    found_magic = int.from_bytes(raw[:4], "big")
    found_shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    if (found_magic != magic or len(found_shape) != len(shape)
            or any(want not in (-1, got) for want, got in zip(shape, found_shape))
            or len(raw) != header + int(np.prod(found_shape))):
        raise ValueError(
            f"{path} is not an official MNIST file of shape {shape} (IDX magic "
            f"{magic:#010x}): found magic {found_magic:#010x}, shape {found_shape}, "
            f"{len(raw) - header} values")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(found_shape)


def download_official_files(data_dir: Optional[str] = None) -> str:
    """Downloads the four official files with tensorflow-datasets' download manager
    into `<data_dir>/downloads/mnist` (data_dir: tensorflow-datasets' default) unless
    they are there; returns that folder."""
    import tensorflow_datasets as tfds  # heavy import, only needed here

    folder = os.path.join(data_dir or tfds.core.constants.DATA_DIR, "downloads", "mnist")
    missing = [name for name in MNIST_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        manager = tfds.download.DownloadManager(download_dir=os.path.join(folder, ".partial"))
        paths = manager.download({name: OFFICIAL_URL + name for name in missing})
        for name, path in paths.items():
            with files.atomic_path(os.path.join(folder, name)) as tmp:
                shutil.copyfile(path, tmp)
    return folder


def load_mnist(
    split: str, manual_dir: Optional[str] = None, data_dir: Optional[str] = None
) -> Digits:
    """An MNIST split ("train" or "test") in the official files' order.

    The order matters: the paired set is the first N training digits, and the
    original code reads MNIST through torchvision, in the files' order (a prepared
    tensorflow-datasets split is shuffled, so its first 100 digits are others, with
    other label counts). `manual_dir` is a folder of the four official .gz files
    (offline); without it they are downloaded (`download_official_files`).
    """
    if split not in SPLIT_PREFIXES:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")
    if manual_dir:
        check_manual_dir(manual_dir)
    folder = manual_dir or download_official_files(data_dir)
    prefix = SPLIT_PREFIXES[split]
    images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), 0x803,
                      (-1, IMAGE_SIZE, IMAGE_SIZE))
    labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, (len(images),))
    if labels.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"{folder}: {prefix} labels must lie in 0..9, got {labels.max()}")
    return Digits(images, labels.astype(np.int64))


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
        raise SettingError(f"{{same_digit_prob}} must lie in [0, 1], got {same_digit_prob}")
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
        raise SettingError(f"{{pairing}} must be one of {', '.join(PAIRINGS)}, got {pairing!r}")
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
