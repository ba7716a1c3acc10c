"""FID against closed forms: Gaussians with known means and covariances."""

import numpy as np
import pytest

from tf_factorgan.eval import fid


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


def test_gaussian_statistics_are_mean_and_unbiased_covariance():
    features = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    mean, cov = fid.gaussian_statistics(features)
    assert mean.dtype == cov.dtype == np.float64
    np.testing.assert_allclose(mean, features.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(
        cov, np.cov(features.astype(np.float64), rowvar=False, ddof=1)
    )


def test_gaussian_statistics_rejects_too_few_samples():
    with pytest.raises(ValueError, match=r"N >= 2.*\(1, 3\)"):
        fid.gaussian_statistics(np.zeros((1, 3)))


def test_set_against_itself_is_zero():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(500, 20)) @ rng.normal(size=(20, 20))
    assert fid.fid_from_features(features, features) == pytest.approx(0.0, abs=1e-8)


def test_singular_covariances_give_finite_distances():
    # Fewer samples than dimensions and a constant feature: rank-deficient covariances.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(10, 30))
    a[:, 0] = 1.0
    b = rng.normal(size=(12, 30))
    assert fid.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-8)
    assert np.isfinite(fid.fid_from_features(a, b))


def test_sampled_isotropic_gaussians_match_closed_form():
    # N(0, I) vs N(mu, s^2 I): FID = |mu|^2 + D (1 - s)^2.
    rng = np.random.default_rng(3)
    dim, count, scale = 3, 200_000, 2.0
    mu = np.array([1.0, -0.5, 0.25])
    a = rng.normal(size=(count, dim))
    b = mu + scale * rng.normal(size=(count, dim))
    expected = mu @ mu + dim * (1.0 - scale) ** 2
    assert fid.fid_from_features(a, b) == pytest.approx(expected, rel=0.01)


def test_exact_diagonal_covariances_match_closed_form():
    # Commuting covariances: Tr((C1 C2)^(1/2)) = sum sqrt(c1_i c2_i).
    rng = np.random.default_rng(4)
    dim = 6
    mean1, mean2 = rng.normal(size=dim), rng.normal(size=dim)
    var1, var2 = rng.uniform(0.1, 3.0, dim), rng.uniform(0.1, 3.0, dim)
    expected = np.sum((mean1 - mean2) ** 2) + np.sum(
        (np.sqrt(var1) - np.sqrt(var2)) ** 2
    )
    assert fid.frechet_distance(
        mean1, np.diag(var1), mean2, np.diag(var2)
    ) == pytest.approx(expected, rel=1e-10)
    # A common rotation of both Gaussians preserves the distance; the covariances are
    # then full matrices.
    rotation = _random_rotation(rng, dim)
    rotated = fid.frechet_distance(
        rotation @ mean1,
        rotation @ np.diag(var1) @ rotation.T,
        rotation @ mean2,
        rotation @ np.diag(var2) @ rotation.T,
    )
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_exact_non_commuting_2d_covariances_match_closed_form():
    # For 2x2 M with non-negative eigenvalues, Tr(M^(1/2)) = sqrt(Tr M + 2 sqrt(det M)).
    cov1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    product = cov1 @ cov2
    trace_sqrt = np.sqrt(np.trace(product) + 2.0 * np.sqrt(np.linalg.det(product)))
    mean1, mean2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    expected = 8.0 + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    assert fid.frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(
        expected, rel=1e-12
    )


def test_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"mean1 \(3,\).*mean2 \(4,\)"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"cov2.*\(3, 2\)"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="cov1 must be symmetric"):
        fid.frechet_distance(
            np.zeros(2), np.array([[1.0, 1.0], [0.0, 1.0]]), np.zeros(2), np.eye(2)
        )
