"""Small convolutional MNIST classifier whose hidden layer feeds the FID of Paired MNIST.

The architecture follows the original FactorGAN evaluation classifier: two 5x5
convolutions, each followed by 2x2 average pooling and then a LeakyReLU, a 50-unit
hidden layer and 10 logits. LeakyReLU's slope is 0.01, PyTorch's `F.leaky_relu` default,
which the original classifier uses.
"""

from typing import Optional

import keras

NUM_CLASSES = 10
HIDDEN_UNITS = 50


def _glorot(seed: Optional[int], offset: int):
    """Keras' default kernel initializer, seeded per layer when `seed` is given.

    Each layer needs its own seed: an initializer with a fixed seed draws the same
    values every time it is called.
    """
    if seed is None:
        return "glorot_uniform"
    return keras.initializers.GlorotUniform(seed=seed + offset)


class MnistClassifier(keras.Model):
    """images [B, 28, 28, 1] float in [0, 1] -> logits [B, 10].

    28x28x1 -conv5-> 24x24x10 -pool-> 12x12x10 -conv5-> 8x8x20 -pool-> 4x4x20 = 320
    -dense-> 50 -dropout-> 10. `features` gives the 50 hidden activations.

    Args:
      negative_slope: slope of every LeakyReLU for negative inputs.
      dropout_rate: dropout on the hidden activations while training.
      seed: makes the initial weights and the dropout masks reproducible (None: random).
    """

    def __init__(
        self,
        negative_slope: float = 0.01,
        dropout_rate: float = 0.5,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conv_1 = keras.layers.Conv2D(10, 5, kernel_initializer=_glorot(seed, 0))
        self.conv_2 = keras.layers.Conv2D(20, 5, kernel_initializer=_glorot(seed, 1))
        self.pool = keras.layers.AveragePooling2D(2)
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(
            HIDDEN_UNITS, kernel_initializer=_glorot(seed, 2)
        )
        self.activation = keras.layers.LeakyReLU(negative_slope=negative_slope)
        self.dropout = keras.layers.Dropout(dropout_rate, seed=seed)
        self.logits = keras.layers.Dense(
            NUM_CLASSES, kernel_initializer=_glorot(seed, 3)
        )

    def features(self, x):
        """images [B, 28, 28, 1] in [0, 1] -> hidden activations [B, 50].

        Taken after the hidden LeakyReLU and before dropout, so they do not depend on
        training mode.
        """
        x = self.activation(self.pool(self.conv_1(x)))
        x = self.activation(self.pool(self.conv_2(x)))
        return self.activation(self.hidden(self.flatten(x)))

    def call(self, x, training=False):
        return self.logits(self.dropout(self.features(x), training=training))
