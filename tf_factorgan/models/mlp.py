"""Fully connected generator and discriminator (Paired MNIST, vector data in parts)."""

import keras

from tf_factorgan.models.spectral import spectral


# What MLPGenerator's last layer may apply: "sigmoid" for samples in [0, 1] (images),
# "linear" for unbounded ones (standardised vector data).
OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


class MLPGenerator(keras.Model):
    """noise [B, nz] in [-1, 1] -> samples [B, output_dim] in [0, 1] (sigmoid output),
    or unbounded with output_activation="linear"; float32 under any dtype policy.

    nz -> hidden -> hidden -> output_dim, ReLU between layers
    (the original code's 50 -> 128 -> 128 -> 1568 for two stacked 28x28 digits).
    """

    def __init__(self, output_dim: int, hidden_units: int = 128,
                 output_activation: str = "sigmoid", **kwargs):
        super().__init__(**kwargs)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                             f"got {output_activation!r}")
        self.output_dim = output_dim
        self.hidden_1 = keras.layers.Dense(hidden_units, activation="relu")
        self.hidden_2 = keras.layers.Dense(hidden_units, activation="relu")
        # float32 output under any dtype policy: the losses and metrics expect it, and
        # a bfloat16 sigmoid would round the samples to 2-3 significant digits.
        self.out = keras.layers.Dense(output_dim, activation=output_activation, dtype="float32")

    def call(self, noise, training=False):
        return self.out(self.hidden_2(self.hidden_1(noise)))


class MLPDiscriminator(keras.Model):
    """samples [B, input_dim] -> logits [B, 1] (float32 under any dtype policy).

    input_dim -> hidden -> hidden -> 1 with LeakyReLU(0.01); every dense layer, the
    last included, is spectrally normalised (`models.spectral`, the form in effect at
    construction). The power iteration advances only in calls with training=True,
    which is how the training step always calls it.
    """

    def __init__(self, hidden_units: int = 128, **kwargs):
        super().__init__(**kwargs)
        # Separate attributes, not a list: tf.train.Checkpoint does not see layers
        # held in a Python list of a Keras 3 model, and would drop their weights.
        self.hidden_1 = _spectral_dense(hidden_units)
        self.hidden_2 = _spectral_dense(hidden_units)
        self.logit = _spectral_dense(1, dtype="float32")
        self.activation = keras.layers.LeakyReLU(negative_slope=0.01)

    def call(self, x, training=False):
        x = self.activation(self.hidden_1(x, training=training))
        x = self.activation(self.hidden_2(x, training=training))
        return self.logit(x, training=training)


def _spectral_dense(units: int, **kwargs) -> keras.layers.Layer:
    return spectral(keras.layers.Dense(units, **kwargs))
