import numpy as np
import pytest

from tf_factorgan.eval.diversity import Diversity, majority_vote


def test_mean_pairwise_l1_and_class_change_by_hand():
    # 3 samples of 2 inputs, 2 values each.
    samples = np.array([[[0.0, 0.0], [1.0, 1.0]],
                        [[1.0, 0.0], [1.0, 1.0]],
                        [[1.0, 1.0], [1.0, 1.0]]])
    classes = np.array([[[0, 0], [2, 2]], [[1, 0], [2, 2]], [[1, 1], [2, 2]]])
    diversity = Diversity()
    diversity.update(samples, classes)
    # Input 0: pairs (0,1) 0.5, (0,2) 1.0, (1,2) 0.5 -> 2/3; input 1: 0. Mean over inputs 1/3.
    result = diversity.result()
    assert result["mean_pairwise_l1"] == pytest.approx(1 / 3)
    assert result["class_change"] == pytest.approx(1 / 3)
    diversity.update(samples[:, :1])  # more batches accumulate, images alone count too
    assert diversity.result()["mean_pairwise_l1"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)


def test_diversity_needs_two_samples():
    with pytest.raises(ValueError, match="S >= 2"):
        Diversity().update(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="no samples"):
        Diversity().result()


def test_majority_vote_and_agreement():
    classes = np.array([[0, 1, 2], [1, 1, 0], [1, 2, 0], [0, 2, 1]])  # 4 samples, 3 pixels
    vote, agreement = majority_vote(classes, num_classes=3)
    # Pixel 0: 0,1,1,0 -> tie, the lower class; pixel 1: 1,1,2,2 -> tie -> 1; pixel 2: 2,0,0,1 -> 0.
    np.testing.assert_array_equal(vote, [0, 1, 0])
    np.testing.assert_allclose(agreement, [0.5, 0.5, 0.5])
