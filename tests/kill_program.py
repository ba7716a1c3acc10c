"""A tiny Paired MNIST run for the kill test (test_trainer.py), checkpointing often.

Usage: python -m tests.kill_program <out_path> <experiment_name> <steps>
Trains on synthetic digits, then evaluates and writes every output, as the trainer does.
"""

import sys

import tensorflow as tf

from tests.conftest import synthetic_digits
from tf_factorgan.experiments import common, paired_mnist


def main(out_path: str, experiment_name: str, steps: str) -> None:
    config = paired_mnist.PairedMnistConfig(
        num_joint_samples=40, batch_size=10, steps=int(steps), steps_per_call=2, log_every=2,
        image_every=0, checkpoint_every=2, eval_samples=100, min_classifier_accuracy=0.0,
        out_path=out_path, experiment_name=experiment_name,
    )
    data = paired_mnist.build_data(config, synthetic_digits(300, 1), synthetic_digits(100, 2))
    common.run_experiment(paired_mnist.TASK, config, data, tf.distribute.get_strategy())


if __name__ == "__main__":
    main(*sys.argv[1:])
