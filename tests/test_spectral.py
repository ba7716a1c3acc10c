import numpy as np
import keras
import pytest
import tensorflow as tf

from tf_factorgan.models import spectral as spectral_module
from tf_factorgan.models.spectral import (
    PROJECT,
    REPARAMETRIZE,
    ProjectedSpectralNorm,
    ReparametrizedSpectralNorm,
    spectral,
    spectral_norm_scope,
)


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
def test_projection_training_calls_normalise_the_kernel(make_layer, shape):
    keras.utils.set_random_seed(0)
    with spectral_norm_scope(PROJECT):
        layer = spectral(make_layer())
    assert isinstance(layer, ProjectedSpectralNorm)
    x = tf.random.normal(shape)
    layer(x)
    layer.layer.kernel.assign(layer.layer.kernel * 5.0)  # far from 1 before normalising
    for _ in range(30):  # one power iteration per call; the gap between the top two
        layer(x, training=True)  # singular values decides how fast it converges
    assert abs(_sigma(layer.layer.kernel) - 1.0) < 0.05
    assert not layer.vector_u.trainable
    assert [id(w) for w in layer.trainable_weights] == [id(w) for w in layer.layer.trainable_weights]


def test_projection_inference_calls_leave_the_kernel_alone():
    layer = spectral(keras.layers.Conv2D(8, 3), form=PROJECT)
    x = tf.random.normal([2, 8, 8, 3])
    layer(x)
    before = layer.layer.kernel.numpy()
    u_before = layer.vector_u.numpy()
    out = layer(x, training=False)
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), before)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u_before)
    np.testing.assert_allclose(out.numpy(), layer.layer(x).numpy(), rtol=1e-6)


def test_projection_power_iteration_stays_float32_under_mixed_precision():
    # Keras' own wrapper would read the kernel as float16 here and store W / sigma
    # rounded to float16, losing optimizer updates below float16 resolution.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = spectral(keras.layers.Conv2D(8, 4, strides=2, padding="same"), form=PROJECT)
        out = layer(tf.random.uniform([2, 16, 16, 3]), training=True)
        assert layer.layer.compute_dtype == "float16" and out.dtype == tf.float16
        kernel = layer.layer.kernel.numpy()
        assert kernel.dtype == np.float32
        assert not np.array_equal(kernel, kernel.astype(np.float16).astype(np.float32))
    finally:
        keras.mixed_precision.set_global_policy("float32")


# -- the re-parametrised form (the default) ---------------------------------------------


@pytest.mark.parametrize(
    "make_layer, shape",
    [
        (lambda: keras.layers.Dense(16, activation="relu"), [4, 30]),
        (lambda: keras.layers.Conv2D(8, 4, strides=2, padding="same"), [2, 16, 16, 3]),
    ],
)
def test_reparametrized_forward_uses_w_over_sigma_and_keeps_the_kernel(make_layer, shape):
    keras.utils.set_random_seed(0)
    layer = spectral(make_layer(), form=REPARAMETRIZE)
    assert isinstance(layer, ReparametrizedSpectralNorm)
    x = tf.random.normal(shape)
    layer(x)
    layer.layer.kernel.assign(layer.layer.kernel * 5.0)
    layer.layer.bias.assign(tf.random.normal(layer.layer.bias.shape))
    raw = layer.layer.kernel.numpy()
    for _ in range(100):  # u converges to the top singular direction
        out = layer(x, training=True)
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), raw)  # W stays the parameter
    # The output is the plain layer's with W / sigma(W), sigma the true top singular value.
    layer.layer.kernel.assign(raw / _sigma(layer.layer.kernel))
    np.testing.assert_allclose(out.numpy(), layer.layer(x).numpy(), rtol=2e-3, atol=2e-3)
    assert not layer.vector_u.trainable
    assert [id(w) for w in layer.trainable_weights] == [id(w) for w in layer.layer.trainable_weights]


