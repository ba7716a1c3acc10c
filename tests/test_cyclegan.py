import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import cyclegan, gan, trainer
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.noise import Randomness


class _Identity(keras.Model):
    def call(self, images, training=False):
        return images


class _Pointwise(keras.Model):
    """A 1x1 convolution with sigmoid: the smallest trainable image-to-image model."""

    def __init__(self, channels):
        super().__init__()
        self.conv = keras.layers.Conv2D(channels, 1, activation="sigmoid")

    def call(self, images, training=False):
        return self.conv(images)


class _TinyDiscriminator(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(1)

    def call(self, images, training=False):
        return self.dense(self.flatten(images))


def _images(seed, shape=(4, 8, 8, 3)):
    return tf.constant(np.random.default_rng(seed).random(shape), tf.float32)


def test_identity_generators_have_zero_cycle_and_identity_loss():
    terms = cyclegan.cycle_losses(_Identity(), _Identity(), _images(0), _images(1))
    np.testing.assert_allclose(terms["cycle"], np.zeros(4), atol=1e-7)
    np.testing.assert_allclose(terms["identity"], np.zeros(4), atol=1e-7)


def test_cycle_loss_is_the_mean_absolute_round_trip_error():
    class _Shift(keras.Model):
        def call(self, images, training=False):
            return images + 0.25

    a, b = _images(0), _images(1)
    terms = cyclegan.cycle_losses(_Shift(), _Identity(), a, b)
    # A round trip shifts by 0.25 either way; only G_AB is off as an identity map.
    np.testing.assert_allclose(terms["cycle"], np.full(4, 0.5), rtol=1e-6)
    np.testing.assert_allclose(terms["identity"], np.full(4, 0.25), rtol=1e-6)
    np.testing.assert_allclose(terms["fake_b"], a + 0.25)


def test_identity_loss_is_zero_when_channels_differ():
    terms = cyclegan.cycle_losses(_Pointwise(1), _Pointwise(3), _images(0), _images(1, (4, 8, 8, 1)))
    np.testing.assert_array_equal(terms["identity"], np.zeros(4))
    assert np.all(terms["cycle"].numpy() > 0)


def test_negative_weights_are_refused():
    with pytest.raises(ValueError, match="cycle_weight"):
        cyclegan.CycleWeights(cycle=-1.0)


def _step(strategy):
    config = gan.GanConfig(variant=Variant.GAN, conditional=True, batch_size=4)
    with strategy.scope():
        models = cyclegan.build_models(config, (8, 8, 3), (8, 8, 3), _Pointwise,
                                       lambda name: _TinyDiscriminator(name=name))
        randomness = Randomness(0)
    return trainer.DistributedStep(
        cyclegan.CycleGanUpdates(models, config, Partition((3, 3)), randomness), strategy)


def test_one_step_trains_every_network_on_unpaired_streams():
    step = _step(tf.distribute.get_strategy())
    assert step.updates.data_streams() == {"marginal_0": 0, "marginal_1": 1}
    assert set(step.models.trackables()) >= {"generator", "inverse_generator", "discriminator_a",
                                             "discriminator_b", "optimizer_a", "optimizer_b"}
    before = [w.numpy().copy() for net in step.models.networks() for w in net.trainable_weights]
    batch = {"marginal_0": _images(0), "marginal_1": _images(1)}
    metrics = step.train_step(iter(tf.data.Dataset.from_tensors(batch).repeat()),
                              tf.constant(1, tf.int64), 4, tf.Variable(0, dtype=tf.int64))
    after = [w.numpy() for net in step.models.networks() for w in net.trainable_weights]
    assert all(not np.allclose(x, y) for x, y in zip(before, after))
    assert sorted(metrics) == sorted(step.updates.metric_names())
    total = sum(float(metrics[f"generator/{k}_loss"]) for k in ("adversarial", "cycle", "identity"))
    assert float(metrics["generator/loss"]) == pytest.approx(total, rel=1e-5)
    assert step.updates.translate(_images(2).numpy()).shape == (4, 8, 8, 3)
