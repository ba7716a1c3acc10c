"""Trains and evaluates FactorGAN or a GAN on Paired MNIST.

  python -m trainers.paired_mnist --flagfile=trainers/flagfiles/paired_mnist_factorgan.cfg \
      --mnist_manual_dir=../shared/data/mnist --steps=5000

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

import dataclasses
import sys

from absl import app, flags, logging

from tf_factorgan import strategies, trainer
from tf_factorgan.experiments import paired_mnist

DEFAULTS = paired_mnist.PairedMnistConfig()

flags.DEFINE_bool("factorgan", DEFAULTS.factorgan, "FactorGAN (else a GAN with one joint discriminator).")
flags.DEFINE_bool("use_real_dep_disc", DEFAULTS.use_real_dep_disc,
                  "Train the p-dependency discriminator on paired data (else FactorGAN-no-cp).")
flags.DEFINE_integer("num_joint_samples", DEFAULTS.num_joint_samples, "Paired training samples.")
flags.DEFINE_float("same_digit_prob", DEFAULTS.same_digit_prob, "Lambda: P(lower digit label := upper label).")
flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "Global batch size.")
flags.DEFINE_integer("disc_iter", DEFAULTS.disc_iter, "Discriminator rounds per generator update.")
flags.DEFINE_float("lr", DEFAULTS.lr, "Adam learning rate of every network.")
flags.DEFINE_integer("nz", DEFAULTS.nz, "Noise dimensions (Uniform(-1, 1)).")
flags.DEFINE_enum("generator_objective", DEFAULTS.generator_objective, ["ns", "kl"],
                  "Generator loss: non-saturating or KL (minus mean logit).")
flags.DEFINE_integer("steps", DEFAULTS.steps, "Generator updates in total.")
flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed of pairings, data order, weights and noise.")
flags.DEFINE_string("out_path", DEFAULTS.out_path, "Root of all outputs.")
flags.DEFINE_string("experiment_name", DEFAULTS.experiment_name, "Run folder under <out_path>/paired_mnist/.")
flags.DEFINE_bool("eval_only", DEFAULTS.eval_only, "Only evaluate the run's last checkpoint.")
flags.DEFINE_enum("strategy", DEFAULTS.strategy, list(strategies.STRATEGY_NAMES),
                  "tf.distribute strategy; multi_worker reads TF_CONFIG.")
flags.DEFINE_bool("jit_compile", DEFAULTS.jit_compile, "Compile the replica steps with XLA.")
flags.DEFINE_integer("intra_op_threads", DEFAULTS.intra_op_threads,
                     "Threads per TensorFlow op (0 = default); 1 lets the small networks run side by side.")
flags.DEFINE_integer("inter_op_threads", DEFAULTS.inter_op_threads,
                     "Ops run concurrently (0 = TensorFlow's default).")
flags.DEFINE_integer("steps_per_call", DEFAULTS.steps_per_call, "Generator updates per tf.function call.")
flags.DEFINE_integer("log_every", DEFAULTS.log_every, "TensorBoard scalars every N steps.")
flags.DEFINE_integer("image_every", DEFAULTS.image_every, "TensorBoard sample grid every N steps.")
flags.DEFINE_integer("checkpoint_every", DEFAULTS.checkpoint_every, "Checkpoint every N steps.")
flags.DEFINE_string("mnist_manual_dir", None,
                    "Folder with the four official MNIST .gz files (offline); unset: download.")
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir (default: its own).")
flags.DEFINE_string("classifier_cache_dir", None,
                    "Cache of the evaluation classifier (default: <out_path>/mnist_classifier).")
flags.DEFINE_integer("eval_samples", DEFAULTS.eval_samples, "Generated and real pairs for the metrics.")

FLAGS = flags.FLAGS


def config_from_flags() -> paired_mnist.PairedMnistConfig:
    names = [f.name for f in dataclasses.fields(paired_mnist.PairedMnistConfig)]
    values = {name: FLAGS[name].value for name in names if name in FLAGS}
    try:
        return paired_mnist.PairedMnistConfig(**values)
    except ValueError as error:
        raise app.UsageError(str(error)) from error


def quiet_info_logs():
    """TensorFlow's INFO lines would bury the progress bar, unless --verbosity asks."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def main(argv):
    del argv
    quiet_info_logs()
    config = config_from_flags()
    try:
        metrics = paired_mnist.run(config)
    except (FileNotFoundError, trainer.CheckpointError) as error:
        sys.exit(f"error: {error}")
    if "interrupted_at_step" in metrics:
        return
    run_dir = config.run_dir
    print(
        f"\nFID upper {metrics['fid_upper']:.3f}, FID lower {metrics['fid_lower']:.3f}, "
        f"dependency distance {metrics['dependency_distance']:.4f}\n"
        f"  metrics:     {run_dir}/metrics.json\n"
        f"  samples:     {run_dir}/samples.png\n"
        f"  generator:   {run_dir}/generator.weights.h5\n"
        f"  TensorBoard: tensorboard --logdir {run_dir}/logs"
    )


if __name__ == "__main__":
    app.run(main)
