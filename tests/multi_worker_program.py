"""One worker of the two-process MultiWorkerMirroredStrategy test (test_strategies.py).

Usage: python -m tests.multi_worker_program <out_dir> <weights.npz>; TF_CONFIG set.
Trains a few steps on synthetic digits and saves every weight of every network.
"""

import sys

import numpy as np

from tests.conftest import synthetic_digits
from tf_factorgan import strategies
from tf_factorgan.experiments import paired_mnist


def main(out_dir: str, weights_path: str) -> None:
    strategy = strategies.make_strategy("multi_worker")
    config = paired_mnist.PairedMnistConfig(
        num_joint_samples=60, batch_size=10, steps=6, steps_per_call=3, log_every=3,
        image_every=0, checkpoint_every=3, out_path=out_dir, experiment_name="mw",
    )
    data = paired_mnist.build_data(config, synthetic_digits(300, 1), synthetic_digits(30, 2))
    loop = paired_mnist.build_trainer(config, data, strategy)
    result = loop.run()
    models = loop.gan_step.models
    weights = [w.numpy() for net in models.networks() for w in net.weights]
    np.savez(weights_path, step=result.step, replicas=strategy.num_replicas_in_sync,
             chief=loop.is_chief, *weights)


if __name__ == "__main__":
    main(*sys.argv[1:])
