"""Frechet distance between Gaussians fitted to two sets of features (FID).

FID = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)).

Tr((C1 C2)^(1/2)) is computed without a general (complex) matrix square root:
C1 C2 is similar to the symmetric positive semi-definite S C2 S with S = C1^(1/2), so
both have the same real, non-negative eigenvalues, and the trace of the square root is
the sum of their square roots. Symmetric eigendecompositions stay real and handle
singular covariances (fewer samples than dimensions, constant features), so there is no
imaginary part to drop and no diagonal offset to add.
"""

import numpy as np


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features [N, D] (N >= 2) -> (mean [D], unbiased covariance [D, D]), float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(
            f"features must have shape [N, D] with N >= 2, got shape {features.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values")
    mean = features.mean(axis=0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def _check_statistics(name: str, mean, cov) -> tuple[np.ndarray, np.ndarray]:
    """Float64 (mean [D], cov [D, D]); cov must be finite and symmetric."""
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.ndim != 1 or cov.shape != (mean.size, mean.size):
        raise ValueError(
            f"mean{name} must have shape [D] and cov{name} shape [D, D], got "
            f"mean{name} {mean.shape} and cov{name} {cov.shape}"
        )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError(f"mean{name} or cov{name} contain NaN or infinite values")
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-12):
        raise ValueError(f"cov{name} must be symmetric")
    return mean, cov


def _eigenvalues(symmetric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues, eigenvectors) of a symmetric PSD matrix, eigenvalues clipped at 0.

    Rounding makes the zero eigenvalues of singular matrices slightly negative.
    """
    values, vectors = np.linalg.eigh((symmetric + symmetric.T) / 2)
    return np.clip(values, 0.0, None), vectors


def _trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """Tr((cov1 cov2)^(1/2)) for symmetric PSD cov1, cov2 [D, D]."""
    values, vectors = _eigenvalues(cov1)
    sqrt_cov1 = (vectors * np.sqrt(values)) @ vectors.T
    product_values, _ = _eigenvalues(sqrt_cov1 @ cov2 @ sqrt_cov1)
    return float(np.sum(np.sqrt(product_values)))


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """Frechet distance between N(mean1, cov1) and N(mean2, cov2).

    Args:
      mean1, mean2: [D].
      cov1, cov2: [D, D] symmetric positive semi-definite.

    Returns:
      The distance, >= 0 (rounding errors below 0 are clipped to 0).
    """
    mean1, cov1 = _check_statistics("1", mean1, cov1)
    mean2, cov2 = _check_statistics("2", mean2, cov2)
    if mean1.shape != mean2.shape:
        raise ValueError(
            f"the two Gaussians differ in dimension: mean1 {mean1.shape}, cov1 "
            f"{cov1.shape} vs mean2 {mean2.shape}, cov2 {cov2.shape}"
        )
    diff = mean1 - mean2
    distance = (
        diff @ diff
        + np.trace(cov1)
        + np.trace(cov2)
        - 2.0 * _trace_sqrt_product(cov1, cov2)
    )
    return max(float(distance), 0.0)


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between feature sets [N, D] and [M, D] (N, M >= 2)."""
    return frechet_distance(
        *gaussian_statistics(features_a), *gaussian_statistics(features_b)
    )
