"""FactorGAN on the user's own vector data: samples of K >= 2 parts, each a float
vector [F_k], from NumPy files (`data/arrays.py`: layout, checks, standardisation).

The generator is an MLP (`models/mlp.py`, linear output) of noise to a whole
standardised sample [F_1 + ... + F_K]; every discriminator an MLP with spectral
normalisation on every layer, as in Paired MNIST. `variant` picks what the
discriminators are and so what each uses of the data:

  gan              one joint discriminator on whole paired samples: the paired rows only
  factorgan        a marginal discriminator per part (every observation of that part,
                   paired and unpaired), D_P on the paired rows (real dependencies)
                   and D_Q on generated ones
  factorgan_no_cp  the marginal discriminators and D_Q, no D_P: parts are taken to be
                   independent in the real data, the pairing of the paired rows is not
                   used (their parts count as observations of the marginals)

Hidden sizes are sized from the data unless given: the generator's
max(64, 4 * (F_1 + ... + F_K)), each discriminator's max(64, 4 * its input features).

Output under `<out_path>/arrays/<experiment_name>/`:
  checkpoints/, events*   resumable state, TensorBoard (losses, eval/* and final/* metrics,
                          config)
  generator.weights.h5    final generator; generator.json its spec, with the data's
                          part names, sizes, mean and std (the export serves samples
                          in the user's units)
  samples.npz             1000 generated samples in the user's units, one key per part
                          (noise seed --seed: the served model with seed=--seed and
                          num_samples=1000 returns the same, to float32 rounding)
  metrics.json            the metrics of `eval/array_metrics.py`, the data summary and
                          the settings
"""

import dataclasses
import io
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf

from tf_factorgan import files, gan, trainer
from tf_factorgan.data import arrays, sources, streams
from tf_factorgan.config import DATA, EVALUATION, MODEL, SettingError, setting
from tf_factorgan.eval import array_metrics
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs
from tf_factorgan.models.mlp import MLPDiscriminator

SAMPLES_FILE = "samples.npz"
NUM_WRITTEN_SAMPLES = 1000
# Hidden units sized from the data: max(MIN_HIDDEN, HIDDEN_PER_FEATURE * features).
MIN_HIDDEN = 64
HIDDEN_PER_FEATURE = 4
# The metrics TensorBoard shows as eval/<key> (and HParams columns): fixed names,
# whatever the parts are called; each part's fd_<part> is in metrics.json.
HEADLINE_METRICS = ("fd_joint", "fd_marginal_mean", "dependency_distance")


def sized_hidden(features: int) -> int:
    return max(MIN_HIDDEN, HIDDEN_PER_FEATURE * int(features))


@dataclasses.dataclass(frozen=True)
class ArraysConfig(common.TrainingSettings):
    """Settings of one run on the user's arrays (files and lists: `data/arrays.py`;
    each field's help says what it sets)."""

    EXPERIMENT: ClassVar[str] = "arrays"
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = ("variant", "parts", "seed")
    # Dense layers of 128 units: in bfloat16 a GAN update took 30 % more CPU time on an
    # AVX512_BF16 CPU, a FactorGAN update 1 % more (benchmarks/paired_mnist_throughput.py,
    # results/benchmarks/paired_mnist_precision.txt), so --precision=auto keeps float32.
    BFLOAT16_PAYS: ClassVar[bool] = False

    paired: str = setting("", "Paired samples: one .npz with an array [N, F_k] per part, or one "
                          ".npy per part, comma-separated (rows aligned across parts).", DATA)
    unpaired: str = setting(
        "", "Parts observed alone, comma-separated: name=file.npy, name=file.npz (its key name, "
        "or its only array), file.npz (every key a part) or file.npy (the part named by the "
        "file's stem).", DATA)
    parts: str = setting("", "Part names in order, comma-separated (default: the paired .npz's "
                         "key order, or the .npy files' stems).", DATA)
    val_npz: str = setting("", "Paired validation samples (.npz, a key per part) for the "
                           "metrics.", EVALUATION)
    val_fraction: float = setting(
        0.0, "Without {val_npz}: hold out this fraction of the paired rows (seeded by {seed}) for "
        "the metrics; 0: evaluate against the training observations.", EVALUATION, low=0.0,
        below=1.0)
    generator_hidden: int = setting(
        0, f"Generator hidden units (0: max({MIN_HIDDEN}, {HIDDEN_PER_FEATURE} x all features)).",
        MODEL, low=0, note="0 = sized from the data")
    disc_hidden: int = setting(
        0, f"Hidden units of every discriminator (0: max({MIN_HIDDEN}, {HIDDEN_PER_FEATURE} x its "
        "input features)).", MODEL, low=0, note="0 = sized from the data")
    eval_samples: int = setting(10000, "Generated samples for the final metrics.", EVALUATION,
                                low=2)
    # Small networks: one thread per op lets them run side by side (as Paired MNIST).
    intra_op_threads: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.eval_every and self.eval_every_samples < 2:
            raise SettingError(f"{{eval_every_samples}} must be >= 2, got {self.eval_every_samples}")
        if self.parts:
            arrays.check_part_names(arrays.split_list(self.parts), "parts")


