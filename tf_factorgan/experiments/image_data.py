"""Settings and data shared by the image experiments (image pairs, image-to-image).

The data are aligned pairs in the pix2pix format (`data/pix2pix.py`): A is the photo
(Cityscapes) or the edge map (Edges2Shoes, one grey channel), B the colour label map
or the shoe photo. The paired subset is the first `num_joint_samples` training
images (sorted file order); marginal streams use every training image, each part in
its own random order.
"""

import dataclasses
import os

import numpy as np

from tf_factorgan import trainer
from tf_factorgan.data import pix2pix, sources, streams
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition
from tf_factorgan.models.conv import ConvDiscriminator


# The parts of an image sample: A (photo or edge map), then B (label map or photo).
PART_NAMES = ("a", "b")


@dataclasses.dataclass(frozen=True)
class ImageDataSettings(common.TrainingSettings):
    """dataset_dir: the pix2pix folder (default data/<dataset>, where
    `trainers.download_pix2pix` puts it). max_*_images: 0 = all (smaller values make
    quick trial runs). disc_channels: filters of every discriminator's first layer."""

    dataset: str = "cityscapes"
    dataset_dir: str = ""
    load_size: int = 64
    num_joint_samples: int = 100
    disc_channels: int = 32
    max_train_images: int = 0
    max_val_images: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.dataset not in pix2pix.GREY_A:
            raise ValueError(f"--dataset must be one of {sorted(pix2pix.GREY_A)}, got {self.dataset!r}")
        pix2pix.check_load_size(self.load_size)
        if self.num_joint_samples < 1:
            raise ValueError(f"--num_joint_samples must be >= 1, got {self.num_joint_samples}")
        if self.disc_channels < 1:
            raise ValueError(f"--disc_channels must be >= 1, got {self.disc_channels}")
        if self.max_train_images < 0 or self.max_val_images < 0:
            raise ValueError("--max_train_images and --max_val_images must be >= 0 (0 = all)")

    @property
    def data_dir(self) -> str:
        return self.dataset_dir or os.path.join("data", self.dataset)


@dataclasses.dataclass(frozen=True)
class ImageData:
    train: pix2pix.AlignedPairs
    val: pix2pix.AlignedPairs

    @property
    def partition(self) -> Partition:
        """Channels of A, then of B."""
        return Partition(self.train.channels)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """[S, S, Ca + Cb] of one (A, B) pair."""
        return (*self.train.a.shape[1:3], self.partition.total_size)


def load_data(settings: ImageDataSettings) -> ImageData:
    root = settings.data_dir
    pix2pix.check_layout(root)
    load = lambda split, limit: pix2pix.load_aligned(
        root, split, settings.load_size, pix2pix.GREY_A[settings.dataset], limit or None
    )
    data = ImageData(load("train", settings.max_train_images), load("val", settings.max_val_images))
    if settings.num_joint_samples > len(data.train):
        raise ValueError(
            f"--num_joint_samples={settings.num_joint_samples} exceeds the "
            f"{len(data.train)} training images in {root}/train"
        )
    return data


def make_dataset_fn(settings: ImageDataSettings, data: ImageData, step: trainer.DistributedStep):
    """The step's streams over the training images, for the Trainer."""
    observations = sources.from_aligned(
        [data.train.a, data.train.b], settings.num_joint_samples, PART_NAMES)
    pools = sources.training_streams(observations, step.updates.data_streams())
    return streams.streams_dataset_fn(pools, settings.batch_size, settings.seed)


def make_discriminator(settings: ImageDataSettings):
    """`name -> ConvDiscriminator` with --disc_channels first-layer filters."""
    return lambda name: ConvDiscriminator(filters=settings.disc_channels, name=name)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return np.asarray(images, np.float32) / 255.0


def side_by_side(*images: np.ndarray) -> np.ndarray:
    """[N, H, W, C_k] float images in [0, 1] -> [N, H, k * W, 3] (grey shown as RGB)."""
    rgb = [np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x for x in images]
    return np.concatenate(rgb, axis=2)
