"""Metrics of vector samples in parts: Frechet distances per part and joint, and the
cross-correlation dependency distance, against closed forms."""

import numpy as np
import pytest

from tf_factorgan.eval import array_metrics


def _gaussian(n, mean, cov, seed):
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def test_identical_sets_are_at_distance_zero():
    x = _gaussian(500, [0, 0, 0], np.eye(3), 0)
    assert array_metrics.frechet(x, x) == pytest.approx(0.0, abs=1e-9)
    assert array_metrics.dependency_distances([x[:, :1], x[:, 1:]], [x[:, :1], x[:, 1:]]) == {
        (0, 1): pytest.approx(0.0, abs=1e-12)}


def test_a_shift_adds_its_squared_length():
    # Same covariance: FD = |mu1 - mu2|^2 exactly, whatever the samples.
    x = _gaussian(300, [0, 0], [[1, 0.3], [0.3, 2]], 1)
    shift = np.array([3.0, -4.0])
    assert array_metrics.frechet(x, x + shift) == pytest.approx(25.0, rel=1e-9)


def test_a_scaled_gaussian_gives_the_closed_form():
    # N(0, I_d) vs N(0, s^2 I_d): FD = d (1 - s)^2; with exact unit covariance.
    d, s = 2, 3.0
    x = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float64) * np.sqrt(3 / 4)
    assert np.allclose(np.cov(x, rowvar=False), np.eye(d))
    assert array_metrics.frechet(x, s * x) == pytest.approx(d * (1 - s) ** 2, rel=1e-9)


def test_cross_correlation_of_known_columns():
    t = np.arange(10, dtype=np.float64)
    x = np.stack([t, np.full(10, 5.0)], axis=1)  # a constant column: correlation 0
    y = np.stack([2 * t + 1, -t, (t - 4.5) ** 2], axis=1)
    corr = array_metrics.cross_correlation(x, y)
    assert corr.shape == (2, 3)
    np.testing.assert_allclose(corr[0, :2], [1.0, -1.0], atol=1e-12)
    assert corr[0, 2] == pytest.approx(0.0, abs=1e-12)  # symmetric about the mean
    np.testing.assert_array_equal(corr[1], 0.0)


def test_dependency_distance_is_the_lost_correlation():
    # Real parts with correlation rho, generated ones independent: d = |rho| (up to
    # the sampling error of the generated correlation, ~1/sqrt(n)).
    rho, n = 0.8, 20000
    real = _gaussian(n, [0, 0], [[1, rho], [rho, 1]], 2)
    fake = _gaussian(n, [0, 0], np.eye(2), 3)
    d = array_metrics.dependency_distances([real[:, :1], real[:, 1:]], [fake[:, :1], fake[:, 1:]])
    assert d[(0, 1)] == pytest.approx(rho, abs=0.02)


def test_dependency_distance_is_the_rms_over_entries():
    # 1 x 2 cross-correlations (1, 0) real and (0, 0) generated: RMS = sqrt(1/2).
    t = np.linspace(-1, 1, 101)
    real = [t[:, None], np.stack([t, t ** 2], axis=1)]
    fake = [t[:, None], np.stack([t ** 2, t ** 2], axis=1)]
    d = array_metrics.dependency_distances(real, fake)
    assert d[(0, 1)] == pytest.approx(np.sqrt(0.5), abs=1e-9)


def test_evaluate_names_every_metric_and_averages_part_pairs():
    rng = np.random.default_rng(4)
    parts = [rng.normal(size=(200, k)) for k in (1, 2, 3)]
    shifted = [parts[0] + 1.0, parts[1], parts[2]]
    metrics = array_metrics.evaluate(parts, parts, shifted, ("a", "b", "c"))
    assert metrics["fd_a"] == pytest.approx(1.0) and metrics["fd_b"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["fd_marginal_mean"] == pytest.approx(1.0 / 3)
    assert metrics["fd_joint"] == pytest.approx(1.0)
    assert sorted(metrics["dependency_pairs"]) == ["a,b", "a,c", "b,c"]
    # A shift changes no correlation.
    assert metrics["dependency_distance"] == pytest.approx(0.0, abs=1e-9)
    swapped = array_metrics.evaluate(parts, parts, [parts[0], parts[1][::-1], parts[2]], "abc")
    pairs = swapped["dependency_pairs"]
    assert pairs["a,c"] == pytest.approx(0.0, abs=1e-9) and pairs["a,b"] > 0 and pairs["b,c"] > 0
    assert swapped["dependency_distance"] == pytest.approx(np.mean(list(pairs.values())))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="N >= 2"):
        array_metrics.frechet(np.zeros((1, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="same samples"):
        array_metrics.cross_correlation(np.zeros((3, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="K >= 2"):
        array_metrics.dependency_distances([np.zeros((3, 1))], [np.zeros((3, 1))])
