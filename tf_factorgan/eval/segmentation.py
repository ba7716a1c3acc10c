"""Colour label maps: colour snapping and segmentation metrics for a label palette.

The FactorGAN image-to-image experiments generate segmentation label maps as RGB images
in [0, 1]. A pixel's class is the class of the nearest palette colour (squared
Euclidean distance in RGB [0, 1]); ties go to the lower palette index.

The classes come from a `tf_factorgan.data.palette.Palette` (default: the Cityscapes
table of the dataset's reference scripts, cityscapesScripts
`cityscapesscripts/helpers/labels.py`: 34 ids 0..33 plus 'license plate' (id -1), of
which 19 classes have train ids 0..18 and are evaluated; the others (train id 255, or
-1 for the license plate) are ignored). The palette's K evaluated classes in file order
are indexed 0..K-1, their "train ids" (for Cityscapes exactly the dataset's train ids).

Two colours are shared between an evaluated and an ignored class: car and license plate
are both (0, 0, 142), pole and polegroup both (153, 153, 153). A shared colour belongs
to the evaluated class here, so car and pole ground-truth pixels count. The original
FactorGAN code treated every colour of an ignored class as ignored and thereby dropped
car and pole from its evaluation; we do not. A user palette follows the same rule.

Metrics pool all counted pixels of all images into one K x K confusion matrix (the
original code averaged per-image accuracies per batch and then over batches): pixel
accuracy is correct / counted, class accuracy and IoU are per evaluated class.

Colour arrays here (`nearest_colour` palettes, label maps) are float32 in [0, 1]: the
0..255 colours divided by 255.
"""

import functools

import numpy as np
import tensorflow as tf

from tf_factorgan.data import palette as palettes
from tf_factorgan.data.palette import Palette


def _palette(palette: Palette | None) -> Palette:
    return palettes.cityscapes() if palette is None else palette


def nearest_colour(rgb, palette) -> tf.Tensor:
    """Index of the nearest palette colour of every pixel.

    TensorFlow ops only, so it can sit inside a traced serving graph; the batch shape
    may be unknown at trace time. Memory stays at a few [...] float32 tensors whatever
    K is: the palette is walked one colour at a time, keeping the best distance so far,
    instead of materialising [..., K] distances.

    Args:
      rgb: float [..., 3] in [0, 1] (tf.Tensor or numpy).
      palette: float [K, 3] in [0, 1], K >= 1 known statically (tf.Tensor or numpy).

    Returns:
      tf.int32 [...] in [0, K): argmin over k of the squared Euclidean distance between
      rgb and palette[k]; ties go to the lowest k.
    """
    rgb = tf.convert_to_tensor(rgb)
    if not rgb.dtype.is_floating:
        raise ValueError(f"rgb must be float in [0, 1], got dtype {rgb.dtype.name}")
    if rgb.shape.rank is not None and (rgb.shape.rank == 0 or rgb.shape[-1] != 3):
        raise ValueError(f"rgb must have shape [..., 3], got {rgb.shape}")
    palette = tf.cast(tf.convert_to_tensor(palette), tf.float32)
    if palette.shape.rank != 2 or palette.shape[1] != 3 or not palette.shape[0]:
        raise ValueError(
            f"palette must have shape [K, 3] with a static K >= 1, got {palette.shape}"
        )
    # Per-channel planes: squared distances without [..., 3] temporaries or a reduction
    # over a length-3 axis.
    red, green, blue = tf.unstack(tf.cast(rgb, tf.float32), num=3, axis=-1)

    def squared_distance(k: int) -> tf.Tensor:
        return (
            tf.square(red - palette[k, 0])
            + tf.square(green - palette[k, 1])
            + tf.square(blue - palette[k, 2])
        )

    best_distance = squared_distance(0)
    best_index = tf.zeros_like(red, dtype=tf.int32)
    for k in range(1, palette.shape[0]):
        # In a graph the distances do not depend on each other, so an executor could
        # compute all K of them at once; chaining each after the previous update keeps
        # one alive at a time (a no-op when eager).
        with tf.control_dependencies([best_distance]):
            distance = squared_distance(k)
        # Strictly closer only: ties keep the lower index.
        closer = distance < best_distance
        best_distance = tf.where(closer, distance, best_distance)
        best_index = tf.where(closer, tf.constant(k, tf.int32), best_index)
    return best_index


