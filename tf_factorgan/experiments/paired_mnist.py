"""Paired MNIST (FactorGAN paper, section 4.1): train, sample and evaluate one run.

Output under `<out_path>/paired_mnist/<experiment_name>/`:
  checkpoints/           resumable training state
  logs/                  TensorBoard (losses, accuracies, steps/s, sample grids, metrics)
  generator.weights.h5   final generator weights
  samples.png            a grid of generated pairs
  metrics.json           FID of upper and lower digits, dependency distance, settings
"""

import dataclasses
import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tf_factorgan import files, gan, images, strategies, trainer
from tf_factorgan.data import mnist
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.mlp import MLPDiscriminator, MLPGenerator

PARTITION = Partition((mnist.DIGIT_SIZE, mnist.DIGIT_SIZE))


@dataclasses.dataclass(frozen=True)
class PairedMnistConfig:
    """Settings of one Paired MNIST run (defaults: the original code and paper)."""

    factorgan: bool = True
    use_real_dep_disc: bool = True
    num_joint_samples: int = 100
    same_digit_prob: float = 0.9
    batch_size: int = 25
    disc_iter: int = 2
    lr: float = 1e-4
    nz: int = 50
    generator_objective: str = "ns"
    steps: int = 20000
    seed: int = 1337
    out_path: str = "runs"
    experiment_name: str = "factorgan"
    eval_only: bool = False
    strategy: str = "auto"
    jit_compile: bool = False
    intra_op_threads: int = 1
    inter_op_threads: int = 0
    steps_per_call: int = 50
    log_every: int = 100
    image_every: int = 1000
    checkpoint_every: int = 1000
    mnist_manual_dir: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    classifier_cache_dir: Optional[str] = None
    eval_samples: int = 10000
    min_classifier_accuracy: float = 0.98

    def __post_init__(self):
        if not 1 <= self.num_joint_samples <= mnist.TRAIN_SIZE:
            raise ValueError(
                f"--num_joint_samples must lie in [1, {mnist.TRAIN_SIZE}] (the MNIST "
                f"training set), got {self.num_joint_samples}"
            )
        if not 0.0 <= self.same_digit_prob <= 1.0:
            raise ValueError(
                f"--same_digit_prob must lie in [0, 1], got {self.same_digit_prob}"
            )
        if self.use_real_dep_disc and not self.factorgan:
            raise ValueError(
                "--use_real_dep_disc needs --factorgan: the plain GAN has no dependency "
                "discriminators (pass --nouse_real_dep_disc with --nofactorgan)"
            )
        if self.eval_samples < 2:
            raise ValueError(f"--eval_samples must be >= 2, got {self.eval_samples}")

    @property
    def variant(self) -> Variant:
        if not self.factorgan:
            return Variant.GAN
        return Variant.FACTORGAN if self.use_real_dep_disc else Variant.FACTORGAN_NO_CP

    @property
    def run_dir(self) -> str:
        return os.path.join(self.out_path, "paired_mnist", self.experiment_name)

    def gan_config(self) -> gan.GanConfig:
        return gan.GanConfig(
            variant=self.variant,
            batch_size=self.batch_size,
            disc_iter=self.disc_iter,
            lr=self.lr,
            nz=self.nz,
            generator_objective=self.generator_objective,
            jit_compile=self.jit_compile,
        )

    def loop_config(self) -> trainer.LoopConfig:
        return trainer.LoopConfig(
            steps=self.steps,
            steps_per_call=self.steps_per_call,
            log_every=self.log_every,
            image_every=self.image_every,
            checkpoint_every=self.checkpoint_every,
        )


@dataclasses.dataclass(frozen=True)
class PairedMnistData:
    """joint: the paired training subset; full: all training digits (for the
    marginal streams); test: pairs of the 10k test digits."""

    joint: mnist.PairedDigits
    full: mnist.PairedDigits
    test: mnist.PairedDigits
    train_digits: mnist.Digits
    test_digits: mnist.Digits


def load_data(config: PairedMnistConfig) -> PairedMnistData:
    train = mnist.load_mnist("train", config.mnist_manual_dir, config.tfds_data_dir)
    test = mnist.load_mnist("test", config.mnist_manual_dir, config.tfds_data_dir)
    return build_data(config, train, test)


def build_data(
    config: PairedMnistConfig, train: mnist.Digits, test: mnist.Digits
) -> PairedMnistData:
    """Pairs the digits; each set has its own seed so they are fixed independently."""
    if config.num_joint_samples > len(train):
        raise ValueError(
            f"--num_joint_samples={config.num_joint_samples} exceeds the "
            f"{len(train)} training digits"
        )
    lam = config.same_digit_prob
    return PairedMnistData(
        joint=mnist.PairedDigits.build(train.subset(config.num_joint_samples), lam, config.seed),
        full=mnist.PairedDigits.build(train, lam, config.seed + 1),
        test=mnist.PairedDigits.build(test, lam, config.seed + 2),
        train_digits=train,
        test_digits=test,
    )


