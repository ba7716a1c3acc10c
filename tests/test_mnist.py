import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import synthetic_digits
from tf_factorgan.data import mnist, streams
from tf_factorgan.experiments import paired_mnist


def test_pairing_respects_lambda_statistically():
    labels = np.random.default_rng(0).integers(0, 10, size=20000)
    probs = np.bincount(labels, minlength=10) / len(labels)
    for lam in (0.0, 0.5, 0.9, 1.0):
        pairs = mnist.pair_digits(labels, lam, seed=1)
        np.testing.assert_array_equal(pairs[:, 0], np.arange(len(labels)))
        same = np.mean(labels[pairs[:, 0]] == labels[pairs[:, 1]])
        # Kept with prob. lambda, else drawn from the label distribution (which can
        # also hit the same label).
        expected = lam + (1 - lam) * np.sum(probs**2)
        assert abs(same - expected) < 0.015, (lam, same, expected)


def test_pairing_is_fixed_by_its_seed():
    labels = np.arange(100) % 10
    np.testing.assert_array_equal(mnist.pair_digits(labels, 0.5, 3), mnist.pair_digits(labels, 0.5, 3))
    assert not np.array_equal(mnist.pair_digits(labels, 0.5, 3), mnist.pair_digits(labels, 0.5, 4))


def test_lambda_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"same_digit_prob must lie in \[0, 1\]"):
        mnist.pair_digits(np.zeros(5, int), 1.5, 0)


def test_joint_set_uses_exactly_the_first_num_joint_samples_digits():
    train, test = synthetic_digits(500, 1), synthetic_digits(50, 2)
    config = paired_mnist.PairedMnistConfig(num_joint_samples=37)
    data = paired_mnist.build_data(config, train, test)
    assert len(data.joint) == 37 and len(data.full) == 500 and len(data.test) == 50
    assert data.joint.pairs.max() < 37  # lower digits come from the same subset
    samples = data.joint.samples()
    assert samples.shape == (37, 1568) and 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_allclose(samples[:, :784] * 255, train.images[:37].reshape(37, -1), atol=1e-3)


def test_pair_gatherer_yields_pairs_and_parts():
    paired = mnist.PairedDigits.build(synthetic_digits(40, 3), 0.5, 0)
    indices = next(iter(streams.index_batches(len(paired), 8, seed=0)))
    whole = mnist.pair_gatherer(paired)(indices)
    lower = mnist.pair_gatherer(paired, part=1)(indices)
    assert whole.shape == (8, 1568) and lower.shape == (8, 784)
    np.testing.assert_allclose(whole[:, 784:], lower)
    rows = {tuple(np.round(r * 255).astype(int)) for r in paired.samples()}
    assert all(tuple(np.round(r * 255).astype(int)) in rows for r in whole.numpy())


