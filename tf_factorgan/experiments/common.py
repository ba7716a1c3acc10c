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
from tf_factorgan import precision as precision_lib
from tf_factorgan.config import (EVALUATION, MODEL, OUTPUT, TRAINING, SettingError,
                                 SettingPathError, check, setting)
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models import initialisation, spectral, specs
from tf_factorgan.noise import Randomness

METRICS_FILE = "metrics.json"


@dataclasses.dataclass(frozen=True)
class TrainingSettings(gan.OptimisationSettings, trainer.LoopConfig):
    """Optimisation (`gan.OptimisationSettings`), loop (`trainer.LoopConfig`) and
    runtime settings: each declared once, in the class it belongs to, with its help,
    bounds and group (`config.setting`), and inherited here. Defaults: the original
    FactorGAN code's, but for the four training choices below, which an ablation chose.

    Subclasses set EXPERIMENT (the folder under out_path), add their data and model
    fields and may change defaults; every declared field is a flag of the same name
    (`tf_factorgan.cli.command`).
    """

    EXPERIMENT: ClassVar[str] = "experiment"
    # Fields that do not define a run (where it is, how this process runs, caches):
    # they may differ on every resume and stay out of the run folder's
    # run_settings.json. Names of experiments' fields are listed here too, for the
    # experiments that have them.
    NOT_RUN_SETTINGS: ClassVar[tuple[str, ...]] = (
        "out_path", "experiment_name", "eval_only", "allow_changed", "intra_op_threads",
        "inter_op_threads", "image_cache_dir", "memory_limit_mb", "cache_dir",
        "classifier_cache_dir")
    # Where a run's inputs are: a moved dataset may be given anew on resuming
    # (CHANGEABLE), and, like the NOT_RUN_SETTINGS, they tell no runs apart (left out
    # of TensorBoard's HParams). Names of experiments' fields, as above.
    INPUT_PATHS: ClassVar[tuple[str, ...]] = (
        # paired_mnist, arrays
        "mnist_manual_dir", "tfds_data_dir", "paired", "unpaired", "val_npz",
        # image_pairs, image2image
        "dataset_dir", "paired_dir", "paired_a_dir", "paired_b_dir", "unpaired_a_dir",
        "unpaired_b_dir", "val_dir", "val_a_dir", "val_b_dir",
        # audio_separation
        "musdb_root", "paired_songs_dir", "unpaired_mixtures_dir", "unpaired_accompaniment_dir",
        "unpaired_vocals_dir", "test_songs_dir")
    # Settings a resumed run may change with --allow_changed (recorded at the step it
    # resumed from): length, intervals, learning rate, runtime, evaluation, and where
    # the inputs are (a moved dataset). Every other field defines the run.
    CHANGEABLE: ClassVar[tuple[str, ...]] = (
        "steps", "steps_per_call", "log_every", "image_every", "checkpoint_every",
        "max_checkpoints", "eval_every", "eval_every_samples", "lr", "strategy", "jit_compile",
        "precision",
        # paired_mnist, arrays
        "eval_samples", "paper_classifiers", "min_classifier_accuracy",
        # image_pairs, image2image
        "max_val_images", "ls_runs", "ls_epochs",
        # audio_separation
        "eval_window_seconds", "eval_hop_seconds", "max_eval_songs", "griffin_lim_iterations",
    ) + INPUT_PATHS
    # The settings that tell one run of an experiment from another (the axes of the
    # paper's grids): the first columns of TensorBoard's HParams table, which ticks its
    # first five. Experiments name their own.
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = ("variant", "seed")
    # Whether bfloat16 compute pays for the experiment's networks, so that
    # --precision=auto takes it where the hardware has it (`precision`).
    BFLOAT16_PAYS: ClassVar[bool] = True

    variant: str = setting(
        Variant.FACTORGAN.value, "Which discriminators: gan (one joint discriminator, paired "
        "samples only), factorgan (a marginal discriminator per part, fed every observation of "
        "it, and the dependency discriminators D_P and D_Q) or factorgan_no_cp (no D_P: the "
        "parts are taken to be independent in the real data).", MODEL,
        choices=tuple(v.value for v in Variant))
    # How the networks are parametrised and initialised (with adam_epsilon and
    # fake_batches, inherited, the four training choices). The original code makes
    # all four the other way (reparametrize, torch, 1e-8, per_discriminator); on
    # Paired MNIST these defaults reached a lower FID at 100 000 updates
    # (docs/reproducing.md, "Training as the original").
    spectral_norm: str = setting(
        spectral.PROJECT, "Discriminators' spectral norm: W / sigma in the forward pass "
        "(reparametrize, as the original code) or Keras' projection of the kernel in each "
        "training call (project).", MODEL, choices=spectral.SPECTRAL_NORMS)
    init: str = setting(initialisation.GLOROT, "Initial weights of every network: PyTorch's "
                        "default (torch, as the original code) or Keras' Glorot (glorot).", MODEL,
                        choices=initialisation.INITS)
    seed: int = setting(1337, "Seed of data order, pairings, weights and noise.", TRAINING)
    out_path: str = setting("runs", "Root of all outputs.", OUTPUT)
    experiment_name: str = setting("factorgan", "Run folder under {out_path}/<experiment>/.",
                                   OUTPUT)
    eval_only: bool = setting(False, "Only evaluate the run's last checkpoint.", EVALUATION)
    strategy: str = setting("auto", "tf.distribute strategy; multi_worker reads TF_CONFIG.",
                            TRAINING, choices=strategies.STRATEGY_NAMES)
    precision: str = setting(
        precision_lib.AUTO, "Compute precision of the networks: bfloat16 (float32 variables, "
        "losses and outputs), float32, or auto: bfloat16 where the device has native bfloat16 "
        "(AVX512_BF16/AMX CPUs, GPUs of compute capability 8.0 on), else float32.", TRAINING,
        choices=precision_lib.PRECISIONS)
    intra_op_threads: int = setting(0, "Threads per TensorFlow op (0 = TensorFlow's default).",
                                    TRAINING, low=0, note="0 = TensorFlow's default")
    inter_op_threads: int = setting(0, "Ops run concurrently (0 = TensorFlow's default).",
                                    TRAINING, low=0, note="0 = TensorFlow's default")
    # Evaluation during training every eval_every steps (inherited; 0 = only the
    # final one) uses this many samples; experiments without an eval_fn ignore both.
    eval_every_samples: int = setting(2000, "Samples of each {eval_every} evaluation (the final "
                                      "one keeps its own count).", EVALUATION)
    allow_changed: tuple[str, ...] = setting(
        (), "Settings this resume may change from those the run recorded in its "
        "run_settings.json (recorded there with the step): lengths, intervals, the learning "
        "rate, runtime, evaluation and input folders (a name it may not change is refused with "
        "the list).", OUTPUT)

    def __post_init__(self):
        # A bad setting fails at once, before any data is read or TensorFlow starts.
        check(self)
        object.__setattr__(self, "allow_changed", tuple(self.allow_changed))
        self._check_allow_changed()

    @classmethod
    def upgraded(cls, recorded: dict) -> dict:
        """Settings an earlier version recorded in a run folder, as this version records
        them (`upgraded_settings`; experiments add their own renames)."""
        return upgraded_settings(recorded)

    @classmethod
    def changeable(cls) -> tuple[str, ...]:
        """The fields of this experiment that --allow_changed may name, sorted."""
        return tuple(sorted({f.name for f in dataclasses.fields(cls)} & set(cls.CHANGEABLE)))

    def _check_allow_changed(self) -> None:
        names = {field.name for field in dataclasses.fields(self)}
        unknown = [n for n in self.allow_changed if n not in names]
        fixed = [n for n in self.allow_changed if n in names and n not in self.changeable()]
        if unknown or fixed:
            problems = [f"{', '.join(unknown)}: no such setting"] if unknown else []
            problems += [f"{', '.join(fixed)}: defines the run"] if fixed else []
            raise SettingError(
                f"{{allow_changed}}={','.join(self.allow_changed)}: {'; '.join(problems)}; it "
                f"may name {', '.join(self.changeable())}")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.out_path, self.EXPERIMENT, self.experiment_name)

    def compute_precision(self) -> tuple[str, str]:
        """(float32 or bfloat16, why): what --precision computes this experiment's
        networks in on this machine (`precision.resolve`)."""
        return precision_lib.resolve(self.precision, self.BFLOAT16_PAYS)

    def gan_config(self, **model) -> gan.GanConfig:
        """The model's settings: the discriminators of `variant`, these optimisation
        settings and `model`'s GanConfig fields (conditional, pairs_loss, ...)."""
        return gan.GanConfig.of(self, Variant(self.variant), **model)


