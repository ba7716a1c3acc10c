"""Paired MNIST (FactorGAN paper, section 4.1): train, sample and evaluate one run.

Output under `<out_path>/paired_mnist/<experiment_name>/`:
  checkpoints/           resumable training state
  events.out.tfevents.*  TensorBoard (losses, accuracies, steps/s, sample grids, metrics;
                         `tensorboard --logdir <out_path>/paired_mnist` names runs after
                         their folders)
  generator.weights.h5   final generator weights
  samples.png            a grid of generated pairs
  metrics.json           FID of upper and lower digits, dependency distance, settings
"""

import dataclasses
import functools
import os
from typing import Callable, ClassVar, Optional

import numpy as np
import tensorflow as tf

from tf_factorgan import gan, images, noise, trainer
from tf_factorgan.data import mnist, streams
from tf_factorgan.config import DATA, EVALUATION, SettingError, setting
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs
from tf_factorgan.models.mlp import MLPDiscriminator

PARTITION = Partition((mnist.DIGIT_SIZE, mnist.DIGIT_SIZE))
# The metrics of metrics.json that TensorBoard shows as eval/<key> (and HParams
# columns); with --paper_classifiers also PAPER_METRICS.
HEADLINE_METRICS = ("fid_upper", "fid_lower", "dependency_distance")
PAPER_METRICS = ("paper_fid_upper", "paper_fid_lower")
# Grids (TensorBoard's and samples.png): digits drawn GRID_SCALE times their size, so
# that they can be read at a glance; the two digits of a pair touch but for a line
# of GRID_SCALE dark-grey DIGIT_SEPARATOR pixels, and each pair is framed by
# PAIR_PADDING light-grey pixels, so that a pair reads as one dark block.
GRID_SCALE = 2
PAIR_PADDING = 8
PAIR_FRAME = 0.8
DIGIT_SEPARATOR = 0.35
GRID_SAMPLES, GRID_COLUMNS = 32, 8


@dataclasses.dataclass(frozen=True)
class PairedMnistConfig(common.TrainingSettings):
    """Settings of one Paired MNIST run (defaults: the original code and paper)."""

    EXPERIMENT: ClassVar[str] = "paired_mnist"
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = (
        "variant", "num_joint_samples", "same_digit_prob", "pairing", "seed")
    # Dense layers of 128 units: in bfloat16 a GAN update took 30 % more CPU time on an
    # AVX512_BF16 CPU, a FactorGAN update 1 % more (benchmarks/paired_mnist_throughput.py,
    # results/benchmarks/paired_mnist_precision.txt), so --precision=auto keeps float32.
    BFLOAT16_PAYS: ClassVar[bool] = False

    num_joint_samples: int = setting(
        100, "Paired training samples: the first N digits of the official training file.", DATA,
        low=1, high=mnist.TRAIN_SIZE, note="the MNIST training set")
    same_digit_prob: float = setting(0.9, "Lambda: P(lower digit label := upper label).", DATA,
                                     low=0.0, high=1.0)
    # "fixed": each paired sample keeps the lower digit drawn once from the seed (the
    # paper's stated intent); "redraw_each_epoch": every pass over the data draws new
    # lower digits, which is what the original code does in effect (docs/reproducing.md).
    pairing: str = setting(
        mnist.FIXED, "fixed: every paired sample keeps its lower digit; redraw_each_epoch: new "
        "lower digits every pass over the data, as the original code in effect.", DATA,
        choices=mnist.PAIRINGS)
    # One thread per op lets the small networks of a step run side by side (~1.45x).
    intra_op_threads: int = 1
    mnist_manual_dir: Optional[str] = setting(
        None, "Folder with the four official MNIST .gz files (offline); unset: download.", DATA)
    tfds_data_dir: Optional[str] = setting(
        None, "tensorflow-datasets data_dir: without {mnist_manual_dir} the official files are "
        "downloaded to <dir>/downloads/mnist (default: its own data_dir).", DATA)
    classifier_cache_dir: Optional[str] = setting(
        None, "Cache of the evaluation classifiers (default: {out_path}/mnist_classifier).",
        EVALUATION)
    eval_samples: int = setting(10000, "Generated and real pairs for the final metrics.",
                                EVALUATION, low=2)
    # Classifiers of the paper's recipe (seeds 0..N-1) whose mean FIDs are
    # paper_fid_upper / paper_fid_lower; their spread over seeds is large
    # (docs/reproducing.md).
    paper_classifiers: int = setting(
        3, "Also score FID on this many classifiers trained by the original code's recipe "
        "(seeds 0..N-1; 25-45 s each on a 2-core CPU, once, then cached): their mean is "
        "paper_fid_upper / paper_fid_lower, the figures that compare with the paper's. 0: none.",
        EVALUATION, low=0)
    # The evaluation classifiers' accuracy bar (None: each recipe's own): tests lower
    # it for tiny synthetic data.
    min_classifier_accuracy: Optional[float] = setting(
        None, "The evaluation classifiers' accuracy bar (unset: each recipe's own).", EVALUATION,
        flag=False)


