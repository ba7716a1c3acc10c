"""U-Net generator of the image-to-image experiments (FactorGAN, pix2pix, MR-GAN and
the CycleGAN baseline) and of the separation masks."""

import dataclasses

import keras
import tensorflow as tf

from tf_factorgan.config import MODEL, check, setting
from tf_factorgan.models.batch_norm import FusedBatchNormalization

# Decoder stages, from the bottleneck (H/8) to the output (H): up_3, up_2, up_1, up_0.
NUM_DECODER_STAGES = 4
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "linear")


@dataclasses.dataclass(frozen=True)
class UNetSettings:
    """The U-Net settings of the experiments whose generator is one (image-to-image,
    separation); they may change the defaults."""

    ngf: int = setting(32, "U-Net width (filters of its first stage).", MODEL, low=1)
    noise_stages: int = setting(
        3, "U-Net: last decoder stages that also get per-pixel noise maps (MR-GAN: 3).", MODEL,
        low=0, high=NUM_DECODER_STAGES)
    noise_map_channels: int = setting(32, "U-Net: channels of each per-pixel noise map "
                                      "(MR-GAN: 32).", MODEL, low=1)

    def __post_init__(self):
        check(self)


def noise_maps(noise, sizes, channels: int) -> list:
    """Per-pixel noise maps that are a function of each row's noise vector alone.

    noise: [B, nz] float; sizes: (h, w) of each map. Returns [B, h, w, channels]
    float32 Uniform(-1, 1) maps, one per size. Row b's maps come from a stateless
    generator seeded with the bits of noise[b, 0] and noise[b, -1], so a row gets the
    same maps alone or in any batch (served noise is seeded per item) and one seed
    gives one output, as the vector noise did.
    """
    bits = tf.bitcast(tf.cast(noise, tf.float32), tf.int32)
    seeds = tf.stack([bits[:, 0], bits[:, -1]], axis=1)
    lengths = [h * w * channels for h, w in sizes]
    # One draw of every map's values per row, the rows in parallel in a graph (eager
    # execution runs them in turn, and TensorFlow warns when asked otherwise).
    flat = tf.map_fn(
        lambda seed: tf.random.stateless_uniform([sum(lengths)], seed=seed, minval=-1.0, maxval=1.0),
        seeds, fn_output_signature=tf.float32,
        parallel_iterations=None if tf.executing_eagerly() else 32)
    return [tf.reshape(part, [-1, h, w, channels])
            for part, (h, w) in zip(tf.split(flat, lengths, axis=1), sizes)]