# Settings of earlier versions that `variant` replaced: paired_mnist's factorgan and
# use_real_dep_disc, image_pairs' and audio_separation's factorgan, image2image's model.
LEGACY_VARIANT_SETTINGS = ("factorgan", "use_real_dep_disc", "model")


def legacy_variant(old: dict) -> Optional[str]:
    """The variant that the settings of an earlier version in `old` (name -> value)
    chose, or None when `old` holds none of them."""
    if "model" in old:
        return old["model"]
    if not set(old) & {"factorgan", "use_real_dep_disc"}:
        return None
    if not old.get("factorgan", True):
        return Variant.GAN.value
    return (Variant.FACTORGAN if old.get("use_real_dep_disc", True)
            else Variant.FACTORGAN_NO_CP).value


def legacy_precision(mixed_precision: bool) -> str:
    """The precision that an earlier version's mixed_precision setting chose."""
    return precision_lib.BFLOAT16 if mixed_precision else precision_lib.FLOAT32


def upgraded_settings(recorded: dict) -> dict:
    """Settings an earlier version recorded (a run folder's), named as this version
    names them: its variant settings become `variant`, mixed_precision `precision`."""
    upgraded = dict(recorded)
    if "mixed_precision" in upgraded and "precision" not in upgraded:
        upgraded["precision"] = legacy_precision(bool(upgraded.pop("mixed_precision")))
    variant = legacy_variant(upgraded)
    if variant is None or "variant" in upgraded:
        return upgraded
    kept = {name: value for name, value in upgraded.items() if name not in LEGACY_VARIANT_SETTINGS}
    return {**kept, "variant": variant}


