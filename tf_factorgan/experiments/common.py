"""What every experiment shares: training settings, runtime set-up, train-or-restore,
and writing evaluation results.

An experiment module (paired_mnist, image_pairs, image2image) subclasses
`TrainingSettings` with its own fields, builds its models and data, and calls these.
"""

import contextlib
import dataclasses
import enum
import json
import os
from typing import Callable, ClassVar, Iterator, Optional, Sequence

import keras
import tensorflow as tf

from tf_factorgan import checkpoints, files, gan, run_folder, strategies, trainer
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models import initialisation, spectral, specs
from tf_factorgan.noise import Randomness


@dataclasses.dataclass(frozen=True)
class TrainingSettings(gan.OptimisationSettings, trainer.LoopConfig):
    """Optimisation (`gan.OptimisationSettings`), loop (`trainer.LoopConfig`) and
    runtime settings: each declared once, in the class it belongs to, and inherited
    here. Defaults: the original FactorGAN code's, but for the four training choices
    below, which an ablation chose.

    Subclasses set EXPERIMENT (the folder under out_path), add their data and model
    fields and may change defaults. Every field is a flag of the same name and default
    (`trainers.common_flags` checks it), unless NOT_FLAGS lists it.
    """

    EXPERIMENT: ClassVar[str] = "experiment"
    # Fields the trainers set no flag for (tests and programs may still set them).
    NOT_FLAGS: ClassVar[tuple[str, ...]] = ()

    # How the networks are parametrised and initialised (with adam_epsilon and
    # fake_batches, inherited, the four training choices). The original code makes
    # all four the other way (reparametrize, torch, 1e-8, per_discriminator); on
    # Paired MNIST these defaults reached a lower FID at 100 000 updates (README,
    # "Training as the original").
    spectral_norm: str = spectral.PROJECT
    init: str = initialisation.GLOROT
    seed: int = 1337
    out_path: str = "runs"
    experiment_name: str = "factorgan"
    eval_only: bool = False
    strategy: str = "auto"
    mixed_precision: bool = False
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    # Evaluation during training every eval_every steps (inherited; 0 = only the
    # final one) uses this many samples; experiments without an eval_fn ignore both.
    eval_every_samples: int = 2000

    def __post_init__(self):
        # A bad flag fails at once, before any data is read or TensorFlow starts.
        gan.OptimisationSettings.__post_init__(self)
        trainer.LoopConfig.__post_init__(self)

    @property
    def run_dir(self) -> str:
        return os.path.join(self.out_path, self.EXPERIMENT, self.experiment_name)

    def gan_config(
        self, variant: Variant, conditional: bool = False, condition_visible: bool = True
    ) -> gan.GanConfig:
        return gan.GanConfig.of(self, variant, conditional=conditional,
                                condition_visible=condition_visible)


def make_runtime(settings: TrainingSettings) -> tf.distribute.Strategy:
    """Configures CPU threads (before TensorFlow starts) and returns the strategy."""
    strategies.configure_cpu_threads(settings.intra_op_threads, settings.inter_op_threads)
    return strategies.make_strategy(settings.strategy)


@contextlib.contextmanager
def model_precision(settings: TrainingSettings) -> Iterator[None]:
    """Networks built inside compute in bfloat16 with --mixed_precision (variables,
    losses and network outputs stay float32, so no loss scaling is needed); the
    global Keras policy is restored afterwards."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if settings.mixed_precision else "float32"
    )
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_step(
    settings: TrainingSettings,
    strategy: tf.distribute.Strategy,
    gan_config: gan.GanConfig,
    partition: Partition,
    build_models: Callable[[], gan.GanModels],
    updates_class: type = gan.FactorGanUpdates,
    randomness_factory: Callable[[int], Randomness] = Randomness,
    **updates_kwargs,
) -> trainer.DistributedStep:
    """Checks that the batch splits over the replicas, seeds the initial weights with
    --seed, calls `build_models()` under the strategy's scope, the precision policy
    and the --spectral_norm form, draws every network's initial weights as --init
    says, and returns the distributed step of `updates_class` (FactorGanUpdates or
    CycleGanUpdates) over the result.

    `randomness_factory(seed)` makes the per-replica random source (tests swap it).
    """
    strategies.per_replica_batch_size(strategy, settings.batch_size)
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope(), model_precision(settings), spectral.spectral_norm_scope(
        settings.spectral_norm
    ):
        models = build_models()
        for index, network in enumerate(models.networks()):
            initialisation.initialise(network, settings.init, seed=[settings.seed, index])
        randomness = randomness_factory(settings.seed)
    updates = updates_class(models, gan_config, partition, randomness, **updates_kwargs)
    return trainer.DistributedStep(updates, strategy)


def train_or_restore(settings: TrainingSettings, loop: trainer.Trainer) -> trainer.LoopResult:
    """Trains to settings.steps (resuming), or with --eval_only restores the newest
    checkpoint and fails clearly when there is none."""
    if not settings.eval_only:
        return loop.run()
    if not checkpoints.steps_on_disk(loop.checkpoint_dir):
        raise FileNotFoundError(
            f"--eval_only found no checkpoint in {loop.checkpoint_dir}; train first "
            "or point --out_path/--experiment_name at a trained run"
        )
    return trainer.LoopResult(loop.restore(), False, 0.0)


def run_metadata(settings: TrainingSettings, result: trainer.LoopResult) -> dict:
    """Fields every metrics.json carries besides the metrics."""
    return {
        "step": result.step,
        # Of the last logging interval: the rate the run ended at.
        "last_logged_steps_per_second": result.steps_per_second,
        "config": dataclasses.asdict(settings),
    }


def write_metrics(loop: trainer.Trainer, metrics: dict, scalar_keys) -> None:
    """`metrics.json` in the run folder (atomically), and `eval/<key>` scalars in
    TensorBoard at the run's step."""
    with loop.writer.as_default(step=metrics["step"]):
        for key in scalar_keys:
            tf.summary.scalar(f"eval/{key}", metrics[key])
    loop.writer.flush()
    files.write_json(os.path.join(loop.out_dir, "metrics.json"), metrics)