def load_data(config: ArraysConfig) -> arrays.ArrayData:
    """The checked, standardised arrays; prints their summary."""
    data = arrays.load(config.paired, config.unpaired, arrays.split_list(config.parts),
                       config.val_npz, config.val_fraction, config.seed)
    print(data.describe(), flush=True)
    return data


def partition(data: arrays.ArrayData) -> Partition:
    return Partition(data.part_sizes)


def generator_hidden(config: ArraysConfig, data: arrays.ArrayData) -> int:
    return config.generator_hidden or sized_hidden(sum(data.part_sizes))


def disc_hidden(config: ArraysConfig, features: int) -> int:
    return config.disc_hidden or sized_hidden(features)


def generator_spec(config: ArraysConfig, data: arrays.ArrayData) -> specs.GeneratorSpec:
    """The MLP of whole standardised samples [F_total]; the data block tells the export
    the parts and how to return to the user's units."""
    total = sum(data.part_sizes)
    arguments = {"output_dim": total, "hidden_units": generator_hidden(config, data),
                 "output_activation": "linear"}
    return specs.GeneratorSpec(
        "mlp", arguments, [[config.nz]], config.nz, config.seed, "samples",
        {"sample_shape": [total],
         "parts": [{"name": n, "size": s} for n, s in zip(data.part_names, data.part_sizes)],
         "mean": [float(v) for v in data.standardiser.mean],
         "std": [float(v) for v in data.standardiser.std]},
    )


def make_dataset_fn(config: ArraysConfig, data: arrays.ArrayData, step: trainer.DistributedStep):
    pools = sources.training_streams(data.observations, step.updates.data_streams())
    return streams.streams_dataset_fn(pools, config.batch_size, config.seed)


def build_trainer(config: ArraysConfig, data: arrays.ArrayData,
                  strategy: tf.distribute.Strategy) -> trainer.Trainer:
    gan_config = config.gan_config()
    parts = partition(data)
    inputs = gan.discriminator_inputs(gan_config, parts)
    step = common.build_step(
        config, strategy, gan_config, parts,
        lambda: gan.build_models(
            gan_config, parts, (parts.total_size,),
            make_generator=lambda: specs.construct(generator_spec(config, data)),
            make_discriminator=lambda name: MLPDiscriminator(
                hidden_units=disc_hidden(config, inputs[name]), name=name),
        ),
    )

    def evaluate_during_training(unused_step):
        metrics = evaluate_step(config, data, step, config.eval_every_samples)
        return {key: metrics[key] for key in HEADLINE_METRICS}

    return trainer.Trainer(step, make_dataset_fn(config, data, step), config.run_dir,
                           config,
                           eval_fn=evaluate_during_training if config.eval_every else None)


def evaluate_step(config: ArraysConfig, data: arrays.ArrayData,
                  gan_step: trainer.DistributedStep, num_samples: int) -> dict:
    """`array_metrics.evaluate` of `num_samples` generated samples (noise seed --seed)
    against `data.references()`, in standardised units."""
    generated = gan_step.updates.sample(num_samples, seed=config.seed)
    marginals, joint = data.references()
    parts = np.split(generated, np.cumsum(data.part_sizes)[:-1], axis=1)
    metrics = array_metrics.evaluate(marginals, joint, parts, data.part_names)
    metrics["eval_samples"] = num_samples
    return metrics


def evaluate(config: ArraysConfig, data: arrays.ArrayData, loop: trainer.Trainer) -> dict:
    return evaluate_step(config, data, loop.gan_step, config.eval_samples)


def write_samples(config: ArraysConfig, data: arrays.ArrayData, gan_step, run_dir: str) -> str:
    """`samples.npz`: NUM_WRITTEN_SAMPLES samples in the user's units, a key per part."""
    samples = data.standardiser.to_user_units(
        gan_step.updates.sample(NUM_WRITTEN_SAMPLES, seed=config.seed))
    parts = np.split(samples, np.cumsum(data.part_sizes)[:-1], axis=1)
    path = os.path.join(run_dir, SAMPLES_FILE)
    files.write_bytes(path, _npz_bytes(dict(zip(data.part_names, parts))))
    return path


def _npz_bytes(arrays_by_name: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays_by_name)
    return buffer.getvalue()


def _details(config: ArraysConfig, data: arrays.ArrayData) -> dict:
    gan_config = config.gan_config()
    inputs = gan.discriminator_inputs(gan_config, partition(data))
    return dict(
        **data.summary(),
        generator_hidden_units=generator_hidden(config, data),
        disc_hidden_units={name: disc_hidden(config, size) for name, size in inputs.items()},
        streams=sources.counts_by_stream(data.observations, gan.model_layout(
            gan_config, len(data.part_names)).streams),
    )


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=evaluate,
    generator_spec=generator_spec,
    details=_details,
    metric_keys=lambda config: HEADLINE_METRICS,
    write_outputs=lambda config, data, loop, metrics: write_samples(
        config, data, loop.gan_step, loop.out_dir),
)
