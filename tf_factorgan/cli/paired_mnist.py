"""Trains and evaluates FactorGAN or a GAN on Paired MNIST.

  python -m trainers.paired_mnist --flagfile=trainers/flagfiles/paired_mnist_factorgan.cfg \
      --mnist_manual_dir=../shared/data/mnist --steps=5000

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
`--score_samples=FILE.npy` scores generated pairs from elsewhere instead of training.
"""

import os

from absl import flags

from tf_factorgan import files
from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist
from tf_factorgan.cli import command

FLAGS = flags.FLAGS
DEFAULTS = paired_mnist.PairedMnistConfig()

flags.DEFINE_bool("factorgan", DEFAULTS.factorgan, "FactorGAN (else a GAN with one joint discriminator).")
flags.DEFINE_bool("use_real_dep_disc", DEFAULTS.use_real_dep_disc,
                  "Train the p-dependency discriminator on paired data (else FactorGAN-no-cp).")
flags.DEFINE_integer("num_joint_samples", DEFAULTS.num_joint_samples, "Paired training samples.")
flags.DEFINE_float("same_digit_prob", DEFAULTS.same_digit_prob, "Lambda: P(lower digit label := upper label).")
flags.DEFINE_enum("pairing", DEFAULTS.pairing, list(mnist.PAIRINGS),
                  "fixed: every paired sample keeps its lower digit; redraw_each_epoch: new "
                  "lower digits every pass over the data, as the original code in effect.")
flags.DEFINE_string("mnist_manual_dir", None,
                    "Folder with the four official MNIST .gz files (offline); unset: download.")
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir: without --mnist_manual_dir the official files are downloaded to <dir>/downloads/mnist (default: its own data_dir).")
flags.DEFINE_string("classifier_cache_dir", None,
                    "Cache of the evaluation classifier (default: <out_path>/mnist_classifier).")
flags.DEFINE_integer("eval_samples", DEFAULTS.eval_samples, "Generated and real pairs for the metrics.")
flags.DEFINE_integer("paper_classifiers", DEFAULTS.paper_classifiers,
                     "Also score FID on this many classifiers trained by the original code's "
                     "recipe (seeds 0..N-1; 25-45 s each on a 2-core CPU, once, then cached): their "
                     "mean is paper_fid_upper / paper_fid_lower, the figures that compare with "
                     "the paper's. 0: none.")
command.define_training_flags(DEFAULTS)
flags.DEFINE_string("score_samples", None,
                    "Train nothing: score this .npy of generated pairs (float [N, 1568] in "
                    "[0, 1], from any implementation) with the evaluation of a run of these "
                    "flags (--same_digit_prob and --seed choose the test pairs), and write "
                    "<file>.metrics.json beside it.")


def config_from_flags() -> paired_mnist.PairedMnistConfig:
    return command.config_from_flags(paired_mnist.PairedMnistConfig)


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
    config = config_from_flags()
    if FLAGS.score_samples:
        print(command.run_or_exit(lambda: score_samples(config, FLAGS.score_samples)))
        return
    command.run_and_report(
        paired_mnist.TASK,
        config,
        paired_mnist.headline,
        ("samples.png", "generator.weights.h5"),
    )


def run() -> None:
    command.run_main(main)


if __name__ == "__main__":
    run()
