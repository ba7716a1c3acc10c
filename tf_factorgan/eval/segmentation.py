"""Cityscapes colour label maps: the label table, colour snapping and pixel accuracy.

The FactorGAN Cityscapes experiments generate segmentation label maps as RGB images
in [0, 1]. A pixel's class is the class of the nearest palette colour (squared
Euclidean distance in RGB [0, 1]); ties go to the lower palette index.

The label table is the one of the Cityscapes dataset's reference scripts
(cityscapesScripts, `cityscapesscripts/helpers/labels.py`): 34 ids 0..33 plus
'license plate' (id -1), of which 19 classes have train ids 0..18 and are evaluated; the
others (train id 255, or -1 for the license plate) are ignored.

Two colours are shared between an evaluated and an ignored class: car and license plate
are both (0, 0, 142), pole and polegroup both (153, 153, 153). A shared colour belongs
to the evaluated class here, so car and pole ground-truth pixels count. The original
FactorGAN code treated every colour of an ignored class as ignored and thereby dropped
car and pole from its evaluation; we do not.

Pixel accuracy pools all counted pixels of all images (correct / counted); the original
code averaged per-image accuracies per batch and then over batches.

Palettes are float32 in [0, 1] (the 0..255 colours divided by 255).
"""

import dataclasses

import numpy as np
import tensorflow as tf

NUM_EVALUATED_CLASSES = 19
# Train id of the classes that are not evaluated (the license plate has -1 instead).
IGNORE_TRAIN_ID = 255


@dataclasses.dataclass(frozen=True)
class CityscapesClass:
    """One row of the Cityscapes label table.

    name: class name; id: label id (-1 for the license plate); train_id: 0..18 for the
    evaluated classes, 255 (or -1) for ignored ones; colour: (r, g, b) in 0..255.
    """

    name: str
    id: int
    train_id: int
    colour: tuple[int, int, int]

    @property
    def evaluated(self) -> bool:
        return 0 <= self.train_id < NUM_EVALUATED_CLASSES


# Source: cityscapesScripts, cityscapesscripts/helpers/labels.py (name, id, trainId,
# color columns).
CITYSCAPES_CLASSES = (
    CityscapesClass("unlabeled", 0, 255, (0, 0, 0)),
    CityscapesClass("ego vehicle", 1, 255, (0, 0, 0)),
    CityscapesClass("rectification border", 2, 255, (0, 0, 0)),
    CityscapesClass("out of roi", 3, 255, (0, 0, 0)),
    CityscapesClass("static", 4, 255, (0, 0, 0)),
    CityscapesClass("dynamic", 5, 255, (111, 74, 0)),
    CityscapesClass("ground", 6, 255, (81, 0, 81)),
    CityscapesClass("road", 7, 0, (128, 64, 128)),
    CityscapesClass("sidewalk", 8, 1, (244, 35, 232)),
    CityscapesClass("parking", 9, 255, (250, 170, 160)),
    CityscapesClass("rail track", 10, 255, (230, 150, 140)),
    CityscapesClass("building", 11, 2, (70, 70, 70)),
    CityscapesClass("wall", 12, 3, (102, 102, 156)),
    CityscapesClass("fence", 13, 4, (190, 153, 153)),
    CityscapesClass("guard rail", 14, 255, (180, 165, 180)),
    CityscapesClass("bridge", 15, 255, (150, 100, 100)),
    CityscapesClass("tunnel", 16, 255, (150, 120, 90)),
    CityscapesClass("pole", 17, 5, (153, 153, 153)),
    CityscapesClass("polegroup", 18, 255, (153, 153, 153)),
    CityscapesClass("traffic light", 19, 6, (250, 170, 30)),
    CityscapesClass("traffic sign", 20, 7, (220, 220, 0)),
    CityscapesClass("vegetation", 21, 8, (107, 142, 35)),
    CityscapesClass("terrain", 22, 9, (152, 251, 152)),
    CityscapesClass("sky", 23, 10, (70, 130, 180)),
    CityscapesClass("person", 24, 11, (220, 20, 60)),
    CityscapesClass("rider", 25, 12, (255, 0, 0)),
    CityscapesClass("car", 26, 13, (0, 0, 142)),
    CityscapesClass("truck", 27, 14, (0, 0, 70)),
    CityscapesClass("bus", 28, 15, (0, 60, 100)),
    CityscapesClass("caravan", 29, 255, (0, 0, 90)),
    CityscapesClass("trailer", 30, 255, (0, 0, 110)),
    CityscapesClass("train", 31, 16, (0, 80, 100)),
    CityscapesClass("motorcycle", 32, 17, (0, 0, 230)),
    CityscapesClass("bicycle", 33, 18, (119, 11, 32)),
    CityscapesClass("license plate", -1, -1, (0, 0, 142)),
)

# The evaluated classes ordered by train id: EVALUATED_CLASSES[k].train_id == k.
EVALUATED_CLASSES = tuple(
    sorted((c for c in CITYSCAPES_CLASSES if c.evaluated), key=lambda c: c.train_id)
)
EVALUATED_CLASS_NAMES = tuple(c.name for c in EVALUATED_CLASSES)


def _full_colours() -> list[tuple[int, int, int]]:
    """Distinct colours: the 19 evaluated ones by train id, then the colours used only
    by ignored classes in table order (a colour shared with an evaluated class is that
    class's)."""
    colours = [c.colour for c in EVALUATED_CLASSES]
    for cls in CITYSCAPES_CLASSES:
        if cls.colour not in colours:
            colours.append(cls.colour)
    return colours