def _hparam_value(value):
    """A value TensorBoard's HParams plugin takes: bool, int, float or str."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "None"
    return json.dumps(value, default=str)


def flat_config(config: dict, prefix: str = "") -> dict:
    """Nested settings as {"a.b": scalar-or-str}: the run's hparams."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _hparam_value(value)
    return flat


def config_markdown(flat: dict) -> str:
    """A two-column markdown table of the settings (TensorBoard's Text tab)."""
    rows = ["| setting | value |", "| --- | --- |"]
    rows += [f"| {k} | `{str(v).replace('|', '&#124;')}` |" for k, v in sorted(flat.items())]
    return "\n".join(rows)


def write_run_config(loop: trainer.Trainer, config: dict, metric_keys: Sequence[str] = ()) -> None:
    """On the chief: the run's settings as TensorBoard hparams (the HParams tab, with
    `eval/<key>` of `metric_keys` as its metric columns) and as a `config` text table,
    at step 0. A resumed run writes them again, unchanged."""
    from tensorboard.plugins.hparams import api as hp

    if not loop.is_chief:
        return
    flat = flat_config(config)
    with loop.writer.as_default(step=0):
        if metric_keys:
            # The metric columns; without them the tab would list every scalar tag.
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in flat],
                metrics=[hp.Metric(f"eval/{key}", display_name=key) for key in metric_keys],
            )
        hp.hparams(flat)
        tf.summary.text("config", config_markdown(flat))
    loop.writer.flush()


@dataclasses.dataclass(frozen=True)
class Task:
    """An experiment, as `run_experiment` drives it. Every function receives the run's
    config, most also its data (what `load_data` returned):

      load_data(config) -> data
      build_trainer(config, data, strategy) -> trainer.Trainer
      evaluate(config, data, loop) -> metrics of the trained (or restored) step
      generator_spec(config, data) -> `models.specs` spec written beside the weights
      details(config, data) -> settings and facts of the data kept with the metrics
      metric_keys(config) -> headline metrics (TensorBoard `eval/*`, HParams columns)
      write_outputs(config, data, loop, metrics) -> the experiment's own files
    """

    load_data: Callable
    build_trainer: Callable
    evaluate: Callable
    generator_spec: Callable
    details: Callable
    metric_keys: Callable
    write_outputs: Callable


def run_experiment(task: Task, settings: TrainingSettings, data=None,
                   strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Runs one experiment: holds the run folder (`run_folder.locked`), writes its
    settings to TensorBoard (hparams and a `config` text), trains (or restores, with
    --eval_only), evaluates and, on the chief, writes the generator with its spec, the
    experiment's outputs and metrics.json. `data` and `strategy` default to the task's
    data and the settings' runtime. Returns the metrics with the details and the run's
    metadata, or {"interrupted_at_step": step} when Ctrl-C stopped training."""
    # The runtime first: CPU threads are set before TensorFlow starts.
    strategy = strategy or make_runtime(settings)
    # Only the chief writes the run folder; the other workers share it.
    chief = strategies.is_chief(strategy)
    with run_folder.locked(settings.run_dir) if chief else contextlib.nullcontext():
        data = task.load_data(settings) if data is None else data
        loop = task.build_trainer(settings, data, strategy)
        details, keys = task.details(settings, data), task.metric_keys(settings)
        write_run_config(loop, {**dataclasses.asdict(settings), **details}, keys)
        result = train_or_restore(settings, loop)
        if result.interrupted:
            return {"interrupted_at_step": result.step}
        metrics = task.evaluate(settings, data, loop)
        metrics.update(details, **run_metadata(settings, result))
        if loop.is_chief:
            save_generator(loop, task.generator_spec(settings, data))
            task.write_outputs(settings, data, loop, metrics)
            write_metrics(loop, metrics, [key for key in keys if key in metrics])
        return metrics


def save_generator(loop: trainer.Trainer, spec: specs.GeneratorSpec) -> None:
    """The generator's weights and its spec (`models.specs`: all the export needs) in
    the run folder."""
    files.save_weights(loop.gan_step.models.generator, os.path.join(loop.out_dir, specs.WEIGHTS_FILE))
    specs.write(loop.out_dir, spec)
