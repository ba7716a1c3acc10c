"""Image-to-image translation with few pairs (FactorGAN paper, section 4.3): photo ->
label map on Cityscapes (or any pix2pix dataset, A -> B).

Models (--model):
  factorgan  conditional FactorGAN: a U-Net maps (photo, noise) to a label map; one
             marginal discriminator on label maps sees every real label map and the
             predictions for every photo, paired or not; D_P / D_Q on (photo, label map).
  gan        one discriminator on (photo, label map) pairs; the generator sees only
             the paired photos.
  cyclegan   two noise-free U-Nets and two discriminators trained on unpaired photos
             and label maps only (`cyclegan.py`).

Evaluation on the validation pairs: MSE in RGB [0, 1] and, when B is a label map
(the cityscapes preset, or --palette), pixel accuracy, class accuracies and mean IoU
over the palette's evaluated classes (`eval/segmentation.py`).

Output under `<out_path>/image2image/<experiment_name>/`:
  checkpoints/, logs/     resumable state, TensorBoard (losses, input | prediction |
                          truth grids, metrics)
  generator.weights.h5    final A -> B generator weights
  predictions.png         validation inputs | predictions | ground truth
  metrics.json            metrics and settings
"""

import dataclasses
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tf_factorgan import cyclegan, gan, images, trainer
from tf_factorgan.eval import segmentation
from tf_factorgan.experiments import common, image_data
from tf_factorgan.factorisation import Variant
from tf_factorgan.models import specs

MODELS = ("factorgan", "gan", "cyclegan")
NUM_SHOWN = 8


@dataclasses.dataclass(frozen=True)
class Image2ImageConfig(image_data.ImageDataSettings):
    """ngf: the U-Net's width. cycle_weight / identity_weight: CycleGAN only."""

    EXPERIMENT: ClassVar[str] = "image2image"

    model: str = "factorgan"
    load_size: str = "128"
    ngf: int = 32
    steps: int = 40000
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    experiment_name: str = "factorgan"

    def __post_init__(self):
        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {MODELS}, got {self.model!r}")
        if self.ngf < 1:
            raise ValueError(f"--ngf must be >= 1, got {self.ngf}")
        self.cycle_weights()  # validates

    @property
    def variant(self) -> Variant:
        return Variant.FACTORGAN if self.model == "factorgan" else Variant.GAN

    def gan_config(self) -> gan.GanConfig:
        return super().gan_config(self.variant, conditional=True)

    def cycle_weights(self) -> cyclegan.CycleWeights:
        return cyclegan.CycleWeights(self.cycle_weight, self.identity_weight)


def comparison_grid(step: trainer.DistributedStep, data: image_data.ImageData, count: int = NUM_SHOWN) -> np.ndarray:
    """[H, W, 3] rows of validation input | prediction | truth, fixed inputs and noise."""
    inputs = image_data.as_float(data.val.a[:count])
    predictions = step.updates.translate(inputs, seed=0)
    truth = image_data.as_float(data.val.b[:count])
    return images.image_grid(image_data.side_by_side(inputs, predictions, truth), columns=2)


def generator_spec(config: Image2ImageConfig, data: image_data.ImageData) -> specs.GeneratorSpec:
    """The A -> B U-Net (CycleGAN's is noise-free), served as segmentation, with the
    run's image size and palette."""
    (height, width), (a_channels, b_channels) = data.sample_shape[:2], data.partition.sizes
    # palette None: B is not a label map (the export refuses to serve it as one).
    served = {"load_size": height, "image_size": [height, width], "input_channels": a_channels,
              "palette": data.palette.to_json() if data.palette is not None else None}
    return specs.GeneratorSpec(
        "unet", {"output_channels": b_channels, "ngf": config.ngf,
                 "noise_channels": 0 if config.model == "cyclegan" else 2},
        [[height, width, a_channels], [config.nz]], config.nz, config.seed, "segmentation", served,
    )


def _build_step(config, data, strategy) -> trainer.DistributedStep:
    gan_config = config.gan_config()
    partition, shape = data.partition, data.sample_shape
    a_shape = (*shape[:2], partition.sizes[0])
    b_shape = (*shape[:2], partition.sizes[1])
    make_discriminator = image_data.make_discriminator(config)
    spec = generator_spec(config, data)
    if config.model == "cyclegan":
        # Both directions are the spec's U-Net, B -> A with A's channels.
        def make_generator(channels):
            return specs.construct(dataclasses.replace(
                spec, arguments={**spec.arguments, "output_channels": channels}))

        return common.build_step(
            config, strategy, gan_config, partition,
            lambda: cyclegan.build_models(
                gan_config, a_shape, b_shape,
                make_generator=make_generator,
                make_discriminator=make_discriminator,
            ),
            updates_class=cyclegan.CycleGanUpdates,
            weights=config.cycle_weights(),
        )
    return common.build_step(
        config, strategy, gan_config, partition,
        lambda: gan.build_models(
            gan_config, partition, shape,
            make_generator=lambda: specs.construct(spec),
            make_discriminator=make_discriminator,
        ),
    )


def build_trainer(
    config: Image2ImageConfig, data: image_data.ImageData, strategy: tf.distribute.Strategy
) -> trainer.Trainer:
    step = _build_step(config, data, strategy)
    return trainer.Trainer(
        step,
        image_data.make_dataset_fn(config, data, step),
        config.run_dir,
        config,
        image_summary_fn=lambda: comparison_grid(step, data),
    )


def evaluate(config: Image2ImageConfig, data: image_data.ImageData, loop: trainer.Trainer,
             batch_size: int = 50) -> dict:
    """Metrics of the predictions for every validation input, in batches: MSE, and
    with a palette (B is a label map) pixel accuracy, class accuracies and IoU."""
    metrics = segmentation.SegmentationMetrics(data.palette) if data.palette else segmentation.MeanSquaredError()
    for start in range(0, len(data.val), batch_size):
        rows = slice(start, start + batch_size)
        predicted = loop.gan_step.updates.translate(image_data.as_float(data.val.a[rows]), seed=config.seed + start)
        metrics.update(predicted, image_data.as_float(data.val.b[rows]))
    return metrics.result()


def _write_outputs(config, data, loop, metrics) -> None:
    images.write_png(os.path.join(loop.out_dir, "predictions.png"), comparison_grid(loop.gan_step, data))


TASK = common.Task(
    load_data=image_data.load_data,
    build_trainer=build_trainer,
    evaluate=evaluate,
    generator_spec=generator_spec,
    details=lambda config, data: dict(model=config.model, **image_data.details(config, data)),
    metric_keys=lambda config: ("mse", "pixel_accuracy", "mean_iou") if config.has_label_maps else ("mse",),
    write_outputs=_write_outputs,
)
