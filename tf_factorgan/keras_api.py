"""FactorGAN as a `keras.Model`: `compile()`, then `fit()` on a `tf.data` pipeline, with
Keras' callbacks (TensorBoard, BackupAndRestore, EarlyStopping, ModelCheckpoint), under
the default strategy or a `tf.distribute` strategy's scope.

    with strategy.scope():                         # optional
        model = FactorGAN(generator, make_discriminator, Partition((3, 2)), config)
        model.compile()
    model.fit(factorgan_dataset(model, paired, unpaired), epochs=..., steps_per_epoch=...)

`FactorGAN.train_step` is one generator update: `config.disc_iter` discriminator rounds
(`gan.FactorGanUpdates.discriminator_round`), then `generator_update`, the same code
the flag trainers run under `trainer.DistributedStep`. Given the same batches, noise
and weights, one `train_step` changes every weight as one step of the flag trainer
does (tests/test_keras_api.py). The variant (GAN, FactorGAN, FactorGAN-no-cp) and a
conditional generator are `GanConfig` fields, read off the same discriminator table
(`layout.layout`).

What `fit()` feeds: each element is one generator update's data, a tuple of
`disc_iter` round batches, round k a dict {stream: float32 [global batch, ...]} keyed
as `FactorGAN.data_streams()` ("joint": whole paired samples, "marginal_<i>": part i
alone, drawn from every observation of part i). A dict alone stands for the tuple
when disc_iter is 1. `factorgan_dataset` builds such a dataset from in-memory arrays
of paired and unpaired parts, with the flag trainers' input pipeline
(`data.sources`, `data.streams`).

Under a strategy, Keras runs `train_step` on every replica with its share of the
global batch; each replica's losses are divided by the global batch (as in the flag
trainers), the optimizers sum the gradients over replicas, and the logged metrics are
summed over replicas, so they are the global batch's averages whatever the replica
count. Each replica draws its own noise (`noise.Randomness`, created in the scope).

Saving: every network and optimizer is an attribute of the model (named as in the
flag trainers' checkpoints, `gan.GanModels.trackables`), so `save_weights`,
`ModelCheckpoint(save_weights_only=True)` and `BackupAndRestore` hold and restore all
of them, Adam's slots included, and the random stream's state with them. Whole-model
`.keras` files are not supported (the networks come from the user's factories); a
trained generator is kept for the export with `save_generator`.
"""

import os
from typing import Callable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tf_factorgan import files, gan, strategies
from tf_factorgan.data import sources, streams
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs
from tf_factorgan.noise import Randomness

# The key of the random stream's state among the model's own saved variables.
RANDOMNESS_STATE = "randomness_state"


