"""How different a conditional generator's samples of one input are, and what their
consensus scores.

MR-GAN (Lee et al. 2019, section 5) draws several samples per input and measures
their diversity as the mean LPIPS distance between pairs of them. LPIPS needs backbone
weights that are downloaded at run time (not available offline), so diversity here is
measured on the outputs themselves:

  mean_pairwise_l1   mean |s_i - s_j| over every pair i < j of the S samples of an
                     input and over all values, averaged over inputs (0: the generator
                     ignores its noise; images in [0, 1], so at most 1)
  class_change       for label maps: the fraction of pixels whose class differs
                     between two samples of one input, over every pair and input

`majority_vote` gives each pixel the class most of its samples agree on, and the share
of samples that agree with it: the consensus prediction and its uncertainty.
"""

import itertools

import numpy as np


class Diversity:
    """Accumulates the diversity of S >= 2 samples per input over batches."""

    def __init__(self):
        self._l1 = 0.0  # sum over inputs of their mean pairwise L1
        self._changed = 0.0  # sum over inputs of their mean pairwise class change
        self._inputs = 0
        self._labelled = 0

    def update(self, samples: np.ndarray, classes: np.ndarray = None) -> None:
        """samples: float [S, N, ...] S samples of each of N inputs; classes: optional
        int [S, N, H, W] their pixels' classes (label maps)."""
        samples = np.asarray(samples, np.float32)
        if samples.ndim < 2 or samples.shape[0] < 2:
            raise ValueError(f"diversity needs samples [S, N, ...] with S >= 2, got {samples.shape}")
        pairs = list(itertools.combinations(range(samples.shape[0]), 2))
        flat = samples.reshape(samples.shape[0], samples.shape[1], -1)
        self._l1 += float(sum(np.abs(flat[i] - flat[j]).mean(axis=1).sum() for i, j in pairs)) / len(pairs)
        self._inputs += samples.shape[1]
        if classes is not None:
            classes = np.asarray(classes).reshape(classes.shape[0], classes.shape[1], -1)
            self._changed += float(sum((classes[i] != classes[j]).mean(axis=1).sum()
                                       for i, j in pairs)) / len(pairs)
            self._labelled += classes.shape[1]

    def result(self) -> dict:
        """{"mean_pairwise_l1"} (+ {"class_change"} when classes were given)."""
        if not self._inputs:
            raise ValueError("no samples yet: call update() before result()")
        result = {"mean_pairwise_l1": self._l1 / self._inputs}
        if self._labelled:
            result["class_change"] = self._changed / self._labelled
        return result


def majority_vote(classes: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """int [S, ...] classes in [0, num_classes) of S samples -> (int32 [...] the most
    frequent class of each position, ties to the lower class; float32 [...] the
    fraction of the S samples that chose it)."""
    classes = np.asarray(classes)
    counts = np.stack([np.sum(classes == k, axis=0) for k in range(num_classes)], axis=0)
    vote = np.argmax(counts, axis=0).astype(np.int32)
    agreement = np.take_along_axis(counts, vote[None], axis=0)[0] / np.float32(classes.shape[0])
    return vote, agreement.astype(np.float32)
