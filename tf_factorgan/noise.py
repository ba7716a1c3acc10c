"""Noise: seeded (reproducible evaluation, summaries, exports) and per-replica
(training, checkpointed). Uniform(-1, 1)^nz, as the original FactorGAN code."""

import tensorflow as tf


def seeded_noise(num_samples, nz: int, seed, sample=0) -> tf.Tensor:
    """float32 [num_samples, nz] Uniform(-1, 1) from the stateless seed [seed, sample].

    Evaluation, image summaries, separation and exported graphs all draw their noise
    here, so one seed gives the same output everywhere; `seed` may be a tensor.
    `sample` numbers the further draws of one seed (a served input's samples); sample
    0 is the draw every single-output path uses.
    """
    seed = tf.stack([tf.cast(seed, tf.int64), tf.cast(sample, tf.int64)])
    return tf.random.stateless_uniform([num_samples, nz], seed=seed, minval=-1.0, maxval=1.0)


def noise_per_seed(seeds, nz: int) -> tf.Tensor:
    """int [N] seeds -> float32 [N, nz]; row i is `seeded_noise(1, nz, seeds[i])`.

    Served models draw noise this way: an item's output then depends on its own seed
    only, not on its position in a batch, so it is the same sent alone or batched.
    """
    return tf.map_fn(
        lambda seed: seeded_noise(1, nz, seed)[0],
        tf.convert_to_tensor(seeds, tf.int64),
        fn_output_signature=tf.TensorSpec([nz], tf.float32),
    )


def samples_per_seed(seeds, num_samples, nz: int) -> tf.Tensor:
    """int [N] seeds -> float32 [N * num_samples, nz]; row n * num_samples + s is
    `seeded_noise(1, nz, seeds[n], sample=s)`, so sample 0 of an item is its
    `noise_per_seed` row and an item's samples do not depend on the batch."""
    seeds = tf.convert_to_tensor(seeds, tf.int64)
    num_samples = tf.cast(num_samples, tf.int64)
    pairs = tf.stack([tf.repeat(seeds, num_samples),
                      tf.tile(tf.range(num_samples), [tf.size(seeds)])], axis=1)
    return tf.map_fn(lambda pair: seeded_noise(1, nz, pair[0], pair[1])[0], pairs,
                     fn_output_signature=tf.TensorSpec([nz], tf.float32))


def repeated_noise(count, nz: int, seed, sample=0) -> tf.Tensor:
    """float32 [count, nz], every row `seeded_noise(1, nz, seed, sample)`: the one
    noise vector of every window of a separated song, however the windows are
    batched."""
    return tf.tile(seeded_noise(1, nz, seed, sample), [count, 1])


class Randomness(tf.Module):
    """Noise and in-batch permutations, drawn per replica and checkpointed.

    A `tf.random.Generator` created under a strategy's scope gives every replica its
    own stream (a Keras SeedGenerator would give all replicas the same numbers).
    """

    def __init__(self, seed: int):
        super().__init__(name="randomness")
        self.generator = tf.random.Generator.from_seed(seed)

    def noise(self, batch_size: int, nz: int) -> tf.Tensor:
        """[batch_size, nz] Uniform(-1, 1)."""
        return self.generator.uniform([batch_size, nz], minval=-1.0, maxval=1.0)

    def permutations(self, batch_size: int, count: int) -> list[tf.Tensor]:
        """`count` independent uniformly random permutations of range(batch_size)."""
        return [
            tf.argsort(self.generator.uniform([batch_size])) for _ in range(count)
        ]
