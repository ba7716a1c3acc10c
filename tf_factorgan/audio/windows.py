"""Spectrograms cut into model windows and masks stitched back, in NumPy and in TF ops.

The masking U-Net sees windows of WINDOW_FRAMES (128) frames: float32 [B, bins, 128, 1]
log1p magnitudes, frequency x frames, as it was trained on snippets of that width
(`data/musdb.py`). A whole song is covered by non-overlapping windows from frame 0 plus,
when they stop short of the last frame, one window aligned to the end
(`window_starts`); each window's mask is written back, the end-aligned one adding only
the frames no earlier window wrote.

`predict_full_mask` does this in NumPy for `separation.separate` (a Python callable as
predictor, a few windows at a time); `predict_full_mask_tf` does the same in TF ops for
`separation.separate_in_graph` and exported SavedModels. Both give the same mask.
"""

from typing import Callable

import numpy as np
import tensorflow as tf

# Frames per model input window: the U-Net's input width and the training snippets'.
WINDOW_FRAMES = 128
# The sources a mixture is split into, in the order they are reported (SiSEC's: vocals
# first). A mask m is the accompaniment's share of each bin; the vocals get 1 - m.
SOURCES = ("vocals", "accompaniment")
VOCALS, ACCOMPANIMENT = SOURCES

MaskPredictor = Callable[[np.ndarray], np.ndarray]


# --- NumPy ------------------------------------------------------------------------


def window_starts(num_frames: int, length: int = WINDOW_FRAMES) -> list[int]:
    """First frames of the windows that cover `num_frames` frames.

    Non-overlapping windows of `length` frames from frame 0; when they do not end
    exactly at the last frame, one more window is aligned to the end (it overlaps its
    predecessor). A spectrogram of at most `length` frames is one window at 0 (shorter
    ones are zero-padded by `cut_windows`). Example: 300 frames -> [0, 128, 172].
    """
    if num_frames < 0 or length < 1:
        raise ValueError(
            f"window_starts needs num_frames >= 0 and length >= 1, got {num_frames}, {length}"
        )
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, length))
    if starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    return starts


def cut_windows(
    frames: np.ndarray, starts: list[int], length: int = WINDOW_FRAMES
) -> np.ndarray:
    """frames [num_frames, bins] -> model windows float32 [len(starts), bins, length, 1].

    Windows run past the end only when num_frames < length; the missing frames are 0
    (silence in log1p magnitudes).
    """
    windows = np.zeros((len(starts), frames.shape[1], length, 1), np.float32)
    for i, start in enumerate(starts):
        chunk = frames[start : start + length]
        windows[i, :, : chunk.shape[0], 0] = chunk.T
    return windows


def stitch_windows(
    windows: np.ndarray, starts: list[int], out: np.ndarray, covered: int
) -> int:
    """Writes windows [B, bins, length, 1] into out [num_frames, bins] in order.

    Of each window only the frames from `covered` (the first frame no earlier window
    wrote) on are used, so the end-aligned last window adds just its new frames.
    Returns the new `covered`.
    """
    num_frames, length = out.shape[0], windows.shape[2]
    for window, start in zip(windows, starts):
        end = min(start + length, num_frames)
        if end > covered:
            out[covered:end] = window[:, covered - start : end - start, 0].T
            covered = end
    return covered


def predict_full_mask(
    log_spec: np.ndarray, predict_mask: MaskPredictor, batch_size: int = 16
) -> np.ndarray:
    """log1p magnitudes [frames, bins] -> mask float32 [frames, bins] in [0, 1].

    `predict_mask` maps windows float32 [B, bins, 128, 1] to masks of the same shape in
    [0, 1]; it is called on consecutive batches of at most `batch_size` windows in the
    order of `window_starts`, each window once. Only one batch of windows exists at a
    time, so memory stays small for long tracks.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num_frames = log_spec.shape[0]
    starts = window_starts(num_frames)
    mask = np.empty(log_spec.shape, np.float32)
    covered = 0
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        windows = cut_windows(log_spec, batch_starts)
        masks = _checked_mask(predict_mask(windows), windows.shape)
        covered = stitch_windows(masks, batch_starts, mask, covered)
    return mask


def _checked_mask(masks, shape) -> np.ndarray:
    """The predictor's output as float32 `shape`, checked to be finite and in [0, 1]."""
    masks = np.asarray(masks, dtype=np.float32)
    if masks.shape != tuple(shape):
        raise ValueError(
            f"predict_mask returned shape {masks.shape} for windows of shape {tuple(shape)}"
        )
    if not np.all(np.isfinite(masks)):
        raise ValueError("predict_mask returned NaN or infinite mask values")
    # A little slack for rounding in a sigmoid or a float16 model.
    low, high = float(masks.min()), float(masks.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"predict_mask returned values in [{low}, {high}], not [0, 1]")
    return np.clip(masks, 0.0, 1.0)


