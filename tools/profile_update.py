"""Where the time of one training update goes, by TensorFlow op type.

  python -m tools.profile_update [--size=128] [--precision=bfloat16] [--updates=3] \
      [--intra_op_threads=2] [--top=25]

Builds the conditional FactorGAN update of the segmentation experiment (image2image,
batch 25, random images held in memory, as `benchmarks.image_throughput`), warms it
up, traces `--updates` updates with TensorFlow's profiler and sums the duration of
every op event by op type (and by op, `--by=op`). Op events of concurrent inter-op
threads overlap, so the shares are of the summed op time, not of the wall clock (which
is printed too). The trace stays in `--trace_dir` for TensorBoard's profile plugin.
"""

import collections
import glob
import os
import time

from absl import app, flags

flags.DEFINE_integer("size", 128, "Image size (load_size).")
flags.DEFINE_string("precision", "bfloat16", "Compute precision: float32 or bfloat16.")
flags.DEFINE_string("variant", "factorgan", "Variant of the update.")
flags.DEFINE_integer("updates", 3, "Traced updates.")
flags.DEFINE_integer("warmup", 3, "Untimed updates first.")
flags.DEFINE_integer("intra_op_threads", 2, "Threads per op.")
flags.DEFINE_integer("top", 25, "Rows printed.")
flags.DEFINE_enum("by", "type", ["type", "op"], "Sum by op type or by op name.")
flags.DEFINE_string("trace_dir", "/tmp/profile_update", "Where the trace is written.")
FLAGS = flags.FLAGS


def op_durations(xplane_path: str, by: str) -> collections.Counter:
    """{op type (or op name): summed microseconds} of the TF op events of a trace
    (events named "<op name>:<op type>" on the host's threads)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # Executor and function wrappers ("KernelAndDeviceFunc::Run", the
                # train step's call) contain the ops: only the ops count.
                if ":" not in name or "::" in name or "__inference" in name:
                    continue
                op_type = name.rsplit(":", 1)[1]
                totals[op_type if by == "type" else name] += event.duration_ps / 1e6
    return totals


def main(argv):
    del argv
    from tf_factorgan import strategies

    strategies.configure_cpu_threads(FLAGS.intra_op_threads, 1)
    import tensorflow as tf

    from benchmarks import image_throughput
    from tf_factorgan.experiments import image2image

    data = image_throughput.random_data(FLAGS.size, (3, 3), 100)
    config = image2image.Image2ImageConfig(
        variant=FLAGS.variant, batch_size=25, precision=FLAGS.precision, steps_per_call=1,
        load_size=FLAGS.size, out_path="/nonexistent")
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    iterator = iter(loop.strategy.distribute_datasets_from_function(lambda c: loop.dataset_fn(c, 0)))

    def update():
        metrics = loop.gan_step.train_step(iterator, tf.constant(1, tf.int64), loop.per_replica_batch, loop.step)
        float(metrics["generator/loss"])

    for _ in range(FLAGS.warmup):
        update()
    trace_dir = os.path.join(FLAGS.trace_dir, f"{FLAGS.size}_{FLAGS.precision}")
    tf.profiler.experimental.start(trace_dir)
    start = time.perf_counter()
    for _ in range(FLAGS.updates):
        update()
    wall = (time.perf_counter() - start) / FLAGS.updates
    tf.profiler.experimental.stop()
    path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))[-1]
    totals = op_durations(path, FLAGS.by)
    summed = sum(totals.values()) / FLAGS.updates
    print(f"{FLAGS.variant} {FLAGS.size}x{FLAGS.size} {FLAGS.precision}, {FLAGS.intra_op_threads} "
          f"threads: {wall:.3f} s per update (traced), op time {summed / 1e6:.3f} s per update")
    print(f"{'op' if FLAGS.by == 'op' else 'op type':<60}{'ms/update':>11}{'share':>8}")
    for name, micros in totals.most_common(FLAGS.top):
        print(f"{name[-60:]:<60}{micros / FLAGS.updates / 1000:>11.1f}"
              f"{100 * micros / FLAGS.updates / summed:>7.1f}%")


if __name__ == "__main__":
    app.run(main)
