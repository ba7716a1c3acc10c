"""Image-to-image translation with few pairs (FactorGAN paper, section 4.3): photo ->
label map on Cityscapes (or any pix2pix dataset, A -> B), or the reverse
(--direction=b_to_a: label map -> photo, the MR-GAN paper's Cityscapes task).

Variants (`variant`; cyclegan is the baseline, not a FactorGAN variant):
  factorgan        conditional FactorGAN: a U-Net maps (input, noise) to the output; one
                   marginal discriminator on outputs sees every real output image and
                   the predictions for every input, paired or not; D_P / D_Q on pairs.
  factorgan_no_cp  the same without D_P (real parts taken as independent).
  gan              one discriminator on (input, output) pairs; the generator sees only
                   the paired inputs. With --recon_loss=l1 it is pix2pix.
  cyclegan         two noise-free U-Nets and two discriminators trained on unpaired
                   photos and label maps only (`cyclegan.py`).

Every conditional model can also learn from its pairs directly (--recon_loss: pix2pix's
l1 / l2, cross-entropy, MR-GAN's mr1 / mr2 / proxy_mr1 / proxy_mr2; `pairs_loss.py`).
Label maps enter the networks as colours or one-hot classes (--label_encoding,
`data/label_encoding.py`); the U-Net's noise reaches its bottleneck and, with
--noise_stages, per-pixel maps at its last decoder stages.

Evaluation on the validation pairs draws --eval_samples outputs per input: MSE in RGB
[0, 1] of one sample and, when the outputs are label maps (the cityscapes preset, or
--palette), pixel accuracy, class accuracies and mean IoU of one sample and of the
per-pixel majority vote of the samples (`vote/...`); the samples' diversity
(`eval/diversity.py`). --eval_every evaluates during training too.

Output under `<out_path>/image2image/<experiment_name>/`:
  checkpoints/, events*   resumable state, TensorBoard (losses, input | truth | samples
                          | consensus | spread grids, metrics)
  generator.weights.h5    final generator weights (input -> output)
  predictions.png         validation inputs | truth | samples | consensus | spread
  metrics.json            metrics and settings
"""

import dataclasses
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tf_factorgan import cyclegan, gan, images, layout, predictor, trainer
from tf_factorgan.data import label_encoding, sources
from tf_factorgan.config import DATA, EVALUATION, MODEL, SettingError, setting
from tf_factorgan.eval import diversity, ls_metric, realism, segmentation
from tf_factorgan.experiments import common, image_data
from tf_factorgan.factorisation import Variant
from tf_factorgan.models import specs, unet
from tf_factorgan.models.conv import ConvDiscriminator
from tf_factorgan.pairs_loss import PairsLoss

# The variants of image2image: FactorGAN's, and the CycleGAN baseline (whose two
# discriminators each judge one part: a GAN's discriminator round, `cyclegan.py`).
CYCLEGAN = "cyclegan"
VARIANT_NAMES = (*(v.value for v in Variant), CYCLEGAN)
NUM_SHOWN = 4
# Samples per input shown in TensorBoard and predictions.png.
SAMPLES_SHOWN = 3


