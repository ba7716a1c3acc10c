"""The networks of a (Factor)GAN and its distributed training step.

One training step is `disc_iter` discriminator rounds followed by one generator update
(Stoller et al. 2020, Algorithm 1). In each round every marginal discriminator, then
D_P, then D_Q takes one Adam step on one fresh fake batch that all of them share, or
(`fake_batches="per_discriminator"`, as the original code) each on its own. The
step runs per replica under `strategy.run`; losses are averaged over the global batch
and the Keras optimizers all-reduce (sum) the gradients across replicas.

Generators are either unconditional (noise -> whole sample) or conditional (part 0,
e.g. a photo, plus noise -> the remaining parts, e.g. its label map). A conditional
fake sample is the real part 0 joined with the generator's output, so every
discriminator sees (input, prediction) pairs.
"""

import dataclasses
import functools
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tf_factorgan import factorisation, losses, optimizers
from tf_factorgan.factorisation import Partition, Variant

# Data keys of one discriminator round's batch.
JOINT_KEY = "joint"

# How a discriminator round draws its fakes.
PER_DISCRIMINATOR = "per_discriminator"
SHARED = "shared"
FAKE_BATCHES = (PER_DISCRIMINATOR, SHARED)


def marginal_key(part: int) -> str:
    return f"marginal_{part}"