class _DoubleConv(keras.layers.Layer):
    """[B, H, W, C] -> [B, H, W, channels]: (3x3 conv, BatchNorm, ReLU) twice.

    The convolutions have no bias: the BatchNorm right after them removes any constant
    offset, so a bias would only be a parameter without gradient.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.conv_1 = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)
        self.norm_1 = FusedBatchNormalization()
        self.conv_2 = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)
        self.norm_2 = FusedBatchNormalization()

    def build(self, input_shape):
        # Explicit, so that Keras does not trace call() symbolically to build the block.
        self.conv_1.build(input_shape)
        shape = self.conv_1.compute_output_shape(input_shape)
        self.norm_1.build(shape)
        self.conv_2.build(shape)
        self.norm_2.build(self.conv_2.compute_output_shape(shape))

    def call(self, x, training=False):
        x = keras.ops.relu(self.norm_1(self.conv_1(x), training=training))
        return keras.ops.relu(self.norm_2(self.conv_2(x), training=training))


class UNet(keras.Model):
    """condition [B, H, W, Cin] in [0, 1], noise [B, nz] in [-1, 1]
    -> images [B, H, W, output_channels] in [0, 1] (float32 under any dtype policy).

    Encoder: double-conv blocks with ngf, 2ngf, 4ngf, 8ngf and 8ngf channels, 2x2 max
    pooling between them, so the bottleneck is H/16 x W/16 (H and W must be multiples
    of 16). The noise goes through a Dense layer and is reshaped into noise_channels
    extra feature maps of the bottleneck. Decoder: four times bilinear 2x upsampling,
    concatenation with the encoder features of the same size, double-conv block with
    4ngf, 2ngf, ngf and ngf channels; then a 1x1 convolution with output_activation:
    "sigmoid" (images in [0, 1]), "softmax" (class probabilities over the channels) or
    "linear" (`predictor.MomentPredictor` applies its own).

    Noise a generator cannot ignore (MR-GAN, Lee et al. 2019, section 4: maps of 32
    channels concatenated at the last three decoder stages): noise_stages > 0 adds
    noise_map_channels per-pixel noise maps (`noise_maps`) to the inputs of the last
    noise_stages decoder blocks (up to 4: up_0 at full size, up_1 at H/2, ...). A
    bottleneck projection the generator can learn to zero out is easily ignored;
    per-pixel maps beside the skip features are not.

    noise_channels=0 and noise_stages=0 give a deterministic U-Net (the CycleGAN
    baseline, the moment predictor); it needs no noise and ignores any it is given.
    Otherwise noise is required.
    """

    def __init__(self, output_channels: int, ngf: int = 32, noise_channels: int = 2,
                 noise_stages: int = 0, noise_map_channels: int = 32,
                 output_activation: str = "sigmoid", **kwargs):
        super().__init__(**kwargs)
        if noise_channels < 0:
            raise ValueError(f"noise_channels must be >= 0, got {noise_channels}")
        if not 0 <= noise_stages <= NUM_DECODER_STAGES:
            raise ValueError(f"noise_stages must lie in [0, {NUM_DECODER_STAGES}], got {noise_stages}")
        if noise_stages and noise_map_channels < 1:
            raise ValueError(f"noise_map_channels must be >= 1, got {noise_map_channels}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}")
        self.output_channels = output_channels
        self.ngf = ngf
        self.noise_channels = noise_channels
        self.noise_stages = noise_stages
        self.noise_map_channels = noise_map_channels
        self.output_activation = output_activation
        # Separate attributes, not lists: tf.train.Checkpoint does not see layers held
        # in a Python list of a Keras 3 model.
        self.down_0 = _DoubleConv(ngf)
        self.down_1 = _DoubleConv(2 * ngf)
        self.down_2 = _DoubleConv(4 * ngf)
        self.down_3 = _DoubleConv(8 * ngf)
        self.bottleneck = _DoubleConv(8 * ngf)
        self.pool = keras.layers.MaxPooling2D(2)
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear")
        self.up_3 = _DoubleConv(4 * ngf)
        self.up_2 = _DoubleConv(2 * ngf)
        self.up_1 = _DoubleConv(ngf)
        self.up_0 = _DoubleConv(ngf)
        # float32 output: a sigmoid in float16 saturates early and the losses and image
        # metrics expect float32 either way.
        self.out = keras.layers.Conv2D(
            output_channels, 1, activation=output_activation, dtype="float32"
        )
        self.noise_dense = None

    def build(self, condition_shape):
        height, width = condition_shape[1], condition_shape[2]
        if height is None or width is None or height % 16 or width % 16:
            raise ValueError(
                f"UNet needs a condition [B, H, W, C] with H and W multiples of 16, "
                f"got {condition_shape}"
            )
        self._bottleneck_size = (height // 16, width // 16)
        if self.noise_channels:
            # Its size depends on the bottleneck's, hence built here rather than in
            # __init__; still an attribute, so it is tracked and checkpointed.
            self.noise_dense = keras.layers.Dense(
                self.noise_channels * (height // 16) * (width // 16)
            )

    @property
    def uses_noise(self) -> bool:
        return bool(self.noise_channels or self.noise_stages)

    def call(self, condition, noise=None, training=False):
        if self.uses_noise and noise is None:
            raise ValueError(
                f"UNet(noise_channels={self.noise_channels}, noise_stages={self.noise_stages}) "
                "needs noise [B, nz]; pass noise_channels=0, noise_stages=0 for a "
                "deterministic U-Net"
            )
        skip_0 = self.down_0(condition, training=training)
        skip_1 = self.down_1(self.pool(skip_0), training=training)
        skip_2 = self.down_2(self.pool(skip_1), training=training)
        skip_3 = self.down_3(self.pool(skip_2), training=training)
        x = self.bottleneck(self.pool(skip_3), training=training)
        if self.noise_channels:
            bottleneck_noise = keras.ops.reshape(
                self.noise_dense(noise), (-1, *self._bottleneck_size, self.noise_channels)
            )
            x = keras.ops.concatenate([x, keras.ops.cast(bottleneck_noise, x.dtype)], axis=-1)
        ups = (self.up_3, self.up_2, self.up_1, self.up_0)
        skips = (skip_3, skip_2, skip_1, skip_0)
        first_noisy = NUM_DECODER_STAGES - self.noise_stages
        maps = noise_maps(noise, [s.shape[1:3] for s in skips[first_noisy:]],
                          self.noise_map_channels) if self.noise_stages else []
        maps = [None] * first_noisy + maps
        for up, skip, stage_noise in zip(ups, skips, maps):
            inputs = [self.upsample(x), skip]
            if stage_noise is not None:
                inputs.append(keras.ops.cast(stage_noise, skip.dtype))
            x = up(keras.ops.concatenate(inputs, axis=-1), training=training)
        return self.out(x)