@dataclasses.dataclass(frozen=True)
class PairedMnistData:
    """joint: the paired training subset; full: all training digits (for the
    marginal streams); test: pairs of the 10k test digits; classifiers:
    `() -> Classifiers`, loaded (or trained) by the first evaluation that needs them
    and kept."""

    joint: mnist.PairedDigits
    full: mnist.PairedDigits
    test: mnist.PairedDigits
    train_digits: mnist.Digits
    test_digits: mnist.Digits
    classifiers: Optional[Callable[[], "Classifiers"]] = None


@dataclasses.dataclass(frozen=True)
class Classifiers:
    """The evaluation's classifiers: `tuned`, (model, test accuracy) of the tuned
    recipe; `paper`, one (model, test accuracy) per paper-recipe seed."""

    tuned: tuple
    paper: tuple = ()


def headline_metrics(config: "PairedMnistConfig") -> tuple[str, ...]:
    """The TensorBoard eval/* scalars and HParams columns of a run."""
    return HEADLINE_METRICS + (PAPER_METRICS if config.paper_classifiers else ())


def headline(metrics: dict) -> str:
    """One line of a run's main metrics."""
    line = f"FID upper {metrics['fid_upper']:.3f}, FID lower {metrics['fid_lower']:.3f}"
    if "paper_fid_upper" in metrics:
        line += (f" (paper's classifiers: {metrics['paper_fid_upper']:.3f} / "
                 f"{metrics['paper_fid_lower']:.3f})")
    return line + f", dependency distance {metrics['dependency_distance']:.4f}"


def load_data(config: PairedMnistConfig) -> PairedMnistData:
    train = mnist.load_mnist("train", config.mnist_manual_dir, config.tfds_data_dir)
    test = mnist.load_mnist("test", config.mnist_manual_dir, config.tfds_data_dir)
    return build_data(config, train, test)


def build_data(
    config: PairedMnistConfig, train: mnist.Digits, test: mnist.Digits
) -> PairedMnistData:
    """Pairs the digits; each set has its own seed so they are fixed independently."""
    if config.num_joint_samples > len(train):
        raise SettingError(
            f"{{num_joint_samples}}={config.num_joint_samples} exceeds the "
            f"{len(train)} training digits"
        )
    lam = config.same_digit_prob
    data = PairedMnistData(
        joint=mnist.PairedDigits.build(train.subset(config.num_joint_samples), lam, config.seed),
        full=mnist.PairedDigits.build(train, lam, config.seed + 1),
        test=mnist.PairedDigits.build(test, lam, config.seed + 2),
        train_digits=train,
        test_digits=test,
    )
    return dataclasses.replace(data, classifiers=functools.cache(lambda: load_classifiers(config, data)))


def make_dataset_fn(config: PairedMnistConfig, data: PairedMnistData):
    """`(input_context, start_step) -> per-replica dataset` of the variant's streams:
    whole pairs from the paired subset, single digits from all training digits."""
    pools = {}
    for key, part in gan.model_layout(config.gan_config(), PARTITION.num_parts).streams.items():
        paired = data.joint if part is None else data.full
        pools[key] = streams.Stream(len(paired), functools.partial(
            mnist.pair_gatherer, paired, part, config.pairing, config.same_digit_prob
        ))
    return streams.streams_dataset_fn(pools, config.batch_size, config.seed)


