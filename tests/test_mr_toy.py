"""MR-GAN's claim on a toy (after Lee et al. 2019, appendix C): one input, targets from
a mixture of 8 Gaussians on a circle of radius 2. A conditional GAN whose generator
also minimises a reconstruction loss ignores its noise and collapses onto the targets'
mean, which is no mode at all; with moment reconstruction (MR2) or proxy MR2 instead,
its samples keep the data's spread (variance 2 per axis) and land on the modes.

Trained with the library's own update (`gan.FactorGanUpdates`, the GAN variant) and an
MLP, a few seconds each, from fixed seeds.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import gan, trainer
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.mlp import MLPDiscriminator
from tf_factorgan.noise import Randomness
from tf_factorgan.pairs_loss import PairsLoss

MODES = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
SPREAD = 0.05  # each mode's standard deviation
DATA_VARIANCE = 2.0 + SPREAD ** 2  # per axis
BATCH, STEPS = 64, 1500
PARTITION = Partition((1, 2))  # the input (a constant 1), the 2-D target


class _ConditionalMLP(keras.Model):
    """(input [B, 1], noise [B, nz]) -> target [B, 2]."""

    def __init__(self):
        super().__init__()
        self.hidden_1 = keras.layers.Dense(64, activation="relu")
        self.hidden_2 = keras.layers.Dense(64, activation="relu")
        self.out = keras.layers.Dense(2)

    def call(self, condition, noise, training=False):
        return self.out(self.hidden_2(self.hidden_1(tf.concat([condition, noise], -1))))


class _ExactMoments(keras.Model):
    """Proxy MR's predictor where the answer is known: mean 0, variance DATA_VARIANCE
    (the stage's training is tested in test_predictor.py)."""

    def call(self, condition, training=False):
        rows = tf.shape(condition)[0]
        return tf.zeros([rows, 2]), tf.fill([rows, 2], float(np.log(DATA_VARIANCE)))


def _targets(rng, count):
    return (MODES[rng.integers(0, 8, count)] + SPREAD * rng.standard_normal((count, 2))).astype(np.float32)


def train_toy(recon_loss: str, seed: int = 0) -> np.ndarray:
    """[2000, 2] samples of the toy's generator after STEPS updates."""
    keras.utils.set_random_seed(seed)
    pairs = PairsLoss(recon_loss=recon_loss, moment_samples=8, moment_inputs=16, recon_weight=1.0,
                      moment_weight=1.0, second_moment_weight=1.0)
    config = gan.GanConfig(variant=Variant.GAN, batch_size=BATCH, nz=2, lr=1e-3, disc_iter=1,
                           conditional=True, pairs_loss=pairs)
    models = gan.build_models(config, PARTITION, (3,), _ConditionalMLP,
                              lambda name: MLPDiscriminator(hidden_units=64, name=name),
                              make_predictor=_ExactMoments)
    step = trainer.DistributedStep(gan.FactorGanUpdates(models, config, PARTITION, Randomness(seed)),
                                   tf.distribute.get_strategy())
    rng = np.random.default_rng(seed)
    joint = np.concatenate([np.ones((STEPS * BATCH, 1), np.float32), _targets(rng, STEPS * BATCH)], 1)
    batches = iter(tf.data.Dataset.from_tensor_slices({"joint": joint}).batch(BATCH))
    step.train_step(batches, tf.constant(STEPS, tf.int64), BATCH, tf.Variable(0, dtype=tf.int64))
    return step.updates.translate(np.ones((2000, 1), np.float32), seed=1)


def modes_covered(samples: np.ndarray, min_samples: int = 20) -> tuple[int, float]:
    """(modes with at least `min_samples` samples within 6 standard deviations, the
    fraction of samples that are that close to some mode)."""
    distance = np.linalg.norm(samples[:, None] - MODES[None], axis=-1)
    near = distance.min(axis=1) < 6 * SPREAD
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=len(MODES))
    return int(np.sum(counts >= min_samples)), float(near.mean())


def test_reconstruction_loss_collapses_the_samples_onto_the_mean():
    samples = train_toy("l2")
    # The noise is all but ignored: under 5 % of the data's variance.
    assert samples.var(axis=0).max() < 0.05 * DATA_VARIANCE
    assert np.abs(samples.mean(axis=0)).max() < 0.3  # the targets' mean: no mode
    assert modes_covered(samples) == (0, 0.0)


@pytest.mark.parametrize("recon_loss", ["mr2", "proxy_mr2"])
def test_moment_reconstruction_keeps_the_spread_of_the_data(recon_loss):
    samples = train_toy(recon_loss)
    variance = samples.var(axis=0)
    assert np.all((0.6 * DATA_VARIANCE < variance) & (variance < 1.4 * DATA_VARIANCE)), variance
    assert np.abs(samples.mean(axis=0)).max() < 0.8
    modes, near = modes_covered(samples)
    assert modes >= (4 if recon_loss == "proxy_mr2" else 1), (modes, near)
    if recon_loss == "proxy_mr2":  # stable: most samples on a mode
        assert near > 0.5
