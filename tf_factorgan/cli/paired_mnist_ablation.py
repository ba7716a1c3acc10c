r"""Runs the Paired MNIST training-choice ablation (see tf_factorgan.experiments.
paired_mnist_ablation), e.g. at 30 000 and then 100 000 updates:

  python -m trainers.paired_mnist_ablation --mnist_manual_dir=../shared/data/mnist \
      --steps=30000 --results_dir=results/paired_mnist/ablation
  python -m trainers.paired_mnist_ablation --mnist_manual_dir=../shared/data/mnist \
      --steps=100000 --results_dir=results/paired_mnist/ablation

Takes every flag of trainers.paired_mnist for the base settings. Re-running resumes.
"""

import sys

from absl import flags

from tf_factorgan import checkpoints, strategies
from tf_factorgan.cli import command, training
from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist, paired_mnist_ablation

training.define(paired_mnist.PairedMnistConfig)
flags.DEFINE_list("settings", list(paired_mnist_ablation.SETTINGS), "Settings to run.")
flags.DEFINE_list("seeds", ["1337"], "Seeds: every setting runs once with each.")
flags.DEFINE_string("results_dir", None,
                    "Also write the CSV and every run's metrics.json here (e.g. results/...).")
command.group("ablation", "settings", "seeds", "results_dir")
FLAGS = flags.FLAGS


def _config() -> paired_mnist_ablation.AblationConfig:
    config = paired_mnist_ablation.AblationConfig(
        base=training.settings_from_flags(paired_mnist.PairedMnistConfig),
        settings=tuple(FLAGS.settings),
        seeds=command.list_flag("seeds", int),
        results_dir=FLAGS.results_dir,
    )
    config.run_configs()  # validates every run before the first
    return config


def main(argv):
    del argv
    config = command.run_or_exit(_config)
    base = config.base
    strategies.configure_cpu_threads(base.intra_op_threads, base.inter_op_threads)
    try:
        train = mnist.load_mnist("train", base.mnist_manual_dir, base.tfds_data_dir)
        test = mnist.load_mnist("test", base.mnist_manual_dir, base.tfds_data_dir)
        rows = paired_mnist_ablation.run_ablation(
            config, train, test, strategies.make_strategy(base.strategy))
    except (FileNotFoundError, checkpoints.CheckpointError) as error:
        command.exit_with(error)
    except KeyboardInterrupt as interrupt:
        sys.exit(f"\n{interrupt}; run the same command again to resume")
    print(f"\n{'setting':<24}{'seeds':>6}{'mean FID':>16}{'paper FID':>16}{'d_dep':>16}")
    for row in paired_mnist_ablation.summarise(rows):
        paper = (f"{row['paper_fid_mean']:>9.2f} ± {row['paper_fid_mean_std']:<5.2f}"
                 if "paper_fid_mean" in row else f"{'-':>16}")
        print(f"{row['setting']:<24}{row['seeds']:>6}"
              f"{row['fid_mean']:>9.2f} ± {row['fid_mean_std']:<5.2f}{paper}"
              f"{row['dependency_distance']:>9.3f} ± {row['dependency_distance_std']:.3f}")


def run() -> None:
    training.run(main, __doc__, paired_mnist.PairedMnistConfig)


if __name__ == "__main__":
    run()
