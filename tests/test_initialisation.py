import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.models import initialisation
from tf_factorgan.models.conv import ConvDiscriminator, ConvGenerator
from tf_factorgan.models.mlp import MLPDiscriminator, MLPGenerator


def test_torch_bound_uses_pytorchs_fan_in_for_every_layout():
    assert initialisation.torch_bound((784, 128)) == pytest.approx(1 / np.sqrt(784))  # Dense
    assert initialisation.torch_bound((4, 4, 3, 32)) == pytest.approx(1 / np.sqrt(48))  # Conv2D
    # Conv2DTranspose [kh, kw, out, in]: PyTorch counts kh * kw * out as well.
    assert initialisation.torch_bound((4, 4, 16, 64)) == pytest.approx(1 / np.sqrt(256))


def _kernels_and_biases(model):
    return [w for w in model.trainable_weights if w.path.endswith(("kernel", "bias"))]


def test_torch_init_draws_every_kernel_and_bias_uniformly_within_the_bound():
    gen, disc = MLPGenerator(1568), MLPDiscriminator()
    gen(tf.zeros([1, 50]))
    disc(tf.zeros([1, 784]))
    for model in (gen, disc):
        initialisation.initialise(model, "torch", seed=0)
        weights = _kernels_and_biases(model)
        assert len(weights) == 6
        for layer_kernel, layer_bias in zip(weights[::2], weights[1::2]):
            bound = 1 / np.sqrt(layer_kernel.shape[0])
            for w in (layer_kernel.numpy(), layer_bias.numpy()):
                assert np.abs(w).max() <= bound
                # Uniform on [-b, b]: mean 0, standard deviation b / sqrt(3).
                if w.size >= 1000:
                    assert abs(w.std() - bound / np.sqrt(3)) < 0.03 * bound
                    assert abs(w.mean()) < 0.05 * bound
            assert np.abs(layer_bias.numpy()).max() > 0  # biases no longer all zero


def test_torch_init_reaches_convolutions_inside_spectral_wrappers_and_is_seeded():
    def built():
        disc = ConvDiscriminator(filters=4)
        disc(tf.zeros([1, 32, 32, 3]))
        return disc

    a, b, c = built(), built(), built()
    initialisation.initialise(a, "torch", seed=[7, 1])
    initialisation.initialise(b, "torch", seed=[7, 1])
    initialisation.initialise(c, "torch", seed=[7, 2])
    conv = a.conv_0.layer.kernel.numpy()
    assert np.abs(conv).max() <= 1 / np.sqrt(4 * 4 * 3)
    assert np.abs(conv).max() > 0.9 / np.sqrt(4 * 4 * 3)
    for wa, wb, wc in zip(a.weights, b.weights, c.weights):
        if "vector_u" not in wa.path:
            np.testing.assert_array_equal(wa.numpy(), wb.numpy())
            assert not np.array_equal(wa.numpy(), wc.numpy())


def test_glorot_leaves_keras_weights_and_unknown_inits_are_refused():
    gen = ConvGenerator(8, 1, ngf=2)
    gen(tf.zeros([1, 10]))
    before = [w.numpy() for w in gen.weights]
    initialisation.initialise(gen, "glorot", seed=0)
    for w, b in zip(gen.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    with pytest.raises(ValueError, match="init"):
        initialisation.initialise(gen, "he", seed=0)
    initialisation.initialise(gen, "torch", seed=0)
    kernel = gen.project.kernel.numpy()  # [4, 4, 8 * ngf, nz]
    assert np.abs(kernel).max() <= 1 / np.sqrt(4 * 4 * 16)