def make_runtime(settings: TrainingSettings) -> tf.distribute.Strategy:
    """Configures CPU threads (before TensorFlow starts) and returns the strategy."""
    strategies.configure_cpu_threads(settings.intra_op_threads, settings.inter_op_threads)
    return strategies.make_strategy(settings.strategy)


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
    with strategy.scope(), precision_lib.policy(settings.compute_precision()[0]), \
            spectral.spectral_norm_scope(settings.spectral_norm):
        models = build_models()
        for index, network in enumerate(models.networks()):
            initialisation.initialise(network, settings.init, seed=[settings.seed, index])
        randomness = randomness_factory(settings.seed)
    updates = updates_class(models, gan_config, partition, randomness, **updates_kwargs)
    return trainer.DistributedStep(updates, strategy)


def train_or_restore(settings: TrainingSettings, loop: trainer.Trainer,
                     on_restored: Optional[Callable[[int], None]] = None) -> trainer.LoopResult:
    """Trains to settings.steps (resuming), or with --eval_only restores the newest
    checkpoint and fails clearly when there is none. `on_restored(step)` runs after
    the restore, before any training."""
    if settings.eval_only and not checkpoints.steps_on_disk(loop.checkpoint_dir):
        raise SettingPathError(
            f"{{eval_only}} found no checkpoint in {loop.checkpoint_dir}; train first "
            "or point {out_path}/{experiment_name} at a trained run"
        )
    start = loop.restore()
    if on_restored is not None:
        on_restored(start)
    if settings.eval_only:
        return trainer.LoopResult(start, False, 0.0)
    return loop.run(start)


