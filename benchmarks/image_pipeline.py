"""Input pipeline of a large unpaired image folder: the one-time decode into the disk
cache, then training batches streamed from the cache against the same batches from an
in-memory pool, with the process's memory.

  python -m benchmarks.image_pipeline [--num_images=50000] [--size=128] [--work_dir=/tmp/pipeline]

Writes `--num_images` synthetic JPEGs (once; 128 x 128 noise-and-shapes photos) into
`<work_dir>/unpaired`, decodes them through `data.image_folders` (the trainer's path)
and streams marginal batches of --batch_size with `data.streams` as training does.
A 50 000-image folder at 128 x 128 is 2.4 GB of pixels: above TensorFlow's 2 GB graph
constant limit, so in memory it could not be a pool at all. Prints images/s of each
phase and the resident memory (RSS) before and after streaming and its peak.
"""

import os
import resource
import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from PIL import Image

from tf_factorgan.data import image_folders, pools, streams

flags.DEFINE_integer("num_images", 50000, "Images in the unpaired folder.")
flags.DEFINE_integer("size", 128, "Side of the images and of the training crops.")
flags.DEFINE_integer("batch_size", 25, "Images per batch.")
flags.DEFINE_integer("batches", 4000, "Batches streamed per phase.")
flags.DEFINE_integer("memory_images", 10000, "Images of the in-memory pool compared against.")
flags.DEFINE_string("work_dir", "/tmp/factorgan_pipeline", "Folder for the images and the cache.")
FLAGS = flags.FLAGS


def rss_mb() -> float:
    """Current resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_folder(folder: str, count: int, size: int) -> None:
    os.makedirs(folder, exist_ok=True)
    present = len(os.listdir(folder))
    rng = np.random.default_rng(present)
    for i in range(present, count):
        image = rng.integers(0, 256, [size // 8, size // 8, 3], dtype=np.uint8)
        Image.fromarray(image).resize((size, size), Image.BILINEAR).save(
            os.path.join(folder, f"{i:06d}.jpg"), quality=90)


class _Context:
    input_pipeline_id = 0

    def get_per_replica_batch_size(self, batch):
        return batch


def stream_rate(pool, label: str) -> None:
    dataset_fn = streams.streams_dataset_fn(
        {"marginal_1": streams.Stream(len(pool), lambda seed: streams.pool_gatherer(pool))},
        FLAGS.batch_size, seed=0)
    iterator = iter(dataset_fn(_Context(), 0))
    for _ in range(50):  # warm-up: tracing and the first reads
        next(iterator)
    before = rss_mb()
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
        batch = next(iterator)["marginal_1"]
    seconds = time.perf_counter() - start
    assert batch.shape == (FLAGS.batch_size, FLAGS.size, FLAGS.size, 3)
    print(f"{label:<34}{FLAGS.batches * FLAGS.batch_size / seconds:>10.0f} images/s   "
          f"RSS {before:7.0f} -> {rss_mb():7.0f} MB (peak so far {peak_rss_mb():.0f} MB)")


def main(argv):
    del argv
    folder = os.path.join(FLAGS.work_dir, "unpaired")
    write_folder(folder, FLAGS.num_images, FLAGS.size)
    paths = image_folders.list_images(folder, "--unpaired_b_dir")[:FLAGS.num_images]
    spec = image_folders.PartSpec(image_folders.PHOTO, (FLAGS.size, FLAGS.size))
    print(f"{len(paths)} images of {FLAGS.size}x{FLAGS.size} in {folder}; "
          f"{len(paths) * FLAGS.size ** 2 * 3 / 2**30:.2f} GiB of pixels; RSS at start {rss_mb():.0f} MB")
    start = time.perf_counter()
    pool = image_folders.decode_to_cache(image_folders.whole(paths), spec,
                                         os.path.join(FLAGS.work_dir, "cache"), "--unpaired_b_dir")
    seconds = time.perf_counter() - start
    print(f"{'decode into the cache (or hit)':<34}{len(paths) / seconds:>10.0f} images/s   "
          f"({seconds:.1f} s; RSS {rss_mb():.0f} MB, peak {peak_rss_mb():.0f} MB)")
    stream_rate(pool, f"stream {len(pool)} images (disk)")
    count = min(FLAGS.memory_images, len(pool))
    stream_rate(pools.take(pool, np.arange(count)), f"stream {count} images (memory)")
    print(f"tf {tf.__version__}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    app.run(main)
