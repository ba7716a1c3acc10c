"""LS metric of the FactorGAN paper for image-pair generation (section 4.2, appendix).

A fresh discriminator learns to tell real from generated samples, and its held-out
least-squares loss is the score. Per run, the real and the generated samples are each
shuffled and split 80/20 into test-train and test-test; the discriminator is trained on
test-train with

    LS loss = 0.5 * (mean((D(real) - 1)^2) + mean(D(generated)^2)),

and the score is this loss on test-test, averaged over runs.

Scale: 0 when the discriminator separates the test-test sets perfectly; 0.25 for the
constant D = 0.5, which is the lowest expected loss any discriminator can reach when
the two distributions are identical. Larger is better (harder to tell apart) up to
about 0.25; values above it mean a discriminator that fits test-train noise (or is
untrained: D = 0 gives 0.5), not a better generator.

The original FactorGAN code sums the two means without the factor 0.5, so its values
are twice ours (0.5 for identical distributions).
"""

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

TRAIN_FRACTION = 0.8
# At least one test-test sample of each kind after the 80/20 split.
MIN_SAMPLES = 5
# Adam's beta_1: the original LS code kept the default 0.9 (not the GANs' 0.5).
BETA_1 = 0.9
EVAL_BATCH_SIZE = 256


def _check_samples(name: str, samples) -> np.ndarray:
    """float [N, ...] (N >= MIN_SAMPLES, rank >= 2) in [0, 1] -> float32."""
    if not isinstance(samples, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(samples).__name__}")
    if samples.ndim < 2 or samples.shape[0] < MIN_SAMPLES:
        raise ValueError(
            f"{name} must have shape [N, H, W, C] with N >= {MIN_SAMPLES}, got "
            f"{samples.shape}"
        )
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], got dtype {samples.dtype}")
    if not (samples.min() >= 0.0 and samples.max() <= 1.0):  # also rejects NaN
        raise ValueError(
            f"{name} must lie in [0, 1], got values in "
            f"[{samples.min()}, {samples.max()}]"
        )
    return samples.astype(np.float32)


def _split(samples: np.ndarray, rng: np.random.Generator):
    """Shuffled (test-train, test-test) parts: floor(0.8 N) and the rest (>= 1)."""
    # 0.8 is stored slightly above 0.8, so the product never rounds below 0.8 N.
    train_size = int(TRAIN_FRACTION * len(samples))
    order = rng.permutation(len(samples))
    return samples[order[:train_size]], samples[order[train_size:]]


def ls_loss(real_outputs, generated_outputs):
    """0.5 * (mean((real_outputs - 1)^2) + mean(generated_outputs^2)), any shapes."""
    return 0.5 * (
        tf.reduce_mean(tf.square(real_outputs - 1.0))
        + tf.reduce_mean(tf.square(generated_outputs))
    )


def _outputs(model: keras.Model, x, training: bool) -> tf.Tensor:
    """D(x) as float32 [B]: one real number per sample."""
    outputs = tf.cast(model(x, training=training), tf.float32)
    return tf.reshape(outputs, [-1])


def _check_discriminator(model: keras.Model, sample: np.ndarray) -> None:
    """Builds the model on two samples and checks it gives one number per sample."""
    outputs = model(sample[:2], training=False)
    if int(np.prod(outputs.shape)) != 2:
        raise ValueError(
            "the discriminator must output one real number per sample, got shape "
            f"{tuple(outputs.shape)} for 2 samples"
        )


def _epoch_batches(
    rng: np.random.Generator, size: int, steps: int, batch_size: int
) -> np.ndarray:
    """int [steps, batch_size] indices into a set of `size`: consecutive fresh
    permutations, so every sample comes once before any comes again."""
    needed = steps * batch_size
    repeats = -(-needed // size)
    indices = np.concatenate([rng.permutation(size) for _ in range(repeats)])
    return indices[:needed].reshape(steps, batch_size)


def _held_out_loss(
    model: keras.Model, real: np.ndarray, generated: np.ndarray
) -> float:
    """LS loss over all of real and generated, in float64."""

    def outputs(x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                _outputs(model, x[i : i + EVAL_BATCH_SIZE], False).numpy()
                for i in range(0, len(x), EVAL_BATCH_SIZE)
            ]
        ).astype(np.float64)

    return float(
        0.5 * (np.mean((outputs(real) - 1.0) ** 2) + np.mean(outputs(generated) ** 2))
    )


