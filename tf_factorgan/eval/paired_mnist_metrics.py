"""Paired MNIST evaluation (FactorGAN paper, section 4.1): digit quality and dependency.

A pair is a flattened 56x28 stack: its first 784 values are the upper digit, the last
784 the lower digit, each a row-major 28x28 image.

FID is computed per digit position on the classifier's 50-d hidden features, each
against the real statistics of the same position (the original code cached the upper
digit's real statistics and reused them for the lower digit). The dependency distance
compares the label dependency of real and generated pairs, with labels of both
predicted by the classifier (the original used the real pairs' ground-truth labels);
both sides then see the same classifier errors and no labels need to be passed.

`paper_fid_upper` / `paper_fid_lower` are the same FIDs on classifiers trained by the
original code's recipe (`mnist_classifier_training.PAPER`), averaged over them: the
figures that compare with the paper's.
"""

from typing import Sequence

import numpy as np

from tf_factorgan.eval import dependency, fid
from tf_factorgan.eval import mnist_classifier_training as classifier_lib
from tf_factorgan.models.mnist_classifier import MnistClassifier

IMAGE_SIZE = 28
PAIR_SIZE = 2 * IMAGE_SIZE * IMAGE_SIZE
POSITIONS = ("upper", "lower")


def _split_pairs(name: str, samples) -> tuple[np.ndarray, np.ndarray]:
    """float [N, 1568] in [0, 1] (N >= 2) -> (upper, lower) digits, each [N, 28, 28]."""
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[1] != PAIR_SIZE or samples.shape[0] < 2:
        raise ValueError(
            f"{name} must have shape [N, {PAIR_SIZE}] with N >= 2 (FID needs a "
            f"covariance), got {samples.shape}"
        )
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], got dtype {samples.dtype}")
    if not (samples.min() >= 0.0 and samples.max() <= 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{samples.min()}, {samples.max()}]"
        )
    digits = samples.reshape(-1, 2, IMAGE_SIZE, IMAGE_SIZE)
    return digits[:, 0], digits[:, 1]


def _position_features(classifier: MnistClassifier, digits) -> list[np.ndarray]:
    """[features of the upper digits, features of the lower digits], each [N, 50]."""
    return [classifier_lib.features(classifier, d) for d in digits]


def _fids(generated_features, real_features) -> list[float]:
    """[FID of the upper digits, FID of the lower digits]."""
    return [fid.fid_from_features(fake, real) for fake, real in zip(generated_features, real_features)]


def evaluate_paired_mnist(
    classifier: MnistClassifier,
    generated: np.ndarray,
    real: np.ndarray,
    paper_classifiers: Sequence[MnistClassifier] = (),
) -> dict:
    """FID of upper and lower digits and the dependency distance.

    Args:
      classifier: trained MNIST classifier (features and labels come from it).
      generated: float [N, 1568] in [0, 1], generated pairs (N >= 2).
      real: float [M, 1568] in [0, 1], real pairs (M >= 2).
      paper_classifiers: classifiers trained by the paper's recipe (may be empty).

    Returns:
      {"fid_upper", "fid_lower", "dependency_distance"}: Python floats, all >= 0 and
      0 for generated == real; with paper_classifiers also "paper_fid_upper",
      "paper_fid_lower" (their mean FIDs) and "paper_fid_upper_std",
      "paper_fid_lower_std" (the standard deviation over them).
    """
    generated_digits = _split_pairs("generated", generated)
    real_digits = _split_pairs("real", real)
    # The tuned classifier's features serve its FIDs and, through its last layer, the
    # labels of the dependency distance: one pass over the digits.
    generated_features = _position_features(classifier, generated_digits)
    real_features = _position_features(classifier, real_digits)
    metrics = dict(zip(("fid_upper", "fid_lower"), _fids(generated_features, real_features)))
    if paper_classifiers:
        paper = np.array([
            _fids(_position_features(c, generated_digits), _position_features(c, real_digits))
            for c in paper_classifiers])
        for position, mean, std in zip(POSITIONS, paper.mean(axis=0), paper.std(axis=0)):
            metrics[f"paper_fid_{position}"] = float(mean)
            metrics[f"paper_fid_{position}_std"] = float(std)
    real_labels = [classifier_lib.labels_from_features(classifier, f) for f in real_features]
    fake_labels = [classifier_lib.labels_from_features(classifier, f) for f in generated_features]
    metrics["dependency_distance"] = dependency.dependency_distance(
        *real_labels, *fake_labels
    )
    return metrics
