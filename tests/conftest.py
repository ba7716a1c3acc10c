"""Shared test set-up: two logical CPU devices and small synthetic digits.

The CPU is split into two logical devices before TensorFlow initialises, so that a
MirroredStrategy with two replicas can run on any machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tf_factorgan.data import mnist  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_digits(count: int, seed: int = 0) -> mnist.Digits:
    """Random 28x28 images whose mean brightness encodes the label (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, mnist.NUM_CLASSES, size=count)
    noise = rng.integers(0, 40, size=(count, 28, 28))
    images = (noise + labels[:, None, None] * 20).astype(np.uint8)
    return mnist.Digits(images, labels.astype(np.int64))


@pytest.fixture
def digits():
    return synthetic_digits(600, seed=1), synthetic_digits(200, seed=2)


@pytest.fixture(scope="session")
def mnist_dir():
    """The official MNIST files: $FACTORGAN_MNIST_DIR or ../shared/data/mnist."""
    path = os.environ.get("FACTORGAN_MNIST_DIR") or os.path.join(
        REPO_ROOT, "..", "shared", "data", "mnist"
    )
    if not os.path.isdir(path):
        pytest.skip(f"no offline MNIST at {path} (set FACTORGAN_MNIST_DIR)")
    return path


@pytest.fixture(scope="session")
def two_replicas():
    """One two-replica MirroredStrategy for the whole session: separate strategies in
    one process can collide on collective-op instance keys."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def segmentation_dir(tmp_path_factory):
    """A small pix2pix-format dataset: 32x32 photos | Cityscapes-colour label maps."""
    from tests.synthetic_pix2pix import write_pix2pix_dataset

    return write_pix2pix_dataset(str(tmp_path_factory.mktemp("cityscapes")), num_train=12,
                                 num_val=6, height=32, kind="segmentation")


@pytest.fixture(scope="session")
def edges_dir(tmp_path_factory):
    """A small pix2pix-format dataset: 32x32 edge maps | shape photos."""
    from tests.synthetic_pix2pix import write_pix2pix_dataset

    return write_pix2pix_dataset(str(tmp_path_factory.mktemp("edges2shoes")), num_train=12,
                                 num_val=6, height=32, kind="edges")


@pytest.fixture(scope="session")
def ffmpeg():
    """Skips tests that decode audio with ffmpeg/ffprobe where they are missing."""
    import shutil

    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        pytest.skip("ffmpeg/ffprobe are not installed (sudo apt-get install ffmpeg)")


@pytest.fixture(scope="session")
def musdb_dir(ffmpeg):
    """The two MUSDB18 preview tracks: $FACTORGAN_MUSDB_DIR or ../shared/data/musdb18_sample."""
    path = os.environ.get("FACTORGAN_MUSDB_DIR") or os.path.join(
        REPO_ROOT, "..", "shared", "data", "musdb18_sample"
    )
    if not os.path.isdir(os.path.join(path, "train")):
        pytest.skip(f"no MUSDB18 sample tracks at {path} (set FACTORGAN_MUSDB_DIR)")
    return path