def pairs_to_images(samples: np.ndarray) -> np.ndarray:
    """[N, 1568] -> [N, 56, 28, 1] stacked digit pairs."""
    return np.reshape(samples, [-1, 2 * mnist.IMAGE_SIZE, mnist.IMAGE_SIZE, 1])


def pairs_grid(samples: np.ndarray, columns: int = GRID_COLUMNS) -> np.ndarray:
    """[N, 1568] pairs in [0, 1] -> [H, W, 1] grid of cells of 57x28 pixels scaled by
    GRID_SCALE (upper digit, a one-pixel DIGIT_SEPARATOR line, lower digit), each framed
    by PAIR_PADDING pixels of PAIR_FRAME: H = rows * (57 * GRID_SCALE + PAIR_PADDING) +
    PAIR_PADDING, W = columns * (28 * GRID_SCALE + PAIR_PADDING) + PAIR_PADDING."""
    pairs = pairs_to_images(samples)
    size = mnist.IMAGE_SIZE
    line = np.full([len(pairs), 1, size, 1], DIGIT_SEPARATOR, np.float32)
    cells = np.concatenate([pairs[:, :size], line, pairs[:, size:]], axis=1)
    cells = cells.repeat(GRID_SCALE, axis=1).repeat(GRID_SCALE, axis=2)
    return images.image_grid(cells, columns, padding=PAIR_PADDING, pad_value=PAIR_FRAME)


def sample_grid(gan_step: trainer.DistributedStep, num_samples: int = GRID_SAMPLES) -> np.ndarray:
    """[H, W, 1] grid of pairs from fixed noise, so successive grids are comparable."""
    return pairs_grid(gan_step.updates.sample(num_samples, seed=0))


def generator_spec(config: PairedMnistConfig) -> specs.GeneratorSpec:
    """The MLP generator of a digit pair, served as samples [1568] and images [56, 28, 1]."""
    size = mnist.IMAGE_SIZE
    return specs.GeneratorSpec(
        "mlp", {"output_dim": mnist.PAIR_SIZE}, [[config.nz]], config.nz, config.seed, "samples",
        {"sample_shape": [mnist.PAIR_SIZE], "image_shape": [2 * size, size, 1]},
    )


def build_trainer(
    config: PairedMnistConfig,
    data: PairedMnistData,
    strategy: tf.distribute.Strategy,
    randomness_factory=noise.Randomness,
) -> trainer.Trainer:
    """Models, optimizers and the training loop of `config`, under `strategy`; with
    eval_every, the loop evaluates `eval_every_samples` pairs every so often.

    `randomness_factory(seed)` makes the per-replica random source (tests swap it).
    """
    if config.eval_every and config.eval_every_samples < 2:
        raise SettingError(
            f"{{eval_every_samples}} must be >= 2, got {config.eval_every_samples}"
        )
    gan_config = config.gan_config()
    step = common.build_step(
        config, strategy, gan_config, PARTITION,
        lambda: gan.build_models(
            gan_config,
            PARTITION,
            (mnist.PAIR_SIZE,),
            make_generator=lambda: specs.construct(generator_spec(config)),
            make_discriminator=lambda name: MLPDiscriminator(name=name),
        ),
        randomness_factory=randomness_factory,
    )
    def eval_fn(unused_step):
        metrics = evaluate_step(config, data, step, config.eval_every_samples, data.classifiers())
        return {key: metrics[key] for key in headline_metrics(config)}

    return trainer.Trainer(
        step,
        make_dataset_fn(config, data),
        config.run_dir,
        config,
        image_summary_fn=lambda: sample_grid(step),
        eval_fn=eval_fn if config.eval_every else None,
    )


