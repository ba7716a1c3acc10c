import os
import re

import numpy as np
import keras
import pytest
import tensorflow as tf

from tf_factorgan.models.conv import ConvDiscriminator, ConvGenerator
from tf_factorgan.models.spectral import PROJECT, SPECTRAL_WRAPPERS, spectral_norm_scope


def _checkpoint_names(model, directory) -> list:
    path = tf.train.Checkpoint(model=model).save(os.path.join(directory, "ckpt"))
    return [name for name, _ in tf.train.list_variables(path)]


@pytest.mark.parametrize("size, channels", [(8, 1), (16, 3), (64, 3)])
def test_generator_maps_noise_to_unit_interval_images(size, channels):
    gen = ConvGenerator(size, channels, ngf=2)
    out = gen(tf.random.uniform([3, 10], -1, 1)).numpy()
    assert out.shape == (3, size, size, channels)
    assert out.min() >= 0 and out.max() <= 1
    # 1x1 -> 4x4 with 8 ngf channels, then halving: Conv2DTranspose kernels are
    # [h, w, out, in]; the halving stops at output_channels (ngf=2 would reach 1 at 64).
    out_channels = [w.shape[2] for w in gen.trainable_weights if len(w.shape) == 4]
    expected = {8: [16, 1], 16: [16, 8, 3], 64: [16, 8, 4, 3, 3]}[size]
    assert out_channels == expected
    assert gen.trainable_weights[0].shape == (4, 4, 16, 10)


@pytest.mark.parametrize("size", [4, 12, 48, 0])
def test_generator_refuses_sizes_that_are_not_powers_of_two_from_8(size):
    with pytest.raises(ValueError, match="power of two"):
        ConvGenerator(size, 1)


@pytest.mark.parametrize(
    "shape, num_layers", [((64, 64, 3), 3), ((128, 128, 1), 4), ((256, 128, 1), 4), ((8, 8, 1), 1)]
)
def test_discriminator_accepts_square_and_non_square_images(shape, num_layers, tmp_path):
    disc = ConvDiscriminator(filters=2)
    logits = disc(tf.random.uniform([2, *shape]), training=True)
    assert logits.shape == (2, 1)
    kernels = [w for w in disc.trainable_weights if len(w.shape) == 4]
    assert len(kernels) == num_layers  # log2(min(H, W)) - 3, at least 1
    assert [k.shape[-1] for k in kernels] == [2 * 2**i for i in range(num_layers)]
    # Ends at min side 8 (4 for the 8x8 input): 256x128 -> 16x8 features.
    h, w = shape[0] // 2**num_layers, shape[1] // 2**num_layers
    assert disc.logit.layer.kernel.shape == (h * w * 2**num_layers, 1)
    assert not disc.logit.layer.use_bias
    wrappers = [layer for layer in disc.layers if isinstance(layer, SPECTRAL_WRAPPERS)]
    assert len(wrappers) == num_layers + 1
    names = _checkpoint_names(disc, tmp_path)
    assert sum("vector_u" in name for name in names) == num_layers + 1


def test_every_discriminator_layer_is_spectrally_normalised():
    keras.utils.set_random_seed(0)
    with spectral_norm_scope(PROJECT):
        disc = ConvDiscriminator(filters=2)
    x = tf.random.uniform([2, 32, 32, 1])
    for _ in range(30):
        disc(x, training=True)
    kernels = [w for w in disc.trainable_weights if "kernel" in w.path]
    assert len(kernels) == 3  # two convolutions and the dense layer
    for k in kernels:
        k = k.numpy()
        sigma = np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.05, sigma


def test_discriminator_without_spectral_norm_has_plain_layers(tmp_path):
    disc = ConvDiscriminator(filters=2, spectral_norm=False)
    assert disc(tf.random.uniform([2, 64, 32, 1]), training=True).shape == (2, 1)
    assert not disc.non_trainable_weights
    assert not any(isinstance(layer, SPECTRAL_WRAPPERS) for layer in disc.layers)
    names = _checkpoint_names(disc, tmp_path)
    assert not any("vector_u" in name for name in names)
    assert sum("kernel" in name for name in names) == 3  # 2 convs (min side 32) + dense


def test_discriminator_checkpoint_round_trip(tmp_path):
    x = tf.random.uniform([2, 256, 128, 1])
    disc = ConvDiscriminator(filters=2)
    disc(x, training=True)  # moves kernels and vector_u away from their initial values
    path = tf.train.Checkpoint(model=disc).save(os.path.join(tmp_path, "ckpt"))
    assert len(tf.train.list_variables(path)) - 2 == len(disc.weights)  # + graph, counter
    restored = ConvDiscriminator(filters=2)
    restored(x)
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    for a, b in zip(disc.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("shape", [(4, 4, 1), (70, 64, 1), (64, 50, 3)])
def test_discriminator_refuses_unusable_shapes(shape):
    # 4x4 is too small; 70 is not divisible by 8 (3 layers), 50 not by 4 (2 layers).
    disc = ConvDiscriminator(filters=2)
    with pytest.raises(ValueError, match=re.escape(str(shape)[1:-1])):
        disc(tf.random.uniform([1, *shape]))


def test_outputs_are_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        gen = ConvGenerator(16, 1, ngf=2)
        disc = ConvDiscriminator(filters=2)
        images = gen(tf.random.uniform([2, 10], -1, 1))
        logits = disc(images, training=True)
        assert gen.project.compute_dtype == "float16"  # the policy did apply
        assert disc.conv_0.layer.compute_dtype == "float16"
        assert images.dtype == tf.float32 and logits.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")
