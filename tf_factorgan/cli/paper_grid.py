"""Runs the Paired MNIST grid of the paper's Figure 1 (GAN / FactorGAN / no-cp).

  python -m trainers.paper_grid --mnist_manual_dir=../shared/data/mnist --steps=20000

Takes every flag of trainers.paired_mnist for the per-run settings; writes
<out_path>/paired_mnist/grid/results.csv and results.png. Re-running resumes.
"""

import sys

from absl import flags

from tf_factorgan import checkpoints, strategies
from tf_factorgan.cli import command, training
from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist, paper_grid
from tf_factorgan.factorisation import Variant

GRID = paper_grid.PaperGridConfig(base=paired_mnist.PairedMnistConfig())

training.define(paired_mnist.PairedMnistConfig)
flags.DEFINE_list("variants", [v.value for v in GRID.variants], "Variants to run.")
flags.DEFINE_list("joint_sample_counts", [str(n) for n in GRID.num_joint_samples],
                  "Numbers of paired samples.")
flags.DEFINE_list("same_digit_probs", [str(p) for p in GRID.same_digit_probs], "Lambdas.")
flags.DEFINE_string("results_dir", None,
                    "Also write the CSV, the plot and every run's metrics.json here "
                    "(e.g. results/paired_mnist/grid_200k, kept in the repository).")
command.group("grid", "variants", "joint_sample_counts", "same_digit_probs", "results_dir")

FLAGS = flags.FLAGS


def _config() -> paper_grid.PaperGridConfig:
    config = paper_grid.PaperGridConfig(
        base=training.settings_from_flags(paired_mnist.PairedMnistConfig),
        variants=command.list_flag("variants", Variant),
        num_joint_samples=command.list_flag("joint_sample_counts", int),
        same_digit_probs=command.list_flag("same_digit_probs", float),
        results_dir=FLAGS.results_dir,
    )
    config.run_configs()  # validates every grid point before the first run
    return config


def config_from_flags() -> paper_grid.PaperGridConfig:
    return command.run_or_exit(_config)


def main(argv):
    del argv
    config = config_from_flags()
    base = config.base
    strategies.configure_cpu_threads(base.intra_op_threads, base.inter_op_threads)
    try:
        train = mnist.load_mnist("train", base.mnist_manual_dir, base.tfds_data_dir)
        test = mnist.load_mnist("test", base.mnist_manual_dir, base.tfds_data_dir)
        paper_grid.run_grid(config, train, test, strategies.make_strategy(base.strategy))
    except (FileNotFoundError, checkpoints.CheckpointError) as error:
        command.exit_with(error)
    except KeyboardInterrupt as interrupt:
        sys.exit(f"\n{interrupt}; run the same command again to resume")
    print(f"\nResults: {config.results_dir or config.grid_dir}/results.csv and results.png")


def run() -> None:
    training.run(main, __doc__, paired_mnist.PairedMnistConfig)


if __name__ == "__main__":
    run()
