"""The per-replica math of a (Factor)GAN: its networks, one discriminator round and
one generator update (Stoller et al. 2020, Algorithm 1), and nothing of the loop.

In each round every discriminator of the model's `layout` (marginals, then D_P, then
D_Q; or the GAN's joint one) takes one Adam step on one fresh fake batch that all of
them share, or (`fake_batches="per_discriminator"`, as the original code) each on its
own. The generator then descends the non-saturating loss of the combined logit.
`trainer.DistributedStep` runs these under `strategy.run`, `disc_iter` rounds per
update; losses are averaged over the global batch and the Keras optimizers all-reduce
(sum) the gradients across replicas.

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

from tf_factorgan import factorisation, inference, layout, losses, optimizers
from tf_factorgan.config import MODEL, TRAINING, SettingError, check, setting
from tf_factorgan import pairs_loss as pairs_losses
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.noise import Randomness
from tf_factorgan.pairs_loss import PairsLoss

# How a discriminator round draws its fakes.
PER_DISCRIMINATOR = "per_discriminator"
SHARED = "shared"
FAKE_BATCHES = (PER_DISCRIMINATOR, SHARED)


@dataclasses.dataclass(frozen=True)
class OptimisationSettings:
    """The optimisation settings every experiment exposes (defaults: the original
    FactorGAN code's, but for adam_epsilon and fake_batches, see
    experiments.common.TrainingSettings, which inherits these fields).

    batch_size is the global batch (split across replicas); noise is Uniform(-1, 1)^nz.
    """

    batch_size: int = setting(25, "Global batch size (split across the replicas).", TRAINING,
                              low=1)
    disc_iter: int = setting(2, "Discriminator rounds per generator update.", TRAINING, low=1)
    lr: float = setting(1e-4, "Adam learning rate of every network.", TRAINING, above=0)
    nz: int = setting(50, "Noise dimensions (Uniform(-1, 1)).", MODEL, low=1)
    generator_objective: str = setting(
        "ns", "Generator loss: non-saturating (ns) or KL (kl: minus the mean logit).", TRAINING,
        choices=losses.GENERATOR_OBJECTIVES)
    # Keras' Adam default (the original code: PyTorch's 1e-8).
    adam_epsilon: float = setting(1e-7, "Adam's epsilon (PyTorch's default: 1e-8).", TRAINING,
                                  above=0)
    fake_batches: str = setting(
        SHARED, "Each discriminator of a round gets its own fresh fake batch (per_discriminator, "
        "as the original code), or all share one (shared).", TRAINING, choices=FAKE_BATCHES)
    jit_compile: bool = setting(False, "Compile the replica steps with XLA.", TRAINING)

    def __post_init__(self):
        check(self)


@dataclasses.dataclass(frozen=True)
class GanConfig(OptimisationSettings):
    """A model's settings: the optimisation's, the variant (which discriminators),
    whether the generator is conditional, and Adam's betas."""

    variant: Variant = Variant.FACTORGAN
    beta_1: float = 0.5
    beta_2: float = 0.999
    conditional: bool = False
    # Conditional models only: False hides part 0 (the generator's input, e.g. a
    # mixture) from every discriminator, which then judges parts 1.. alone.
    condition_visible: bool = True
    # Conditional models only: what the generator also learns from the paired rows
    # (`pairs_loss`: pix2pix's reconstruction, MR-GAN's moment losses).
    pairs_loss: PairsLoss = PairsLoss()
    # Conditional models whose outputs are class probabilities (one-hot label maps):
    # True shows the discriminators each generated pixel's most probable class, one-hot
    # like the real maps, with the probabilities' gradient (straight-through). Shown the
    # probabilities themselves, a discriminator tells real from fake by their softness
    # alone.
    discrete_fakes: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.pairs_loss.active and not self.conditional:
            raise SettingError(f"{{recon_loss}}={self.pairs_loss.recon_loss} needs a conditional "
                               "generator (its paired inputs have targets)")

    @classmethod
    def of(cls, settings: OptimisationSettings, variant: Variant, **model) -> "GanConfig":
        """The config of `variant` with the optimisation settings of `settings` (any
        OptimisationSettings, e.g. an experiment's config) and `model`'s fields."""
        inherited = {f.name: getattr(settings, f.name) for f in dataclasses.fields(OptimisationSettings)}
        return cls(variant=variant, **inherited, **model)


