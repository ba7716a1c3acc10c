"""A tiny Paired MNIST run for the kill test (test_trainer.py) and the run-folder tests
(test_run_folder.py), checkpointing often.

Usage: python -m tests.kill_program <out_path> <experiment_name> <steps>
Trains on synthetic digits, then evaluates and writes every output, as the trainer does.
"""

import sys

import tensorflow as tf

from tests.conftest import synthetic_digits
from tf_factorgan.experiments import common, paired_mnist


def config(out_path: str, experiment_name: str, steps: int,
           **overrides) -> paired_mnist.PairedMnistConfig:
    """The run's settings; `overrides` replace any of them."""
    values = dict(
        num_joint_samples=40, batch_size=10, steps=int(steps), steps_per_call=2, log_every=2,
        image_every=0, checkpoint_every=2, eval_samples=100, min_classifier_accuracy=0.0,
        out_path=out_path, experiment_name=experiment_name,
    )
    return paired_mnist.PairedMnistConfig(**{**values, **overrides})


def data(run_config: paired_mnist.PairedMnistConfig) -> paired_mnist.PairedMnistData:
    return paired_mnist.build_data(run_config, synthetic_digits(300, 1), synthetic_digits(100, 2))


def run(run_config: paired_mnist.PairedMnistConfig) -> dict:
    """`common.run_experiment` of `run_config` in this process: its metrics."""
    return common.run_experiment(paired_mnist.TASK, run_config, data(run_config),
                                 tf.distribute.get_strategy())


def main(out_path: str, experiment_name: str, steps: str) -> None:
    run(config(out_path, experiment_name, int(steps)))


if __name__ == "__main__":
    main(*sys.argv[1:])
