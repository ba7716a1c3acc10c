"""The CycleGAN baseline for image-to-image translation (Zhu et al., ICCV 2017), which
the original FactorGAN code lacks.

Two generators translate A -> B (`generator`, the one evaluated and exported) and
B -> A (`inverse_generator`); discriminator "a" tells real from translated A images,
"b" the same for B. Both learn from unpaired A and B images only (marginal streams 0
and 1). Generators minimise the adversarial loss of both directions plus
cycle_weight * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1) plus
cycle_weight * identity_weight * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1), the weighting
of the pytorch-CycleGAN-and-pix2pix defaults (lambda 10, identity 0.5). The
discriminators use the same sigmoid cross-entropy as every other model here (not
that repository's least-squares loss) and no pool of past fakes.
"""

import dataclasses
from typing import Callable, Optional

import keras
import tensorflow as tf

from tf_factorgan import gan, inference, layout, losses
from tf_factorgan.config import SettingError
from tf_factorgan.factorisation import Partition
from tf_factorgan.noise import Randomness

DISCRIMINATORS = ("a", "b")


@dataclasses.dataclass(frozen=True)
class CycleWeights:
    """cycle: weight of the L1 cycle loss; identity: its fraction for the identity loss."""

    cycle: float = 10.0
    identity: float = 0.5

    def __post_init__(self):
        if self.cycle < 0 or self.identity < 0:
            raise SettingError(f"{{cycle_weight}} and {{identity_weight}} must be >= 0, got "
                               f"{self.cycle}, {self.identity}")


@dataclasses.dataclass
class CycleGanModels(gan.GanModels):
    """GanModels plus the B -> A generator, which shares the generators' Adam."""

    inverse_generator: Optional[keras.Model] = None

    def networks(self) -> list[keras.Model]:
        return [self.generator, self.inverse_generator, *self.discriminators.values()]

    def trackables(self) -> dict:
        return {**super().trackables(), "inverse_generator": self.inverse_generator}


def build_models(
    config: gan.GanConfig,
    image_shape_a: tuple[int, int, int],
    image_shape_b: tuple[int, int, int],
    make_generator: Callable[[int], keras.Model],
    make_discriminator: Callable[[str], keras.Model],
) -> CycleGanModels:
    """Creates and builds both generators, both discriminators and their Adams.

    Must run under `strategy.scope()`. Shapes are [H, W, C] of one image;
    `make_generator(output_channels)` returns a noise-free image-to-image model.
    """
    generator = make_generator(image_shape_b[-1])
    inverse_generator = make_generator(image_shape_a[-1])
    generator(tf.zeros([1, *image_shape_a]))
    inverse_generator(tf.zeros([1, *image_shape_b]))
    discriminators = {}
    for name, shape in zip(DISCRIMINATORS, (image_shape_a, image_shape_b)):
        discriminators[name] = make_discriminator(name)
        discriminators[name](tf.zeros([1, *shape]))

    def adam(name, variables):
        optimizer = gan.make_adam(config, name)
        optimizer.build(variables)
        return optimizer

    generator_variables = generator.trainable_variables + inverse_generator.trainable_variables
    return CycleGanModels(
        generator=generator,
        discriminators=discriminators,
        generator_optimizer=adam("generators", generator_variables),
        discriminator_optimizers={
            name: adam(name, model.trainable_variables) for name, model in discriminators.items()
        },
        inverse_generator=inverse_generator,
    )


