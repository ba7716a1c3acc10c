"""Spectral normalisation (Miyato et al., 2018) shared by all discriminators."""

import keras


class SpectralNormalization(keras.layers.SpectralNormalization):
    """Keras' spectral normalisation without its all-zero-kernel guard.

    Keras wraps every training call's power iteration in `ops.cond(all(kernel == 0))`
    to avoid dividing by a zero spectral norm. A discriminator kernel is never all zero
    (Glorot initialisation, then Adam steps), and the graph-mode conditional costs about
    10% of a Paired MNIST FactorGAN step on a CPU. Variables (`vector_u`), power
    iteration and semantics are Keras': W / sigma is assigned to the kernel in every
    `training=True` call, nothing changes otherwise.
    """

    def call(self, inputs, training=False):
        if training:
            new_vector_u, new_kernel = self.normalized_weights()
            self.vector_u.assign(new_vector_u)
            self.kernel.assign(new_kernel)
        return self.layer(inputs)


def spectral(layer: keras.layers.Layer, power_iterations: int = 1) -> SpectralNormalization:
    """Wraps a layer with a `kernel` (Dense, Conv2D, ...) in SpectralNormalization.

    The power iteration must see the float32 kernel. Under "mixed_float16" a wrapper with
    the global policy reads the kernel as float16 and writes W / sigma back rounded to
    float16 precision in every training call, wiping out optimizer updates below float16
    resolution. So the wrapper itself is float32 and does not autocast (no casts of its
    inputs, no float16 scope); the wrapped layer keeps its own policy and autocasts its
    inputs and kernel for the forward pass as usual.
    """
    return SpectralNormalization(
        layer, power_iterations=power_iterations, dtype="float32", autocast=False
    )