def train_ids(label_rgb, palette: Palette | None = None) -> tf.Tensor:
    """float [..., 3] label map in [0, 1] -> tf.int32 [...] index 0..K-1 of the nearest
    evaluated colour of `palette` (default Cityscapes, where these are the train ids
    0..18); every pixel gets an evaluated class."""
    return nearest_colour(label_rgb, _palette(palette).evaluated_colours())


def class_ids(label_rgb, palette: Palette | None = None) -> tf.Tensor:
    """float [..., 3] label map in [0, 1] -> tf.int32 [...] palette id of the nearest
    evaluated colour (default Cityscapes: label ids, e.g. road = 7, as the Cityscapes
    benchmark scripts expect). TF ops only, so it can sit in a serving graph."""
    palette = _palette(palette)
    return tf.gather(tf.constant(palette.evaluated_ids()), train_ids(label_rgb, palette))


def colourise(train_ids, palette: Palette | None = None) -> tf.Tensor:
    """int [...] train ids in 0..K-1 -> float32 [..., 3] in [0, 1] colours of those
    classes: the inverse of `train_ids` on the evaluated palette.

    Out-of-range ids fail a tf.debugging assertion (eagerly, or when the graph runs).
    """
    colours = _palette(palette).evaluated_colours()
    ids = tf.convert_to_tensor(train_ids)
    if not ids.dtype.is_integer:
        raise ValueError(f"train_ids must be integers, got dtype {ids.dtype.name}")
    ids = tf.cast(ids, tf.int32)
    tf.debugging.assert_non_negative(ids, message="train ids must be >= 0")
    tf.debugging.assert_less(
        ids, tf.constant(len(colours), tf.int32), message=f"train ids must be < {len(colours)}"
    )
    return tf.gather(tf.constant(colours), ids)


@functools.lru_cache(maxsize=None)
def _snapper(palette: Palette):
    """A graph (traced once per palette: the K-step colour walk runs about four times
    faster than eagerly) of float32 [N, H, W, 3] (predicted, target) -> (train ids of
    predicted, full_colours() indices of target), both tf.int32 [N, H, W]."""
    evaluated, full = palette.evaluated_colours(), palette.full_colours()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)] * 2)
    def snap(predicted, target):
        return nearest_colour(predicted, evaluated), nearest_colour(target, full)

    return snap


def _check_label_maps(predicted, target) -> tuple[np.ndarray, np.ndarray]:
    """float32 (predicted, target), both [N, H, W, 3] (N >= 1) in [0, 1]."""
    predicted = np.asarray(predicted)
    target = np.asarray(target)
    for name, maps in (("predicted", predicted), ("target", target)):
        if maps.ndim != 4 or maps.shape[-1] != 3 or maps.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape [N, H, W, 3] with N >= 1, got {maps.shape}"
            )
        if not np.issubdtype(maps.dtype, np.floating):
            raise ValueError(f"{name} must be float in [0, 1], got dtype {maps.dtype}")
        if not (maps.min() >= 0.0 and maps.max() <= 1.0):  # also rejects NaN
            raise ValueError(
                f"{name} must lie in [0, 1], got values in [{maps.min()}, {maps.max()}]"
            )
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target must have the same shape, got {predicted.shape} "
            f"and {target.shape}"
        )
    return predicted.astype(np.float32), target.astype(np.float32)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


