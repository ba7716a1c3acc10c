"""Batch normalisation of NHWC feature maps by TensorFlow's fused kernel.

Keras 3's BatchNormalization computes its moments and the normalisation as separate
element-wise ops in float32, casting bfloat16 inputs up and back: in a bfloat16 U-Net
update on the CPU those ops took 20 % of the op time (tools/profile_update.py). The
fused kernel (oneDNN on CPUs, cuDNN on GPUs) reads the compute dtype directly (bfloat16
or float32 maps, float32 statistics) and does moments, normalisation and their
gradients in one pass each.
"""

import keras
import tensorflow as tf


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization (same variables, same results up to rounding)
    over the last axis of [B, H, W, C] inputs, computed by the fused kernel.

    Training: y = (x - mean) / sqrt(var + epsilon) * gamma + beta with the batch's mean
    and biased variance, which also update the moving statistics:
    moving = momentum * moving + (1 - momentum) * batch (Keras' rule). Inference: the
    moving statistics. Outputs have the layer's compute dtype. Other set-ups (masks,
    renorm, synchronized, other axes or ranks) take Keras' own path.
    """

    def _fused(self, inputs, mask) -> bool:
        return (mask is None and not self.renorm and not self.synchronized
                and len(inputs.shape) == 4 and self.axis in (3, -1)
                and self.epsilon > 1.001e-5)  # the kernel's smallest epsilon

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, self.compute_dtype)
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], tf.float32)
        beta = self.beta if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            # The kernel returns the unbiased (n / (n - 1)) variance for the moving
            # statistics; Keras keeps the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, data_format="NHWC", is_training=False)
        return y
