"""Image grids for TensorBoard and PNG files."""

import numpy as np
import tensorflow as tf

from tf_factorgan import files


SEPARATOR = 0.5  # mid-grey: visible against black background and white strokes


def image_grid(
    images: np.ndarray, columns: int = 8, padding: int = 0, pad_value: float = SEPARATOR
) -> np.ndarray:
    """[N, H, W, C] in [0, 1] -> [rows * H, columns * W, C], row-major, blank-padded.

    With `padding` p > 0, every image is framed by p pixels of `pad_value` (p between
    neighbours, p at the edges): [rows * (H + p) + p, columns * (W + p) + p, C].
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    images = np.asarray(images, dtype=np.float32)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros([rows * columns, h, w, c], np.float32)
    padded[:n] = images
    if padding:
        p = padding
        framed = np.full([rows * columns, h + p, w + p, c], pad_value, np.float32)
        framed[:, p:, p:] = padded
        grid = image_grid(framed, columns)
        framed_grid = np.full([rows * (h + p) + p, columns * (w + p) + p, c], pad_value, np.float32)
        framed_grid[:-p, :-p] = grid
        return framed_grid
    return padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(
        rows * h, columns * w, c
    )


def write_png(path: str, image: np.ndarray) -> None:
    """Writes an [H, W, C] image in [0, 1] as PNG, atomically."""
    pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)
    files.write_bytes(path, tf.io.encode_png(pixels).numpy())