@dataclasses.dataclass
class GanModels:
    """Generator and discriminators of one variant, each discriminator with its Adam.

    Discriminators are keyed by name: "joint" (GAN), "marginal_<i>" for part i,
    "p_dependency" and "q_dependency". predictor: proxy MR's frozen moment predictor
    (`predictor.MomentPredictor`), or None.
    """

    generator: keras.Model
    discriminators: dict[str, keras.Model]
    generator_optimizer: keras.optimizers.Optimizer
    discriminator_optimizers: dict[str, keras.optimizers.Optimizer]
    predictor: Optional[keras.Model] = None

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
        trackables = {
            "generator": self.generator,
            "generator_optimizer": self.generator_optimizer,
            **{f"discriminator_{k}": v for k, v in self.discriminators.items()},
            **{f"optimizer_{k}": v for k, v in self.discriminator_optimizers.items()},
        }
        if self.predictor is not None:  # frozen, but the run's checkpoint holds it whole
            trackables["predictor"] = self.predictor
        return trackables


def model_layout(config: GanConfig, num_parts: int) -> layout.Layout:
    """The discriminator table of `config.variant` for samples of `num_parts` parts."""
    return layout.layout(config.variant, num_parts, config.conditional,
                         reads_pairs=config.pairs_loss.active)