@dataclasses.dataclass(frozen=True)
class Image2ImageConfig(image_data.ImageDataSettings, PairsLoss, unet.UNetSettings):
    """Settings of one image-to-image run (each field's help says what it sets)."""

    EXPERIMENT: ClassVar[str] = "image2image"
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = (
        "variant", "dataset", "num_joint_samples", "recon_loss", "seed")

    variant: str = setting(
        "factorgan", "factorgan: conditional FactorGAN; factorgan_no_cp: the same without D_P; "
        "gan: one discriminator on (input, output) pairs of the paired images (pix2pix with "
        "{recon_loss}=l1); cyclegan: CycleGAN on the unpaired images (not a FactorGAN "
        "variant: the baseline).", MODEL, choices=VARIANT_NAMES)
    direction: str = setting(image_data.A_TO_B, "a_to_b: A (photo) is the input and B (label "
                             "map) the output; b_to_a: the reverse.", DATA,
                             choices=image_data.DIRECTIONS)
    label_encoding: str = setting(
        label_encoding.RGB, "Label maps in the networks: colours (rgb), or one channel per class "
        "(one_hot; a generator of label maps then outputs class probabilities).", MODEL,
        choices=label_encoding.ENCODINGS)
    discrete_fakes: bool = setting(
        False, "One-hot label maps: discriminators see each generated pixel's most probable "
        "class one-hot, as real maps are (gradients through the probabilities), instead of the "
        "probabilities.", MODEL)
    load_size: str = "128"
    noise_channels: int = setting(2, "U-Net: noise maps at the bottleneck (a projection of the "
                                  "noise vector).", MODEL, low=0)
    steps: int = 40000
    cycle_weight: float = setting(10.0, "CycleGAN: weight of the L1 cycle loss.", MODEL, low=0)
    identity_weight: float = setting(0.5, "CycleGAN: identity loss weight, as a fraction of "
                                     "{cycle_weight}.", MODEL, low=0)
    eval_samples: int = setting(10, "Outputs drawn per validation input (diversity, majority "
                                "vote).", EVALUATION, low=1)
    experiment_name: str = "factorgan"

    def __post_init__(self):
        super().__post_init__()
        PairsLoss.__post_init__(self)
        if self.variant == CYCLEGAN and (self.recon_loss != "none" or self.label_encoding != label_encoding.RGB
                                         or self.direction != image_data.A_TO_B):
            raise SettingError("{variant}=cyclegan trains on unpaired images only, A -> B in colours: "
                               "it takes no {recon_loss}, {label_encoding}=one_hot or {direction}=b_to_a")
        if self.needs_probabilities and not self.outputs_class_probabilities:
            raise SettingError(f"{{recon_loss}}={self.recon_loss} with {{likelihood}}={self.likelihood} "
                               "needs label maps as outputs in class probabilities: "
                               "{label_encoding}=one_hot, {direction}=a_to_b and label maps (a palette)")

    @property
    def outputs_class_probabilities(self) -> bool:
        return (self.has_label_maps and self.direction == image_data.A_TO_B
                and self.label_encoding == label_encoding.ONE_HOT)

    def gan_config(self) -> gan.GanConfig:
        variant = Variant.GAN if self.variant == CYCLEGAN else Variant(self.variant)
        return gan.GanConfig.of(self, variant, conditional=True, pairs_loss=PairsLoss.of(self),
                                discrete_fakes=self.discrete_fakes and self.outputs_class_probabilities)

    def cycle_weights(self) -> cyclegan.CycleWeights:
        return cyclegan.CycleWeights(self.cycle_weight, self.identity_weight)


def load_data(config: Image2ImageConfig) -> image_data.ImageData:
    """The image data with the run's input part first, label maps in its encoding."""
    return image_data.oriented(image_data.load_data(config), config.direction, config.label_encoding)


def draw_samples(step: trainer.DistributedStep, data: image_data.ImageData, rows: slice,
                 count: int, seed: int) -> np.ndarray:
    """[count, n, H, W, C] outputs (the networks' form) of the validation inputs `rows`,
    sample s from seed `seed + s` (CycleGAN, without noise: the same output each time)."""
    inputs = data.encoded(0, data.val.a[rows])
    return np.stack([step.updates.translate(inputs, seed=seed + s) for s in range(count)])


