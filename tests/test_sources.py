import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import layout
from tf_factorgan.data import sources
from tf_factorgan.factorisation import Variant


def _observations():
    # Paired sample n: a = n, b = 100 + n. Unpaired a: 50.., unpaired b: 200..
    paired_a = np.arange(3, dtype=np.float32).reshape(3, 1)
    unpaired_a = 50 + np.arange(4, dtype=np.float32).reshape(4, 1)
    unpaired_b = 200 + np.arange(6, dtype=np.float32).reshape(6, 1)
    return sources.Observations((paired_a, paired_a + 100), (unpaired_a, unpaired_b), ("a", "b"))


def _gather(stream, indices):
    return stream.make_gather(0)(tf.constant(indices, tf.int64)).numpy()


def test_marginal_streams_see_every_observation_once_and_the_joint_only_pairs():
    observations = _observations()
    result = sources.training_streams(observations, layout.layout(Variant.FACTORGAN, 2).streams)
    assert {key: s.num_items for key, s in result.items()} == {
        "joint": 3, "marginal_0": 7, "marginal_1": 9}
    np.testing.assert_array_equal(_gather(result["joint"], [2, 0]), [[2, 102], [0, 100]])
    every_a = _gather(result["marginal_0"], list(range(7))).ravel()
    np.testing.assert_array_equal(every_a, [0, 1, 2, 50, 51, 52, 53])
    every_b = _gather(result["marginal_1"], list(range(9))).ravel()
    np.testing.assert_array_equal(every_b, [100, 101, 102, 200, 201, 202, 203, 204, 205])


def test_the_gan_baseline_sees_only_the_paired_set():
    observations = _observations()
    streams = layout.layout(Variant.GAN, 2).streams
    assert sources.counts_by_stream(observations, streams) == {"joint": {"paired": 3, "unpaired": 0}}
    assert sources.training_streams(observations, streams)["joint"].num_items == 3
    conditional = layout.layout(Variant.FACTORGAN, 2, conditional=True).streams
    assert sources.counts_by_stream(observations, conditional) == {
        "joint": {"paired": 3, "unpaired": 0},
        "marginal_0": {"paired": 3, "unpaired": 4},
        "marginal_1": {"paired": 3, "unpaired": 6}}


def test_summary_counts_sources_and_paired_fractions():
    observations = _observations()
    assert observations.summary() == {
        "num_paired": 3, "num_unpaired_a": 4, "num_unpaired_b": 6,
        "paired_fraction_a": 3 / 7, "paired_fraction_b": 3 / 9}
    assert observations.describe() == "data: 3 paired samples, 4 unpaired a (1,), 6 unpaired b (1,)"


def test_from_aligned_keeps_the_first_rows_paired_without_copying():
    parts = [np.arange(10, dtype=np.uint8).reshape(10, 1), np.arange(10, 20, dtype=np.uint8).reshape(10, 1)]
    observations = sources.from_aligned(parts, 4, ("a", "b"))
    assert observations.num_paired == 4 and observations.num_unpaired(1) == 6
    marginal = observations.marginal_pool(1)
    assert np.shares_memory(marginal, parts[1])
    np.testing.assert_array_equal(marginal, parts[1])
    assert sources.from_aligned(parts, 10, ("a", "b")).unpaired == (None, None)
    with pytest.raises(ValueError, match=r"\[1, 10\], got 11"):
        sources.from_aligned(parts, 11, ("a", "b"))


def test_mismatched_pools_are_refused():
    a = np.zeros([3, 2], np.float32)
    with pytest.raises(ValueError, match="one row count"):
        sources.Observations((a, a[:2]), (None, None), ("a", "b"))
    with pytest.raises(ValueError, match=r"unpaired b rows have shape \(5,\), the paired ones \(2,\)"):
        sources.Observations((a, a), (None, np.zeros([4, 5])), ("a", "b"))


def _windows(image: np.ndarray, jitter: float) -> list[np.ndarray]:
    """Every crop of `image` [H, W, C] enlarged by 1 + jitter (nearest neighbour), by hand."""
    height, width = image.shape[:2]
    big_h, big_w = round(height * (1 + jitter)), round(width * (1 + jitter))
    enlarged = image[(np.arange(big_h) * height) // big_h][:, (np.arange(big_w) * width) // big_w]
    return [enlarged[top:top + height, left:left + width]
            for top in range(big_h - height + 1) for left in range(big_w - width + 1)]


@pytest.mark.parametrize("size, jitter, offsets", [(8, 0.25, 3), (16, 0.117, 3)])
def test_jitter_crops_every_window_of_the_enlarged_image_a_pair_together(size, jitter, offsets):
    # Every pixel its own value; channel 1 (the "label map") = channel 0 + 1000. 8 -> 10
    # and 16 -> 18 (round(17.87): an enlargement that is no whole ratio) leave 3 x 3 windows.
    photo = np.arange(size * size, dtype=np.float32).reshape(size, size, 1)
    pair = np.concatenate([photo, photo + 1000], axis=-1)
    rows = 400
    jittered = sources.jittered(lambda indices: tf.repeat(pair[None], tf.size(indices), axis=0), seed=3,
                                jitter=jitter)(tf.zeros([rows], tf.int64)).numpy()
    windows = _windows(pair, jitter)
    assert len(windows) == offsets ** 2
    matches = [[i for i, w in enumerate(windows) if np.array_equal(row, w)] for row in jittered]
    assert all(len(m) == 1 for m in matches)  # each row is exactly one window, both channels
    counts = np.bincount([m[0] for m in matches], minlength=len(windows))
    assert counts.min() > rows / len(windows) / 2  # every offset is drawn, near uniformly
    assert set(np.unique(jittered)) <= set(np.unique(pair))  # label values stay exact
    # The enlarged image loses no source row or column: the last window ends on the last.
    assert jittered[:, -1, -1, 0].max() == size * size - 1


def test_jitter_is_reproducible_from_the_stream_seed_and_keeps_the_mirror_flips():
    images = np.arange(2 * 8 * 8 * 2, dtype=np.float32).reshape(2, 8, 8, 2)
    observations = sources.Observations((images[..., :1], images[..., 1:]), (None, None), ("a", "b"))
    plain, jittered = (sources.training_streams(observations, {layout.JOINT: None}, mirror=True,
                                                jitter=jitter)[layout.JOINT] for jitter in (0.0, 0.125))
    indices = tf.constant([0, 1] * 16, tf.int64)
    first, again = (jittered.make_gather(5)(indices).numpy() for _ in range(2))
    np.testing.assert_array_equal(first, again)
    flipped = plain.make_gather(5)(indices).numpy()
    assert 0 < sum(not np.array_equal(f, images[i]) for f, i in zip(flipped, indices.numpy())) < 32
    # Each jittered row is a window of the same row as the stream without jitter
    # flipped it: adding jitter leaves a seed's flips as they were.
    for row, source in zip(first, flipped):
        assert any(np.array_equal(row, w) for w in _windows(source, 0.125))
    assert not np.array_equal(first, flipped)