def discriminator_inputs(config: GanConfig, partition: Partition) -> dict[str, int]:
    """Discriminators of `config.variant` in their update order: name -> size of the
    last axis they see (a part's size for marginals, the visible sample otherwise)."""
    whole = partition.total_size
    if config.conditional and not config.condition_visible:
        whole -= partition.sizes[0]
    return {d.name: whole if d.part is None else partition.sizes[d.part]
            for d in model_layout(config, partition.num_parts).discriminators}


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
    make_predictor: Optional[Callable[[], keras.Model]] = None,
) -> GanModels:
    """Creates, builds and pairs with optimizers every network of `config.variant`.

    Must run under `strategy.scope()`. `sample_shape` is one sample without the batch
    axis, its last axis split by `partition`. `make_generator()` returns a model called
    as `generator(noise)`, or `generator(part_0, noise)` returning parts 1.. when
    `config.conditional`; `make_discriminator(name)` receives the names of
    `discriminator_inputs`; `make_predictor()` returns proxy MR's built, trained
    predictor (needed when `config.pairs_loss.uses_predictor`). Optimizers are built
    here because Keras 3 cannot create their slots inside a traced distributed step.
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
    predictor = None
    if config.pairs_loss.uses_predictor:
        if make_predictor is None:
            raise SettingError(f"{{recon_loss}}={config.pairs_loss.recon_loss} needs a trained predictor")
        predictor = make_predictor()
        predictor.trainable = False
    return GanModels(generator, discriminators, generator_optimizer, discriminator_optimizers,
                     predictor)


def average(per_example: tf.Tensor, global_batch_size: Optional[int] = None) -> tf.Tensor:
    """[B] per-example values of one replica -> their sum / the global batch size
    (default: B times the replicas in sync, every replica having B rows)."""
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def update_discriminator(
    name: str,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    real: tf.Tensor,
    fake: tf.Tensor,
    global_batch_size: int,
) -> dict:
    """One Adam step of `model` on sigmoid cross-entropy, real -> 1 and fake -> 0;
    returns its loss and accuracy as "discriminator/<name>/{loss,accuracy}"."""
    # One call on [real; fake] advances the spectral-norm power iteration once per
    # update, as a single training forward pass would.
    with tf.GradientTape() as tape:
        logits = model(tf.concat([real, fake], axis=0), training=True)
        real_logits, fake_logits = tf.split(logits, 2, axis=0)
        loss = average(losses.discriminator_loss(real_logits, fake_logits), global_batch_size)
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    accuracy = average(losses.discriminator_accuracy(real_logits, fake_logits), global_batch_size)
    return {f"discriminator/{name}/loss": loss, f"discriminator/{name}/accuracy": accuracy}


def _flat(logits: tf.Tensor) -> tf.Tensor:
    return tf.reshape(logits, [-1])


def _repeated(rows: tf.Tensor, repeats: int) -> tf.Tensor:
    """[B, ...] -> [repeats * B, ...], block r a copy of all rows (sample r of each)."""
    return tf.concat([rows] * repeats, axis=0) if repeats > 1 else rows


class FactorGanUpdates:
    """One replica's discriminator round and generator update of a GAN variant.

    Args:
      models: from `build_models` (under `strategy.scope()`).
      config: optimisation settings (`batch_size` is the global batch).
      partition: the split of a sample into parts.
      randomness: a `Randomness` created under the same scope.
    """

    def __init__(self, models: GanModels, config: GanConfig, partition: Partition,
                 randomness: Randomness):
        self.models = models
        self.config = config
        self.partition = partition
        self.randomness = randomness
        self.layout = model_layout(config, partition.num_parts)

    def data_streams(self) -> dict:
        """Stream name -> part (None: whole samples) of a discriminator round's batch."""
        return self.layout.streams

    def sample(self, num_samples: int, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
        """`inference.sample` of an unconditional generator."""
        if self.config.conditional:
            raise ValueError("a conditional generator needs inputs: use translate()")
        return inference.sample(self.models.generator, self.config.nz, num_samples, seed, batch_size)

    def translate(self, conditions: np.ndarray, seed: int = 0, batch_size: int = 100) -> np.ndarray:
        """`inference.translate` of a conditional generator."""
        if not self.config.conditional:
            raise ValueError("an unconditional generator takes no inputs: use sample()")
        return inference.translate(self.models.generator, conditions, self.config.nz, seed, batch_size)

    def metric_names(self) -> list[str]:
        names = [f"discriminator/{n}/{m}" for n in self.layout.names for m in ("loss", "accuracy")] + [
            "generator/loss",
            "generator/mean_sigmoid_combined_logit",
        ]
        if self.config.pairs_loss.active:
            names += ["generator/adversarial_loss", "generator/pairs_loss"]
        if self.config.pairs_loss.uses_moments:
            names.append("generator/sample_std")
        return names

    def _complete(self, conditions: tf.Tensor) -> tf.Tensor:
        """Generator outputs (parts 1.., training mode) for part-0 `conditions` [B, ...],
        each row from its own fresh noise."""
        rows = conditions.shape[0] if conditions.shape[0] is not None else tf.shape(conditions)[0]
        noise = self.randomness.noise(rows, self.config.nz)
        return self.models.generator(conditions, noise, training=True)

    def generate(self, batch: dict, batch_size: int, repeats: int = 1) -> tf.Tensor:
        """[repeats * batch_size, *sample_shape] fake samples from fresh noise (training
        mode); a conditional model completes part 0 of the inputs in `batch`'s
        condition stream, each input `repeats` times (block r of the output holds
        repeat r of every input)."""
        if not self.config.conditional:
            return self.models.generator(self.randomness.noise(repeats * batch_size, self.config.nz),
                                         training=True)
        conditions = batch[self.layout.condition_stream]
        if self.layout.streams[self.layout.condition_stream] is None:
            conditions = self.partition.split(conditions)[0]
        conditions = _repeated(conditions, repeats)
        return self.partition.join([conditions, self._shown(self._complete(conditions))])

    def _shown(self, outputs: tf.Tensor) -> tf.Tensor:
        """What the discriminators see of generator outputs [B, ..., C]: the outputs, or
        with `discrete_fakes` their most probable class one-hot (value) with the
        outputs' gradient (straight-through)."""
        if not self.config.discrete_fakes:
            return outputs
        hard = tf.one_hot(tf.argmax(outputs, axis=-1), outputs.shape[-1], dtype=outputs.dtype)
        return outputs + tf.stop_gradient(hard - outputs)

    def _fake_batches(self, batch: dict, batch_size: int):
        """`() -> fake batch` (no gradient to the generator) for the discriminators of a
        round that see fakes: each call returns a batch from its own noise (all drawn in
        one generator call, which costs less than several small ones), or with
        fake_batches="shared" the round's one batch every time."""
        count = sum(d.sees_generated for d in self.layout.discriminators)
        if self.config.fake_batches == SHARED:
            count = 1
        batches = iter(tf.split(tf.stop_gradient(self.generate(batch, batch_size, count)), count))
        if count == 1:
            shared = next(batches)
            return lambda: shared
        return lambda: next(batches)

    def _shuffled(self, x: tf.Tensor) -> tf.Tensor:
        perms = self.randomness.permutations(tf.shape(x)[0], self.partition.num_parts - 1)
        return factorisation.shuffle_parts(x, self.partition, perms)

    def _view(self, discriminator: layout.Discriminator, samples: tf.Tensor) -> tf.Tensor:
        """What `discriminator` sees of whole samples: its part, or the visible sample
        (parts 1.. when a conditional model hides its input)."""
        if discriminator.part is not None:
            return self.partition.split(samples)[discriminator.part]
        if self.config.conditional and not self.config.condition_visible:
            return samples[..., self.partition.sizes[0]:]
        return samples

    def _input(self, discriminator, source: layout.Source, batch: dict, fake) -> tf.Tensor:
        if source.stream == layout.GENERATED:
            samples = fake
        elif self.layout.streams[source.stream] is not None:
            return batch[source.stream]  # a marginal stream holds the part alone
        else:
            samples = batch[source.stream]
        return self._view(discriminator, self._shuffled(samples) if source.shuffled else samples)

    def discriminator_round(self, batch: dict, batch_size: int) -> dict:
        """One Adam step of every discriminator, in the layout's order, on `batch`
        (one replica's batch of every stream, `batch_size` rows each)."""
        fakes = self._fake_batches(batch, batch_size)
        metrics = {}
        for d in self.layout.discriminators:
            fake = fakes() if d.sees_generated else None
            metrics.update(update_discriminator(
                d.name, self.models.discriminators[d.name],
                self.models.discriminator_optimizers[d.name],
                self._input(d, d.real, batch, fake), self._input(d, d.fake, batch, fake),
                self.config.batch_size,
            ))
        return metrics

    def combined_logit(self, samples: tf.Tensor) -> tf.Tensor:
        """[B] estimate of log p(x)/q(x) for the variant (D(x) for the plain GAN)."""
        logits = {d.name: _flat(self.models.discriminators[d.name](self._view(d, samples), training=True))
                  for d in self.layout.discriminators}
        if not self.config.variant.is_factorised:
            return logits[layout.JOINT]
        return factorisation.combined_logit(
            [logits[layout.marginal(i)] for i in self.layout.marginal_parts()],
            logits[layout.Q_DEPENDENCY], logits.get(layout.P_DEPENDENCY),
        )

    def _pairs_loss(self, batch: dict, batch_size: int) -> tuple[tf.Tensor, tf.Tensor, dict]:
        """The pairs loss of the joint stream's first inputs (`PairsLoss`): (its value,
        already divided by the global number of inputs it read; the generated whole
        samples [K * n, ...] it fitted, K per input; its metrics)."""
        settings = self.config.pairs_loss
        count = settings.samples_per_input
        rows = settings.inputs_per_replica(batch_size)
        parts = self.partition.split(batch[layout.JOINT][:rows])
        inputs, target = parts[0], tf.concat(parts[1:], axis=-1)
        repeated = _repeated(inputs, count)
        outputs = self._complete(repeated)
        samples = tf.reshape(outputs, [count, rows, *outputs.shape[1:]])
        predicted = self.models.predictor(inputs, training=False) if settings.uses_predictor else None
        loss = average(pairs_losses.per_example(settings, samples, target, predicted))
        metrics = {"generator/pairs_loss": loss}
        if settings.uses_moments:
            spread = tf.math.reduce_std(tf.cast(samples, tf.float32), axis=0)
            metrics["generator/sample_std"] = average(losses.example_mean(spread))
        return loss, self.partition.join([repeated, self._shown(outputs)]), metrics

    def generator_update(self, batch: dict, batch_size: int) -> dict:
        """One Adam step of the generator on the non-saturating (or KL) loss of the
        combined logit of a fresh fake batch, plus its pairs loss (`PairsLoss`).

        A conditional GAN's fake batch and its pairs' samples are one batch (the
        paired inputs are its inputs), as in pix2pix and MR-GAN; a FactorGAN completes
        its condition stream (every observed input) for the adversarial loss and its
        paired inputs for the pairs loss."""
        generator = self.models.generator
        settings = self.config.pairs_loss
        with tf.GradientTape() as tape:
            pairs, fake, metrics = (self._pairs_loss(batch, batch_size) if settings.active
                                    else (0.0, None, {}))
            if fake is None or self.layout.condition_stream != layout.JOINT:
                fake = self.generate(batch, batch_size)
            logit = self.combined_logit(fake)
            adversarial = average(losses.generator_loss(logit, self.config.generator_objective))
            loss = adversarial + pairs
        if settings.active:
            metrics["generator/adversarial_loss"] = adversarial
        variables = generator.trainable_variables
        grads = tape.gradient(loss, variables)
        self.models.generator_optimizer.apply_gradients(zip(grads, variables))
        return {
            "generator/loss": loss,
            "generator/mean_sigmoid_combined_logit": average(tf.sigmoid(logit)),
            **metrics,
        }
