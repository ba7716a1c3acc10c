"""The Paired MNIST dependency metric, its orientation and its input checks."""

import numpy as np
import pytest

from tf_factorgan.eval import dependency


def _all_combinations(upper_counts, lower_counts):
    """Labels of every (upper, lower) combination of two label multisets: the empirical
    joint is then exactly the product of the empirical marginals."""
    upper = np.repeat(np.arange(len(upper_counts)), upper_counts)
    lower = np.repeat(np.arange(len(lower_counts)), lower_counts)
    grid_upper, grid_lower = np.meshgrid(upper, lower, indexing="ij")
    return grid_upper.ravel(), grid_lower.ravel()


def test_independent_labels_give_ratio_one_up_to_epsilon():
    upper_counts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    lower_counts = [10, 1, 1, 1, 1, 2, 2, 2, 3, 3]
    upper, lower = _all_combinations(upper_counts, lower_counts)
    c = dependency.dependency_matrix(upper, lower)
    product = np.outer(upper_counts, lower_counts) / (
        np.sum(upper_counts) * np.sum(lower_counts)
    )
    # joint == product, so c = product / (product + 0.001): close to 1, below it by the
    # epsilon's share.
    np.testing.assert_allclose(c, product / (product + 0.001), rtol=1e-12)
    assert np.all(c < 1.0)


def test_many_independent_samples_give_ratio_near_one():
    rng = np.random.default_rng(0)
    upper, lower = rng.integers(10, size=(2, 1_000_000))
    c = dependency.dependency_matrix(upper, lower)
    # Each combination has probability 0.01, so c ~ 0.01 / 0.011.
    np.testing.assert_allclose(c, 1.0 / 1.1, rtol=0.05)


def test_same_labels_give_zero_distance():
    rng = np.random.default_rng(1)
    upper = rng.integers(10, size=500)
    lower = np.where(rng.random(500) < 0.9, upper, rng.integers(10, size=500))
    assert dependency.dependency_distance(upper, lower, upper, lower) == 0.0


def test_asymmetric_joint_uses_upper_times_lower_marginal():
    # Pairs (0, 1), (0, 1), (1, 1), (2, 2): P_upper = [.5, .25, .25], P_lower = [0, .75, .25].
    upper = np.array([0, 0, 1, 2])
    lower = np.array([1, 1, 1, 2])
    c = dependency.dependency_matrix(upper, lower)
    # Ours: P(0, 1) / (P_upper(0) P_lower(1) + eps) = 0.5 / (0.5 * 0.75 + 0.001).
    assert c[0, 1] == pytest.approx(0.5 / 0.376)
    # The transposed product would give 0.5 / (P_upper(1) P_lower(0) + eps) = 500.
    assert c[0, 1] != pytest.approx(0.5 / 0.001)
    assert c[1, 1] == pytest.approx(0.25 / (0.25 * 0.75 + 0.001))
    assert c[2, 2] == pytest.approx(0.25 / (0.25 * 0.25 + 0.001))
    assert c[1, 0] == 0.0
    assert np.count_nonzero(c) == 3


def test_dependent_versus_independent_labels_give_positive_distance():
    rng = np.random.default_rng(2)
    upper = rng.integers(10, size=2000)
    shuffled = rng.permutation(upper)
    assert dependency.dependency_distance(upper, upper, upper, shuffled) > 1.0


@pytest.mark.parametrize(
    "upper, lower, message",
    [
        (np.array([0, 10]), np.array([0, 1]), r"upper_labels must lie in \[0, 9\]"),
        (np.array([0, 1]), np.array([-1, 1]), r"lower_labels must lie in \[0, 9\]"),
        (np.array([0.0, 1.0]), np.array([0, 1]), "upper_labels must hold integer"),
        (
            np.zeros((2, 2), int),
            np.zeros((2, 2), int),
            r"upper_labels must have shape \[N\]",
        ),
        (np.array([], int), np.array([], int), r"upper_labels must have shape \[N\]"),
        (np.array([0, 1, 2]), np.array([0, 1]), r"same shape, got \(3,\) and \(2,\)"),
    ],
)
def test_invalid_labels_are_rejected(upper, lower, message):
    with pytest.raises(ValueError, match=message):
        dependency.dependency_matrix(upper, lower)


def test_distance_names_the_offending_argument():
    good = np.array([0, 1])
    with pytest.raises(ValueError, match="fake_lower"):
        dependency.dependency_distance(good, good, good, np.array([0, 12]))
