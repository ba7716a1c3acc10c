"""Shared test set-up: two logical CPU devices, float32 compute, small synthetic
digits and noise that does not depend on the replica count.

The CPU is split into two logical devices before TensorFlow initialises, so that a
MirroredStrategy with two replicas can run on any machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# --precision=auto computes in float32 in the tests on every machine (it sees a CPU
# without bfloat16 flags), so that their numbers do not depend on the CPU; the tests
# of bfloat16 ask for it (test_precision.py).
os.environ.setdefault("TF_FACTORGAN_CPU_FLAGS", "")

import numpy as np
import pytest
import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

from tf_factorgan.data import mnist  # noqa: E402
from tf_factorgan.noise import Randomness  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_digits(count: int, seed: int = 0) -> mnist.Digits:
    """Random 28x28 images whose mean brightness encodes the label (learnable)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, mnist.NUM_CLASSES, size=count)
    noise = rng.integers(0, 40, size=(count, 28, 28))
    images = (noise + labels[:, None, None] * 20).astype(np.uint8)
    return mnist.Digits(images, labels.astype(np.int64))


def summary_values(log_dir: str) -> list:
    """(step, tag, Summary.Value) of every summary in the event files of log_dir (a run
    folder holds its checkpoints and outputs too)."""
    values = []
    for name in sorted(n for n in os.listdir(log_dir) if "tfevents" in n):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            values += [(event.step, value.tag, value) for value in event.summary.value]
    return values


def scalars(log_dir: str, tag: str) -> list:
    """[(step, value)] of the scalar `tag` (tf.summary.scalar) in log_dir, in order."""
    return [(step, float(tf.make_ndarray(value.tensor)))
            for step, t, value in summary_values(log_dir) if t == tag]


# The global batch of the tests that compare replica counts or trainers.
GLOBAL_BATCH = 24


class SplitInvariantRandomness(Randomness):
    """Noise and permutations that do not depend on how the batch is split.

    Replica r of R takes rows r*B/R.. of each block of one fixed noise table, and permutations swap
    neighbouring samples, so R replicas see exactly what one replica sees.
    """

    def __init__(self, seed):
        super().__init__(seed)
        self.table = tf.random.stateless_uniform([4 * GLOBAL_BATCH, 50], [seed, 1], -1.0, 1.0)

    def noise(self, batch_size, nz):
        # A round draws several global batches' worth at once (one per discriminator):
        # block k of replica r is rows k * GLOBAL_BATCH + r * B.. of the table.
        context = tf.distribute.get_replica_context()
        per_replica = GLOBAL_BATCH // context.num_replicas_in_sync
        start = context.replica_id_in_sync_group * per_replica
        return tf.concat([
            tf.slice(self.table, [k * GLOBAL_BATCH + start, 0], [per_replica, nz])
            for k in range(batch_size // per_replica)
        ], axis=0)

    def permutations(self, batch_size, count):
        swap = tf.reshape(tf.reverse(tf.reshape(tf.range(batch_size), [-1, 2]), [1]), [-1])
        return [swap] * count


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


# Tiny freshly initialised generators, exported by the export and serving tests.
SERVING_NZ = 4
SERVING_LOAD_SIZE = 16


def tiny_unet():
    """A seeded U-Net segmentation generator: 16x16 photos, noise size 4, ngf 2."""
    from tf_factorgan.models.unet import UNet

    tf.keras.utils.set_random_seed(0)
    generator = UNet(3, ngf=2)
    generator(tf.zeros([1, SERVING_LOAD_SIZE, SERVING_LOAD_SIZE, 3]), tf.zeros([1, SERVING_NZ]))
    return generator


def tiny_separator():
    """A seeded masking separator for 256x128 windows, noise size 4, ngf 2."""
    from tf_factorgan.models.masking import MaskingSeparator

    tf.keras.utils.set_random_seed(0)
    separator = MaskingSeparator(ngf=2)
    separator(tf.zeros([1, 256, 128, 1]), tf.zeros([1, SERVING_NZ]))
    return separator


@pytest.fixture(scope="session")
def serving_exports(tmp_path_factory):
    """An export base with `segmentation` (U-Net, 16x16) and `separation` (masking
    U-Net) version 1 and its models.config; returns (export_base, {name: module})."""
    from tf_factorgan.export import savedmodel
    from tf_factorgan.serving import config

    base = str(tmp_path_factory.mktemp("exports"))
    modules = {
        "segmentation": savedmodel.segmentation_module(tiny_unet(), SERVING_LOAD_SIZE, SERVING_NZ, seed=3),
        "separation": savedmodel.separation_module(tiny_separator(), SERVING_NZ, seed=5),
    }
    for name, module in modules.items():
        savedmodel.publish(module, base, name, module.check)
    config.write_for_export_base(base)
    return base, modules


@pytest.fixture(scope="session")
def dev_server(serving_exports):
    """The development server over `serving_exports` on free ports (4 MiB body limit,
    so that the oversized-payload test stays small)."""
    from tf_factorgan.serving import config
    from tf_factorgan.serving.dev_server import DevServer
    from tf_factorgan.serving.repository import ModelRepository

    base, _ = serving_exports
    repository = ModelRepository(config.parse(os.path.join(base, config.CONFIG_FILE)))
    server = DevServer(repository, rest_port=0, grpc_port=0, max_request_bytes=4 << 20).start()
    yield server
    server.stop()