# --- TF ops (exported SavedModels) ------------------------------------------------


def _window_layout_tf(num_frames) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`window_starts` for a scalar int32 tensor: (starts int32 [num_windows], the
    number of full windows from frame 0, the frames the end-aligned window adds)."""
    covered = tf.maximum(num_frames, WINDOW_FRAMES)
    num_full = covered // WINDOW_FRAMES
    remainder = covered - num_full * WINDOW_FRAMES
    # One end-aligned window more when the full ones stop short of the last frame.
    starts = tf.concat([
        tf.range(num_full) * WINDOW_FRAMES,
        tf.fill([tf.minimum(remainder, 1)], covered - WINDOW_FRAMES),
    ], 0)
    return starts, num_full, remainder


def predict_full_mask_tf(
    log_spec, predict_mask: Callable[[tf.Tensor], tf.Tensor], batch_size: int
) -> tf.Tensor:
    """log1p magnitudes float32 [N, T, F] -> mask float32 [N, T, F] in [0, 1]:
    `predict_full_mask` in TF ops, for N songs of T frames at once.

    `predict_mask` is a TF function windows float32 [B, F, 128, 1] -> masks of the same
    shape (accompaniment share), called on `batch_size` windows at a time; its output
    is clipped to [0, 1] where `predict_full_mask` checks it.
    """
    batch, num_frames = tf.shape(log_spec)[0], tf.shape(log_spec)[1]
    bins = log_spec.shape[-1]
    starts, num_full, remainder = _window_layout_tf(num_frames)
    num_windows = tf.size(starts)
    # Songs shorter than a window are zero-padded (silence in log1p), as in cut_windows.
    padded = tf.pad(log_spec, [[0, 0], [0, tf.maximum(WINDOW_FRAMES - num_frames, 0)], [0, 0]])
    windows = tf.gather(padded, starts[:, None] + tf.range(WINDOW_FRAMES), axis=1)  # [N, W, 128, F]
    windows = tf.reshape(tf.transpose(windows, [0, 1, 3, 2]), [-1, bins, WINDOW_FRAMES, 1])
    masks = _in_batches_tf(predict_mask, windows, batch_size)
    masks = tf.reshape(masks, [batch, num_windows, bins, WINDOW_FRAMES])
    masks = tf.clip_by_value(tf.transpose(masks, [0, 1, 3, 2]), 0.0, 1.0)  # [N, W, 128, F]
    # The full windows in order, then only the new frames of the end-aligned one.
    body = tf.reshape(masks[:, :num_full], [batch, -1, bins])
    tail = tf.reshape(masks[:, num_full:], [batch, -1, bins])[:, WINDOW_FRAMES - remainder :]
    return tf.concat([body, tail], axis=1)[:, :num_frames]


def _in_batches_tf(predict_mask, windows, batch_size: int) -> tf.Tensor:
    """predict_mask over windows [B, F, T, 1], `batch_size` at a time, one after the
    other (parallel_iterations=1 keeps only one batch's activations alive)."""
    count = tf.shape(windows)[0]
    # Short songs are one smaller batch, not a batch padded with silent windows.
    size = tf.maximum(tf.minimum(count, batch_size), 1)
    padded_count = (count + size - 1) // size * size
    windows = tf.pad(windows, [[0, padded_count - count], [0, 0], [0, 0], [0, 0]])
    batches = tf.reshape(windows, [-1, size, *windows.shape[1:]])
    masks = tf.map_fn(
        lambda batch: tf.cast(predict_mask(batch), tf.float32),
        batches,
        fn_output_signature=tf.TensorSpec([None, *windows.shape[1:]], tf.float32),
        parallel_iterations=1,
    )
    return tf.reshape(masks, [-1, *windows.shape[1:]])[:count]
