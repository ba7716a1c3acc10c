"""Image grids for TensorBoard and PNG files."""

import numpy as np
import tensorflow as tf

from tf_factorgan import files


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """[N, H, W, C] in [0, 1] -> [rows * H, columns * W, C], row-major, blank-padded."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    padded = np.zeros([rows * columns, h, w, c], np.float32)
    padded[:n] = images
    return padded.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(
        rows * h, columns * w, c
    )


def write_png(path: str, image: np.ndarray) -> None:
    """Writes an [H, W, C] image in [0, 1] as PNG, atomically."""
    pixels = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)
    files.write_bytes(path, tf.io.encode_png(pixels).numpy())
