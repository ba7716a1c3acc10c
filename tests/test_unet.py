import os

import numpy as np
import keras
import pytest
import tensorflow as tf

from tf_factorgan.models.unet import UNet


@pytest.mark.parametrize("height, width", [(16, 16), (64, 64), (256, 128)])
def test_maps_condition_and_noise_to_unit_interval_images(height, width):
    net = UNet(output_channels=3, ngf=4)
    condition = tf.random.uniform([2, height, width, 1])
    out = net(condition, tf.random.uniform([2, 8], -1, 1), training=True).numpy()
    assert out.shape == (2, height, width, 3)
    assert out.min() >= 0 and out.max() <= 1
    # The noise fills 2 maps of the H/16 x W/16 bottleneck.
    assert net.noise_dense.kernel.shape == (8, 2 * (height // 16) * (width // 16))


def test_channels_follow_ngf():
    net = UNet(output_channels=2, ngf=4, noise_channels=3)
    net(tf.random.uniform([1, 16, 16, 1]), tf.random.uniform([1, 5], -1, 1))
    # Second 3x3 kernel of every double-conv block: [3, 3, in, out].
    outs = [b.conv_2.kernel.shape[-1] for b in (net.down_0, net.down_1, net.down_2, net.down_3)]
    assert outs == [4, 8, 16, 32] and net.bottleneck.conv_2.kernel.shape[-1] == 32
    # Decoder inputs: upsampled features + skip (+ 3 noise maps after the bottleneck).
    assert net.up_3.conv_1.kernel.shape[2:] == (32 + 3 + 32, 16)
    assert [b.conv_1.kernel.shape[2:] for b in (net.up_2, net.up_1, net.up_0)] == [
        (16 + 16, 8), (8 + 8, 4), (4 + 4, 4)
    ]
    assert net.out.kernel.shape == (1, 1, 4, 2)


def test_different_noise_gives_different_outputs():
    net = UNet(output_channels=1, ngf=4)
    condition = tf.random.uniform([2, 16, 16, 1])
    a = net(condition, tf.random.uniform([2, 8], -1, 1)).numpy()
    b = net(condition, tf.random.uniform([2, 8], -1, 1)).numpy()
    assert np.abs(a - b).max() > 1e-4


def test_without_noise_channels_it_is_deterministic_and_needs_no_noise():
    net = UNet(output_channels=1, ngf=4, noise_channels=0)
    condition = tf.random.uniform([2, 16, 16, 1])
    a = net(condition).numpy()
    np.testing.assert_array_equal(a, net(condition).numpy())
    assert a.shape == (2, 16, 16, 1) and net.noise_dense is None


def test_missing_noise_is_refused_when_noise_channels_are_used():
    net = UNet(output_channels=1, ngf=4)
    with pytest.raises(ValueError, match="needs noise"):
        net(tf.random.uniform([2, 16, 16, 1]))


def test_sides_that_are_not_multiples_of_16_are_refused():
    net = UNet(output_channels=1, ngf=4, noise_channels=0)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(tf.random.uniform([1, 24, 16, 1]))


def test_checkpoint_holds_every_weight_and_batchnorm_statistics(tmp_path):
    condition = tf.random.uniform([2, 16, 16, 1])
    noise = tf.random.uniform([2, 8], -1, 1)
    net = UNet(output_channels=1, ngf=4)
    net(condition, noise, training=True)  # moves the BatchNorm moving statistics
    path = tf.train.Checkpoint(model=net).save(os.path.join(tmp_path, "ckpt"))
    names = [name for name, _ in tf.train.list_variables(path)]
    assert len(names) - 2 == len(net.weights)  # + object graph and save counter
    assert sum("moving_mean" in n for n in names) == sum("moving_variance" in n for n in names)
    assert sum("moving_mean" in n for n in names) == 18  # 9 double-conv blocks
    assert any("noise_dense" in n for n in names)
    restored = UNet(output_channels=1, ngf=4)
    restored(condition, noise)
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(
        net(condition, noise).numpy(), restored(condition, noise).numpy()
    )


def test_gradient_reaches_every_trainable_variable():
    net = UNet(output_channels=1, ngf=4)
    condition = tf.random.uniform([2, 16, 16, 1])
    noise = tf.random.uniform([2, 8], -1, 1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(net(condition, noise, training=True) - 0.3))
    grads = tape.gradient(loss, net.trainable_weights)
    assert len(grads) == 9 * 6 + 2 + 2  # blocks: 2 x (kernel, gamma, beta); 2 dense, 2 out
    for var, grad in zip(net.trainable_weights, grads):
        assert grad is not None and np.abs(grad.numpy()).max() > 0, var.path


def test_output_is_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        net = UNet(output_channels=1, ngf=4)
        out = net(tf.random.uniform([2, 16, 16, 1]), tf.random.uniform([2, 8], -1, 1))
        assert net.down_0.conv_1.compute_dtype == "float16" and out.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_noise_maps_join_the_last_decoder_stages():
    net = UNet(output_channels=2, ngf=4, noise_channels=0, noise_stages=3, noise_map_channels=5)
    net(tf.random.uniform([1, 16, 16, 1]), tf.random.uniform([1, 6], -1, 1))
    # up_3 (H/8) has none; up_2, up_1, up_0 take 5 extra maps beside features and skip.
    assert net.up_3.conv_1.kernel.shape[2:] == (32 + 32, 16)
    assert [b.conv_1.kernel.shape[2] for b in (net.up_2, net.up_1, net.up_0)] == [
        16 + 16 + 5, 8 + 8 + 5, 4 + 4 + 5]
    assert net.noise_dense is None


def test_noise_maps_depend_on_each_row_alone():
    from tf_factorgan.models.unet import noise_maps

    noise = tf.random.uniform([3, 7], -1, 1)
    maps = noise_maps(noise, [(2, 4), (8, 8)], 3)
    assert [m.shape for m in maps] == [(3, 2, 4, 3), (3, 8, 8, 3)]
    alone = noise_maps(noise[1:2], [(2, 4), (8, 8)], 3)
    for batched, single in zip(maps, alone):
        np.testing.assert_array_equal(batched[1:2].numpy(), single.numpy())
    values = maps[1].numpy()
    assert -1 <= values.min() < -0.8 and 0.8 < values.max() <= 1
    assert abs(values.mean()) < 0.1 and not np.allclose(values[0], values[2])


def test_a_generator_with_noise_maps_cannot_give_one_output():
    # Even with its bottleneck noise off, fresh noise vectors change the output.
    net = UNet(output_channels=1, ngf=4, noise_channels=0, noise_stages=1)
    condition = tf.random.uniform([2, 16, 16, 1])
    a = net(condition, tf.random.uniform([2, 8], -1, 1)).numpy()
    b = net(condition, tf.random.uniform([2, 8], -1, 1)).numpy()
    assert np.abs(a - b).max() > 1e-4
    with pytest.raises(ValueError, match="needs noise"):
        net(condition)


def test_softmax_outputs_are_class_probabilities():
    net = UNet(output_channels=5, ngf=4, noise_channels=0, output_activation="softmax")
    out = net(tf.random.uniform([2, 16, 16, 3])).numpy()
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="output_activation"):
        UNet(output_channels=5, output_activation="tanh")
    with pytest.raises(ValueError, match="noise_stages"):
        UNet(output_channels=5, noise_stages=5)
