import os

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match=r"--same_digit_prob must lie in \[0, 1\]"):
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
    assert "--mnist_manual_dir" in message


def test_official_files_load_offline(mnist_dir, tmp_path_factory):
    data_dir = os.environ.get("FACTORGAN_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))
    test = mnist.load_mnist("test", manual_dir=mnist_dir, data_dir=data_dir)
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(test.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
