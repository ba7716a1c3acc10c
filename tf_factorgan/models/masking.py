"""The source-separation generator of the FactorGAN paper (appendix A.2): a U-Net
predicts a mask from the mixture spectrogram, and the mask splits the mixture.

With log1p magnitudes, accompaniment = log1p(expm1(mix) * m) and vocals =
log1p(expm1(mix) * (1 - m)): the two magnitudes add up to the mixture's by
construction, so no discriminator needs to see the mixture.
"""

import keras
import tensorflow as tf

from tf_factorgan.models.unet import UNet


class MaskingSeparator(keras.Model):
    """(mixture [B, F, T, 1] log1p magnitudes >= 0, noise [B, nz] in [-1, 1]) ->
    [B, F, T, 2] log1p magnitudes of (accompaniment, vocals).

    F and T must be multiples of 16 (256 x 128 in the paper's set-up).
    """

    def __init__(self, ngf: int = 32, noise_channels: int = 2, noise_stages: int = 0,
                 noise_map_channels: int = 32, **kwargs):
        super().__init__(**kwargs)
        # The U-Net's noise (`models.unet`); noise_channels=0, noise_stages=0 make a
        # deterministic separator (proxy MR's predictor).
        self.unet = UNet(1, ngf=ngf, noise_channels=noise_channels, noise_stages=noise_stages,
                         noise_map_channels=noise_map_channels)

    def mask(self, mixture, noise=None, training=False) -> tf.Tensor:
        """[B, F, T, 1] accompaniment mask in [0, 1] (vocals get 1 - mask)."""
        return self.unet(mixture, noise, training=training)

    def call(self, mixture, noise=None, training=False):
        mask = self.mask(mixture, noise, training=training)
        magnitude = tf.math.expm1(tf.cast(mixture, tf.float32))
        return tf.concat(
            [tf.math.log1p(magnitude * mask), tf.math.log1p(magnitude * (1.0 - mask))], axis=-1
        )
