import numpy as np
import keras
import pytest
import tensorflow as tf

from tf_factorgan.models.spectral import SpectralNormalization, spectral


def _sigma(kernel) -> float:
    """Largest singular value of a kernel seen as a [fan_in, units] matrix, as Keras does."""
    k = kernel.numpy()
    return np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]


@pytest.mark.parametrize(
    "make_layer, shape",
    [
        (lambda: keras.layers.Dense(16), [4, 30]),
        (lambda: keras.layers.Conv2D(8, 4, strides=2, padding="same"), [2, 16, 16, 3]),
    ],
)
def test_training_calls_normalise_the_kernel(make_layer, shape):
    keras.utils.set_random_seed(0)
    layer = spectral(make_layer())
    assert isinstance(layer, SpectralNormalization)
    x = tf.random.normal(shape)
    layer(x)
    layer.layer.kernel.assign(layer.layer.kernel * 5.0)  # far from 1 before normalising
    for _ in range(30):  # one power iteration per call; the gap between the top two
        layer(x, training=True)  # singular values decides how fast it converges
    assert abs(_sigma(layer.layer.kernel) - 1.0) < 0.05
    assert not layer.vector_u.trainable
    assert [id(w) for w in layer.trainable_weights] == [id(w) for w in layer.layer.trainable_weights]


def test_inference_calls_leave_the_kernel_alone():
    layer = spectral(keras.layers.Conv2D(8, 3))
    x = tf.random.normal([2, 8, 8, 3])
    layer(x)
    before = layer.layer.kernel.numpy()
    u_before = layer.vector_u.numpy()
    out = layer(x, training=False)
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), before)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u_before)
    np.testing.assert_allclose(out.numpy(), layer.layer(x).numpy(), rtol=1e-6)


def test_power_iteration_stays_float32_under_mixed_precision():
    # Keras' own wrapper would read the kernel as float16 here and store W / sigma
    # rounded to float16, losing optimizer updates below float16 resolution.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = spectral(keras.layers.Conv2D(8, 4, strides=2, padding="same"))
        out = layer(tf.random.uniform([2, 16, 16, 3]), training=True)
        assert layer.layer.compute_dtype == "float16" and out.dtype == tf.float16
        kernel = layer.layer.kernel.numpy()
        assert kernel.dtype == np.float32
        assert not np.array_equal(kernel, kernel.astype(np.float16).astype(np.float32))
    finally:
        keras.mixed_precision.set_global_policy("float32")