def test_incomplete_manual_dir_names_path_files_and_flag(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_mnist("train", manual_dir=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path) in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "(from mnist_manual_dir)" in message and "(from --mnist_manual_dir)" in info.value.as_flags()


def test_official_files_load_offline_in_the_files_order(mnist_dir):
    train = mnist.load_mnist("train", manual_dir=mnist_dir)
    test = mnist.load_mnist("test", manual_dir=mnist_dir)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    # The files' order, which the original code reads (torchvision): its paired set of
    # 100 is the first 100 training digits, with these label counts.
    np.testing.assert_array_equal(train.labels[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(test.labels[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(train.labels[:100]), [13, 14, 6, 11, 11, 5, 11, 10, 8, 11])


def _write_idx(path, magic, shape, values):
    import gzip

    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(values))


def _mnist_folder(folder, train, test):
    for prefix, digits in (("train", train), ("t10k", test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 0x803, digits.images.shape, digits.images.tobytes())
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 0x801, digits.labels.shape,
                   digits.labels.astype(np.uint8).tobytes())


def test_download_fetches_the_official_files_once_then_reads_them(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    source = tmp_path / "server"
    source.mkdir()
    train, test = synthetic_digits(30, 1), synthetic_digits(20, 2)
    _mnist_folder(source, train, test)
    requests = []

    class FakeManager:
        def __init__(self, download_dir):
            assert download_dir.startswith(str(tmp_path / "tfds"))

        def download(self, urls):
            requests.append(sorted(urls.values()))
            return {name: str(source / url.rsplit("/", 1)[1]) for name, url in urls.items()}

    monkeypatch.setattr(tfds.download, "DownloadManager", FakeManager)
    for _ in range(2):
        loaded = mnist.load_mnist("train", data_dir=str(tmp_path / "tfds"))
        np.testing.assert_array_equal(loaded.images, train.images)
        np.testing.assert_array_equal(loaded.labels, train.labels)
    assert requests == [sorted(mnist.OFFICIAL_URL + name for name in mnist.MNIST_FILES)]
    assert sorted(os.listdir(tmp_path / "tfds" / "downloads" / "mnist")) == sorted(mnist.MNIST_FILES)


def test_a_file_that_is_not_official_mnist_is_named(tmp_path):
    train, test = synthetic_digits(30, 1), synthetic_digits(20, 2)
    _mnist_folder(tmp_path, train, test)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    _write_idx(labels, 0x801, (19,), test.labels[:19].astype(np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz is not an official MNIST file of "
                                         r"shape \(20,\).*shape \(19,\)"):
        mnist.load_mnist("test", manual_dir=str(tmp_path))
    labels.write_bytes(b"plain text")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz is not a readable gzip file"):
        mnist.load_mnist("test", manual_dir=str(tmp_path))
    np.testing.assert_array_equal(mnist.load_mnist("train", manual_dir=str(tmp_path)).labels, train.labels)


def _indexed_digits(labels):
    """Digits whose first two pixels spell their own index, so gathered samples can be
    traced back to the images they came from."""
    n = len(labels)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return mnist.Digits(images, np.asarray(labels, np.int64))


def _image_index(flat_digit):
    pixels = np.round(np.asarray(flat_digit) * 255).astype(np.int64)
    return pixels[:, 0] + 256 * pixels[:, 1]


def test_redrawn_pairing_draws_new_lower_digits_with_lambda_statistics():
    labels = np.random.default_rng(3).integers(0, 10, size=2000)
    paired = mnist.PairedDigits.build(_indexed_digits(labels), 0.9, seed=0)
    probs = np.bincount(labels, minlength=10) / len(labels)
    upper = tf.constant(np.tile(np.arange(50), 200), tf.int64)  # each item 200 times
    gather = mnist.pair_gatherer(paired, None, mnist.REDRAW_EACH_EPOCH, 0.9, seed=5)
    samples = gather(upper).numpy()
    up, low = _image_index(samples[:, :784]), _image_index(samples[:, 784:])
    np.testing.assert_array_equal(up, upper.numpy())  # upper digits stay
    assert low.max() < len(labels)  # lower digits from the same set
    same = np.mean(labels[up] == labels[low])
    assert abs(same - (0.9 + 0.1 * np.sum(probs**2))) < 0.02
    # Item 0's partners vary from draw to draw; a fixed pairing never changes.
    assert len(set(low[upper.numpy() == 0])) > 20
    fixed = mnist.pair_gatherer(paired, None, mnist.FIXED, 0.9, seed=5)(upper).numpy()
    assert len(set(_image_index(fixed[:, 784:])[upper.numpy() == 0])) == 1
    # The marginal stream of lower digits alone draws the same way; seeds repeat.
    lower_only = mnist.pair_gatherer(paired, 1, mnist.REDRAW_EACH_EPOCH, 0.9, seed=5)(upper)
    np.testing.assert_array_equal(_image_index(lower_only.numpy()), low)
    other_seed = mnist.pair_gatherer(paired, 1, mnist.REDRAW_EACH_EPOCH, 0.9, seed=6)(upper)
    assert not np.array_equal(_image_index(other_seed.numpy()), low)


def test_pairing_flag_is_checked():
    with pytest.raises(ValueError, match="pairing must be one of"):
        paired_mnist.PairedMnistConfig(pairing="sometimes")
