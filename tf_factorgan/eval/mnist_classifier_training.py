"""Trains the MNIST evaluation classifiers once and caches them on disk.

Two recipes train the same network (`models.mnist_classifier`):
  tuned  Adam 2e-3, batches of 128, 6 epochs, Glorot initialisation: 98.4-98.6 % test
         accuracy. The FID and dependency distance of `fid_upper`, `fid_lower`,
         `dependency_distance`.
  paper  the original code's (f90/FactorGAN `training/MNIST.py`): Adam 1e-4, batches of
         25 (its --batchSize), 4 epochs, PyTorch's initialisation: 93.6-94.3 % over
         seeds 0-2. The paper's FIDs were measured on such a classifier; its features
         weigh a generator's defects differently (docs/reproducing.md, "Evaluation:
         two FID scales"), so only FIDs of this recipe compare with the paper's.

The cache of a recipe and seed is two files in `cache_dir`:
  mnist_classifier_<recipe>_seed<seed>.weights.h5  the weights
  mnist_classifier_<recipe>_seed<seed>.json        test accuracy, the SHA-256 of the
      weights file and a key naming the training and test data (sizes and content
      hashes) and the training settings
A cache is reused only when its key equals the key of the requested training, so a
classifier trained on other data or with other settings is retrained, never reused.
Both files are written atomically, weights first; the JSON names the weights' hash,
so a crash between the two writes cannot pair an old record with new weights.
"""

import dataclasses
import hashlib
import json
import os
import time
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.models import initialisation
from tf_factorgan.models.mnist_classifier import NUM_CLASSES, MnistClassifier

IMAGE_SIZE = 28
INFERENCE_BATCH_SIZE = 1000


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a classifier is trained: Adam on softmax cross-entropy, dropout 0.5 on the
    hidden layer; `min_accuracy` in [0, 1] is the test accuracy it must reach."""

    name: str
    learning_rate: float
    batch_size: int
    epochs: int
    init: str
    adam_epsilon: float
    min_accuracy: float

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}"
            )
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must lie in [0, 1], got {self.min_accuracy}")


# Adam at 2e-3 with batches of 128 reaches 98.4-98.6% test accuracy on the full
# 60k/10k MNIST split after 6 epochs (75-110 s on 2 CPU cores), and 98% by epoch 3-4.
TUNED = Recipe("tuned", learning_rate=2e-3, batch_size=128, epochs=6,
               init=initialisation.GLOROT, adam_epsilon=1e-7, min_accuracy=0.98)
PAPER = Recipe("paper", learning_rate=1e-4, batch_size=25, epochs=4,
               init=initialisation.TORCH, adam_epsilon=1e-8, min_accuracy=0.9)


def cache_files(recipe: Recipe, seed: int) -> tuple[str, str]:
    """(weights file, record file) names of a recipe's classifier of `seed`."""
    stem = f"mnist_classifier_{recipe.name}_seed{seed}"
    return f"{stem}.weights.h5", f"{stem}.json"


def _model_input(name: str, images) -> np.ndarray:
    """uint8 [N, 28, 28] in 0..255 or float [N, 28, 28] in [0, 1] (N >= 1) -> float32
    [N, 28, 28, 1] in [0, 1]."""
    images = np.asarray(images)
    if (
        images.ndim != 3
        or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
        or not len(images)
    ):
        raise ValueError(
            f"{name} must have shape [N, 28, 28] with N >= 1, got {images.shape}"
        )
    if images.dtype == np.uint8:
        return (images / np.float32(255))[..., None]
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float, got dtype {images.dtype}")
    if not (images.min() >= 0.0 and images.max() <= 1.0):
        raise ValueError(
            f"float {name} must lie in [0, 1], got values in [{images.min()}, {images.max()}]"
        )
    return images.astype(np.float32)[..., None]


def _labels(name: str, labels, count: int) -> np.ndarray:
    """int [count] in 0..9 -> int64 [count]."""
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{name} must be integers of shape [{count}] (one per image), got "
            f"{labels.dtype} {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(
            f"{name} must lie in [0, {NUM_CLASSES - 1}], got values in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int64)