def _one_run(
    real: np.ndarray,
    generated: np.ndarray,
    make_discriminator: Callable[[], keras.Model],
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> float:
    """Split, train a fresh discriminator on test-train, LS loss on test-test."""
    keras.utils.set_random_seed(seed)  # initial weights follow the run's seed
    rng = np.random.default_rng(seed)
    real_train, real_test = _split(real, rng)
    generated_train, generated_test = _split(generated, rng)

    model = make_discriminator()
    _check_discriminator(model, real_train)
    optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=BETA_1)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(real_batch, generated_batch):
        with tf.GradientTape() as tape:
            # One forward pass over both halves, so layers with batch statistics never
            # see an all-real or all-generated batch (a shortcut to telling them apart).
            outputs = _outputs(
                model, tf.concat([real_batch, generated_batch], axis=0), True
            )
            loss = ls_loss(outputs[:batch_size], outputs[batch_size:])
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    # Balanced batches of batch_size real and batch_size generated samples; an epoch
    # passes once over the larger test-train part (the smaller one is cycled), and
    # fixed batch shapes keep the step at a single trace.
    steps = -(-max(len(real_train), len(generated_train)) // batch_size)
    for _ in range(epochs):
        real_batches = _epoch_batches(rng, len(real_train), steps, batch_size)
        generated_batches = _epoch_batches(rng, len(generated_train), steps, batch_size)
        for real_indices, generated_indices in zip(real_batches, generated_batches):
            step(real_train[real_indices], generated_train[generated_indices])
    return _held_out_loss(model, real_test, generated_test)


def ls_score(
    real: np.ndarray,
    generated: np.ndarray,
    make_discriminator: Callable[[], keras.Model],
    runs: int = 10,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 0,
) -> dict:
    """LS metric: held-out least-squares loss of a real-vs-generated discriminator.

    Args:
      real: float32 [N, H, W, C] in [0, 1], real validation samples (N >= 5).
      generated: float32 [M, H, W, C] in [0, 1], generated samples (M >= 5), same
        shape as real except for the first axis.
      make_discriminator: returns a fresh, untrained Keras model mapping [B, H, W, C]
        to one real number per sample ([B] or [B, 1], no activation). Called once per
        run.
      runs: independent runs (split, initialisation and batch order differ).
      epochs: passes over the test-train set per run.
      batch_size: real samples and, again, generated samples per training step.
      lr: Adam learning rate (beta_1 = 0.9).
      seed: run r uses seed + r for keras.utils.set_random_seed and its split.

    Returns:
      ls_mean: mean over runs of the test-test LS loss, in [0, inf); about 0.25 for
        identical distributions, 0 for perfectly separable ones (see the module
        docstring).
      ls_std: population standard deviation over runs (0 for one run).
      ls_runs: the per-run losses, a list of `runs` floats.
      train_fraction: 0.8; and runs, epochs, batch_size, lr, seed as passed.
    """
    real = _check_samples("real", real)
    generated = _check_samples("generated", generated)
    if real.shape[1:] != generated.shape[1:]:
        raise ValueError(
            "real and generated must have the same shape except for the first axis, "
            f"got {real.shape} and {generated.shape}"
        )
    for name, value in (("runs", runs), ("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")

    losses = [
        _one_run(
            real, generated, make_discriminator, epochs, batch_size, lr, seed + run
        )
        for run in range(runs)
    ]
    return {
        "ls_mean": float(np.mean(losses)),
        "ls_std": float(np.std(losses)),
        "ls_runs": losses,
        "train_fraction": TRAIN_FRACTION,
        "runs": runs,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
    }
