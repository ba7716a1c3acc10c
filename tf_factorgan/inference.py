"""A trained generator's outputs, from seeded noise, in inference mode, as NumPy.

Stateless noise (`noise.seeded_noise`) keeps evaluation and image summaries
reproducible and leaves the training random stream untouched.
"""

from typing import Callable, Optional

import keras
import numpy as np

from tf_factorgan.noise import seeded_noise


def _in_batches(num_rows: int, batch_size: int, noise, fn: Callable) -> np.ndarray:
    return np.concatenate([
        np.asarray(fn(slice(i, i + batch_size), None if noise is None else noise[i : i + batch_size]))
        for i in range(0, num_rows, batch_size)
    ])


def sample(generator: keras.Model, nz: int, num_samples: int, seed: int = 0,
           batch_size: int = 1000) -> np.ndarray:
    """[num_samples, *sample_shape] samples of an unconditional generator."""
    return _in_batches(num_samples, batch_size, seeded_noise(num_samples, nz, seed),
                       lambda rows, noise: generator(noise, training=False))


def translate(generator: keras.Model, conditions: np.ndarray, nz: Optional[int], seed: int = 0,
              batch_size: int = 100) -> np.ndarray:
    """Outputs of a conditional generator (parts 1..) for part-0 inputs `conditions`
    [N, ..., sizes[0]] in [0, 1]; `nz` None for a noise-free one (CycleGAN's)."""
    conditions = np.asarray(conditions, np.float32)
    if nz is None:
        return _in_batches(len(conditions), batch_size, None,
                           lambda rows, _: generator(conditions[rows], training=False))
    return _in_batches(len(conditions), batch_size, seeded_noise(len(conditions), nz, seed),
                       lambda rows, noise: generator(conditions[rows], noise, training=False))