def _batched(fn, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Concatenates fn(batch) along axis 0 over consecutive batches of `images`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return np.concatenate(
        [
            np.asarray(fn(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
    )


def _predict(model: MnistClassifier, images: np.ndarray, batch_size: int) -> np.ndarray:
    """images float32 [N, 28, 28, 1] in [0, 1] -> predicted labels int64 [N]."""
    logits = _batched(lambda x: model(x, training=False), images, batch_size)
    return np.argmax(logits, axis=1).astype(np.int64)


def classify(
    model: MnistClassifier, images, batch_size: int = INFERENCE_BATCH_SIZE
) -> np.ndarray:
    """images [N, 28, 28] (uint8 or float in [0, 1]) -> predicted labels int64 [N]."""
    return _predict(model, _model_input("images", images), batch_size)


def features(
    model: MnistClassifier, images, batch_size: int = INFERENCE_BATCH_SIZE
) -> np.ndarray:
    """images [N, 28, 28] (uint8 or float in [0, 1]) -> hidden activations float64
    [N, 50]."""
    hidden = _batched(model.features, _model_input("images", images), batch_size)
    return hidden.astype(np.float64)


def labels_from_features(model: MnistClassifier, hidden: np.ndarray) -> np.ndarray:
    """`features(model, images)` [N, 50] -> the labels `classify(model, images)` gives,
    int64 [N], from the last layer alone (inference: no dropout)."""
    logits = model.logits(np.asarray(hidden, np.float32))
    return np.argmax(np.asarray(logits), axis=1).astype(np.int64)


def _train(
    model: MnistClassifier,
    images: np.ndarray,
    labels: np.ndarray,
    recipe: Recipe,
    seed: int,
) -> None:
    """Adam on sparse categorical cross-entropy; images float32 [N, 28, 28, 1]."""
    optimizer = keras.optimizers.Adam(recipe.learning_rate, epsilon=recipe.adam_epsilon)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Batch sizes vary by one (array_split below); an open batch dimension traces once.
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32),
            tf.TensorSpec([None], tf.int64),
        ]
    )
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    # Near-equal batches of at most batch_size rather than a small remainder batch.
    num_batches = int(np.ceil(len(images) / recipe.batch_size))
    for epoch in range(recipe.epochs):
        losses = [
            float(step(images[batch], labels[batch]))
            for batch in np.array_split(rng.permutation(len(images)), num_batches)
        ]
        print(
            f"MNIST classifier ({recipe.name}, seed {seed}): epoch {epoch + 1}/"
            f"{recipe.epochs}, mean loss {np.mean(losses):.4f}"
        )


def _digest(*arrays: np.ndarray) -> str:
    """Content hash of arrays, their dtypes and shapes."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _load_cached(cache_dir: str, names: tuple[str, str], key: dict):
    """(model, test accuracy) from the cache files `names` when their key is `key`;
    else None."""
    weights_path, record_path = (os.path.join(cache_dir, name) for name in names)
    if not (os.path.isfile(record_path) and os.path.isfile(weights_path)):
        return None
    with open(record_path) as f:
        record = json.load(f)
    if record.get("key") != key:
        print(f"MNIST classifier: cache {record_path} was trained on other data or settings")
        return None
    if record.get("weights_sha256") != _file_digest(weights_path):
        print(f"MNIST classifier: cached weights {weights_path} do not match their record")
        return None
    model = MnistClassifier()
    model(np.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 1], np.float32))  # creates the variables
    model.load_weights(weights_path)
    return model, float(record["test_accuracy"])


def _save_cache(
    cache_dir: str, names: tuple[str, str], key: dict, model: MnistClassifier, accuracy: float
) -> None:
    weights_path, record_path = (os.path.join(cache_dir, name) for name in names)
    # Killed writers' temporaries go first, once no other process writes the cache.
    with files.explained_write_errors(cache_dir), \
            files.writing_into(cache_dir, tidy=True) as removed:
        if removed:
            print(f"MNIST classifier: removed what interrupted writes left in {cache_dir}: "
                  f"{', '.join(removed)}")
        files.save_weights(model, weights_path)
        record = {
            "key": key,
            "test_accuracy": accuracy,
            "weights_sha256": _file_digest(weights_path),
        }
        files.write_json(record_path, record)


def _check_accuracy(accuracy: float, min_accuracy: float, source: str) -> None:
    if accuracy < min_accuracy:
        raise RuntimeError(
            f"MNIST classifier {source} has test accuracy {accuracy:.4f}, below "
            f"min_accuracy={min_accuracy}; its FID features and labels would be "
            "unreliable (pass min_accuracy=0 to accept it, e.g. for small test subsets)"
        )


def train_or_load_classifiers(
    cache_dir: str,
    train_images,
    train_labels,
    test_images,
    test_labels,
    classifiers: Sequence[tuple[Recipe, int]],
    min_accuracy: Optional[float] = None,
) -> list[tuple[MnistClassifier, float]]:
    """Loads the cached classifier of this data for every (recipe, seed), or trains
    it; the images are checked and hashed once for all of them.

    Args:
      cache_dir: folder of the cache (created when missing).
      train_images, test_images: [N, 28, 28] uint8 in 0..255 or float in [0, 1].
      train_labels, test_labels: int [N] in 0..9, one per image.
      classifiers: (recipe, seed) pairs: how each is trained (TUNED or PAPER), and
        the seed that fixes its initial weights, dropout and batch order.
      min_accuracy: in [0, 1]; a classifier below this test accuracy raises (None:
        each recipe's own bar).

    Returns:
      [(model, test accuracy in [0, 1])], one per (recipe, seed).

    Raises:
      RuntimeError: a (trained or cached) classifier's test accuracy is below its
        bar; a newly trained one is then not cached.
    """
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise ValueError(f"min_accuracy must lie in [0, 1], got {min_accuracy}")
    train_x = _model_input("train_images", train_images)
    train_y = _labels("train_labels", train_labels, len(train_x))
    test_x = _model_input("test_images", test_images)
    test_y = _labels("test_labels", test_labels, len(test_x))
    data_key = {
        "train_count": len(train_x),
        "train_sha256": _digest(train_x, train_y),
        "test_count": len(test_x),
        "test_sha256": _digest(test_x, test_y),
    }
    return [
        _train_or_load(cache_dir, (train_x, train_y, test_x, test_y), data_key, recipe, seed,
                       recipe.min_accuracy if min_accuracy is None else min_accuracy)
        for recipe, seed in classifiers
    ]


def train_or_load_classifier(
    cache_dir: str,
    train_images,
    train_labels,
    test_images,
    test_labels,
    recipe: Recipe = TUNED,
    seed: int = 0,
    min_accuracy: Optional[float] = None,
) -> tuple[MnistClassifier, float]:
    """`train_or_load_classifiers` of one (recipe, seed): (model, test accuracy)."""
    (classifier,) = train_or_load_classifiers(
        cache_dir, train_images, train_labels, test_images, test_labels, [(recipe, seed)],
        min_accuracy)
    return classifier


def _train_or_load(cache_dir: str, digits: tuple, data_key: dict, recipe: Recipe, seed: int,
                   min_accuracy: float) -> tuple[MnistClassifier, float]:
    """One classifier from the cache or trained; `digits` are the checked (train
    images, train labels, test images, test labels), `data_key` their sizes and
    hashes."""
    train_x, train_y, test_x, test_y = digits
    training = {k: v for k, v in dataclasses.asdict(recipe).items() if k != "min_accuracy"}
    key = {**data_key, "seed": int(seed), **training}
    names = cache_files(recipe, seed)

    cached = _load_cached(cache_dir, names, key)
    if cached is not None:
        model, accuracy = cached
        print(
            f"MNIST classifier ({recipe.name}, seed {seed}): loaded from cache "
            f"{cache_dir}, test accuracy {accuracy:.4f}"
        )
        _check_accuracy(accuracy, min_accuracy, f"cached in {cache_dir}")
        return model, accuracy

    print(
        f"MNIST classifier ({recipe.name}, seed {seed}): training on {len(train_x)} "
        f"images for {recipe.epochs} epochs"
    )
    start = time.time()
    model = MnistClassifier(seed=seed)
    model(np.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 1], np.float32))  # creates the variables
    initialisation.initialise(model, recipe.init, seed)
    _train(model, train_x, train_y, recipe, seed)
    accuracy = float(np.mean(_predict(model, test_x, INFERENCE_BATCH_SIZE) == test_y))
    print(
        f"MNIST classifier ({recipe.name}, seed {seed}): test accuracy {accuracy:.4f} "
        f"after {time.time() - start:.0f} s of training"
    )
    _check_accuracy(accuracy, min_accuracy, "just trained")
    _save_cache(cache_dir, names, key, model, accuracy)
    return model, accuracy
