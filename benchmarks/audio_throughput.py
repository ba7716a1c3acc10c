"""Throughput of the singing voice separation experiment: training snippets per
second (FactorGAN and GAN, 256 x 128 spectrogram snippets) and the separation
real-time factor (seconds of audio separated per second of compute) of a song.

  python -m benchmarks.audio_throughput [--steps=4] [--song_seconds=180] \
      [--precisions=float32,bfloat16]

Random spectrograms and a random stereo 44.1 kHz "song" stand in for MUSDB18, so no
download is needed; the step, the networks (freshly initialised, the paper's sizes)
and the separation path are the ones training and `trainers.separate` use.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import timing
from tf_factorgan import precision, strategies
from tf_factorgan.audio import separation
from tf_factorgan.data import sources
from tf_factorgan.experiments import audio_separation

flags.DEFINE_integer("steps", 4, "Timed generator updates per model.")
flags.DEFINE_integer("steps_per_call", 2, "Generator updates per tf.function call.")
flags.DEFINE_integer("batch_size", 25, "Global batch size.")
flags.DEFINE_list("models", ["factorgan", "gan"], "Which models to time.")
flags.DEFINE_float("song_seconds", 180.0, "Length of the separated song.")
flags.DEFINE_string("strategy", "default", "tf.distribute strategy.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Compute precisions to time.")
flags.DEFINE_integer("separation_repeats", 3, "Timed separations of the song (the median counts).")
FLAGS = flags.FLAGS


def random_data(config, count: int = 100) -> audio_separation.AudioData:
    rng = np.random.default_rng(0)
    shape = (count, *audio_separation.SAMPLE_SHAPE[:2], 1)
    parts = [rng.uniform(0, 2, shape).astype(np.float32) for _ in audio_separation.CHANNELS]
    observations = sources.from_aligned(parts, count, audio_separation.CHANNELS)
    return audio_separation.AudioData(observations, ("random",), [], {})


def separation_real_time_factor(config) -> float:
    """Seconds of song separated per second (median of --separation_repeats), the
    separator computing in config.precision."""
    with precision.policy(config.precision):
        separator = audio_separation.MaskingSeparator(ngf=config.ngf)
        separator(tf.zeros([1, *audio_separation.SAMPLE_SHAPE[:2], 1]), tf.zeros([1, config.nz]))
    predict = audio_separation.mask_predictor(separator, config.nz)
    rate = 44100
    song = np.random.default_rng(1).uniform(-0.3, 0.3, (int(FLAGS.song_seconds * rate), 2)).astype(np.float32)
    separation.separate(song[: 20 * rate], rate, predict, audio_separation.SETTINGS)  # warm up
    seconds = []
    for _ in range(FLAGS.separation_repeats):
        start = time.perf_counter()
        separation.separate(song, rate, predict, audio_separation.SETTINGS)
        seconds.append(time.perf_counter() - start)
    return FLAGS.song_seconds / float(np.median(seconds))


def main(argv):
    del argv
    strategy = strategies.make_strategy(FLAGS.strategy)
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"device {device}, batch {FLAGS.batch_size}, disc_iter 2, {FLAGS.steps} timed updates per model\n")
    for compute in FLAGS.precisions:
        for model in FLAGS.models:
            config = audio_separation.AudioSeparationConfig(
                variant=model, batch_size=FLAGS.batch_size, precision=compute,
                steps_per_call=FLAGS.steps_per_call, out_path="/nonexistent")
            loop = audio_separation.build_trainer(config, random_data(config), strategy)
            rate = timing.updates_per_second(loop, FLAGS.steps, FLAGS.steps_per_call)
            print(f"{compute:<9} training {model:<10} {rate:7.3f} updates/s = "
                  f"{rate * FLAGS.batch_size:6.1f} snippets/s", flush=True)
        factor = separation_real_time_factor(audio_separation.AudioSeparationConfig(precision=compute))
        print(f"{compute:<9} separation of a {FLAGS.song_seconds:g} s stereo 44.1 kHz song: "
              f"{factor:.1f} s of audio per second of compute (real-time factor)", flush=True)


if __name__ == "__main__":
    app.run(main)
