import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import gan, losses, trainer
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.mlp import MLPDiscriminator
from tf_factorgan.noise import Randomness
from tf_factorgan.pairs_loss import PairsLoss, per_example

PARTITION = Partition((4, 4))
BATCH = 8


def test_settings_are_checked_and_name_their_flag():
    with pytest.raises(ValueError, match="recon_loss"):
        PairsLoss(recon_loss="l3")
    with pytest.raises(ValueError, match="likelihood"):
        PairsLoss(likelihood="poisson")
    with pytest.raises(ValueError, match="moment_samples"):
        PairsLoss(moment_samples=1)
    with pytest.raises(ValueError, match="recon_weight"):
        PairsLoss(recon_weight=float("nan"))
    with pytest.raises(ValueError, match="second moment"):
        PairsLoss(recon_loss="proxy_mr2", likelihood="categorical")
    assert PairsLoss(recon_loss="mr2").samples_per_input == 10
    assert PairsLoss(recon_loss="l1").samples_per_input == 1
    assert PairsLoss(recon_loss="mr1", moment_inputs=8).inputs_per_replica(25) == 8
    assert PairsLoss(recon_loss="l1").inputs_per_replica(25) == 25
    assert PairsLoss(recon_loss="ce").needs_probabilities
    assert PairsLoss(recon_loss="proxy_mr1", likelihood="categorical").needs_probabilities
    assert not PairsLoss(recon_loss="mr2").needs_probabilities


def test_weights_scale_each_kind():
    samples = tf.constant([[[0.0, 1.0]], [[1.0, 1.0]]])  # K=2, n=1, two values
    target = tf.constant([[1.0, 1.0]])
    np.testing.assert_allclose(per_example(PairsLoss(recon_loss="l1", recon_weight=3), samples[:1], target),
                               [1.5])
    mr1 = per_example(PairsLoss(recon_loss="mr1", moment_weight=2, moment_samples=2), samples, target)
    np.testing.assert_allclose(mr1, [2 * 0.125])  # mean (1 - [0.5, 1])^2 = 0.125
    proxy = per_example(PairsLoss(recon_loss="proxy_mr2", moment_weight=2, second_moment_weight=5,
                                  moment_samples=2),
                        samples, target, (tf.constant([[0.5, 1.0]]), tf.math.log([[0.5, 1e-9]])))
    # first: 0; second: mean((0.5 - 0.5)^2, (0 - 1e-9)^2) ~ 0.
    np.testing.assert_allclose(proxy, [0.0], atol=1e-9)
    with pytest.raises(ValueError, match="predictor"):
        per_example(PairsLoss(recon_loss="proxy_mr1", moment_samples=2), samples, target)


class _NoiseFree(keras.Model):
    """(part 0 [B, 4], noise) -> part 1 [B, 4]: ignores its noise, so losses on its
    outputs can be computed from the inputs alone."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4, activation="sigmoid")

    def call(self, condition, noise, training=False):
        return self.dense(condition)


class _Counting(Randomness):
    def __init__(self, seed):
        super().__init__(seed)
        self.noise_rows = []

    def noise(self, batch_size, nz):
        self.noise_rows.append(int(batch_size))
        return super().noise(batch_size, nz)


def _updates(variant, **pairs):
    config = gan.GanConfig(variant=variant, batch_size=BATCH, nz=3, conditional=True,
                           pairs_loss=PairsLoss(**pairs))
    models = gan.build_models(config, PARTITION, (8,), _NoiseFree,
                              lambda name: MLPDiscriminator(hidden_units=8, name=name))
    return gan.FactorGanUpdates(models, config, PARTITION, _Counting(0))


def _batch(updates, seed=0):
    rng = np.random.default_rng(seed)
    return {key: tf.constant(rng.random([BATCH, 8 if part is None else 4]), tf.float32)
            for key, part in updates.data_streams().items()}


@pytest.mark.parametrize("variant", [Variant.FACTORGAN, Variant.FACTORGAN_NO_CP, Variant.GAN])
def test_l1_reads_the_paired_rows_and_is_pix2pix_for_the_gan(variant):
    updates = _updates(variant, recon_loss="l1", recon_weight=10.0)
    # Every variant reads the joint stream (no-cp only because of the pairs loss).
    assert "joint" in updates.data_streams()
    batch = _batch(updates)
    generator = updates.models.generator
    inputs, targets = batch["joint"][:, :4], batch["joint"][:, 4:]
    expected = 10.0 * np.mean(np.abs(generator(inputs, None).numpy() - targets.numpy()))
    metrics = updates.generator_update(batch, BATCH)
    np.testing.assert_allclose(float(metrics["generator/pairs_loss"]), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["generator/loss"]),
                               float(metrics["generator/pairs_loss"] + metrics["generator/adversarial_loss"]),
                               rtol=1e-5)
    # The GAN's fake batch is its pairs' samples (one generator call); a FactorGAN also
    # completes its condition stream, every observed input.
    assert updates.randomness.noise_rows == ([BATCH] if variant is Variant.GAN else [BATCH, BATCH])


def test_moment_losses_draw_k_samples_of_the_first_inputs():
    updates = _updates(Variant.GAN, recon_loss="mr2", moment_samples=3, moment_inputs=5)
    metrics = updates.generator_update(_batch(updates), BATCH)
    # One call: 3 samples of each of the first 5 paired inputs, also the GAN's fakes.
    assert updates.randomness.noise_rows == [15]
    # A noise-free generator's samples do not differ.
    assert float(metrics["generator/sample_std"]) == pytest.approx(0.0, abs=1e-7)
    assert "generator/sample_std" in updates.metric_names()


def test_no_pairs_loss_keeps_the_metrics_and_streams_of_the_paper():
    updates = _updates(Variant.FACTORGAN_NO_CP)
    assert "joint" not in updates.data_streams()
    metrics = updates.generator_update(_batch(updates), BATCH)
    assert sorted(metrics) == sorted(updates.metric_names()[-2:])


def test_unconditional_models_refuse_a_pairs_loss():
    with pytest.raises(ValueError, match="conditional"):
        gan.GanConfig(variant=Variant.FACTORGAN, pairs_loss=PairsLoss(recon_loss="l1"))


def test_distributed_step_trains_with_a_pairs_loss(two_replicas):
    config = gan.GanConfig(variant=Variant.FACTORGAN, batch_size=BATCH, nz=3, conditional=True,
                           pairs_loss=PairsLoss(recon_loss="mr1", moment_samples=2, moment_inputs=2))
    with two_replicas.scope():
        models = gan.build_models(config, PARTITION, (8,), _NoiseFree,
                                  lambda name: MLPDiscriminator(hidden_units=8, name=name))
        randomness = Randomness(0)
    step = trainer.DistributedStep(gan.FactorGanUpdates(models, config, PARTITION, randomness), two_replicas)
    batch = _batch(step.updates)
    dataset = two_replicas.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).unbatch().batch(BATCH).repeat())
    before = models.generator.dense.kernel.numpy().copy()
    metrics = step.train_step(iter(dataset), tf.constant(1, tf.int64), BATCH // 2, tf.Variable(0, dtype=tf.int64))
    assert np.isfinite(float(metrics["generator/pairs_loss"]))
    assert not np.allclose(before, models.generator.dense.kernel.numpy())
