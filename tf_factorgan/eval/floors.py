"""Two floors a segmentation model must beat to show it learnt anything from its inputs.

  most_common_class  every pixel of every image gets the class most frequent among the
                     training label maps' evaluated pixels (Cityscapes: road)
  per_pixel_prior    each pixel gets the class most frequent at that position over the
                     training label maps: the street layout of a car-mounted camera,
                     learnt without looking at a single photo

Both are scored like a model (`segmentation.SegmentationMetrics`, on the validation
label maps). The training label maps are every label map the run may observe (paired
or not): a FactorGAN's marginal discriminator sees the same ones.
"""

import numpy as np

from tf_factorgan.data.palette import Palette
from tf_factorgan.eval import segmentation


def class_counts(label_maps: np.ndarray, palette: Palette, batch_size: int = 100) -> np.ndarray:
    """uint8 [N, H, W, 3] colour label maps -> int64 [H, W, K]: at each position, how
    many maps have each evaluated class there (pixels of ignored colours not counted;
    colours snap to the nearest palette colour, as ground truth is scored)."""
    k = len(palette.evaluated)
    counts = np.zeros((*label_maps.shape[1:3], k), np.int64)
    for start in range(0, len(label_maps), batch_size):
        maps = np.asarray(label_maps[start: start + batch_size], np.float32) / 255.0
        ids = segmentation.nearest_colour(maps, palette.full_colours()).numpy()
        for index in range(k):  # indices >= K are ignored colours
            counts[..., index] += np.sum(ids == index, axis=0)
    return counts


def floors(train_maps: np.ndarray, val_maps: np.ndarray, palette: Palette) -> dict:
    """{"most_common_class": metrics, "per_pixel_prior": metrics} of the two constant
    predictions, from the training label maps uint8 [N, H, W, 3], scored against the
    validation label maps uint8 [M, H, W, 3] (`SegmentationMetrics.result`, plus the
    class chosen by the first)."""
    counts = class_counts(train_maps, palette)
    colours = palette.evaluated_colours()
    common = int(np.argmax(counts.sum(axis=(0, 1))))
    prior = np.argmax(counts, axis=-1)  # ties to the lower class
    truth = np.asarray(val_maps, np.float32) / 255.0
    result = {}
    for name, classes in (("most_common_class", np.full(prior.shape, common)), ("per_pixel_prior", prior)):
        metrics = segmentation.SegmentationMetrics(palette)
        metrics.update(np.broadcast_to(colours[classes], truth.shape), truth)
        result[name] = metrics.result()
    result["most_common_class"]["class"] = palette.evaluated_names()[common]
    return result
