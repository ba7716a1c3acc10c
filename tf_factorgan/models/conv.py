"""DCGAN-style convolutional generator and discriminator of the image experiments."""

import keras

from tf_factorgan.models.spectral import current_spectral_norm, spectral


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class ConvGenerator(keras.Model):
    """noise [B, nz] in [-1, 1] -> images [B, output_size, output_size, output_channels]
    in [0, 1].

    The noise is read as a 1x1 image with nz channels. A 4x4 transposed convolution
    (valid padding) makes it 4x4 with 8 * ngf channels; every further 4x4 transposed
    convolution (stride 2, same padding) doubles the size and halves the channels until
    output_size, the last one having output_channels and a sigmoid. ReLU in between.
    output_size must be a power of two >= 8. The output is float32 under any dtype
    policy.
    """

    def __init__(self, output_size: int, output_channels: int, ngf: int = 64, **kwargs):
        super().__init__(**kwargs)
        if output_size < 8 or not _is_power_of_two(output_size):
            raise ValueError(f"output_size must be a power of two >= 8, got {output_size}")
        self.output_size = output_size
        self.output_channels = output_channels
        self.ngf = ngf
        self.project = keras.layers.Conv2DTranspose(
            8 * ngf, 4, strides=1, padding="valid", activation="relu"
        )
        # 4 -> 8 -> ... -> output_size: log2(output_size) - 2 doublings, all but the
        # last with ReLU. Channels halve per layer but never fall below output_channels,
        # so a small ngf cannot squeeze the image through a thinner layer than its own.
        names = []
        channels = 8 * ngf
        for i in range(output_size.bit_length() - 4):
            channels = max(channels // 2, output_channels)
            name = f"up_{i}"
            # Separate attributes, not a list: tf.train.Checkpoint does not see layers
            # held in a Python list of a Keras 3 model.
            layer = keras.layers.Conv2DTranspose(
                channels, 4, strides=2, padding="same", activation="relu"
            )
            setattr(self, name, layer)
            names.append(name)
        self._up_names = tuple(names)
        # float32 output: a sigmoid in float16 saturates early and the losses and image
        # metrics expect float32 either way.
        self.out = keras.layers.Conv2DTranspose(
            output_channels, 4, strides=2, padding="same", activation="sigmoid", dtype="float32"
        )

    def call(self, noise, training=False):
        x = keras.ops.expand_dims(keras.ops.expand_dims(noise, 1), 1)  # [B, 1, 1, nz]
        x = self.project(x)
        for name in self._up_names:
            x = getattr(self, name)(x)
        return self.out(x)


class ConvDiscriminator(keras.Model):
    """images [B, H, W, C] -> logits [B, 1] (float32 under any dtype policy).

    4x4 stride-2 'same' convolutions with filters, 2 * filters, ... filters and
    LeakyReLU(0.2), then a bias-free Dense(1) on the flattened features. The number of
    convolutions, max(1, floor(log2(min(H, W))) - 3), is fixed at build time from the
    input shape, so a 64x64 input ends at 8x8 and a non-square 256x128 spectrogram at
    16x8. H and W must be >= 8 and divisible by 2 ** layers. With spectral_norm every
    layer, the Dense included, is spectrally normalised in the form in effect at
    construction (`models.spectral`); the power iteration advances only in calls with
    training=True.
    """

    def __init__(self, filters: int = 32, spectral_norm: bool = True, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.filters = filters
        self.spectral_norm = spectral_norm
        # The convolutions are made at build time, perhaps outside the scope that set
        # the spectral-norm form: fix the form now.
        self._spectral_form = current_spectral_norm()
        self._conv_names = ()
        self.activation = keras.layers.LeakyReLU(negative_slope=0.2)
        self.flatten = keras.layers.Flatten()
        self.logit = self._wrap(keras.layers.Dense(1, use_bias=False, dtype="float32"))

    def _wrap(self, layer):
        return spectral(layer, form=self._spectral_form) if self.spectral_norm else layer

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None or min(height, width) < 8:
            raise ValueError(
                f"ConvDiscriminator needs images [B, H, W, C] with H, W >= 8, got {input_shape}"
            )
        num_layers = max(1, min(height, width).bit_length() - 1 - 3)
        if height % 2**num_layers or width % 2**num_layers:
            raise ValueError(
                f"ConvDiscriminator with {num_layers} stride-2 layers needs H and W "
                f"divisible by {2**num_layers}, got input shape {input_shape}"
            )
        # Layers created here are still tracked (and checkpointed) since they are set as
        # attributes; a list would hide them from tf.train.Checkpoint.
        names = []
        for i in range(num_layers):
            name = f"conv_{i}"
            conv = keras.layers.Conv2D(self.filters * 2**i, 4, strides=2, padding="same")
            setattr(self, name, self._wrap(conv))
            names.append(name)
        self._conv_names = tuple(names)

    def call(self, images, training=False):
        x = images
        for name in self._conv_names:
            x = self.activation(getattr(self, name)(x, training=training))
        return self.logit(self.flatten(x), training=training)