# float32 [19, 3] in [0, 1]; row k is the colour of train id k.
EVALUATED_PALETTE = np.array(
    [c.colour for c in EVALUATED_CLASSES], dtype=np.float32
) / np.float32(255)
# float32 [K, 3] in [0, 1], the distinct colours of all classes (K = 29). The first 19
# rows are EVALUATED_PALETTE, so an index below 19 is a train id.
FULL_PALETTE = np.array(_full_colours(), dtype=np.float32) / np.float32(255)
# bool [K]: whether a FULL_PALETTE colour is ignored in the evaluation.
FULL_PALETTE_IGNORED = np.arange(len(FULL_PALETTE)) >= NUM_EVALUATED_CLASSES

# Two evaluated classes with one colour would make train ids ambiguous.
assert len(EVALUATED_CLASSES) == NUM_EVALUATED_CLASSES
assert [c.train_id for c in EVALUATED_CLASSES] == list(range(NUM_EVALUATED_CLASSES))
assert len(set(c.colour for c in EVALUATED_CLASSES)) == NUM_EVALUATED_CLASSES


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


def train_ids(label_rgb) -> tf.Tensor:
    """float [..., 3] label map in [0, 1] -> tf.int32 [...] Cityscapes train ids 0..18
    of the nearest evaluated colour (every pixel gets an evaluated class)."""
    return nearest_colour(label_rgb, EVALUATED_PALETTE)


def colourise(train_ids) -> tf.Tensor:
    """int [...] train ids in 0..18 -> float32 [..., 3] in [0, 1] colours of those
    classes: the inverse of `train_ids` on the evaluated palette.

    Out-of-range ids fail a tf.debugging assertion (eagerly, or when the graph runs).
    """
    ids = tf.convert_to_tensor(train_ids)
    if not ids.dtype.is_integer:
        raise ValueError(f"train_ids must be integers, got dtype {ids.dtype.name}")
    ids = tf.cast(ids, tf.int32)
    tf.debugging.assert_non_negative(ids, message="train ids must be >= 0")
    tf.debugging.assert_less(
        ids,
        tf.constant(NUM_EVALUATED_CLASSES, tf.int32),
        message=f"train ids must be < {NUM_EVALUATED_CLASSES}",
    )
    return tf.gather(tf.constant(EVALUATED_PALETTE), ids)


# Traced once: a graph runs the K-step colour walk about four times faster than eager.
@tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)] * 2)
def _snap(predicted, target) -> tuple[tf.Tensor, tf.Tensor]:
    """float32 [N, H, W, 3] maps -> (train ids of predicted, FULL_PALETTE indices of
    target), both tf.int32 [N, H, W]."""
    return train_ids(predicted), nearest_colour(target, FULL_PALETTE)


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


class SegmentationMetrics:
    """Accumulates MSE and pixel accuracy of predicted Cityscapes label maps.

    A predicted pixel is snapped to the nearest of the 19 evaluated colours, a
    ground-truth pixel to the nearest FULL_PALETTE colour. Ground-truth pixels whose
    colour is ignored are not counted in the accuracies; the MSE covers all pixels.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._squared_error = 0.0  # float64 sum over pixels and channels
        self._values = 0
        self._num_images = 0
        self._ignored = 0
        # int64 [19]: counted ground-truth pixels and correct predictions per train id.
        self._counted = np.zeros(NUM_EVALUATED_CLASSES, np.int64)
        self._correct = np.zeros(NUM_EVALUATED_CLASSES, np.int64)

    def update(self, predicted, target) -> None:
        """Adds a batch: predicted and ground-truth label maps, float [N, H, W, 3] in
        [0, 1] of the same shape."""
        predicted, target = _check_label_maps(predicted, target)
        self._squared_error += float(
            np.sum(np.square(predicted - target), dtype=np.float64)
        )
        self._values += predicted.size
        self._num_images += predicted.shape[0]

        predicted_ids, target_ids = (
            ids.numpy().ravel() for ids in _snap(predicted, target)
        )
        counted = ~FULL_PALETTE_IGNORED[target_ids]
        self._ignored += int(target_ids.size - np.count_nonzero(counted))
        # Counted targets are indices < 19, i.e. train ids, comparable to predictions.
        target_ids = target_ids[counted]
        hits = target_ids[predicted_ids[counted] == target_ids]
        self._counted += np.bincount(target_ids, minlength=NUM_EVALUATED_CLASSES)
        self._correct += np.bincount(hits, minlength=NUM_EVALUATED_CLASSES)

    def result(self) -> dict:
        """Metrics over all batches so far.

        Returns:
          mse: mean squared error over all pixels and channels, RGB in [0, 1] (so in
            [0, 1]).
          pixel_accuracy: correct / evaluated_pixels in [0, 1], None without evaluated
            pixels.
          evaluated_pixels, ignored_pixels: ground-truth pixels of evaluated and of
            ignored colours.
          num_images: label maps seen.
          class_accuracy: {class name: accuracy over its ground-truth pixels, or None
            where the class does not occur} for the 19 evaluated classes, in train id
            order.
        """
        if not self._num_images:
            raise ValueError("no label maps yet: call update() before result()")
        evaluated = int(self._counted.sum())
        correct = int(self._correct.sum())
        return {
            "mse": self._squared_error / self._values,
            "pixel_accuracy": correct / evaluated if evaluated else None,
            "evaluated_pixels": evaluated,
            "ignored_pixels": self._ignored,
            "num_images": self._num_images,
            "class_accuracy": {
                name: (int(hit) / int(count) if count else None)
                for name, hit, count in zip(
                    EVALUATED_CLASS_NAMES, self._correct, self._counted
                )
            },
        }


def segmentation_metrics(predicted, target) -> dict:
    """SegmentationMetrics.result() of one batch of float [N, H, W, 3] label maps."""
    metrics = SegmentationMetrics()
    metrics.update(predicted, target)
    return metrics.result()