class MeanSquaredError:
    """Accumulates the mean squared error of predicted images against their targets."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._squared_error = 0.0  # float64 sum over pixels and channels
        self._values = 0
        self._num_images = 0

    def update(self, predicted, target) -> None:
        """Adds a batch: predicted and target images, float [N, H, W, C] in [0, 1] of
        the same shape."""
        predicted, target = np.asarray(predicted, np.float32), np.asarray(target, np.float32)
        if predicted.ndim != 4 or predicted.shape != target.shape:
            raise ValueError(
                "predicted and target must be [N, H, W, C] of the same shape, got "
                f"{predicted.shape} and {target.shape}"
            )
        self._squared_error += float(
            np.sum(np.square(predicted - target), dtype=np.float64)
        )
        self._values += predicted.size
        self._num_images += predicted.shape[0]

    def result(self) -> dict:
        """{"mse": in [0, 1], over all pixels and channels of all batches so far,
        "num_images": images seen}."""
        if not self._num_images:
            raise ValueError("no images yet: call update() before result()")
        return {"mse": self._squared_error / self._values, "num_images": self._num_images}


class SegmentationMetrics(MeanSquaredError):
    """Accumulates MSE and the confusion matrix of predicted label maps.

    A predicted pixel is snapped to the nearest of the palette's K evaluated colours, a
    ground-truth pixel to the nearest of all its colours (`Palette.full_colours`).
    Ground-truth pixels whose colour is ignored are not counted in the class metrics;
    the MSE covers all pixels.

    Args:
      palette: the label classes (default: Cityscapes).
    """

    def __init__(self, palette: Palette | None = None):
        self.palette = _palette(palette)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._ignored = 0
        # int64 [K, K]: counted pixels by (ground-truth, predicted) train id.
        k = len(self.palette.evaluated)
        self._confusion = np.zeros((k, k), np.int64)

    def update(self, predicted, target) -> None:
        """Adds a batch: predicted and ground-truth label maps, float [N, H, W, 3] in
        [0, 1] of the same shape."""
        predicted, target = _check_label_maps(predicted, target)
        super().update(predicted, target)

        predicted_ids, target_ids = (
            ids.numpy().ravel() for ids in _snapper(self.palette)(predicted, target)
        )
        counted = ~self.palette.full_ignored()[target_ids]
        self._ignored += int(target_ids.size - np.count_nonzero(counted))
        # Counted targets are indices < K, i.e. train ids, comparable to predictions.
        k = len(self._confusion)
        pairs = target_ids[counted].astype(np.int64) * k + predicted_ids[counted]
        self._confusion += np.bincount(pairs, minlength=k * k).reshape(k, k)

    def confusion_matrix(self) -> np.ndarray:
        """int64 [K, K]: counted pixels of ground-truth train id (row) predicted as
        train id (column), over all batches so far."""
        return self._confusion.copy()

    def result(self) -> dict:
        """Metrics over all batches so far.

        Returns:
          mse: mean squared error over all pixels and channels, RGB in [0, 1] (so in
            [0, 1]).
          pixel_accuracy: correct / evaluated_pixels in [0, 1].
          mean_class_accuracy: the mean of class_accuracy over the classes present in
            the ground truth.
          mean_iou: the mean of iou over the classes present in the ground truth or
            the prediction.
          (all three None without evaluated pixels)
          evaluated_pixels, ignored_pixels: ground-truth pixels of evaluated and of
            ignored colours.
          num_images: label maps seen.
          class_accuracy/<name>: for every evaluated class in palette order, its
            correct pixels / its ground-truth pixels, None where it does not occur.
          iou/<name>: for every evaluated class, the intersection over union of its
            ground-truth and predicted pixels (confusion matrix: diagonal / (row sum +
            column sum - diagonal)), None where it occurs in neither.
        """
        mean_squared_error = super().result()  # raises before the first update
        confusion = self._confusion
        hits = np.diag(confusion)
        truth, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
        union = truth + predicted - hits
        accuracy = [int(h) / int(t) if t else None for h, t in zip(hits, truth)]
        iou = [int(h) / int(u) if u else None for h, u in zip(hits, union)]
        evaluated, correct = int(truth.sum()), int(hits.sum())
        names = self.palette.evaluated_names()
        return {
            **mean_squared_error,
            "pixel_accuracy": correct / evaluated if evaluated else None,
            "mean_class_accuracy": _mean(accuracy),
            "mean_iou": _mean(iou),
            "evaluated_pixels": evaluated,
            "ignored_pixels": self._ignored,
            **{f"class_accuracy/{name}": value for name, value in zip(names, accuracy)},
            **{f"iou/{name}": value for name, value in zip(names, iou)},
        }


def segmentation_metrics(predicted, target, palette: Palette | None = None) -> dict:
    """SegmentationMetrics(palette).result() of one batch of float [N, H, W, 3] label
    maps."""
    metrics = SegmentationMetrics(palette)
    metrics.update(predicted, target)
    return metrics.result()
