"""A tiny Paired MNIST run whose disk fills up between its evaluation and its final
outputs (test_write_failures.py), run as the trainers run it (`run_or_exit`).

Usage: python -m tests.disk_full_program <out_path> <free bytes to leave>
Everything but the run's own outputs (classifier cache) goes elsewhere, so the run
folder is what meets the full disk.
"""

import dataclasses
import os
import sys

import tensorflow as tf

from tests import kill_program
from tf_factorgan.experiments import common, paired_mnist
from tf_factorgan.cli import command


def fill(folder: str, leave: int) -> None:
    """Writes `folder/filler` until the disk is full, then frees `leave` bytes."""
    path = os.path.join(folder, "filler")
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    os.truncate(path, max(0, os.path.getsize(path) - leave))


def main(out_path: str, leave: str, classifier_cache: str) -> None:
    config = kill_program.config(out_path, "full", 2, classifier_cache_dir=classifier_cache)

    def evaluate_then_fill(*args):
        metrics = paired_mnist.TASK.evaluate(*args)
        fill(out_path, int(leave))
        return metrics

    task = dataclasses.replace(paired_mnist.TASK, evaluate=evaluate_then_fill)
    data = kill_program.data(config)
    command.run_or_exit(
        lambda: common.run_experiment(task, config, data, tf.distribute.get_strategy()))


if __name__ == "__main__":
    main(*sys.argv[1:])
