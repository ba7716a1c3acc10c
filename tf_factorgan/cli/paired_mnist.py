r"""Trains and evaluates FactorGAN or a GAN on Paired MNIST.

  python -m trainers.paired_mnist --flagfile=trainers/flagfiles/paired_mnist_factorgan.cfg \
      --mnist_manual_dir=../shared/data/mnist --steps=5000
  python -m trainers.paired_mnist --variant=gan --experiment_name=gan

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
`--score_samples=FILE.npy` scores generated pairs from elsewhere instead of training.
"""

import os

from absl import flags

from tf_factorgan import files
from tf_factorgan.cli import command, training
from tf_factorgan.config import EVALUATION
from tf_factorgan.experiments import paired_mnist

FLAGS = flags.FLAGS

training.define(paired_mnist.PairedMnistConfig)
flags.DEFINE_string("score_samples", None,
                    "Train nothing: score this .npy of generated pairs (float [N, 1568] in "
                    "[0, 1], from any implementation) with the evaluation of a run of these "
                    "flags (--same_digit_prob and --seed choose the test pairs), and write "
                    "<file>.metrics.json beside it.")
command.group(EVALUATION, "score_samples")


def score_samples(config: paired_mnist.PairedMnistConfig, path: str) -> str:
    """Scores --score_samples; returns where its metrics went."""
    metrics = paired_mnist.score_file(config, path)
    metrics.update(samples=os.path.abspath(path), same_digit_prob=config.same_digit_prob,
                   seed=config.seed)
    output = f"{os.path.splitext(path)[0]}.metrics.json"
    files.write_json(output, metrics)
    return f"{paired_mnist.headline(metrics)}\n  metrics: {output}"


def main(argv):
    del argv
    config = training.settings_from_flags(paired_mnist.PairedMnistConfig)
    if FLAGS.score_samples:
        print(command.run_or_exit(lambda: score_samples(config, FLAGS.score_samples)))
        return
    training.run_and_report(
        paired_mnist.TASK,
        config,
        paired_mnist.headline,
        ("samples.png", "generator.weights.h5"),
    )


def run() -> None:
    training.run(main, __doc__, paired_mnist.PairedMnistConfig)


if __name__ == "__main__":
    run()
