"""How label maps enter the networks (`--label_encoding`).

  rgb      the FactorGAN paper's form: the colour image in [0, 1], 3 channels; a
           generator regresses colours (sigmoid) and a pixel's class is its nearest
           evaluated colour (`eval.segmentation.train_ids`). Blends of two colours
           snap to a third class, and regression losses pull outputs towards blends.
  one_hot  one channel per evaluated class of the palette, plus one "void" channel
           for the colours of ignored classes when the palette has any (the usual
           form of adversarial segmentation, e.g. Luc et al. 2016): real maps are
           one-hot, a generator outputs class probabilities (softmax), and a pixel's
           class is its most probable evaluated class.

Label maps on disk stay colour images (uint8 pools); `encode` turns a batch of colours
into the networks' form inside the input pipeline. Colours snap to the nearest palette
colour, so the JPEG label maps of the pix2pix Cityscapes set encode to their classes.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tf_factorgan.config import SettingError
from tf_factorgan.data.palette import Palette
from tf_factorgan.eval import segmentation

RGB = "rgb"
ONE_HOT = "one_hot"
ENCODINGS = (RGB, ONE_HOT)


@dataclasses.dataclass(frozen=True)
class LabelEncoding:
    """The form of the label maps of `palette` (K evaluated classes)."""

    palette: Palette
    kind: str = RGB

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise SettingError(f"{{label_encoding}} must be one of {', '.join(ENCODINGS)}, got {self.kind!r}")

    @property
    def num_classes(self) -> int:
        """K, the evaluated classes."""
        return len(self.palette.evaluated)

    @property
    def has_void(self) -> bool:
        """Whether one-hot maps carry a channel for ignored colours (index K)."""
        return len(self.palette.full_colours()) > self.num_classes

    @property
    def channels(self) -> int:
        """3 (rgb), or K (+ 1 void) (one_hot)."""
        return 3 if self.kind == RGB else self.num_classes + int(self.has_void)

    @property
    def output_activation(self) -> str:
        """A generator's output of label maps in this form: colours or probabilities."""
        return "sigmoid" if self.kind == RGB else "softmax"

    def encode(self, rgb) -> tf.Tensor:
        """float [..., 3] colours in [0, 1] -> float32 [..., channels]: the same colours
        (rgb), or the one-hot map of each pixel's nearest palette colour's class, void
        for the colours of ignored classes (one_hot). TF ops only (input pipelines)."""
        rgb = tf.cast(rgb, tf.float32)
        if self.kind == RGB:
            return rgb
        # full_colours() lists the K evaluated colours first: an index >= K is void.
        nearest = segmentation.nearest_colour(rgb, self.palette.full_colours())
        return tf.one_hot(tf.minimum(nearest, self.num_classes), self.channels, dtype=tf.float32)

    def train_ids(self, maps) -> tf.Tensor:
        """float [..., channels] maps -> int32 [...] index 0..K-1 of each pixel's class:
        the nearest evaluated colour (rgb) or the most probable evaluated class (one_hot;
        void never wins, as every evaluated pixel counts)."""
        maps = tf.cast(maps, tf.float32)
        if self.kind == RGB:
            return segmentation.train_ids(maps, self.palette)
        return tf.argmax(maps[..., : self.num_classes], axis=-1, output_type=tf.int32)

    def to_rgb(self, maps) -> tf.Tensor:
        """float [..., channels] maps -> float32 [..., 3] colours in [0, 1] to show and
        score them: the colours themselves (rgb), or each pixel's class colour (one_hot)."""
        if self.kind == RGB:
            return tf.clip_by_value(tf.cast(maps, tf.float32), 0.0, 1.0)
        return segmentation.colourise(self.train_ids(maps), self.palette)

    def class_probabilities(self, maps) -> tf.Tensor:
        """float [..., K + 1] one-hot form maps -> float32 [..., K]: the evaluated
        classes' probabilities, renormalised without void."""
        if self.kind != ONE_HOT:
            raise SettingError("class probabilities need {label_encoding}=one_hot")
        evaluated = tf.cast(maps, tf.float32)[..., : self.num_classes]
        return evaluated / tf.maximum(tf.reduce_sum(evaluated, axis=-1, keepdims=True), 1e-12)


def encode_numpy(encoding: LabelEncoding, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """uint8 [N, H, W, 3] label maps -> float32 [N, H, W, channels], in batches."""
    return np.concatenate([
        encoding.encode(np.asarray(images[i: i + batch_size], np.float32) / 255.0).numpy()
        for i in range(0, len(images), batch_size)
    ]) if len(images) else np.zeros((0, *images.shape[1:3], encoding.channels), np.float32)