def consensus(data: image_data.ImageData, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[S, n, H, W, C] samples -> (the consensus [n, H, W, 3 or C] in [0, 1]: label
    maps' majority-vote colours or images' mean; the spread [n, H, W]: the share of samples
    that disagree with the vote, or twice the mean standard deviation, both in [0, 1])."""
    encoding = data.encodings[1]
    if encoding is None:
        mean = samples.mean(axis=0)
        spread = np.clip(2.0 * samples.std(axis=0).mean(axis=-1), 0.0, 1.0)
        return mean, spread
    classes = np.stack([encoding.train_ids(s).numpy() for s in samples])
    vote, agreement = diversity.majority_vote(classes, encoding.num_classes)
    return segmentation.colourise(vote, encoding.palette).numpy(), 1.0 - agreement


def comparison_grid(step: trainer.DistributedStep, data: image_data.ImageData, count: int = NUM_SHOWN,
                    samples_shown: int = SAMPLES_SHOWN) -> np.ndarray:
    """[H', W', 3]: a row per validation input (fixed inputs and noise): input | truth |
    samples_shown samples | their consensus (majority vote or mean, of 10) | their
    spread (white: samples disagree)."""
    rows = slice(0, count)
    samples = draw_samples(step, data, rows, max(10, samples_shown), seed=0)
    mean, spread = consensus(data, samples)
    shown = [data.shown(1, sample) for sample in samples[:samples_shown]]
    inputs = data.shown(0, data.encoded(0, data.val.a[rows]))
    columns = [inputs, image_data.as_float(data.val.b[rows]), *shown, mean, spread[..., None]]
    return images.image_grid(image_data.side_by_side(*columns), columns=1, padding=2)


def generator_spec(config: Image2ImageConfig, data: image_data.ImageData) -> specs.GeneratorSpec:
    """The input -> output U-Net (CycleGAN's is noise-free), served as segmentation
    (or translation, --direction=b_to_a), with the run's image size, palette and
    label encoding."""
    (height, width), (in_channels, out_channels) = data.sample_shape[:2], data.partition.sizes
    output = data.encodings[1]
    # palette None: the outputs are not label maps (the export refuses to serve them so).
    served = {"load_size": height, "image_size": [height, width], "input_channels": in_channels,
              "palette": data.palette.to_json() if data.palette is not None else None,
              "label_encoding": config.label_encoding, "direction": config.direction,
              # How photos reached the training size: the served model prepares its
              # inputs so (presets stretch their square halves).
              "resize": config.resize if config.dataset == image_data.FOLDERS else "stretch"}
    noisy = config.variant != CYCLEGAN
    arguments = {"output_channels": out_channels, "ngf": config.ngf,
                 "noise_channels": config.noise_channels if noisy else 0,
                 "noise_stages": config.noise_stages if noisy else 0,
                 "noise_map_channels": config.noise_map_channels,
                 "output_activation": output.output_activation if output else "sigmoid"}
    return specs.GeneratorSpec(
        "unet", arguments, [[height, width, in_channels], [config.nz]], config.nz, config.seed,
        "segmentation", served,
    )


def make_predictor_fn(config: Image2ImageConfig, data: image_data.ImageData, spec):
    """`() -> predictor` for proxy MR, after running (or finding) the predictor stage on
    the paired images, validated on the validation pairs."""
    joint = sources.training_streams(data.observations, {layout.JOINT: None}, data.encoders())[layout.JOINT]
    val = np.concatenate([data.encoded(0, data.val.a), data.encoded(1, data.val.b)], axis=-1)
    return predictor.from_stage(
        spec, data.partition, data.sample_shape, joint, val, predictor.StageSettings.of(config),
        os.path.join(config.out_path, "predictors"), [*data.observations.paired, data.val.a, data.val.b])


def _build_step(config, data, strategy) -> trainer.DistributedStep:
    gan_config = config.gan_config()
    partition, shape = data.partition, data.sample_shape
    a_shape = (*shape[:2], partition.sizes[0])
    b_shape = (*shape[:2], partition.sizes[1])
    make_discriminator = image_data.make_discriminator(config)
    spec = generator_spec(config, data)
    if config.variant == CYCLEGAN:
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
    make_predictor = make_predictor_fn(config, data, spec) if config.uses_predictor else None
    return common.build_step(
        config, strategy, gan_config, partition,
        lambda: gan.build_models(
            gan_config, partition, shape,
            make_generator=lambda: specs.construct(spec),
            make_discriminator=make_discriminator,
            make_predictor=make_predictor,
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
        eval_fn=lambda at_step: scalar_metrics(evaluate_step(config, data, step)),
    )


def scalar_metrics(metrics: dict) -> dict:
    """The numeric entries of `metrics` (TensorBoard scalars)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def evaluate_step(config: Image2ImageConfig, data: image_data.ImageData, step: trainer.DistributedStep,
                  batch_size: int = 50) -> dict:
    """Metrics of --eval_samples outputs for every validation input, in batches: MSE of
    one sample, and with label-map outputs pixel accuracy, class accuracies and IoU of
    one sample and (`vote/...`) of the per-pixel majority vote of the samples; the
    samples' diversity (`diversity/...`). With images as outputs, `mean/mse` is the MSE
    of the samples' mean."""
    encoding = data.encodings[1]
    score = (lambda: segmentation.SegmentationMetrics(data.palette)) if encoding else segmentation.MeanSquaredError
    single, consensus_metrics, spread = score(), score(), diversity.Diversity()
    count = config.eval_samples
    for start in range(0, len(data.val), batch_size):
        rows = slice(start, start + batch_size)
        samples = draw_samples(step, data, rows, count, seed=config.seed + count * start)
        truth = image_data.as_float(data.val.b[rows])
        single.update(data.shown(1, samples[0]), truth)
        consensus_metrics.update(consensus(data, samples)[0], truth)
        if count > 1:
            classes = None if encoding is None else np.stack([encoding.train_ids(s).numpy() for s in samples])
            spread.update(samples, classes)
    metrics = single.result()
    prefix = "vote" if encoding else "mean"
    metrics.update({f"{prefix}/{k}": v for k, v in consensus_metrics.result().items()
                    if k in ("mse", "pixel_accuracy", "mean_class_accuracy", "mean_iou")})
    if count > 1:
        metrics.update({f"diversity/{k}": v for k, v in spread.result().items()})
    if data.label_part == 0:  # label maps -> photos: how real the photos look
        metrics.update(realism_metrics(config, data, step))
    metrics["eval_samples"] = count
    return metrics


def realism_metrics(config: Image2ImageConfig, data: image_data.ImageData,
                    step: trainer.DistributedStep) -> dict:
    """Label map -> photo runs: the FCN-score of one sample per validation label map
    with the project's segmentation instrument (`eval/realism.py`), beside its score on
    the real photos, and the LS metric of (label map, photo) pairs against the real
    validation pairs (`eval/ls_metric.py`)."""
    segmenter = realism.instrument(data, realism.instrument_root(config.out_path))()
    rows = slice(0, len(data.val))
    generated = draw_samples(step, data, rows, 1, seed=config.seed)[0]
    labels = data.val.a
    metrics = {f"fcn/{k}": v for k, v in realism.fcn_score(segmenter, generated, labels, data.palette).items()}
    real = realism.fcn_score(segmenter, image_data.as_float(data.val.b), labels, data.palette)
    metrics.update({f"fcn/real_{k}": v for k, v in real.items()})
    as_input = image_data.as_float(labels)
    ls = ls_metric.ls_score(
        np.concatenate([as_input, image_data.as_float(data.val.b)], -1),
        np.concatenate([as_input, generated], -1),
        lambda: ConvDiscriminator(filters=max(1, config.disc_channels // 2), spectral_norm=False),
        runs=config.ls_runs, epochs=config.ls_epochs, seed=config.seed)
    metrics.update(ls_mean=ls["ls_mean"], ls_std=ls["ls_std"])
    return metrics


def metric_keys(config: Image2ImageConfig) -> tuple:
    """The headline metrics (TensorBoard `eval/*`, HParams columns)."""
    diverse = ("diversity/mean_pairwise_l1",) if config.eval_samples > 1 else ()
    if config.has_label_maps and config.direction == image_data.A_TO_B:
        return ("pixel_accuracy", "mean_iou", "vote/pixel_accuracy", "vote/mean_iou", "mse",
                *(("diversity/class_change",) if diverse else ()), *diverse)
    realism_keys = ("fcn/pixel_accuracy", "fcn/mean_iou", "ls_mean") if config.has_label_maps else ()
    return ("mse", "mean/mse", *diverse, *realism_keys)


def _write_outputs(config, data, loop, metrics) -> None:
    images.write_png(os.path.join(loop.out_dir, "predictions.png"), comparison_grid(loop.gan_step, data))


def evaluate(config: Image2ImageConfig, data: image_data.ImageData, loop: trainer.Trainer) -> dict:
    """`evaluate_step` of the trained (or restored) run."""
    return evaluate_step(config, data, loop.gan_step)


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=evaluate,
    generator_spec=generator_spec,
    details=lambda config, data: dict(variant=config.variant, **image_data.details(config, data)),
    metric_keys=metric_keys,
    write_outputs=_write_outputs,
)
