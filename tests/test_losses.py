import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import losses


def _softplus(x):
    return np.log1p(np.exp(x))


def test_discriminator_loss_on_known_logits():
    real, fake = np.array([2.0, -1.0, 0.0]), np.array([-3.0, 1.0, 0.0])
    got = losses.discriminator_loss(tf.constant(real), tf.constant(fake)[:, None])
    # CE(l, 1) = softplus(-l), CE(l, 0) = softplus(l)
    np.testing.assert_allclose(got, _softplus(-real) + _softplus(fake), rtol=1e-6)
    np.testing.assert_allclose(got[2], 2 * np.log(2), rtol=1e-6)


def test_discriminator_accuracy_counts_both_halves():
    got = losses.discriminator_accuracy(tf.constant([1.0, 1.0, -1.0]), tf.constant([-1.0, 1.0, 1.0]))
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0])


def test_generator_objectives():
    logits = np.array([3.0, 0.0, -2.0])
    np.testing.assert_allclose(losses.generator_loss(tf.constant(logits), "ns"), _softplus(-logits), rtol=1e-6)
    np.testing.assert_allclose(losses.generator_loss(tf.constant(logits), "kl"), -logits)
    with pytest.raises(ValueError, match="objective"):
        losses.generator_loss(tf.constant(logits), "wgan")
