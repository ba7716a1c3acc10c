"""Generator updates per second of the Paired MNIST FactorGAN and GAN (batch 25,
disc_iter 2), with and without XLA, in float32 and bfloat16, on the real input pipeline.

  python -m benchmarks.paired_mnist_throughput [--steps=1000] [--strategy=default] \
      [--precisions=float32,bfloat16]

Uses 60000 synthetic digits (the size of MNIST) so it needs no download; the input
pipeline is the one training uses. Besides updates/s it prints the CPU time per update,
which other load on a shared machine disturbs far less. Also reports what the input pipeline alone
delivers, to show it is not the bottleneck.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from tf_factorgan import strategies
from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist
from benchmarks import timing

flags.DEFINE_integer("steps", 1000, "Timed generator updates per configuration.")
flags.DEFINE_integer("steps_per_call", 50, "Generator updates per tf.function call.")
flags.DEFINE_string("strategy", "default", "tf.distribute strategy.")
flags.DEFINE_integer("intra_op_threads", 1, "Threads per op (0 = TensorFlow's default).")
flags.DEFINE_integer("inter_op_threads", 0, "Concurrent ops (0 = TensorFlow's default).")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Compute precisions to time.")
FLAGS = flags.FLAGS


def synthetic_mnist(count: int) -> mnist.Digits:
    rng = np.random.default_rng(0)
    return mnist.Digits(rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, count))


def throughput(config, data, strategy) -> timing.Throughput:
    loop = paired_mnist.build_trainer(config, data, strategy)
    return timing.throughput(loop, FLAGS.steps, FLAGS.steps_per_call)


def pipeline_rounds_per_second(config, data) -> float:
    """Discriminator-round batches (joint + both marginals) per second, pipeline only."""
    dataset = paired_mnist.make_dataset_fn(config, data)(tf.distribute.InputContext(), 0)
    iterator = iter(dataset)
    for _ in range(50):
        next(iterator)
    count, start = 2000, time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count / (time.perf_counter() - start)


def main(argv):
    del argv
    strategies.configure_cpu_threads(FLAGS.intra_op_threads, FLAGS.inter_op_threads)
    strategy = strategies.make_strategy(FLAGS.strategy)
    train, test = synthetic_mnist(mnist.TRAIN_SIZE), synthetic_mnist(100)
    print(f"strategy {FLAGS.strategy} ({strategy.num_replicas_in_sync} replicas), "
          f"intra-op threads {FLAGS.intra_op_threads or 'default'}, "
          f"{FLAGS.steps} timed updates per row, batch 25, disc_iter 2\n")
    print(f"{'model':<18}{'XLA':<6}{'precision':<11}{'generator updates/s':>21}{'CPU ms/update':>15}")
    for name, variant in (("FactorGAN", "factorgan"), ("GAN", "gan")):
        for jit in (False, True):
            for compute in FLAGS.precisions:
                config = paired_mnist.PairedMnistConfig(
                    variant=variant, jit_compile=jit, precision=compute,
                    steps_per_call=FLAGS.steps_per_call, out_path="/nonexistent")
                data = paired_mnist.build_data(config, train, test)
                result = throughput(config, data, strategy)
                print(f"{name:<18}{'on' if jit else 'off':<6}{compute:<11}"
                      f"{result.updates_per_second:>21.1f}{result.cpu_ms_per_update:>15.2f}", flush=True)
    config = paired_mnist.PairedMnistConfig(out_path="/nonexistent")
    rounds = pipeline_rounds_per_second(config, paired_mnist.build_data(config, train, test))
    print(f"\ninput pipeline alone: {rounds:.0f} FactorGAN discriminator-round batches/s "
          f"(= {rounds / 2:.0f} generator updates/s of data)")


if __name__ == "__main__":
    app.run(main)
