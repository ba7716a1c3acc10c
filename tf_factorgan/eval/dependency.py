"""Dependency metric of the FactorGAN paper's Paired MNIST experiment (section 4.1).

For digit labels (a, b) of the upper and lower digit of a pair,

    c[a, b] = P(a, b) / (P_upper(a) * P_lower(b) + 0.001),

the ratio of the joint label distribution to the product of its marginals, which is
about 1 everywhere when the two digits are independent. The metric is the mean over
the 10x10 grid of |c_real - c_fake|.

The original PyTorch code builds the denominator as
`p_upper * p_lower.reshape(-1, 1)`, whose [a, b] entry is P_upper(b) * P_lower(a), i.e.
the transposed outer product. We do not transpose: the denominator at [a, b] is
P_upper(a) * P_lower(b), as in the paper's definition. The two agree only when the
upper and lower label marginals are equal.
"""

import numpy as np

# Keeps the ratio finite for label combinations whose marginals are (nearly) zero.
EPSILON = 0.001


def _check_labels(name: str, labels, num_classes: int) -> np.ndarray:
    """int64 [N] (N >= 1) with values in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"{name} must have shape [N] with N >= 1, got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes - 1}], got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int64)


def _check_pair(upper_name: str, upper, lower_name: str, lower, num_classes: int):
    """Checked int64 [N] (upper, lower) labels of the same N pairs."""
    upper = _check_labels(upper_name, upper, num_classes)
    lower = _check_labels(lower_name, lower, num_classes)
    if upper.shape != lower.shape:
        raise ValueError(
            f"{upper_name} and {lower_name} must have the same shape, got "
            f"{upper.shape} and {lower.shape}"
        )
    return upper, lower


def _ratio(upper: np.ndarray, lower: np.ndarray, num_classes: int) -> np.ndarray:
    """c [num_classes, num_classes] of checked int64 [N] labels."""
    counts = np.bincount(upper * num_classes + lower, minlength=num_classes**2)
    joint = counts.reshape(num_classes, num_classes) / upper.size
    p_upper = joint.sum(axis=1)
    p_lower = joint.sum(axis=0)
    return joint / (np.outer(p_upper, p_lower) + EPSILON)


def dependency_matrix(upper_labels, lower_labels, num_classes: int = 10) -> np.ndarray:
    """c[a, b] = P(upper=a, lower=b) / (P(upper=a) * P(lower=b) + 0.001).

    Args:
      upper_labels, lower_labels: int [N] labels in [0, num_classes) of the upper and
        lower digit of the same N pairs.
      num_classes: number of label values.

    Returns:
      float64 [num_classes, num_classes], >= 0; rows index the upper label, columns the
      lower label. Probabilities are empirical frequencies.
    """
    upper, lower = _check_pair(
        "upper_labels", upper_labels, "lower_labels", lower_labels, num_classes
    )
    return _ratio(upper, lower, num_classes)


def dependency_distance(
    real_upper, real_lower, fake_upper, fake_lower, num_classes: int = 10
) -> float:
    """Mean over the num_classes x num_classes grid of |c_real - c_fake|, >= 0.

    Args:
      real_upper, real_lower: int [N] labels of the real pairs' upper and lower digits.
      fake_upper, fake_lower: int [M] labels of the generated pairs' digits.
      num_classes: number of label values.
    """
    real_upper, real_lower = _check_pair(
        "real_upper", real_upper, "real_lower", real_lower, num_classes
    )
    fake_upper, fake_lower = _check_pair(
        "fake_upper", fake_upper, "fake_lower", fake_lower, num_classes
    )
    c_real = _ratio(real_upper, real_lower, num_classes)
    c_fake = _ratio(fake_upper, fake_lower, num_classes)
    return float(np.mean(np.abs(c_real - c_fake)))