def run_settings(settings: TrainingSettings) -> dict:
    """The settings that define `settings`' run, as JSON values: every field but
    those of NOT_RUN_SETTINGS."""
    return run_folder.as_json({name: value for name, value in dataclasses.asdict(settings).items()
                               if name not in settings.NOT_RUN_SETTINGS})


def check_run_settings(settings: TrainingSettings) -> run_folder.SettingsCheck:
    """Compares the run settings with those the run folder recorded (see
    `run_folder.settings_check`); a run with checkpoints is a resume."""
    resuming = bool(checkpoints.steps_on_disk(trainer.checkpoint_dir(settings.run_dir)))
    return run_folder.settings_check(
        settings.run_dir, run_settings(settings), resuming,
        changeable=frozenset(settings.changeable()), allowed=frozenset(settings.allow_changed),
        upgrade=type(settings).upgraded)


def record_run_settings(check: run_folder.SettingsCheck, step: int) -> list:
    """Writes the run's settings (with the changes allowed at `step`) to
    run_settings.json, says what changed, and returns the history of changes."""
    history = check.record(step)
    path = os.path.join(check.run_dir, run_folder.SETTINGS_FILE)
    if check.unrecorded:
        print(f"{check.run_dir} had no record of the settings it was trained with; "
              f"this command's are now its record in {path}.", flush=True)
    if check.changed:
        print(f"Settings changed at step {step}: {run_folder.listed(check.changed)} "
              f"(recorded in {path}).", flush=True)
    return history


def run_metadata(settings: TrainingSettings, result: trainer.LoopResult,
                 settings_history: Sequence[dict] = ()) -> dict:
    """Fields every metrics.json carries besides the metrics; a run whose settings
    were changed on resuming (--allow_changed) also the history of those changes."""
    metadata = {
        "step": result.step,
        # Of the last logging interval: the rate the run ended at.
        "last_logged_steps_per_second": result.steps_per_second,
        "config": dataclasses.asdict(settings),
    }
    if settings_history:
        metadata["settings_history"] = list(settings_history)
    return metadata


# TensorBoard's tags of evaluations: those every --eval_every steps during training (on
# --eval_every_samples samples) are `eval/<key>`, the final one (on the final count,
# the figures of metrics.json) is `final/<key>`: each tag's points are measured alike.
FINAL_TAG = "final"


def write_eval_scalars(loop: trainer.Trainer, metrics: dict, scalar_keys) -> None:
    """`final/<key>` scalars in TensorBoard at the run's step (`metrics["step"]`)."""
    with files.explained_write_errors(loop.log_dir):
        with loop.writer.as_default(step=metrics["step"]):
            for key in scalar_keys:
                tf.summary.scalar(f"{FINAL_TAG}/{key}", metrics[key])
        loop.writer.flush()