class FactorGAN(keras.Model):
    """A (Factor)GAN whose `train_step` is one generator update (see the module).

    Create it under the scope of the strategy `fit()` should use. Every network and
    optimizer is made and built here (`gan.build_models`), so `fit()`, `sample()` and
    `load_weights()` work at once.

    Args:
      generator: a Keras model, not yet built (or built in the same scope), called as
        `generator(noise [B, nz])` -> samples [B, *sample_shape], or, with
        `config.conditional`, `generator(part_0 [B, ..., sizes[0]], noise)` -> parts 1..
      make_discriminator: `name -> keras.Model`, called once per discriminator of the
        variant ("joint", "marginal_<i>", "p_dependency", "q_dependency"); each maps
        [B, ..., C] to logits [B, 1] (C: `gan.discriminator_inputs`).
      partition: the split of a sample's last axis into parts.
      config: variant, conditional generator, pairs loss and optimisation settings;
        `config.batch_size` is the global batch every round of `fit()` data must have.
      sample_shape: one sample without the batch axis (default: vectors,
        (partition.total_size,)).
      seed: seeds the per-replica random stream (noise, in-batch shuffles).
      make_predictor: proxy MR's trained predictor, for `config.pairs_loss` that needs one.
      randomness_factory: `seed -> noise.Randomness` (tests swap in deterministic noise).
    """

    def __init__(
        self,
        generator: keras.Model,
        make_discriminator: Callable[[str], keras.Model],
        partition: Partition,
        config: gan.GanConfig = gan.GanConfig(),
        sample_shape: Optional[Sequence[int]] = None,
        seed: int = 0,
        make_predictor: Optional[Callable[[], keras.Model]] = None,
        randomness_factory: Callable[[int], Randomness] = Randomness,
        **kwargs,
    ):
        super().__init__(**kwargs)
        sample_shape = tuple(sample_shape or (partition.total_size,))
        if sample_shape[-1] != partition.total_size:
            raise ValueError(f"sample_shape {sample_shape} must end in the partition's "
                             f"{partition.total_size} channels {partition.sizes}")
        strategies.per_replica_batch_size(self.distribute_strategy, config.batch_size)
        # The strategy in scope (Keras' default one outside any scope) owns the variables.
        with self.distribute_strategy.scope():
            models = gan.build_models(config, partition, sample_shape, lambda: generator,
                                      make_discriminator, make_predictor)
            self.randomness = randomness_factory(seed)
            self.updates = gan.FactorGanUpdates(models, config, partition, self.randomness)
            self.trackers = [keras.metrics.Mean(name=name) for name in self.updates.metric_names()]
        self.sample_shape = sample_shape
        # Attributes, not a dict: Keras saves the networks and optimizers it finds as
        # attributes (a dict's would be saved by class name and position).
        for name, trackable in models.trackables().items():
            setattr(self, name, trackable)
        self.built = True

    # -- what it is -------------------------------------------------------------------

    @property
    def config(self) -> gan.GanConfig:
        return self.updates.config

    @property
    def partition(self) -> Partition:
        return self.updates.partition

    @property
    def models(self) -> gan.GanModels:
        """The networks and optimizers, as the flag trainers hold them."""
        return self.updates.models

    @property
    def steps(self) -> int:
        """Generator updates so far (restored with the weights)."""
        return int(self.models.generator_optimizer.iterations.numpy())

    def data_streams(self) -> dict:
        """Stream name -> the part its batches hold (None: whole paired samples): the
        keys of every round's dict in the `fit()` data."""
        return self.updates.data_streams()

    @property
    def metrics(self) -> list:
        """The running means over the epoch of every logged value, reset by `fit()`."""
        return list(self.trackers)

    # -- training ---------------------------------------------------------------------

    def compile(self, jit_compile: Optional[bool] = None, **kwargs):
        """Keras' compile without a loss: every network keeps its own Adam
        (`gan.make_adam`, `config.lr`, betas, epsilon); `jit_compile` defaults to
        `config.jit_compile`. Keras' `optimizer` is the generator's Adam (learning-rate
        callbacks act on it)."""
        for argument in ("optimizer", "loss", "metrics"):
            if kwargs.get(argument) is not None:
                raise ValueError(f"FactorGAN.compile takes no {argument}: the networks train "
                                 "with their own Adams on the GAN losses (set them in GanConfig)")
        jit_compile = self.config.jit_compile if jit_compile is None else jit_compile
        super().compile(optimizer=self.models.generator_optimizer, jit_compile=jit_compile, **kwargs)

    def fit(self, x=None, *args, shuffle: bool = False, **kwargs):
        """Keras' fit; `shuffle` defaults to False: the streams draw their batches in
        shuffled order already (and Keras ignores it for a tf.data input, warning)."""
        return super().fit(x, *args, shuffle=shuffle, **kwargs)

    def train_step(self, data):
        """One generator update on one replica's share of `data` (see the module):
        every round's discriminator updates, then the generator's on the last round's
        batch (a conditional generator completes its inputs); returns the running
        means of the metrics over the global batch."""
        rounds = self._rounds(data)
        rows = self._replica_rows(rounds[0])
        for batch in rounds:
            metrics = self.updates.discriminator_round(batch, rows)
        metrics.update(self.updates.generator_update(batch, rows))
        # Each replica's values are divided by the global batch: their sum over the
        # replicas is the global value, which every replica then logs.
        metrics = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, metrics)
        for tracker in self.trackers:
            tracker.update_state(metrics[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def _rounds(self, data) -> tuple:
        """`data` as a tuple of `disc_iter` round dicts, each checked for its streams."""
        rounds = tuple(data) if isinstance(data, (tuple, list)) else (data,)
        if len(rounds) != self.config.disc_iter:
            raise ValueError(f"each fit() element must hold disc_iter={self.config.disc_iter} "
                             f"round batches, got {len(rounds)}")
        streams_needed = sorted(self.data_streams())
        for batch in rounds:
            if not isinstance(batch, dict) or sorted(batch) != streams_needed:
                got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
                raise ValueError(f"each round batch must be a dict with the streams "
                                 f"{streams_needed} (FactorGAN.data_streams()), got {got}")
        return rounds

    def _replica_rows(self, batch: dict):
        """The rows of this replica's batch (an int when the shape is static), checked
        to make up `config.batch_size` over the replicas: the losses are divided by
        it."""
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        first = batch[sorted(batch)[0]]
        rows = first.shape[0]
        message = (f"fit() batches must hold config.batch_size={self.config.batch_size} rows "
                   f"(split over {replicas} replicas)")
        if rows is None:
            rows = tf.shape(first)[0]
            tf.debugging.assert_equal(rows * replicas, self.config.batch_size, message=message)
        elif rows * replicas != self.config.batch_size:
            raise ValueError(f"{message}, got {rows} per replica")
        return rows

    def test_step(self, data):
        raise NotImplementedError("FactorGAN has no validation step (validation_data, "
                                  "evaluate()): score its sample() or translate() outputs")

    # -- saving -----------------------------------------------------------------------

    def get_config(self):
        raise NotImplementedError(
            "FactorGAN is not saved whole (.keras): its networks come from your factories; "
            "keep save_weights() / ModelCheckpoint(save_weights_only=True) and save_generator()")

    def save_own_variables(self, store):
        """Keras' own variables of the model plus the random stream's state, so that a
        restored run (BackupAndRestore) continues its noise rather than repeating it."""
        super().save_own_variables(store)
        store[RANDOMNESS_STATE] = self.randomness.generator.state.numpy()

    def load_own_variables(self, store):
        super().load_own_variables(_Without(store, RANDOMNESS_STATE))
        if RANDOMNESS_STATE in store.keys():
            self.randomness.generator.state.assign(np.asarray(store[RANDOMNESS_STATE]))

    # -- using the generator ----------------------------------------------------------

    def call(self, inputs, training=False):
        """The generator: noise [B, nz] -> samples [B, *sample_shape]; a conditional
        one takes (part 0 [B, ..., sizes[0]], noise) and returns parts 1..."""
        if self.config.conditional:
            conditions, noise = inputs
            return self.generator(conditions, noise, training=training)
        return self.generator(inputs, training=training)

    def sample(self, num_samples: int, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
        """[num_samples, *sample_shape] samples of an unconditional generator from the
        seeded noise every export and evaluation uses (`noise.seeded_noise`)."""
        return self.updates.sample(num_samples, seed, batch_size)

    def translate(self, inputs: np.ndarray, seed: int = 0, batch_size: int = 100) -> np.ndarray:
        """A conditional generator's parts 1.. [N, ..., C - sizes[0]] for part-0
        `inputs` [N, ..., sizes[0]], from seeded noise."""
        return self.updates.translate(inputs, seed, batch_size)

    def save_generator(self, folder: str, spec: specs.GeneratorSpec) -> None:
        """`generator.weights.h5` and `generator.json` in `folder`: what
        `python -m export.export --run_dir=<folder>` exports. `spec` must describe the
        generator (build it with `specs.construct(spec)`); a spec whose network has
        other weights is refused before anything is written."""
        expected = [tuple(w.shape) for w in specs.build(spec).weights]
        actual = [tuple(w.shape) for w in self.generator.weights]
        if expected != actual or spec.nz != self.config.nz:
            raise ValueError(f"the spec's {spec.architecture} generator (nz={spec.nz}) is not "
                             f"this model's (nz={self.config.nz}): weight shapes {expected} "
                             f"vs {actual}")
        os.makedirs(folder, exist_ok=True)
        files.save_weights(self.generator, os.path.join(folder, specs.WEIGHTS_FILE))
        specs.write(folder, spec)


class _Without:
    """A saved-variables store seen without one key (Keras' own loader counts keys)."""

    def __init__(self, store, key: str):
        self._store, self._key = store, key

    def keys(self):
        return [k for k in self._store.keys() if k != self._key]

    def __getitem__(self, key):
        return self._store[key]

    def __len__(self):
        return len(self.keys())


def rounds_of(dataset: tf.data.Dataset, disc_iter: int) -> tf.data.Dataset:
    """A dataset of round batches (dicts) -> one of `disc_iter`-tuples of consecutive
    ones: the elements `FactorGAN.fit()` takes."""
    grouped = dataset.batch(disc_iter, drop_remainder=True)
    return grouped.map(lambda batch: tuple({key: value[k] for key, value in batch.items()}
                                           for k in range(disc_iter)))


def factorgan_dataset(
    model: FactorGAN,
    paired: Sequence[np.ndarray],
    unpaired: Optional[Sequence[Optional[np.ndarray]]] = None,
    seed: int = 0,
    start_step: int = 0,
):
    """The endless `fit()` data of `model` from in-memory parts, built as the flag
    trainers build theirs (`sources.training_streams`, `streams.streams_dataset_fn`).

    paired: K arrays [Np, ..., sizes[k]] (row n of each from the same sample; floats
      as they are, uint8 scaled to [0, 1]). unpaired: K arrays [Nu_k, ..., sizes[k]]
      or None (nothing of part k seen alone). The "joint" stream draws the paired
      samples; "marginal_<i>" every observation of part i, paired and unpaired.
    seed: seeds the batches' order; start_step: a resumed run passes the step it
      resumes from, so that it sees fresh batches.

    Returns a `tf.data.Dataset` of `disc_iter`-tuples of round dicts of
    `config.batch_size` rows; under a strategy with several replicas (the model's),
    a distributed dataset whose input pipelines each make their replicas' share.
    """
    parts = model.partition.num_parts
    unpaired = [None] * parts if unpaired is None else list(unpaired)
    if len(paired) != parts or len(unpaired) != parts:
        raise ValueError(f"the model's samples have {parts} parts: give {parts} paired "
                         f"and {parts} unpaired arrays, got {len(paired)} and {len(unpaired)}")
    for k, size in enumerate(model.partition.sizes):
        for kind, array in (("paired", paired[k]), ("unpaired", unpaired[k])):
            if array is not None and np.shape(array)[-1] != size:
                raise ValueError(f"{kind} part {k} has {np.shape(array)[-1]} channels on its "
                                 f"last axis, the partition {size}")
    observations = sources.Observations(tuple(paired), tuple(unpaired),
                                        tuple(f"part_{k}" for k in range(parts)))
    pools = sources.training_streams(observations, model.data_streams())
    dataset_fn = streams.streams_dataset_fn(pools, model.config.batch_size, seed)
    disc_iter = model.config.disc_iter
    return model.distribute_strategy.distribute_datasets_from_function(
        lambda context: rounds_of(dataset_fn(context, start_step), disc_iter))
