import numpy as np
import tensorflow as tf

from tf_factorgan.models.masking import MaskingSeparator


def test_sources_add_up_to_the_mixture_magnitude():
    separator = MaskingSeparator(ngf=2)
    mixture = tf.constant(np.random.default_rng(0).uniform(0, 3, [2, 32, 16, 1]), tf.float32)
    noise = tf.random.uniform([2, 5], -1, 1)
    sources = separator(mixture, noise).numpy()
    assert sources.shape == (2, 32, 16, 2) and sources.min() >= 0
    np.testing.assert_allclose(np.expm1(sources).sum(-1), np.expm1(mixture.numpy()[..., 0]), rtol=1e-4)
    mask = separator.mask(mixture, noise).numpy()
    np.testing.assert_allclose(sources[..., 0], np.log1p(np.expm1(mixture.numpy()) * mask)[..., 0], rtol=1e-5)
