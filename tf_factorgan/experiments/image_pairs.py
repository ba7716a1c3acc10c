"""Image pair generation (FactorGAN paper, section 4.2): generate (A, B) pairs such as
(edge map, shoe) or (photo, label map) from noise, with FactorGAN (with or without D_P,
`variant`) or a GAN.

FactorGAN has a marginal discriminator for A's channels and one for B's, and D_P / D_Q
on the concatenated pair; the GAN has one joint discriminator (disc_channels=64 gives
it about as many weights as FactorGAN's four discriminators together, the paper's
"big" GAN). Quality is the paper's LS metric (`eval/ls_metric.py`) on the validation
pairs.

Output under `<out_path>/image_pairs/<experiment_name>/`:
  checkpoints/, events*   resumable state, TensorBoard (losses, sample grids, metrics)
  generator.weights.h5    final generator weights
  samples.png             generated pairs, A | B side by side
  metrics.json            LS metric (mean, spread, every run) and settings
"""

import dataclasses
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tf_factorgan import gan, images, trainer
from tf_factorgan.config import MODEL, SettingError, setting
from tf_factorgan.eval import ls_metric
from tf_factorgan.experiments import common, image_data
from tf_factorgan.models import specs
from tf_factorgan.models.conv import ConvDiscriminator


@dataclasses.dataclass(frozen=True)
class ImagePairsConfig(image_data.ImageDataSettings):
    """Settings of one image pairs run."""

    EXPERIMENT: ClassVar[str] = "image_pairs"
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = ("variant", "dataset", "num_joint_samples", "seed")

    dataset: str = "edges2shoes"
    ngf: int = setting(64, "Generator width (8 * ngf channels at 4x4).", MODEL, low=1)
    steps: int = 40000

    def __post_init__(self):
        super().__post_init__()
        height, width = self.image_size
        if height != width or height & (height - 1):
            # The generator grows 4x4 maps by doubling (`models.conv.ConvGenerator`).
            raise SettingError(f"{{load_size}} must be one power-of-two side for image pairs, "
                               f"got {self.load_size!r}")


def sample_grid(step: trainer.DistributedStep, partition, num_samples: int = 32) -> np.ndarray:
    """[H, W, 3] grid of generated pairs (A | B) from fixed noise."""
    samples = step.updates.sample(num_samples, seed=0)
    return images.image_grid(image_data.side_by_side(*partition.split(samples)), columns=4)


def generator_spec(config: ImagePairsConfig, sample_shape) -> specs.GeneratorSpec:
    """The convolutional generator of (A, B) pairs [S, S, C_A + C_B], served as samples."""
    return specs.GeneratorSpec(
        "conv", {"output_size": sample_shape[0], "output_channels": sample_shape[-1], "ngf": config.ngf},
        [[config.nz]], config.nz, config.seed, "samples", {"sample_shape": list(sample_shape)},
    )


def build_trainer(
    config: ImagePairsConfig, data: image_data.ImageData, strategy: tf.distribute.Strategy
) -> trainer.Trainer:
    gan_config = config.gan_config()
    partition, shape = data.partition, data.sample_shape
    step = common.build_step(
        config, strategy, gan_config, partition,
        lambda: gan.build_models(
            gan_config,
            partition,
            shape,
            make_generator=lambda: specs.construct(generator_spec(config, shape)),
            make_discriminator=image_data.make_discriminator(config),
        ),
    )
    return trainer.Trainer(
        step,
        image_data.make_dataset_fn(config, data, step),
        config.run_dir,
        config,
        image_summary_fn=lambda: sample_grid(step, partition),
        eval_fn=lambda at_step: {key: value for key, value in evaluate_step(config, data, step).items()
                                 if key in ("ls_mean", "ls_std")},
    )


def evaluate(config: ImagePairsConfig, data: image_data.ImageData, loop: trainer.Trainer) -> dict:
    """`evaluate_step` of the trained (or restored) run."""
    return evaluate_step(config, data, loop.gan_step)


def evaluate_step(config: ImagePairsConfig, data: image_data.ImageData, step: trainer.DistributedStep) -> dict:
    """The LS metric: real validation pairs against as many generated pairs."""
    real = np.concatenate([image_data.as_float(data.val.a), image_data.as_float(data.val.b)], -1)
    generated = step.updates.sample(len(real), seed=config.seed, batch_size=100)
    # The paper's LS discriminator: the convolutional one at half width, no spectral norm.
    ls_filters = max(1, config.disc_channels // 2)
    return ls_metric.ls_score(
        real,
        generated,
        lambda: ConvDiscriminator(filters=ls_filters, spectral_norm=False),
        runs=config.ls_runs,
        epochs=config.ls_epochs,
        seed=config.seed,
    )


def _write_outputs(config, data, loop, metrics) -> None:
    images.write_png(os.path.join(loop.out_dir, "samples.png"),
                     sample_grid(loop.gan_step, data.partition))


def load_data(config: ImagePairsConfig) -> image_data.ImageData:
    """The image data, with enough validation pairs for the LS metric (checked before
    training rather than after it)."""
    data = image_data.load_data(config)
    if len(data.val) < ls_metric.MIN_SAMPLES:
        raise SettingError(
            f"the LS metric needs at least {ls_metric.MIN_SAMPLES} validation pairs, the "
            f"validation set ({image_data.val_source(config)}) holds {len(data.val)}")
    return data


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=evaluate,
    generator_spec=lambda config, data: generator_spec(config, data.sample_shape),
    details=lambda config, data: dict(variant=config.variant, **image_data.details(config, data)),
    metric_keys=lambda config: ("ls_mean", "ls_std"),
    write_outputs=_write_outputs,
)
