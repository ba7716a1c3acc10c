"""Spectral normalisation (Miyato et al., 2018) shared by all discriminators.

Two forms, chosen by `--spectral_norm`:

  reparametrize: the kernel W stays the trained parameter and every forward
    pass uses W / sigma(W), the gradient flowing through sigma (u and v held constant),
    as Miyato et al. and the original FactorGAN code do. One power iteration per
    training call refines u, a checkpointed non-trainable variable.
  project (default): Keras' `SpectralNormalization`: every training call assigns W / sigma back
    to the kernel (a projection after each optimizer step); the gradient does not see
    sigma.

On Paired MNIST, together with the initialisation, the choice moves FID by about 25 %
(docs/reproducing.md, "Training as the original"). Networks choose the form in effect where they are built: `spectral(layer)`
reads it from `spectral_norm_scope(...)`, which the experiments open around model
construction, as Keras' dtype policy is read from its global setting.
"""

import contextlib
from typing import Iterator

import keras
import tensorflow as tf
from keras import ops

from tf_factorgan.config import SettingError

REPARAMETRIZE = "reparametrize"
PROJECT = "project"
SPECTRAL_NORMS = (REPARAMETRIZE, PROJECT)

_current = [PROJECT]  # the library's default (experiments.common.TrainingSettings)


@contextlib.contextmanager
def spectral_norm_scope(form: str) -> Iterator[None]:
    """`spectral(...)` calls inside build `form` (one of SPECTRAL_NORMS)."""
    if form not in SPECTRAL_NORMS:
        raise SettingError(f"{{spectral_norm}} must be one of {', '.join(SPECTRAL_NORMS)}, got {form!r}")
    _current.append(form)
    try:
        yield
    finally:
        _current.pop()


def current_spectral_norm() -> str:
    """The form `spectral(...)` builds here (PROJECT outside any scope)."""
    return _current[-1]


def _unit(x):
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x)), 1e-24))


class ReparametrizedSpectralNorm(keras.layers.Wrapper):
    """Dense or Conv2D whose forward pass uses W / sigma(W).

    W is the layer's own float32 kernel, seen as a [fan_in, units] matrix; u [1, units]
    estimates its top left-singular direction. A training call runs `power_iterations`
    steps (v <- unit(u W^T), u <- unit(v W)) on W without gradient, stores u, and uses
    sigma = v W u^T, differentiable in W. An inference call uses the stored u and
    changes nothing. The wrapper computes in float32; the matmul or convolution runs in
    the wrapped layer's compute dtype (bfloat16 under mixed precision).
    """

    def __init__(self, layer, power_iterations: int = 1, **kwargs):
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            raise TypeError(
                f"reparametrized spectral norm wraps Dense or Conv2D, got {type(layer).__name__}"
            )
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        super().__init__(layer, **kwargs)
        self.power_iterations = power_iterations

    def build(self, input_shape):
        super().build(input_shape)
        self.vector_u = self.add_weight(
            shape=(1, self.layer.kernel.shape[-1]),
            initializer=keras.initializers.RandomNormal(),
            trainable=False,
            # Every replica computes the same u from the same mirrored W and u.
            aggregation="mean",
            name="vector_u",
            dtype="float32",
        )

    def sigma(self, training: bool = False):
        """Scalar estimate of W's largest singular value (updates u when training)."""
        kernel = self.layer.kernel
        w = tf.reshape(kernel, [-1, kernel.shape[-1]])
        w_const = tf.stop_gradient(w)
        u = _unit(self.vector_u)
        # matmul's transpose flag, not a transposed copy of the kernel in every call.
        v = _unit(tf.matmul(u, w_const, transpose_b=True))
        if training:
            for i in range(self.power_iterations):
                if i:
                    v = _unit(tf.matmul(u, w_const, transpose_b=True))
                u = _unit(tf.matmul(v, w_const))
            self.vector_u.assign(u)
        return tf.reduce_sum(tf.matmul(v, w) * u)

    def call(self, inputs, training=False):
        layer = self.layer
        dtype = layer.compute_dtype
        kernel = ops.cast(layer.kernel, dtype)
        inputs = ops.cast(inputs, dtype)
        if isinstance(layer, keras.layers.Dense):
            outputs = ops.matmul(inputs, kernel)
            bias_shape = (layer.units,)
        else:
            outputs = layer.convolution_op(inputs, kernel)
            bias_shape = (
                (1, 1, 1, layer.filters) if layer.data_format == "channels_last"
                else (1, layer.filters, 1, 1)
            )
        # x (W / sigma) = (x W) / sigma: scaling the output is the same product and
        # saves the kernel-sized division (and its gradient) in every call.
        outputs = outputs * ops.cast(1.0 / self.sigma(training), dtype)
        if layer.use_bias:
            outputs = outputs + ops.reshape(ops.cast(layer.bias, dtype), bias_shape)
        if layer.activation is not None:
            outputs = layer.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


class ProjectedSpectralNorm(keras.layers.SpectralNormalization):
    """Keras' spectral normalisation without its all-zero-kernel guard.

    Keras wraps every training call's power iteration in `ops.cond(all(kernel == 0))`
    to avoid dividing by a zero spectral norm. A discriminator kernel is never all zero
    (random initialisation, then Adam steps), and the graph-mode conditional costs about
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


SPECTRAL_WRAPPERS = (ReparametrizedSpectralNorm, ProjectedSpectralNorm)


def spectral(
    layer: keras.layers.Layer, power_iterations: int = 1, form: str = None
) -> keras.layers.Wrapper:
    """Wraps a Dense or Conv2D layer in spectral normalisation of `form` (default: the
    one in effect, `current_spectral_norm()`).

    The power iteration must see the float32 kernel. Under "mixed_float16" a wrapper with
    the global policy would read the kernel as float16 (and Keras' projection would write
    W / sigma back rounded to float16 in every training call, wiping out optimizer
    updates below float16 resolution). So the wrapper itself is float32 and does not
    autocast; the wrapped layer keeps its own policy for the forward pass.
    """
    form = form or current_spectral_norm()
    if form not in SPECTRAL_NORMS:
        raise ValueError(f"spectral norm must be one of {SPECTRAL_NORMS}, got {form!r}")
    wrapper = ReparametrizedSpectralNorm if form == REPARAMETRIZE else ProjectedSpectralNorm
    return wrapper(layer, power_iterations=power_iterations, dtype="float32", autocast=False)
