"""Training throughput of the image experiments: image pairs at 64x64 (convolutional
generator) and segmentation at 128x128 (U-Net), FactorGAN and GAN.

  python -m benchmarks.image_throughput [--steps=20] [--xla=off,on] \
      [--precisions=float32,bfloat16]

Data are random images of the real sizes held in memory (no download needed); the
input pipeline, models and step are the ones training uses. Prints generator updates
per second and training images per second (updates/s x batch size: each update
consumes one batch of real images in each of disc_iter rounds and generates as many).
"""

import numpy as np
import tensorflow as tf
from absl import app, flags

from tf_factorgan import strategies
from tf_factorgan.data import pix2pix, sources
from tf_factorgan.experiments import image2image, image_data, image_pairs
from benchmarks import timing

flags.DEFINE_integer("steps", 20, "Timed generator updates per configuration.")
flags.DEFINE_integer("steps_per_call", 5, "Generator updates per tf.function call.")
flags.DEFINE_integer("batch_size", 25, "Global batch size.")
flags.DEFINE_list("experiments", ["image_pairs", "segmentation"], "Which experiments to time.")
flags.DEFINE_list("models", ["factorgan", "gan"], "Which models to time.")
flags.DEFINE_list("xla", ["off"], "XLA settings to time (off, on).")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Compute precisions to time.")
flags.DEFINE_string("strategy", "default", "tf.distribute strategy.")
flags.DEFINE_integer("num_images", 500, "Random training images held in memory.")
FLAGS = flags.FLAGS


def random_data(size: int, channels: tuple[int, int], count: int) -> image_data.ImageData:
    rng = np.random.default_rng(0)
    pairs = lambda n: pix2pix.AlignedPairs(
        rng.integers(0, 256, (n, size, size, channels[0]), dtype=np.uint8),
        rng.integers(0, 256, (n, size, size, channels[1]), dtype=np.uint8),
        tuple(f"random_{i}" for i in range(n)),
    )
    train = pairs(count)
    observations = sources.from_aligned([train.a, train.b], 100, image_data.PART_NAMES)
    return image_data.ImageData(observations, pairs(8))


def make_config(experiment: str, model: str, jit: bool, compute: str):
    common = dict(batch_size=FLAGS.batch_size, jit_compile=jit, precision=compute,
                  steps_per_call=FLAGS.steps_per_call, out_path="/nonexistent", strategy=FLAGS.strategy)
    if experiment == "image_pairs":
        return image_pairs, image_pairs.ImagePairsConfig(variant=model, **common)
    return image2image, image2image.Image2ImageConfig(variant=model, **common)


def main(argv):
    del argv
    strategy = strategies.make_strategy(FLAGS.strategy)
    device = tf.config.list_logical_devices("GPU") and "GPU" or "CPU"
    print(f"device {device}, strategy {FLAGS.strategy} ({strategy.num_replicas_in_sync} replicas), "
          f"batch {FLAGS.batch_size}, disc_iter 2, {FLAGS.steps} timed updates per row\n")
    print(f"{'experiment':<22}{'model':<11}{'XLA':<5}{'precision':<10}{'updates/s':>10}{'images/s':>10}")
    sizes = {"image_pairs": (64, (1, 3)), "segmentation": (128, (3, 3))}
    for experiment in FLAGS.experiments:
        size, channels = sizes[experiment]
        data = random_data(size, channels, FLAGS.num_images)
        for model in FLAGS.models:
            for xla in FLAGS.xla:
                for compute in FLAGS.precisions:
                    module, config = make_config(experiment, model, xla == "on", compute)
                    loop = module.build_trainer(config, data, strategy)
                    rate = timing.updates_per_second(loop, FLAGS.steps, FLAGS.steps_per_call)
                    label = f"{experiment} {size}x{size}"
                    print(f"{label:<22}{model:<11}{xla:<5}{compute:<10}{rate:>10.2f}"
                          f"{rate * FLAGS.batch_size:>10.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
