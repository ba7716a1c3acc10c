import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.models.mlp import MLPDiscriminator, MLPGenerator
from tf_factorgan.models.spectral import PROJECT, REPARAMETRIZE, spectral_norm_scope


def test_generator_maps_noise_to_unit_interval():
    gen = MLPGenerator(1568)
    out = gen(tf.random.uniform([5, 50], -1, 1)).numpy()
    assert out.shape == (5, 1568) and out.min() >= 0 and out.max() <= 1
    assert [w.shape for w in gen.trainable_weights[::2]] == [(50, 128), (128, 128), (128, 1568)]


def test_generator_with_a_linear_output_is_unbounded():
    gen = MLPGenerator(3, hidden_units=8, output_activation="linear")
    gen(tf.zeros([1, 4]))
    gen.out.kernel.assign(gen.out.kernel * 100.0)
    out = gen(tf.random.uniform([64, 4], -1, 1)).numpy()
    assert out.min() < 0 and out.max() > 1
    with pytest.raises(ValueError, match="output_activation must be one of"):
        MLPGenerator(3, output_activation="tanh")


def test_projected_spectral_normalisation_acts_only_in_training_calls():
    keras.utils.set_random_seed(0)  # power iteration's speed depends on the spectrum
    with spectral_norm_scope(PROJECT):
        disc = MLPDiscriminator()
    x = tf.random.normal([8, 20])
    disc(x)
    kernels = [layer.layer.kernel for layer in (disc.hidden_1, disc.hidden_2, disc.logit)]
    for k in kernels:  # inflate so normalisation is visible
        k.assign(k * 5.0)
    before = [k.numpy() for k in kernels]
    logits = disc(x, training=False)
    assert logits.shape == (8, 1)
    for k, b in zip(kernels, before):
        np.testing.assert_array_equal(k.numpy(), b)
    for _ in range(100):  # power iteration converges
        disc(x, training=True)
    for k in kernels:
        sigma = np.linalg.svd(k.numpy(), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 1e-2, sigma
    u = [layer.vector_u for layer in (disc.hidden_1, disc.hidden_2, disc.logit)]
    assert all(not v.trainable for v in u) and len(disc.non_trainable_weights) == 3


def test_reparametrized_discriminator_is_1_lipschitz_per_layer_after_training_calls():
    keras.utils.set_random_seed(0)
    with spectral_norm_scope(REPARAMETRIZE):
        disc = MLPDiscriminator()
    x = tf.random.normal([8, 20])
    disc(x)
    layers = (disc.hidden_1, disc.hidden_2, disc.logit)
    for layer in layers:
        layer.layer.kernel.assign(layer.layer.kernel * 5.0)
    before = [layer.layer.kernel.numpy() for layer in layers]
    for _ in range(100):
        disc(x, training=True)
    for layer, kernel in zip(layers, before):
        np.testing.assert_array_equal(layer.layer.kernel.numpy(), kernel)  # W is not projected
        true_sigma = np.linalg.svd(kernel, compute_uv=False)[0]
        np.testing.assert_allclose(float(layer.sigma()), true_sigma, rtol=1e-2)
    assert len(disc.non_trainable_weights) == 3