def test_reparametrized_gradient_flows_through_sigma():
    keras.utils.set_random_seed(1)
    layer = spectral(keras.layers.Dense(6, use_bias=False), form=REPARAMETRIZE)
    x = tf.random.normal([5, 4])
    layer(x)
    for _ in range(50):
        layer(x, training=True)
    u = layer.vector_u.numpy()
    kernel = layer.layer.kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=False) ** 2)
    grad = tape.gradient(loss, kernel).numpy()
    # The same loss written out: sigma = v W u^T with u, v constants, v = unit(u W^T).
    with tf.GradientTape() as tape:
        v = tf.stop_gradient(tf.math.l2_normalize(u @ tf.transpose(kernel)))
        sigma = tf.reshape(v @ kernel @ tf.transpose(u), [])
        expected_loss = tf.reduce_sum((x @ (kernel / sigma)) ** 2)
    expected = tape.gradient(expected_loss, kernel).numpy()
    np.testing.assert_allclose(loss.numpy(), expected_loss.numpy(), rtol=1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    # The projection's gradient (sigma held constant) differs: the sigma term matters.
    with tf.GradientTape() as tape:
        no_sigma_loss = tf.reduce_sum((x @ (kernel / tf.stop_gradient(sigma))) ** 2)
    assert np.abs(tape.gradient(no_sigma_loss, kernel).numpy() - grad).max() > 1e-3


def test_reparametrized_inference_calls_change_nothing():
    layer = spectral(keras.layers.Conv2D(8, 3), form=REPARAMETRIZE)
    x = tf.random.normal([2, 8, 8, 3])
    layer(x, training=True)
    u, kernel = layer.vector_u.numpy(), layer.layer.kernel.numpy()
    first = layer(x, training=False).numpy()
    np.testing.assert_array_equal(layer(x, training=False).numpy(), first)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u)
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), kernel)


def test_reparametrized_u_is_checkpointed(tmp_path):
    x = tf.random.normal([3, 7])
    layer = spectral(keras.layers.Dense(5), form=REPARAMETRIZE)
    for _ in range(3):
        layer(x, training=True)
    path = tf.train.Checkpoint(layer=layer).save(str(tmp_path / "ckpt"))
    names = [name for name, _ in tf.train.list_variables(path)]
    assert any("vector_u" in name for name in names)
    restored = spectral(keras.layers.Dense(5), form=REPARAMETRIZE)
    restored(x)
    tf.train.Checkpoint(layer=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored.vector_u.numpy(), layer.vector_u.numpy())
    np.testing.assert_array_equal(restored(x).numpy(), layer(x).numpy())


def test_reparametrized_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = spectral(keras.layers.Conv2D(8, 4, strides=2, padding="same"), form=REPARAMETRIZE)
        out = layer(tf.random.uniform([2, 16, 16, 3]), training=True)
        assert out.dtype == tf.bfloat16
        assert layer.vector_u.dtype == "float32" and layer.layer.kernel.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_scope_chooses_the_form_and_rejects_unknown_ones():
    assert isinstance(spectral(keras.layers.Dense(2)), ProjectedSpectralNorm)  # the default
    with spectral_norm_scope(REPARAMETRIZE):
        assert isinstance(spectral(keras.layers.Dense(2)), ReparametrizedSpectralNorm)
        with spectral_norm_scope(PROJECT):
            assert isinstance(spectral(keras.layers.Dense(2)), ProjectedSpectralNorm)
        assert spectral_module.current_spectral_norm() == REPARAMETRIZE
    assert spectral_module.current_spectral_norm() == PROJECT
    with pytest.raises(ValueError, match="spectral_norm"):
        with spectral_norm_scope("power"):
            pass
    with pytest.raises(TypeError, match="Dense or Conv2D"):
        spectral(keras.layers.Conv1D(2, 3), form=spectral_module.REPARAMETRIZE)
