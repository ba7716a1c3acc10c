"""LS metric on tiny 8x8x2 images: identical vs clearly different distributions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.eval import ls_metric

SHAPE = (8, 8, 2)


def _small_discriminator() -> keras.Model:
    # Global pooling keeps the capacity too small to memorise 160 noise images, so on
    # identical distributions it settles near the constant 0.5 instead of overfitting.
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1),
        ]
    )


def _uniform(rng: np.random.Generator, count: int, low: float, high: float):
    return rng.uniform(low, high, (count, *SHAPE)).astype(np.float32)


def test_ls_loss_scale():
    half = tf.fill([4], 0.5)
    assert float(ls_metric.ls_loss(half, half)) == 0.25
    assert float(ls_metric.ls_loss(tf.ones([3]), tf.zeros([5]))) == 0.0
    assert float(ls_metric.ls_loss(tf.zeros([3]), tf.zeros([5]))) == 0.5
    # 0.5 * (mean(0.25, 0.01) + mean(0.04)) = 0.5 * (0.13 + 0.04)
    assert float(
        ls_metric.ls_loss(tf.constant([0.5, 0.9]), tf.constant([0.2]))
    ) == pytest.approx(0.085)


def test_identical_distributions_score_near_the_constant_discriminator():
    samples = _uniform(np.random.default_rng(0), 400, 0.0, 1.0)
    real, generated = samples[:200], samples[200:]
    result = ls_metric.ls_score(
        real, generated, _small_discriminator, runs=2, epochs=20, lr=1e-2
    )
    # The best possible held-out loss for identical distributions is 0.25 (D = 0.5).
    assert 0.23 < result["ls_mean"] < 0.28
    assert len(result["ls_runs"]) == 2
    assert result["ls_std"] >= 0.0
    assert result["ls_std"] == pytest.approx(np.std(result["ls_runs"]))
    assert result["ls_mean"] == pytest.approx(np.mean(result["ls_runs"]))
    assert result["train_fraction"] == 0.8
    assert (result["runs"], result["epochs"], result["batch_size"]) == (2, 20, 32)
    assert (result["lr"], result["seed"]) == (1e-2, 0)
    # Run r uses seed + r: the second run of seed 0 repeats as the only run of seed 1.
    assert result["ls_runs"][0] != result["ls_runs"][1]
    again = ls_metric.ls_score(
        real, generated, _small_discriminator, runs=1, epochs=20, lr=1e-2, seed=1
    )
    # approx: GPU kernels may reorder float sums.
    assert again["ls_runs"] == pytest.approx(result["ls_runs"][1:], rel=1e-4)


def test_different_distributions_score_much_lower():
    rng = np.random.default_rng(1)
    dark = _uniform(rng, 200, 0.0, 0.5)
    bright = _uniform(rng, 150, 0.5, 1.0)  # sizes may differ
    result = ls_metric.ls_score(
        dark, bright, _small_discriminator, runs=2, epochs=20, lr=1e-2
    )
    assert result["ls_mean"] < 0.05
    assert all(0.0 <= loss < 0.05 for loss in result["ls_runs"])


def test_invalid_inputs_are_rejected():
    good = np.zeros((10, *SHAPE), np.float32)
    other = np.zeros((10, 8, 8, 3), np.float32)
    message = r"same shape except.*\(10, 8, 8, 2\).*\(10, 8, 8, 3\)"
    with pytest.raises(ValueError, match=message):
        ls_metric.ls_score(good, other, _small_discriminator)
    message = r"generated must have shape .* N >= 5.*\(4, 8, 8, 2\)"
    with pytest.raises(ValueError, match=message):
        ls_metric.ls_score(good, good[:4], _small_discriminator)
    with pytest.raises(ValueError, match=r"real must lie in \[0, 1\]"):
        ls_metric.ls_score(good - 1.0, good, _small_discriminator)
    with pytest.raises(ValueError, match="real must be float"):
        ls_metric.ls_score(good.astype(np.uint8), good, _small_discriminator)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        ls_metric.ls_score(good, good, _small_discriminator, runs=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        ls_metric.ls_score(good, good, _small_discriminator, lr=0.0)


def test_discriminator_with_several_outputs_per_sample_is_rejected():
    def two_outputs():
        return keras.Sequential(
            [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(2)]
        )

    good = np.zeros((10, *SHAPE), np.float32)
    with pytest.raises(ValueError, match=r"one real number per sample.*\(2, 2\)"):
        ls_metric.ls_score(good, good, two_outputs, runs=1, epochs=1)
