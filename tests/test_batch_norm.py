"""The fused batch normalisation against Keras' own: outputs, gradients and moving
statistics, in float32 and under bfloat16 compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.models.batch_norm import FusedBatchNormalization


def _pair(shape, rng, **kwargs):
    """Keras' BatchNormalization and ours, built for `shape`, with the same random
    weights and moving statistics."""
    reference, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    reference.build(shape)
    fused.build(shape)
    for ours, theirs in zip(fused.weights, reference.weights):
        value = rng.normal(size=theirs.shape).astype(np.float32)
        value = np.abs(value) + 0.1 if "variance" in theirs.path else value
        ours.assign(value)
        theirs.assign(value)
    return reference, fused


def _call(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.sin(tf.cast(y, tf.float32)))
    return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_equals_keras_in_float32(training):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (5, 8, 6, 7)).astype(np.float32))
    reference, fused = _pair(x.shape, rng)
    for theirs, ours in zip(_call(reference, x, training), _call(fused, x, training)):
        # Sums of many terms (the gamma gradient) cancel: tolerance relative to the largest.
        scale = float(np.abs(theirs.numpy()).max())
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5 * scale)
    # Training updates the moving statistics by Keras' rule, with the biased variance.
    for theirs, ours in zip(reference.weights, fused.weights):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


def test_fused_batch_norm_moves_the_statistics_by_keras_rule():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, (4, 3, 5, 2)).astype(np.float32)
    layer = FusedBatchNormalization(momentum=0.9)
    layer.build(x.shape)
    layer(tf.constant(x), training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               0.9 + 0.1 * x.var(axis=(0, 1, 2)), rtol=1e-5)


def test_under_bfloat16_the_maps_are_bfloat16_the_statistics_float32_and_close_to_keras():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(0.5, 2.0, (6, 8, 8, 4)).astype(np.float32))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        reference, fused = _pair(x.shape, rng)
        theirs, ours = _call(reference, x, True), _call(fused, x, True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert ours[0].dtype == tf.bfloat16 and fused.moving_mean.dtype == "float32"
    assert fused.gamma.dtype == "float32"
    for a, b in zip(theirs, ours):  # bfloat16 keeps 8 significant bits: ~1 % apart
        np.testing.assert_allclose(tf.cast(b, tf.float32).numpy(), tf.cast(a, tf.float32).numpy(),
                                   rtol=0.05, atol=0.05 * float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32)))))


def test_other_set_ups_take_keras_path():
    layer = FusedBatchNormalization(axis=1)
    x = tf.random.normal([3, 4, 5, 6], seed=0)
    layer.build(x.shape)
    assert not layer._fused(x, None)
    assert layer(x, training=True).shape == x.shape
