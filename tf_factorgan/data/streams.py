"""Infinite `tf.data` streams of training batches, paired ("aligned") and unpaired.

Every discriminator round takes one batch from each stream it needs (see
`layout.layout`): the joint stream yields whole paired samples, marginal stream i
yields part i alone, drawn from its own larger pool in its own order. Each stream is
an index stream over a pool plus a gather function that turns an index batch into a
float batch; one `map` serves all streams because tf.data's per-call overhead matters
at the paper's batch size of 25.
"""

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from tf_factorgan.data import pools

Gather = Callable[[tf.Tensor], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Stream:
    """A pool of `num_items` samples.

    make_gather: `seed -> (int64 [B] indices -> float32 [B, ...])`; called inside the
      input pipeline, so the pool's constants live where that pipeline runs. `seed`
      (an int, new per worker, stream and resume point) seeds whatever the gather
      draws at random (e.g. Paired MNIST's redrawn pairings); most gathers ignore it.
    """

    num_items: int
    make_gather: Callable[[int], Gather]


def index_batches(num_items: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Infinite stream of int64 [batch_size] index batches over range(num_items).

    Every epoch is a fresh permutation; epochs shorter than a batch are concatenated
    with further permutations. Shuffling whole index epochs and gathering per batch
    keeps tf.data's per-element work (its overhead at batch 25) out of the pipeline.
    """
    permutations_per_epoch = -(-batch_size // num_items)
    epoch_length = permutations_per_epoch * num_items // batch_size * batch_size

    def epoch(epoch_seed):
        perms = [
            tf.random.experimental.stateless_shuffle(
                tf.range(num_items, dtype=tf.int64), seed=tf.stack([epoch_seed, i])
            )
            for i in range(permutations_per_epoch)
        ]
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(tf.concat(perms, 0)[:epoch_length], [-1, batch_size])
        )

    return tf.data.Dataset.random(seed=seed).flat_map(epoch)


def streams_dataset_fn(streams: dict[str, Stream], global_batch_size: int, seed: int):
    """Returns `(input_context, start_step) -> per-replica dataset` for the Trainer.

    The dataset yields dicts key -> [per-replica batch, ...] float32. Each input
    pipeline (worker), each stream and each resume point gets its own data seed, so a
    resumed run sees fresh batches rather than replaying the first ones.
    """

    def dataset_fn(context: tf.distribute.InputContext, start_step: int) -> tf.data.Dataset:
        batch = context.get_per_replica_batch_size(global_batch_size)
        seeds = np.random.SeedSequence(
            [seed, context.input_pipeline_id, start_step]
        ).generate_state(2 * len(streams)).reshape(len(streams), 2)
        indices = tf.data.Dataset.zip({
            key: index_batches(stream.num_items, batch, int(index_seed))
            for (key, stream), (index_seed, _) in zip(streams.items(), seeds)
        })
        gathers = {
            key: stream.make_gather(int(gather_seed))
            for (key, stream), (_, gather_seed) in zip(streams.items(), seeds)
        }
        return indices.map(
            lambda idx: {key: gathers[key](idx[key]) for key in gathers}
        ).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


# In-memory pools up to this size become graph constants (the fastest gather); larger
# ones are gathered in NumPy, since a constant must stay below TensorFlow's 2 GB
# graph limit (the full MUSDB18 set is about 2 GB of float16 per part).
CONSTANT_LIMIT_BYTES = 1 << 30


def pool_gatherer(pool) -> Gather:
    """`indices [B] -> float32 [B, ...]` rows of a pool (`data.pools`): uint8 images
    scaled to [0, 1] (kept as uint8, a quarter of float32's memory), floats as they
    are. A small in-memory array becomes a graph constant; a larger one, or a pool on
    disk (which may be larger than memory), is read on demand."""
    scale = 1.0 / 255.0 if np.dtype(pool.dtype) == np.uint8 else 1.0
    if isinstance(pool, np.ndarray) and pool.nbytes <= CONSTANT_LIMIT_BYTES:
        table = tf.constant(pool)
        return lambda indices: tf.cast(tf.gather(table, indices), tf.float32) * scale
    dtype, row_shape = tf.as_dtype(np.dtype(pool.dtype)), list(pool.shape[1:])
    take = lambda indices: pools.take(pool, indices)  # noqa: E731

    def gather(indices):
        rows = tf.numpy_function(take, [indices], dtype, stateful=False)
        rows = tf.ensure_shape(rows, [None, *row_shape])
        return tf.cast(rows, tf.float32) * scale

    return gather
