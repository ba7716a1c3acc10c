"""Trains and evaluates FactorGAN or a GAN on Paired MNIST.

  python -m trainers.paired_mnist --flagfile=trainers/flagfiles/paired_mnist_factorgan.cfg \
      --mnist_manual_dir=../shared/data/mnist --steps=5000

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from absl import flags

from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist
from trainers import common_flags

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
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir (default: its own).")
flags.DEFINE_string("classifier_cache_dir", None,
                    "Cache of the evaluation classifier (default: <out_path>/mnist_classifier).")
flags.DEFINE_integer("eval_samples", DEFAULTS.eval_samples, "Generated and real pairs for the metrics.")
flags.DEFINE_integer("paper_classifiers", DEFAULTS.paper_classifiers,
                     "Also score FID on this many classifiers trained by the original code's "
                     "recipe (seeds 0..N-1; 25-45 s each on a 2-core CPU, once, then cached): their "
                     "mean is paper_fid_upper / paper_fid_lower, the figures that compare with "
                     "the paper's. 0: none.")
common_flags.define_training_flags(DEFAULTS)


def config_from_flags() -> paired_mnist.PairedMnistConfig:
    return common_flags.config_from_flags(paired_mnist.PairedMnistConfig)


def main(argv):
    del argv
    config = config_from_flags()
    common_flags.run_and_report(
        paired_mnist.TASK,
        config,
        paired_mnist.headline,
        ("samples.png", "generator.weights.h5"),
    )


if __name__ == "__main__":
    common_flags.run_main(main)