def _hparam_value(value):
    """A value TensorBoard's HParams plugin takes: bool, float or str. Integers become
    text, which the table shows as written (numbers it shows to five significant
    digits: 25 as "25.000")."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (bool, float, str)):
        return value
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "None"
    return json.dumps(value, default=str)


def flat_config(config: dict, prefix: str = "") -> dict:
    """Nested settings as {"a.b": bool, float or str} (`_hparam_value`)."""
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


def hparams(settings: TrainingSettings, details: dict) -> dict:
    """The run's HParams (name -> bool, float or str; `flat_config`): its settings
    and the details of its data, without the paths and the settings that define no run
    (INPUT_PATHS, NOT_RUN_SETTINGS), the HPARAMS_FIRST first."""
    left_out = set(settings.NOT_RUN_SETTINGS) | set(settings.INPUT_PATHS)
    flat = flat_config({**dataclasses.asdict(settings), **details})
    first = [name for name in settings.HPARAMS_FIRST if name in flat]
    rest = [name for name in flat if name not in left_out and name not in first]
    return {name: flat[name] for name in first + rest}


def trial_name(settings: TrainingSettings) -> str:
    """The run's row in TensorBoard's HParams table: --experiment_name, the name
    TensorBoard gives the run when pointed at the experiment's folder (as the trainers
    say). The table's first column is narrow: a longer name would be cut. Runs of two
    experiments of the same name, shown together, share a row."""
    return settings.experiment_name


def hparams_config_summary(values: dict, first: Sequence[str], metric_keys: Sequence[str]):
    """The HParams table's columns as a `summary_pb2.Summary`: the hparams of `values`
    and the `final/<key>` metrics of `metric_keys`. Those of `first` are marked as the
    ones that differ between runs: TensorBoard lists those first and ticks its first
    five (sorted by name, otherwise all of them are; the mark is all that orders them)."""
    from tensorboard.plugins.hparams import api as hp
    from tensorboard.plugins.hparams import plugin_data_pb2

    summary = hp.hparams_config_pb(
        hparams=[hp.HParam(name) for name in values],
        metrics=[hp.Metric(f"{FINAL_TAG}/{key}", display_name=key) for key in metric_keys])
    (value,) = summary.value
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in first
    value.metadata.plugin_data.content = data.SerializeToString()
    return summary


def write_run_config(loop: trainer.Trainer, settings: TrainingSettings, details: dict,
                     metric_keys: Sequence[str] = ()) -> None:
    """On the chief: the run's settings and data details as TensorBoard hparams (the
    HParams tab: a row named `trial_name`, columns `hparams`, with `final/<key>` of
    `metric_keys` as its metrics) and all of them, paths too, as a `config` text table,
    at step 0. A resumed run writes them again, unchanged."""
    from tensorboard.plugins.hparams import api as hp

    if not loop.is_chief:
        return
    values = hparams(settings, details)
    with files.explained_write_errors(loop.log_dir):
        with loop.writer.as_default(step=0):
            if metric_keys:
                # The metric columns; without them the tab would list every scalar tag.
                summary = hparams_config_summary(values, settings.HPARAMS_FIRST, metric_keys)
                with tf.summary.experimental.summary_scope("hparams_config"):
                    tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=0)
            hp.hparams(values, trial_id=trial_name(settings))
            flat = flat_config({**dataclasses.asdict(settings), **details})
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
      metric_keys(config) -> headline metrics (TensorBoard `eval/*` during training and
        `final/*`, HParams columns)
      write_outputs(config, data, loop, metrics) -> the experiment's own files, into
        `loop.out_dir` (a staging folder then, see `write_outputs`)
    """

    load_data: Callable
    build_trainer: Callable
    evaluate: Callable
    generator_spec: Callable
    details: Callable
    metric_keys: Callable
    write_outputs: Callable


def start_line(settings: TrainingSettings, devices: str) -> str:
    """What a run is about to do, in one line: "paired_mnist, variant factorgan: training
    to step 300 on CPU in bfloat16 (auto: the CPU has AVX512_BF16); outputs in
    runs/paired_mnist/factorgan"."""
    doing = ("evaluating the last checkpoint" if settings.eval_only
             else f"training to step {settings.steps}")
    used, why = settings.compute_precision()
    return (f"{settings.EXPERIMENT}, variant {settings.variant}: {doing} on {devices} in "
            f"{used} ({why}); outputs in {settings.run_dir}")


