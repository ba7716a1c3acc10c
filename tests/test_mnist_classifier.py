"""The evaluation classifier: shapes, training, caching and input checks.

Training uses the small synthetic digits of conftest.py (600 train, 200 test), so the
tests stay fast and need no MNIST files.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from tf_factorgan.eval import mnist_classifier_training as training
from tf_factorgan.models.mnist_classifier import MnistClassifier

SHORT = dataclasses.replace(training.TUNED, epochs=2, batch_size=32)
SETTINGS = dict(recipe=SHORT, seed=0, min_accuracy=0.0)


def test_logits_and_features_shapes():
    model = MnistClassifier(seed=0)
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    assert model(x).shape == (3, 10)
    assert model.features(x).shape == (3, 50)
    # Inference logits are the output layer applied to the features (dropout is off).
    np.testing.assert_allclose(model(x), model.logits(model.features(x)), rtol=1e-6)


def test_seed_fixes_initial_weights():
    x = np.zeros((1, 28, 28, 1), np.float32)
    a, b = MnistClassifier(seed=3), MnistClassifier(seed=3)
    a(x)
    b(x)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


def test_classify_and_features_helpers():
    model = MnistClassifier(seed=0)
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = training.classify(model, images, batch_size=3)
    hidden = training.features(model, images / 255.0, batch_size=3)
    assert labels.dtype == np.int64 and labels.shape == (7,)
    assert hidden.dtype == np.float64 and hidden.shape == (7, 50)
    np.testing.assert_array_equal(labels, training.classify(model, images / 255.0))
    # The evaluation takes labels from the features it already has: the same labels.
    many = np.random.default_rng(1).integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(training.labels_from_features(model, training.features(model, many)),
                                  training.classify(model, many))


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 28, 27)), r"images must have shape \[N, 28, 28\]"),
        (np.zeros((0, 28, 28)), r"N >= 1"),
        (np.full((2, 28, 28), 1.5), r"must lie in \[0, 1\]"),
        (np.zeros((2, 28, 28), np.int32), "must be uint8 or float"),
    ],
)
def test_invalid_images_are_rejected(images, message):
    with pytest.raises(ValueError, match=message):
        training.classify(MnistClassifier(), images)


def test_train_then_load_from_cache(tmp_path, capsys, monkeypatch, digits):
    train, test = digits
    args = (str(tmp_path), train.images, train.labels, test.images, test.labels)

    trained, accuracy = training.train_or_load_classifier(*args, **SETTINGS)
    assert "test accuracy" in capsys.readouterr().out
    assert 0.0 <= accuracy <= 1.0
    weights_file, record_file = training.cache_files(SHORT, 0)
    assert weights_file == "mnist_classifier_tuned_seed0.weights.h5"
    assert os.path.isfile(tmp_path / weights_file)
    with open(tmp_path / record_file) as f:
        record = json.load(f)
    assert record["test_accuracy"] == accuracy
    assert record["key"]["train_count"] == len(train)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []

    def no_training(*unused_args):
        raise AssertionError("a cached classifier must not be retrained")

    monkeypatch.setattr(training, "_train", no_training)
    loaded, loaded_accuracy = training.train_or_load_classifier(*args, **SETTINGS)
    assert "loaded from cache" in capsys.readouterr().out
    assert loaded_accuracy == accuracy
    np.testing.assert_array_equal(
        training.classify(loaded, test.images), training.classify(trained, test.images)
    )
    np.testing.assert_array_equal(
        training.features(loaded, test.images), training.features(trained, test.images)
    )

    # A cache of other training data is not reused, nor one of other settings.
    other_data = (str(tmp_path), train.images[:500], train.labels[:500]) + args[3:]
    with pytest.raises(AssertionError, match="must not be retrained"):
        training.train_or_load_classifier(*other_data, **SETTINGS)
    with pytest.raises(AssertionError, match="must not be retrained"):
        training.train_or_load_classifier(*args, **{**SETTINGS, "seed": 1})
    with pytest.raises(AssertionError, match="must not be retrained"):
        training.train_or_load_classifier(
            *args, **{**SETTINGS, "recipe": dataclasses.replace(SHORT, learning_rate=1e-3)})
    # A cache below the requested accuracy raises.
    with pytest.raises(RuntimeError, match="below min_accuracy=1.0"):
        training.train_or_load_classifier(*args, **{**SETTINGS, "min_accuracy": 1.0})


def test_low_accuracy_raises_and_is_not_cached(tmp_path, digits):
    train, _ = digits
    images = train.images[:64]
    random_labels = np.random.default_rng(4).integers(10, size=64)
    with pytest.raises(RuntimeError, match="below min_accuracy=0.99"):
        training.train_or_load_classifier(
            str(tmp_path),
            images,
            random_labels,
            images[:32],
            (random_labels[:32] + 1) % 10,  # never the trained label of an image
            recipe=dataclasses.replace(SHORT, epochs=1),
            min_accuracy=0.99,
        )
    assert os.listdir(tmp_path) == []


def test_invalid_arguments_are_rejected(tmp_path, digits):
    train, _ = digits
    images, labels = train.images[:4], train.labels[:4]
    cache = str(tmp_path)
    with pytest.raises(
        ValueError, match=r"train_labels must be integers of shape \[4\]"
    ):
        training.train_or_load_classifier(cache, images, labels[:3], images, labels)
    with pytest.raises(ValueError, match=r"test_labels must lie in \[0, 9\]"):
        training.train_or_load_classifier(cache, images, labels, images, labels + 10)
    with pytest.raises(ValueError, match=r"min_accuracy must lie in \[0, 1\]"):
        training.train_or_load_classifier(
            cache, images, labels, images, labels, min_accuracy=98
        )


def test_recipes_share_a_cache_folder_and_paper_starts_from_torch_init(tmp_path, monkeypatch, digits):
    train, test = digits
    args = (str(tmp_path), train.images, train.labels, test.images, test.labels)
    starts = []
    original_train = training._train
    monkeypatch.setattr(training, "_train", lambda model, *a: starts.append(
        model.conv_1.kernel.numpy().copy()) or original_train(model, *a))
    paper = dataclasses.replace(training.PAPER, epochs=1)
    training.train_or_load_classifier(*args, recipe=paper, min_accuracy=0.0)
    training.train_or_load_classifier(*args, recipe=SHORT, min_accuracy=0.0)
    assert sorted(os.listdir(tmp_path)) == [
        "mnist_classifier_paper_seed0.json", "mnist_classifier_paper_seed0.weights.h5",
        "mnist_classifier_tuned_seed0.json", "mnist_classifier_tuned_seed0.weights.h5"]
    # PyTorch's Uniform(+-1/sqrt(25)) for the 5x5x1 first convolution, against
    # Glorot's +-sqrt(6 / (25 + 250)) = +-0.148.
    assert 0.19 < np.abs(starts[0]).max() <= 0.2
    assert 0.14 < np.abs(starts[1]).max() <= np.sqrt(6 / 275)
    with open(tmp_path / "mnist_classifier_paper_seed0.json") as f:
        key = json.load(f)["key"]
    assert (key["init"], key["learning_rate"], key["batch_size"]) == ("torch", 1e-4, 25)