def cycle_losses(
    generator: keras.Model,
    inverse_generator: keras.Model,
    real_a: tf.Tensor,
    real_b: tf.Tensor,
    training: bool = True,
) -> dict[str, tf.Tensor]:
    """Per-example [B] terms of the generators' objective, before weighting.

    Returns the translations ("fake_a", "fake_b", which feed the adversarial terms)
    and the L1 losses "cycle" (both round trips) and "identity" (each generator
    applied to an image already in its output domain; 0 when A and B have different
    channel counts, where it is undefined).
    """
    fake_b = generator(real_a, training=training)
    fake_a = inverse_generator(real_b, training=training)
    cycle = losses.reconstruction_loss(inverse_generator(fake_b, training=training), real_a, "l1")
    cycle += losses.reconstruction_loss(generator(fake_a, training=training), real_b, "l1")
    if real_a.shape[-1] == real_b.shape[-1]:
        identity = losses.reconstruction_loss(generator(real_b, training=training), real_b, "l1")
        identity += losses.reconstruction_loss(inverse_generator(real_a, training=training), real_a, "l1")
    else:
        identity = tf.zeros_like(cycle)
    return {"fake_a": fake_a, "fake_b": fake_b, "cycle": cycle, "identity": identity}


class CycleGanUpdates:
    """One replica's CycleGAN round and update, for `trainer.DistributedStep`: both
    discriminators on unpaired A and B images (marginal streams 0 and 1), then both
    generators at once. `partition` splits an (A, B) pair by channels."""

    STREAMS = {layout.marginal(0): 0, layout.marginal(1): 1}

    def __init__(
        self,
        models: CycleGanModels,
        config: gan.GanConfig,
        partition: Partition,
        randomness: Randomness,
        weights: CycleWeights = CycleWeights(),
    ):
        self.models = models
        self.config = config
        self.partition = partition
        # Unused by CycleGAN's math, but checkpointed like every model's.
        self.randomness = randomness
        self.weights = weights

    def data_streams(self) -> dict:
        return dict(self.STREAMS)

    def metric_names(self) -> list[str]:
        return [f"discriminator/{n}/{m}" for n in DISCRIMINATORS for m in ("loss", "accuracy")] + [
            "generator/loss",
            "generator/adversarial_loss",
            "generator/cycle_loss",
            "generator/identity_loss",
        ]

    def translate(self, images_a, seed: int = 0, batch_size: int = 100):
        """A -> B translations of [N, H, W, C_A] images in [0, 1] (noise-free: `seed`
        is accepted for the interface of conditional GANs and ignored)."""
        del seed
        return inference.translate(self.models.generator, images_a, None, batch_size=batch_size)

    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        return gan.average(per_example, self.config.batch_size)

    def _real(self, batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
        return batch[layout.marginal(0)], batch[layout.marginal(1)]

    def discriminator_round(self, batch: dict, batch_size: int) -> dict:
        models = self.models
        real_a, real_b = self._real(batch)
        fake_b = tf.stop_gradient(models.generator(real_a, training=True))
        fake_a = tf.stop_gradient(models.inverse_generator(real_b, training=True))
        metrics = {}
        for name, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            metrics.update(gan.update_discriminator(
                name, models.discriminators[name], models.discriminator_optimizers[name],
                real, fake, self.config.batch_size,
            ))
        return metrics

    def generator_update(self, batch: dict, batch_size: int) -> dict:
        models = self.models
        real_a, real_b = self._real(batch)
        variables = models.generator.trainable_variables + models.inverse_generator.trainable_variables
        objective = self.config.generator_objective
        with tf.GradientTape() as tape:
            terms = cycle_losses(models.generator, models.inverse_generator, real_a, real_b)
            adversarial = losses.generator_loss(
                tf.reshape(models.discriminators["a"](terms["fake_a"], training=True), [-1]), objective
            ) + losses.generator_loss(
                tf.reshape(models.discriminators["b"](terms["fake_b"], training=True), [-1]), objective
            )
            cycle = self.weights.cycle * terms["cycle"]
            identity = self.weights.cycle * self.weights.identity * terms["identity"]
            loss = self._average(adversarial + cycle + identity)
        grads = tape.gradient(loss, variables)
        models.generator_optimizer.apply_gradients(zip(grads, variables))
        return {
            "generator/loss": loss,
            "generator/adversarial_loss": self._average(adversarial),
            "generator/cycle_loss": self._average(cycle),
            "generator/identity_loss": self._average(identity),
        }