def load_classifiers(config: PairedMnistConfig, data: PairedMnistData) -> Classifiers:
    """The evaluation classifiers, from the cache or trained."""
    from tf_factorgan.eval import mnist_classifier_training as training

    # A classifier is a fixed measuring instrument: the same recipe and seed for every
    # run, so all runs on the same data share one cached copy.
    cache_dir = config.classifier_cache_dir or os.path.join(config.out_path, "mnist_classifier")
    tuned, *paper = training.train_or_load_classifiers(
        cache_dir, data.train_digits.images, data.train_digits.labels,
        data.test_digits.images, data.test_digits.labels,
        [(training.TUNED, 0)] + [(training.PAPER, seed) for seed in range(config.paper_classifiers)],
        min_accuracy=config.min_classifier_accuracy)
    return Classifiers(tuned=tuned, paper=tuple(paper))


def evaluate_step(
    config: PairedMnistConfig,
    data: PairedMnistData,
    gan_step: trainer.DistributedStep,
    num_samples: int,
    classifiers: Classifiers,
) -> dict:
    """`score` of `num_samples` generated pairs (fixed noise from --seed)."""
    count = min(num_samples, len(data.test))
    return score(data, gan_step.updates.sample(count, seed=config.seed), classifiers)


def score(data: PairedMnistData, generated: np.ndarray, classifiers: Classifiers) -> dict:
    """FIDs (upper, lower; tuned and paper classifiers) and dependency distance of
    `generated` (float [N, 1568] in [0, 1], N <= the test pairs) against the first N
    real test pairs."""
    from tf_factorgan.eval import paired_mnist_metrics

    model, accuracy = classifiers.tuned
    count = len(generated)
    metrics = paired_mnist_metrics.evaluate_paired_mnist(
        model, generated, data.test.samples()[:count],
        paper_classifiers=[m for m, _ in classifiers.paper])
    metrics["classifier_test_accuracy"] = float(accuracy)
    if classifiers.paper:
        metrics["paper_classifier_test_accuracies"] = [float(a) for _, a in classifiers.paper]
    metrics["eval_samples"] = count
    return metrics


def score_file(config: PairedMnistConfig, path: str,
               data: Optional[PairedMnistData] = None) -> dict:
    """`score` of the first eval_samples pairs of `path`, a .npy of float [N, 1568] in
    [0, 1] made by any implementation (the original PyTorch code, say), against the
    test pairs of `data` (default: `load_data(config)`, read after the file): the
    instrument of a run's own evaluation."""
    try:
        generated = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path} is not a .npy array file ({error})") from None
    data = data or load_data(config)
    count = min(config.eval_samples, len(data.test))
    floats = np.issubdtype(generated.dtype, np.floating)
    if (generated.ndim != 2 or generated.shape[1] != mnist.PAIR_SIZE or len(generated) < count
            or not floats or not (generated.min() >= 0 and generated.max() <= 1)):
        found = f"{generated.dtype} {generated.shape}"
        if floats and generated.size:
            found += f" in [{generated.min()}, {generated.max()}]"
        raise SettingError(
            f"{path} must hold float pairs in [0, 1] of shape [N, {mnist.PAIR_SIZE}] with "
            f"N >= {count} ({{eval_samples}}, at most the {len(data.test)} test pairs), "
            f"got {found}")
    return score(data, generated[:count], data.classifiers())


def evaluate(config: PairedMnistConfig, data: PairedMnistData, loop: trainer.Trainer) -> dict:
    """The final evaluation: `evaluate_step` of the loop's generator on eval_samples
    pairs."""
    return evaluate_step(config, data, loop.gan_step, config.eval_samples, data.classifiers())


def _write_outputs(config, data, loop, metrics) -> None:
    images.write_png(os.path.join(loop.out_dir, "samples.png"), sample_grid(loop.gan_step))


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=evaluate,
    generator_spec=lambda config, data: generator_spec(config),
    details=lambda config, data: dict(
        variant=config.variant,
        num_joint_samples=config.num_joint_samples,
        same_digit_prob=config.same_digit_prob,
        pairing=config.pairing,
    ),
    metric_keys=headline_metrics,
    write_outputs=_write_outputs,
)