def run_experiment(task: Task, settings: TrainingSettings, data=None,
                   strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """Runs one experiment: holds the run folder (`run_folder.locked`), compares the
    settings with those the run recorded (`check_run_settings`), writes them to
    TensorBoard (hparams and a `config` text), trains (or restores, with
    --eval_only), records the run's settings, evaluates and, on the chief, writes the
    generator with its spec, the experiment's outputs and metrics.json, all at once
    (`write_outputs`). `data` and `strategy` default to the task's data and the
    settings' runtime. Returns the metrics with the details and the run's metadata,
    or {"interrupted_at_step": step} when Ctrl-C stopped training."""
    # The runtime first: CPU threads are set before TensorFlow starts.
    strategy = strategy or make_runtime(settings)
    # Only the chief writes the run folder; the other workers share it.
    chief = strategies.is_chief(strategy)
    if chief:
        print(start_line(settings, strategies.describe_devices(strategy)), flush=True)
    with run_folder.locked(settings.run_dir) if chief else contextlib.nullcontext():
        check = check_run_settings(settings) if chief else None
        data = task.load_data(settings) if data is None else data
        loop = task.build_trainer(settings, data, strategy)
        # With what --precision computed in here (auto chooses by the hardware): in
        # TensorBoard's config and HParams and in metrics.json.
        details = {**task.details(settings, data),
                   "compute_precision": settings.compute_precision()[0]}
        keys = task.metric_keys(settings)
        write_run_config(loop, settings, details, keys)
        history = []

        def on_restored(step: int) -> None:
            if check is not None:
                history.extend(record_run_settings(check, step))

        result = train_or_restore(settings, loop, on_restored)
        if result.interrupted:
            return {"interrupted_at_step": result.step}
        if chief:
            print(f"step {result.step}: final evaluation", flush=True)
        metrics = task.evaluate(settings, data, loop)
        metrics.update(details, **run_metadata(settings, result, history))
        if loop.is_chief:
            write_outputs(task, settings, data, loop, metrics,
                          [key for key in keys if key in metrics])
        return metrics


@contextlib.contextmanager
def _outputs_into(loop: trainer.Trainer, folder: str) -> Iterator[None]:
    """Points `loop.out_dir`, where experiments write their own outputs, at `folder`."""
    out_dir, loop.out_dir = loop.out_dir, folder
    try:
        yield
    finally:
        loop.out_dir = out_dir


def write_outputs(task: Task, settings: TrainingSettings, data, loop: trainer.Trainer,
                  metrics: dict, scalar_keys: Sequence[str]) -> None:
    """The run's final outputs, all or none: the generator's weights and spec, the
    experiment's files and metrics.json are written into a staging folder inside the
    run folder and then renamed in, the spec and metrics.json last
    (`files.move_in`). A failed write (a full disk) leaves the earlier outputs as
    they were and raises a WriteError naming the folder; the staging folder is
    removed. TensorBoard's `final/<key>` scalars of `scalar_keys` come first."""
    then = ("then run the same command again: it evaluates the last checkpoint and writes the "
            "outputs")
    write_eval_scalars(loop, metrics, scalar_keys)
    with files.explained_write_errors(loop.out_dir, then):
        with files.staging_folder(loop.out_dir) as staging:
            save_generator(loop, task.generator_spec(settings, data), staging)
            with _outputs_into(loop, staging):
                task.write_outputs(settings, data, loop, metrics)
            files.write_json(os.path.join(staging, METRICS_FILE), metrics)
            files.move_in(staging, loop.out_dir, last=(specs.SPEC_FILE, METRICS_FILE))


def save_generator(loop: trainer.Trainer, spec: specs.GeneratorSpec,
                   folder: Optional[str] = None) -> None:
    """The generator's weights and its spec (`models.specs`: all the export needs) in
    `folder` (default: the run folder)."""
    folder = folder or loop.out_dir
    files.save_weights(loop.gan_step.models.generator, os.path.join(folder, specs.WEIGHTS_FILE))
    specs.write(folder, spec)