@dataclasses.dataclass(frozen=True)
class GanConfig:
    """Hyper-parameters of the optimisation (defaults: the original FactorGAN code's,
    but for adam_epsilon and fake_batches, see experiments.common.TrainingSettings).

    batch_size is the global batch (split across replicas); noise is Uniform(-1, 1)^nz.
    """

    variant: Variant = Variant.FACTORGAN
    batch_size: int = 25
    disc_iter: int = 2
    lr: float = 1e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    nz: int = 50
    generator_objective: str = "ns"
    # Keras' Adam default (the original code: PyTorch's 1e-8).
    adam_epsilon: float = 1e-7
    fake_batches: str = SHARED
    jit_compile: bool = False
    conditional: bool = False
    # Conditional models only: False hides part 0 (the generator's input, e.g. a
    # mixture) from every discriminator, which then judges parts 1.. alone.
    condition_visible: bool = True

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}")
        if self.disc_iter < 1:
            raise ValueError(f"--disc_iter must be >= 1, got {self.disc_iter}")
        if not self.lr > 0:  # NaN too
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.nz < 1:
            raise ValueError(f"--nz must be >= 1, got {self.nz}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"--adam_epsilon must be > 0, got {self.adam_epsilon}")
        if self.fake_batches not in FAKE_BATCHES:
            raise ValueError(
                f"--fake_batches must be one of {FAKE_BATCHES}, got {self.fake_batches!r}"
            )
        if self.generator_objective not in losses.GENERATOR_OBJECTIVES:
            raise ValueError(
                f"generator objective must be one of {losses.GENERATOR_OBJECTIVES}, "
                f"got {self.generator_objective!r}"
            )
        # A marginal discriminator on part 0 is pointless once part 0 is the input.
        needs_conditional = self.variant is Variant.CONDITIONAL_FACTORGAN
        if needs_conditional != self.conditional and self.variant is not Variant.GAN:
            raise ValueError(
                f"variant {self.variant.value!r} needs conditional={needs_conditional}: "
                "conditional generators go with the GAN or conditional FactorGAN"
            )


def seeded_noise(num_samples, nz: int, seed) -> tf.Tensor:
    """float32 [num_samples, nz] Uniform(-1, 1) from the stateless seed [seed, 0].

    Evaluation, image summaries, separation and exported graphs all draw their noise
    here, so one seed gives the same output everywhere; `seed` may be a tensor.
    """
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
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


def repeated_noise(count, nz: int, seed) -> tf.Tensor:
    """float32 [count, nz], every row `seeded_noise(1, nz, seed)`: the one noise vector
    of every window of a separated song, however the windows are batched."""
    return tf.tile(seeded_noise(1, nz, seed), [count, 1])


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


@dataclasses.dataclass
class GanModels:
    """Generator and discriminators of one variant, each discriminator with its Adam.

    Discriminators are keyed by name: "joint" (GAN), "marginal_<i>" for part i,
    "p_dependency" and "q_dependency".
    """

    generator: keras.Model
    discriminators: dict[str, keras.Model]
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizers: dict[str, keras.optimizers.Optimizer]

    def networks(self) -> list[keras.Model]:
        """The generator, then the discriminators in update order."""
        return [self.generator, *self.discriminators.values()]

    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        """The generator's Adam, then the discriminators' in update order."""
        return [self.generator_optimizer, *self.discriminator_optimizers.values()]

    def trackables(self) -> dict:
        """Everything a checkpoint holds, by checkpoint name.

        Each network and optimizer is its own entry: tf.train.Checkpoint does not
        track a dict of Keras 3 models and would silently leave it out.
        """
        return {
            "generator": self.generator,
            "generator_optimizer": self.generator_optimizer,
            **{f"discriminator_{k}": v for k, v in self.discriminators.items()},
            **{f"optimizer_{k}": v for k, v in self.discriminator_optimizers.items()},
        }


def discriminator_inputs(config: GanConfig, partition: Partition) -> dict[str, int]:
    """Discriminators of `config.variant` in their update order: name -> size of the
    last axis they see (a part's size for marginals, the visible sample otherwise)."""
    variant = config.variant
    whole = partition.total_size
    if config.conditional and not config.condition_visible:
        whole -= partition.sizes[0]
    if not variant.is_factorised:
        return {"joint": whole}
    inputs = {
        marginal_key(i): partition.sizes[i]
        for i in variant.marginal_parts(partition.num_parts)
    }
    if variant.uses_p_dependency:
        inputs["p_dependency"] = whole
    inputs["q_dependency"] = whole
    return inputs


def data_streams(config: GanConfig, num_parts: int) -> dict[str, Optional[int]]:
    """The streams one discriminator round reads: key -> the part each batch holds
    (None: whole paired samples).

    The joint stream feeds the GAN's discriminator and D_P; marginal stream i feeds
    D_i. A conditional FactorGAN also reads marginal stream 0: its generator's inputs,
    paired or not. A conditional GAN takes its inputs from the joint stream.
    """
    variant = config.variant
    streams = {}
    if not variant.is_factorised or variant.uses_p_dependency:
        streams[JOINT_KEY] = None
    marginal = variant.marginal_parts(num_parts)
    if config.conditional and variant.is_factorised:
        marginal = (0, *marginal)
    streams.update({marginal_key(i): i for i in marginal})
    return streams


def make_adam(config: GanConfig, name: str) -> keras.optimizers.Optimizer:
    """The Adam of one network (unbuilt: build it under the strategy's scope)."""
    return optimizers.FusedAdam(
        config.lr, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.adam_epsilon,
        name=f"adam_{name}",
    )


def build_models(
    config: GanConfig,
    partition: Partition,
    sample_shape: tuple[int, ...],
    make_generator: Callable[[], keras.Model],
    make_discriminator: Callable[[str], keras.Model],
) -> GanModels:
    """Creates, builds and pairs with optimizers every network of `config.variant`.

    Must run under `strategy.scope()`. `sample_shape` is one sample without the batch
    axis, its last axis split by `partition`. `make_generator()` returns a model called
    as `generator(noise)`, or `generator(part_0, noise)` returning parts 1.. when
    `config.conditional`; `make_discriminator(name)` receives the names of
    `discriminator_inputs`. Optimizers are built here because Keras 3 cannot create
    their slots inside a traced distributed step.
    """
    generator = make_generator()
    noise = tf.zeros([1, config.nz])
    if config.conditional:
        generator(tf.zeros([1, *sample_shape[:-1], partition.sizes[0]]), noise)
    else:
        generator(noise)
    discriminators = {}
    for name, channels in discriminator_inputs(config, partition).items():
        model = make_discriminator(name)
        model(tf.zeros([1, *sample_shape[:-1], channels]))
        discriminators[name] = model

    adam = functools.partial(make_adam, config)
    generator_optimizer = adam("generator")
    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizers = {}
    for name, model in discriminators.items():
        discriminator_optimizers[name] = adam(name)
        discriminator_optimizers[name].build(model.trainable_variables)
    return GanModels(generator, discriminators, generator_optimizer, discriminator_optimizers)


class GanStep:
    """The distributed training step of one GAN variant.

    Args:
      models: from `build_models` (under `strategy.scope()`).
      config: optimisation settings.
      partition: the split of a sample into parts.
      strategy: the strategy the models were built under.
      randomness: a `Randomness` created under the same scope.
    """

    def __init__(
        self,
        models: GanModels,
        config: GanConfig,
        partition: Partition,
        strategy: tf.distribute.Strategy,
        randomness: Randomness,
    ):
        self.models = models
        self.config = config
        self.partition = partition
        self.strategy = strategy
        self.randomness = randomness
        replica_fn = lambda f: tf.function(f, jit_compile=True) if config.jit_compile else f
        self._disc_round_fn = replica_fn(self._discriminator_round)
        self._generator_fn = replica_fn(self._generator_update)
        self.train_step = tf.function(self._train_step)

    # -- per-replica computations --------------------------------------------------

    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(
            per_example, global_batch_size=self.config.batch_size
        )

    def data_streams(self) -> dict[str, Optional[int]]:
        """Stream key -> part (None: whole samples) of a discriminator round's batch."""
        return data_streams(self.config, self.partition.num_parts)

    def _conditions(self, batch: dict) -> tf.Tensor:
        """Part 0 of a conditional model's fake samples: every input for a
        factorised model, only the paired ones for the GAN."""
        if self.config.variant.is_factorised:
            return batch[marginal_key(0)]
        return self.partition.split(batch[JOINT_KEY])[0]

    def _conditional_output(self, conditions, noise, training) -> tf.Tensor:
        return self.models.generator(conditions, noise, training=training)

    def generate(self, batch: dict, batch_size: int, repeats: int = 1) -> tf.Tensor:
        """[repeats * batch_size, *sample_shape] fake samples from fresh noise (training
        mode); a conditional model completes part 0 of `batch`'s inputs, each input
        `repeats` times (block r of the output holds repeat r of every input)."""
        noise = self.randomness.noise(repeats * batch_size, self.config.nz)
        if not self.config.conditional:
            return self.models.generator(noise, training=True)
        conditions = self._conditions(batch)
        conditions = tf.concat([conditions] * repeats, axis=0) if repeats > 1 else conditions
        output = self._conditional_output(conditions, noise, training=True)
        return self.partition.join([conditions, output])

    def _seeded_batches(self, num_samples: int, seed: int, batch_size: int, fn) -> np.ndarray:
        # Stateless noise keeps evaluation and image summaries reproducible and leaves
        # the training random stream untouched.
        noise = seeded_noise(num_samples, self.config.nz, seed)
        return np.concatenate([
            np.asarray(fn(slice(i, i + batch_size), noise[i : i + batch_size]))
            for i in range(0, num_samples, batch_size)
        ])

    def sample(self, num_samples: int, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
        """[num_samples, *sample_shape] samples of an unconditional generator, from
        seeded noise, in inference mode, as numpy."""
        if self.config.conditional:
            raise ValueError("a conditional generator needs inputs: use translate()")
        return self._seeded_batches(
            num_samples, seed, batch_size,
            lambda rows, noise: self.models.generator(noise, training=False),
        )

    def translate(self, conditions: np.ndarray, seed: int = 0, batch_size: int = 100) -> np.ndarray:
        """Outputs of a conditional generator (parts 1..) for part-0 inputs
        `conditions` [N, ..., sizes[0]] in [0, 1], in inference mode, as numpy."""
        if not self.config.conditional:
            raise ValueError("an unconditional generator takes no inputs: use sample()")
        conditions = np.asarray(conditions, np.float32)
        return self._seeded_batches(
            len(conditions), seed, batch_size,
            lambda rows, noise: self._conditional_output(conditions[rows], noise, False),
        )

    def _shuffled(self, x: tf.Tensor) -> tf.Tensor:
        perms = self.randomness.permutations(tf.shape(x)[0], self.partition.num_parts - 1)
        return factorisation.shuffle_parts(x, self.partition, perms)

    def _visible(self, samples: tf.Tensor) -> tf.Tensor:
        """What the joint, D_P and D_Q discriminators see of whole samples."""
        if self.config.conditional and not self.config.condition_visible:
            return samples[..., self.partition.sizes[0] :]
        return samples

    def _update_discriminator(self, name: str, real: tf.Tensor, fake: tf.Tensor):
        model = self.models.discriminators[name]
        # One call on [real; fake] advances the spectral-norm power iteration once
        # per update, as a single training forward pass would.
        with tf.GradientTape() as tape:
            logits = model(tf.concat([real, fake], axis=0), training=True)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            loss = self._average(losses.discriminator_loss(real_logits, fake_logits))
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.models.discriminator_optimizers[name].apply_gradients(zip(grads, variables))
        accuracy = self._average(losses.discriminator_accuracy(real_logits, fake_logits))
        return {f"discriminator/{name}/loss": loss, f"discriminator/{name}/accuracy": accuracy}

    def _fakes(self, batch: dict, batch_size: int, count: int):
        """`() -> fake batch` (no gradient to the generator) for the `count`
        discriminators of a round that see fakes: each call returns a batch from its own
        noise (all drawn in one generator call, which costs less than `count` small
        ones), or with fake_batches="shared" the round's one batch every time."""
        if self.config.fake_batches == SHARED:
            count = 1
        batches = iter(tf.split(tf.stop_gradient(self.generate(batch, batch_size, count)), count))
        if count == 1:
            shared = next(batches)
            return lambda: shared
        return lambda: next(batches)

    def _discriminator_round(self, batch: dict, batch_size: int) -> dict:
        variant = self.config.variant
        marginal_parts = variant.marginal_parts(self.partition.num_parts)
        fakes = self._fakes(batch, batch_size, len(marginal_parts) + 1 if variant.is_factorised else 1)
        metrics = {}
        visible = self._visible
        if not variant.is_factorised:
            metrics.update(self._update_discriminator("joint", visible(batch[JOINT_KEY]), visible(fakes())))
            return metrics
        for part in marginal_parts:
            key = marginal_key(part)
            fake_part = self.partition.split(fakes())[part]
            metrics.update(self._update_discriminator(key, batch[key], fake_part))
        if variant.uses_p_dependency:
            joint = batch[JOINT_KEY]
            metrics.update(self._update_discriminator(
                "p_dependency", visible(joint), visible(self._shuffled(joint))
            ))
        fake = fakes()
        metrics.update(self._update_discriminator(
            "q_dependency", visible(fake), visible(self._shuffled(fake))
        ))
        return metrics

    def combined_logit(self, samples: tf.Tensor) -> tf.Tensor:
        """[B] estimate of log p(x)/q(x) for the variant (D(x) for the plain GAN)."""
        d = self.models.discriminators
        visible = self._visible(samples)
        if not self.config.variant.is_factorised:
            return tf.reshape(d["joint"](visible, training=True), [-1])
        parts = self.partition.split(samples)
        flat = lambda logits: tf.reshape(logits, [-1])
        marginal = [
            flat(d[marginal_key(i)](parts[i], training=True))
            for i in self.config.variant.marginal_parts(self.partition.num_parts)
        ]
        p_dep = (
            flat(d["p_dependency"](visible, training=True))
            if self.config.variant.uses_p_dependency
            else None
        )
        q_dep = flat(d["q_dependency"](visible, training=True))
        return factorisation.combined_logit(marginal, q_dep, p_dep)

    def _generator_update(self, batch: dict, batch_size: int) -> dict:
        generator = self.models.generator
        with tf.GradientTape() as tape:
            fake = self.generate(batch, batch_size)
            logit = self.combined_logit(fake)
            loss = self._average(losses.generator_loss(logit, self.config.generator_objective))
        variables = generator.trainable_variables
        grads = tape.gradient(loss, variables)
        self.models.generator_optimizer.apply_gradients(zip(grads, variables))
        return {
            "generator/loss": loss,
            "generator/mean_sigmoid_combined_logit": self._average(tf.sigmoid(logit)),
        }

    # -- the distributed step --------------------------------------------------------

    def _one_step(self, iterator, per_replica_batch_size: int, step_counter: tf.Variable):
        for _ in range(self.config.disc_iter):
            batch = next(iterator)
            disc_metrics = self.strategy.run(
                self._disc_round_fn, args=(batch, per_replica_batch_size)
            )
        # A conditional generator completes the last round's inputs (with new noise);
        # an unconditional one ignores the batch.
        gen_metrics = self.strategy.run(
            self._generator_fn, args=(batch, per_replica_batch_size)
        )
        step_counter.assign_add(1)
        return {
            k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in {**disc_metrics, **gen_metrics}.items()
        }

    def _train_step(
        self,
        iterator,
        num_steps: tf.Tensor,
        per_replica_batch_size: int,
        step_counter: tf.Variable,
    ):
        """Runs `num_steps` generator updates, each after `disc_iter` rounds.

        Several steps per call keep the Python dispatch of a `tf.function` (a few ms
        with this many variables) off the per-step cost. Returns the metrics of the
        last step: its last discriminator round and its generator update, summed over
        replicas (each replica's value is already divided by the global batch).
        """
        # Starting from zeros (not a peeled first step) traces the step only once.
        metrics = {name: tf.zeros([]) for name in self.metric_names()}
        for _ in tf.range(num_steps):
            metrics = self._one_step(iterator, per_replica_batch_size, step_counter)
        return metrics

    def metric_names(self) -> list[str]:
        names = discriminator_inputs(self.config, self.partition)
        return [f"discriminator/{n}/{m}" for n in names for m in ("loss", "accuracy")] + [
            "generator/loss",
            "generator/mean_sigmoid_combined_logit",
        ]
