"""Model windows: covering a spectrogram, cutting and stitching, in NumPy and TF ops."""

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.audio import windows


@pytest.mark.parametrize(
    "num_frames, starts",
    [(0, [0]), (1, [0]), (100, [0]), (128, [0]), (129, [0, 1]), (256, [0, 128]),
     (300, [0, 128, 172])],
)
def test_window_starts(num_frames, starts):
    assert windows.window_starts(num_frames) == starts


@pytest.mark.parametrize("num_frames", [1, 50, 128, 129, 300, 700])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_stitched_mask_equals_a_pointwise_predictor_everywhere(num_frames, batch_size):
    # A predictor that works per bin must give the same mask as applying it to the
    # whole spectrogram: any window offset, transposition or overlap error shows.
    log_spec = np.random.default_rng(num_frames).uniform(0, 3, (num_frames, 256))
    log_spec = log_spec.astype(np.float32)
    calls = []

    def pointwise(batch):
        calls.append(batch.shape)
        return batch / (1.0 + batch)

    mask = windows.predict_full_mask(log_spec, pointwise, batch_size=batch_size)
    np.testing.assert_allclose(mask, log_spec / (1.0 + log_spec), rtol=1e-6)
    assert all(shape[1:] == (256, 128, 1) and shape[0] <= batch_size for shape in calls)
    assert sum(shape[0] for shape in calls) == len(windows.window_starts(num_frames))


def test_bad_predictor_outputs_are_rejected():
    log_spec = np.zeros((10, 256), np.float32)
    with pytest.raises(ValueError, match=r"shape \(1, 256, 128\)"):
        windows.predict_full_mask(log_spec, lambda w: w[..., 0])
    with pytest.raises(ValueError, match=r"not \[0, 1\]"):
        windows.predict_full_mask(log_spec, lambda w: w + 2.0)
    with pytest.raises(ValueError, match="NaN"):
        windows.predict_full_mask(log_spec, lambda w: w * np.nan)


@pytest.mark.parametrize("num_frames", [1, 50, 128, 129, 300, 700])
def test_tf_mask_equals_the_numpy_mask(num_frames):
    # Two songs at once, batches that do not divide the window count: the graph's
    # window layout, batching and stitching must match `predict_full_mask` exactly.
    log_spec = np.random.default_rng(num_frames).uniform(0, 3, (2, num_frames, 16))
    log_spec = log_spec.astype(np.float32)
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32)[:, None, None]

    def by_bin_and_value(batch):  # differs per bin, so a transposition shows
        return batch / (1.0 + batch) * ramp

    got = windows.predict_full_mask_tf(tf.constant(log_spec), by_bin_and_value, batch_size=3)
    for song in range(2):
        expected = windows.predict_full_mask(log_spec[song], by_bin_and_value, batch_size=3)
        np.testing.assert_array_equal(got[song].numpy(), expected)