def make_dataset_fn(config: PairedMnistConfig, data: PairedMnistData):
    """Returns `(input_context, start_step) -> per-replica dataset` for the Trainer.

    Each input pipeline (worker) and each resume point gets its own data seed.
    """
    variant = config.variant

    def dataset_fn(context: tf.distribute.InputContext, start_step: int) -> tf.data.Dataset:
        batch = context.get_per_replica_batch_size(config.batch_size)
        seeds = np.random.SeedSequence(
            [config.seed, context.input_pipeline_id, start_step]
        ).generate_state(1 + PARTITION.num_parts)
        sources = {}  # key -> (paired set, part or None)
        if not variant.is_factorised or variant.uses_p_dependency:
            sources[gan.JOINT_KEY] = (data.joint, None)
        for part in variant.marginal_parts(PARTITION.num_parts):
            sources[gan.marginal_key(part)] = (data.full, part)
        indices = tf.data.Dataset.zip({
            key: mnist.index_batches(len(paired), batch, int(seed))
            for (key, (paired, _)), seed in zip(sources.items(), seeds)
        })
        gathers = {key: mnist.pair_gatherer(paired, part) for key, (paired, part) in sources.items()}
        # One map for all streams: tf.data's per-call overhead matters at batch 25.
        return indices.map(
            lambda idx: {key: gathers[key](idx[key]) for key in gathers}
        ).prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def pairs_to_images(samples: np.ndarray) -> np.ndarray:
    """[N, 1568] -> [N, 56, 28, 1] stacked digit pairs."""
    return np.reshape(samples, [-1, 2 * mnist.IMAGE_SIZE, mnist.IMAGE_SIZE, 1])


def build_trainer(
    config: PairedMnistConfig,
    data: PairedMnistData,
    strategy: tf.distribute.Strategy,
    randomness_factory=gan.Randomness,
) -> trainer.Trainer:
    """Models, optimizers and the training loop of `config`, under `strategy`.

    `randomness_factory(seed)` makes the per-replica random source (tests swap it).
    """
    gan_config = config.gan_config()
    strategies.per_replica_batch_size(strategy, config.batch_size)
    keras.utils.set_random_seed(config.seed)  # initial weights follow --seed
    with strategy.scope():
        models = gan.build_models(
            gan_config,
            PARTITION,
            (mnist.PAIR_SIZE,),
            make_generator=lambda: MLPGenerator(mnist.PAIR_SIZE),
            make_discriminator=lambda name: MLPDiscriminator(name=name),
        )
        randomness = randomness_factory(config.seed)
    step = gan.GanStep(models, gan_config, PARTITION, strategy, randomness)
    return trainer.Trainer(
        step,
        make_dataset_fn(config, data),
        config.run_dir,
        config.loop_config(),
        image_summary_fn=lambda samples: images.image_grid(pairs_to_images(samples))[None],
    )


def evaluate(config: PairedMnistConfig, data: PairedMnistData, loop: trainer.Trainer) -> dict:
    """FID (upper, lower) and dependency distance of `eval_samples` generated pairs
    against as many real test pairs."""
    from tf_factorgan.eval import mnist_classifier_training, paired_mnist_metrics

    # The classifier is a fixed measuring instrument: same seed for every run, so all
    # runs on the same data share one cached copy.
    cache_dir = config.classifier_cache_dir or os.path.join(config.out_path, "mnist_classifier")
    classifier, accuracy = mnist_classifier_training.train_or_load_classifier(
        cache_dir,
        data.train_digits.images,
        data.train_digits.labels,
        data.test_digits.images,
        data.test_digits.labels,
        min_accuracy=config.min_classifier_accuracy,
    )
    count = min(config.eval_samples, len(data.test))
    generated = loop.gan_step.sample(count, seed=config.seed)
    real = data.test.samples()[:count]
    metrics = paired_mnist_metrics.evaluate_paired_mnist(classifier, generated, real)
    metrics["classifier_test_accuracy"] = float(accuracy)
    metrics["eval_samples"] = count
    return metrics


def run(config: PairedMnistConfig) -> dict:
    """Trains (unless eval_only), evaluates and writes every output; returns metrics."""
    strategies.configure_cpu_threads(config.intra_op_threads, config.inter_op_threads)
    strategy = strategies.make_strategy(config.strategy)
    data = load_data(config)
    return run_with_data(config, data, strategy)


def run_with_data(
    config: PairedMnistConfig, data: PairedMnistData, strategy: tf.distribute.Strategy
) -> dict:
    loop = build_trainer(config, data, strategy)
    if config.eval_only:
        step = loop.restore()
        if step == 0:
            raise FileNotFoundError(
                f"--eval_only found no checkpoint in {loop.checkpoint_dir}; train first "
                "or point --out_path/--experiment_name at a trained run"
            )
        result = trainer.LoopResult(step, False, 0.0)
    else:
        result = loop.run()
    if result.interrupted:
        return {"interrupted_at_step": result.step}
    metrics = evaluate(config, data, loop)
    metrics.update(
        step=result.step,
        variant=config.variant.value,
        num_joint_samples=config.num_joint_samples,
        same_digit_prob=config.same_digit_prob,
        # Of the last logging interval: the rate the run ended at.
        last_logged_steps_per_second=result.steps_per_second,
        config=dataclasses.asdict(config),
    )
    if loop.is_chief:
        write_outputs(config, loop, metrics)
    return metrics


def write_outputs(config: PairedMnistConfig, loop: trainer.Trainer, metrics: dict) -> None:
    run_dir = config.run_dir
    files.save_weights(loop.gan_step.models.generator, os.path.join(run_dir, "generator.weights.h5"))
    grid = images.image_grid(pairs_to_images(loop.gan_step.sample(64, seed=0)))
    images.write_png(os.path.join(run_dir, "samples.png"), grid)
    with loop.writer.as_default(step=metrics["step"]):
        for key in ("fid_upper", "fid_lower", "dependency_distance"):
            tf.summary.scalar(f"eval/{key}", metrics[key])
    loop.writer.flush()
    files.write_json(os.path.join(run_dir, "metrics.json"), metrics)
