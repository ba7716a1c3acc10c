"""Paired MNIST metrics with a small classifier trained on synthetic "digits".

Class k is a bright bar at a class-specific row over noise, which the classifier learns
in seconds. Real pairs have an upper digit in 0..4 and the lower digit upper + 5, so
upper and lower digits differ in distribution and are fully dependent.
"""

import dataclasses

import numpy as np
import pytest

from tf_factorgan.eval import mnist_classifier_training as training
from tf_factorgan.eval.paired_mnist_metrics import evaluate_paired_mnist


def digit_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 [N, 28, 28] in [0, 1] images of `labels` (int [N] in 0..9)."""
    images = rng.uniform(0.0, 0.25, size=(len(labels), 28, 28)).astype(np.float32)
    for label in range(10):
        images[labels == label, 2 + 2 * label : 4 + 2 * label, 4:24] = 1.0
    return images


def pairs(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """[N, 28, 28] upper and lower digits -> [N, 1568] stacked pairs."""
    return np.concatenate([upper, lower], axis=1).reshape(len(upper), -1)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    rng = np.random.default_rng(0)
    train_labels, test_labels = rng.integers(10, size=1000), rng.integers(10, size=200)
    model, _ = training.train_or_load_classifier(
        str(tmp_path_factory.mktemp("classifier")),
        digit_images(train_labels, rng),
        train_labels,
        digit_images(test_labels, rng),
        test_labels,
        recipe=dataclasses.replace(training.TUNED, epochs=3, batch_size=32),
        min_accuracy=0.95,
    )
    return model


@pytest.fixture(scope="module")
def real_digits():
    """(upper, lower) [300, 28, 28]: upper label in 0..4, lower label upper + 5."""
    rng = np.random.default_rng(1)
    upper_labels = rng.integers(5, size=300)
    return digit_images(upper_labels, rng), digit_images(upper_labels + 5, rng)


def test_real_against_itself_is_zero(classifier, real_digits):
    real = pairs(*real_digits)
    metrics = evaluate_paired_mnist(classifier, real, real)
    assert set(metrics) == {"fid_upper", "fid_lower", "dependency_distance"}
    assert all(isinstance(value, float) for value in metrics.values())
    assert metrics["fid_upper"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["fid_lower"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["dependency_distance"] == 0.0


def test_lower_fid_uses_lower_real_statistics(classifier, real_digits):
    upper, lower = real_digits
    # Generated lower digits are the real upper digits: perfect under the upper
    # digit's real statistics, far off under the lower digit's.
    metrics = evaluate_paired_mnist(
        classifier, pairs(upper, upper), pairs(upper, lower)
    )
    assert metrics["fid_upper"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["fid_lower"] > 1.0


def test_independent_lower_digits_increase_dependency_distance(classifier, real_digits):
    upper, lower = real_digits
    rng = np.random.default_rng(2)
    independent_lower = digit_images(rng.integers(5, 10, size=len(upper)), rng)
    metrics = evaluate_paired_mnist(
        classifier, pairs(upper, independent_lower), pairs(upper, lower)
    )
    # With perfect labels: real c is 0.2 / 0.041 on 5 cells, generated c is 0.04 / 0.041
    # on 25 cells, so the mean |c_real - c_fake| over 100 cells is about 0.39.
    assert metrics["dependency_distance"] > 0.2
    assert metrics["fid_upper"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "generated, message",
    [
        (np.zeros((4, 784), np.float32), r"generated must have shape \[N, 1568\]"),
        (np.zeros((1, 1568), np.float32), r"N >= 2"),
        (np.full((4, 1568), 2.0, np.float32), r"generated must lie in \[0, 1\]"),
        (np.zeros((4, 1568), np.uint8), "generated must be float"),
    ],
)
def test_invalid_samples_are_rejected(classifier, real_digits, generated, message):
    with pytest.raises(ValueError, match=message):
        evaluate_paired_mnist(classifier, generated, pairs(*real_digits))
