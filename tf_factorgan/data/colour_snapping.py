"""Label maps saved lossily (JPEG, as the public pix2pix Cityscapes set): each pixel
moved to the nearest palette colour, if it lies near enough.

JPEG blurs a label map's colours (in the 1 400 pix2pix Cityscapes training label maps we
measured, 86% of the pixels are off; the farthest lies 124 from its nearest colour, 746
pixels of 92 million beyond 100, at blurred class edges); the pix2pix presets snap them
when label maps enter the
networks (`label_encoding`). Folders snap them on decoding, when asked to
(`--snap_label_colours`, a distance): the nearest colour is the presets' own
(`eval.segmentation.nearest_colour` over `Palette.full_colours()`: squared Euclidean in
RGB, ties to the lower index), and a pixel farther than the distance from every
palette colour is not a label colour gone soft but a wrong file or a wrong palette,
and fails, naming the file.

Distances are Euclidean in RGB 0..255: sqrt(dr^2 + dg^2 + db^2); a level off in each
channel is 1.7, the largest possible 441.7.
"""

import functools

import numpy as np
import tensorflow as tf

from tf_factorgan.config import SettingError
from tf_factorgan.data.palette import Palette
from tf_factorgan.eval import segmentation

# How many far colours an error names.
_LISTED = 3


@functools.lru_cache(maxsize=None)
def _nearest(palette: Palette):
    """A graph (traced once per palette; the K-step walk is several times faster than
    eagerly) of float32 [H, W, 3] in [0, 1] -> int32 [H, W] full_colours() row."""
    colours = palette.full_colours()

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    def nearest(rgb):
        return segmentation.nearest_colour(rgb, colours)

    return nearest


def snap(rgb: np.ndarray, palette: Palette, max_distance: float, where: str) -> tuple[np.ndarray, int]:
    """Each pixel of a colour label map moved to its nearest palette colour.

    Args:
      rgb: uint8 [H, W, 3] colours in 0..255.
      palette: the label classes; every colour of every class counts (an ignored
        class's colour stays ignored).
      max_distance: the farthest a pixel may lie from its nearest palette colour
        (Euclidean, RGB 0..255), > 0.
      where: what the map is (a file path), named in errors.

    Returns:
      (uint8 [H, W, 3] palette colours only, how many pixels changed colour).

    Raises SettingError (naming `where`, how many pixels lie too far, the farthest
    colours and the setting) when any pixel lies farther than `max_distance`.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"{where}: a colour label map must be uint8 [H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    full = np.round(palette.full_colours() * 255).astype(np.uint8)
    index = _nearest(palette)(tf.constant(rgb, tf.float32) / 255.0).numpy()
    snapped = full[index]
    distance = np.sqrt(np.sum((rgb.astype(np.int32) - snapped.astype(np.int32)) ** 2, axis=-1))
    far = distance > max_distance
    if far.any():
        colours, first = np.unique(rgb[far], axis=0, return_index=True)
        far_distance = distance[far][first]
        order = np.argsort(-far_distance, kind="stable")[:_LISTED]
        listed = ", ".join(f"{tuple(int(c) for c in colours[i])} at {far_distance[i]:.0f}" for i in order)
        raise SettingError(
            f"{where}: {int(far.sum())} of {far.size} pixels lie farther than {{snap_label_colours}}="
            f"{max_distance:g} from every palette colour (farthest: {listed}); expected a label map in "
            f"the palette's colours, give or take compression")
    return snapped, int(np.count_nonzero(np.any(rgb != snapped, axis=-1)))
