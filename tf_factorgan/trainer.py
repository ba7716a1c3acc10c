"""The training loop: the distributed step, resumable checkpoints, TensorBoard, a
progress bar (`progress`), Ctrl-C.

The loop is experiment-agnostic. `DistributedStep` owns `strategy.run`: it runs a
model's per-replica updates (`gan.FactorGanUpdates`, `cyclegan.CycleGanUpdates`),
`disc_iter` discriminator rounds per generator update, several updates per
`tf.function` call. `Trainer` drives it on a distributed dataset and owns the step
count, checkpoints and TensorBoard; models, data and evaluation are the experiment's.
What it uses of the updates: `models.trackables()` / `models.optimizers()`,
`randomness`, `config` (batch_size, lr, disc_iter, jit_compile), and metrics that
include "generator/loss". Periodic evaluation is the experiment's
`eval_fn(step) -> {name: scalar}`, written as `eval/<name>`.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tf_factorgan import checkpoints, files, progress, run_folder, strategies
from tf_factorgan.config import EVALUATION, OUTPUT, TRAINING, check, setting


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to report (each field's help says what it is;
    intervals are in generator updates, 0 = never, except that a checkpoint is always
    written at the end). eval_every: the trainer's `eval_fn` runs at every multiple of
    it below `steps` (the experiment's final evaluation covers the last step)."""

    steps: int = setting(20000, "Generator updates in total (a resumed run continues to this "
                         "number).", TRAINING, low=0)
    steps_per_call: int = setting(50, "Generator updates per tf.function call.", TRAINING, low=1)
    log_every: int = setting(100, "TensorBoard scalars every N steps.", OUTPUT, low=0,
                             note="0 = never")
    image_every: int = setting(1000, "TensorBoard images every N steps (and at the last).",
                               OUTPUT, low=0, note="0 = never")
    checkpoint_every: int = setting(1000, "Checkpoint every N steps (and always at the end).",
                                    OUTPUT, low=0, note="0 = never")
    max_checkpoints: int = setting(3, "Newest checkpoints kept.", OUTPUT, low=1)
    eval_every: int = setting(
        0, "Also evaluate every N steps during training, into TensorBoard's eval/* curves (the "
        "final evaluation goes to final/*; 0 = only at the end; Paired MNIST and arrays on "
        "{eval_every_samples} samples, the others on their validation data).", EVALUATION,
        low=0, note="0 = never")

    def __post_init__(self):
        check(self)


@dataclasses.dataclass(frozen=True)
class LoopResult:
    step: int
    interrupted: bool
    steps_per_second: float


class DistributedStep:
    """Generator updates of `updates` (per-replica math) under `strategy`.

    `updates` has `discriminator_round(batch, per_replica_batch)` and
    `generator_update(batch, per_replica_batch)` (each returning per-replica metrics,
    already divided by the global batch), `metric_names()`, `data_streams()`,
    `models`, `randomness` and `config`; build it under `strategy.scope()`.
    """

    def __init__(self, updates, strategy: tf.distribute.Strategy):
        self.updates = updates
        self.strategy = strategy
        self.models = updates.models
        self.config = updates.config
        self.randomness = updates.randomness
        compile_replica = (lambda f: tf.function(f, jit_compile=True)) if self.config.jit_compile else (lambda f: f)
        self._disc_round_fn = compile_replica(updates.discriminator_round)
        self._generator_fn = compile_replica(updates.generator_update)
        self.train_step = tf.function(self._train_step)

    def _one_step(self, iterator, per_replica_batch_size: int, step_counter: tf.Variable):
        for _ in range(self.config.disc_iter):
            batch = next(iterator)
            disc_metrics = self.strategy.run(
                self._disc_round_fn, args=(batch, per_replica_batch_size)
            )
        # A conditional generator completes the last round's inputs (with new noise);
        # an unconditional one ignores the batch.
        gen_metrics = self.strategy.run(
            self._generator_fn, args=(batch, per_replica_batch_size)
        )
        step_counter.assign_add(1)
        return {
            k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in {**disc_metrics, **gen_metrics}.items()
        }

    def _train_step(
        self,
        iterator,
        num_steps: tf.Tensor,
        per_replica_batch_size: int,
        step_counter: tf.Variable,
    ):
        """Runs `num_steps` generator updates, each after `disc_iter` rounds.

        Several steps per call keep the Python dispatch of a `tf.function` (a few ms
        with this many variables) off the per-step cost. Returns the metrics of the
        last step: its last discriminator round and its generator update, summed over
        replicas (each replica's value is already divided by the global batch).
        """
        # Starting from zeros (not a peeled first step) traces the step only once.
        metrics = {name: tf.zeros([]) for name in self.updates.metric_names()}
        for _ in tf.range(num_steps):
            metrics = self._one_step(iterator, per_replica_batch_size, step_counter)
        return metrics


def results_line(metrics: dict) -> str:
    """"fid_upper 197.62, dependency_distance 0.9063": two decimals from 10 up, four
    below (FIDs and distances, accuracies)."""
    return ", ".join(f"{name} {float(value):.{2 if abs(float(value)) >= 10 else 4}f}"
                     for name, value in metrics.items())


def _next_event(step: int, every: int, end: int) -> int:
    return end if every <= 0 else min(end, (step // every + 1) * every)


def checkpoint_dir(out_dir: str) -> str:
    """Where the run in `out_dir` keeps its checkpoints."""
    return os.path.join(out_dir, "checkpoints")


# TensorBoard's event files hold this in their names (events.out.tfevents.<time>...).
EVENT_FILE_MARK = "tfevents"
# Where runs of earlier versions wrote their event files.
OLD_LOG_FOLDER = "logs"


def log_dir(out_dir: str) -> str:
    """Where the run in `out_dir` writes its TensorBoard event files: the run folder
    itself, so that TensorBoard names the run after it ("factorgan", not
    "factorgan/logs"); a run of an earlier version that has event files in
    `out_dir/logs` goes on there, so its curves stay one run."""
    old = os.path.join(out_dir, OLD_LOG_FOLDER)
    if os.path.isdir(old) and any(EVENT_FILE_MARK in name for name in os.listdir(old)):
        return old
    return out_dir


def _is_run_folder_file(name: str) -> bool:
    """Files of the run folder itself, never outputs of a step: its lock, its settings
    and TensorBoard's event files (a resumed run appends a new one)."""
    return name in (run_folder.LOCK_FILE, run_folder.SETTINGS_FILE) or EVENT_FILE_MARK in name
# What a failed write of a running run should be followed by.
_RESUME = "then run the same command again: it resumes from the last complete checkpoint"


def set_aside_outputs_after(out_dir: str, step: int) -> Optional[str]:
    """Moves the run's outputs (the plain files directly in `out_dir`: metrics.json,
    weights, samples; not the run folder's lock, settings and event files) to a new
    `out_dir/superseded/step-<n>/` when its metrics.json is
    of a later step than `step` (or unreadable), so that a run resumed from an older
    checkpoint does not overwrite them. Returns that folder, or None if nothing moved."""
    metrics_path = os.path.join(out_dir, "metrics.json")
    if not os.path.isfile(metrics_path):
        return None
    try:
        written_step = files.read_json(metrics_path)["step"]
        label = str(int(written_step))
    except (OSError, ValueError, KeyError, TypeError):  # damaged: keep it, unread
        written_step, label = float("inf"), "unreadable"
    if written_step <= step:
        return None
    target = os.path.join(out_dir, "superseded", f"step-{label}")
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = os.path.join(out_dir, "superseded", f"step-{label}-{suffix}")
    os.makedirs(target)
    for entry in os.scandir(out_dir):
        if (entry.is_file() and not entry.name.startswith(".")
                and not _is_run_folder_file(entry.name)):
            os.replace(entry.path, os.path.join(target, entry.name))
    return target


class Trainer:
    """Runs a `DistributedStep` to `loop.steps`, resuming from `checkpoint_dir` if
    possible.

    Args:
      gan_step: the distributed step with its models.
      dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of per-replica
        discriminator-round batches (dicts keyed as `gan_step.updates.data_streams()`);
        called with the checkpointed step so a resumed run sees fresh data.
      out_dir: run folder; checkpoints go to `out_dir/checkpoints`, TensorBoard's
        event files into the folder itself (`log_dir`).
      loop: lengths and intervals.
      image_summary_fn: `() -> [N, H, W, C]` images in [0, 1] for TensorBoard (a grid
        of samples or of input | prediction | truth rows); it should use fixed noise
        and inputs, so that the images of successive steps are comparable.
      eval_fn: `step -> {name: scalar}`, called (on every worker, like the final
        evaluation) at each multiple of `loop.eval_every` that this run reaches below
        `loop.steps`, after that step's logs and images and before its checkpoint, so a
        run resumed from a checkpoint never repeats an evaluation it already wrote.
        The values go to TensorBoard as `eval/<name>` at that step; the final
        evaluation, which may measure on more samples, has tags of its own
        (`common.write_eval_scalars`).
    """

    def __init__(
        self,
        gan_step: DistributedStep,
        dataset_fn: Callable[[tf.distribute.InputContext, int], tf.data.Dataset],
        out_dir: str,
        loop: LoopConfig,
        image_summary_fn: Optional[Callable[[], np.ndarray]] = None,
        eval_fn: Optional[Callable[[int], dict]] = None,
    ):
        self.gan_step = gan_step
        self.out_dir = out_dir
        self.strategy = gan_step.strategy
        self.dataset_fn = dataset_fn
        self.loop = loop
        self.image_summary_fn = image_summary_fn
        self.eval_fn = eval_fn
        self.is_chief = strategies.is_chief(self.strategy)
        self.per_replica_batch = strategies.per_replica_batch_size(
            self.strategy, gan_step.config.batch_size
        )
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(
            step=self.step, randomness=gan_step.randomness, **gan_step.models.trackables()
        )
        self.checkpoint_dir = checkpoint_dir(out_dir)
        # Every MultiWorkerMirroredStrategy worker must take part in saving; only the
        # chief's copy is kept.
        write_dir = self.checkpoint_dir
        if not self.is_chief:
            write_dir = os.path.join(out_dir, f"worker_tmp_{self.strategy.cluster_resolver.task_id}")
        self._write_dir = write_dir
        self._manager = None
        self.log_dir = log_dir(out_dir)
        with self._writing_logs():
            self.writer = (tf.summary.create_file_writer(self.log_dir) if self.is_chief
                           else tf.summary.create_noop_writer())
        self._stop_requested = False

    # -- checkpoints -------------------------------------------------------------------

    @property
    def manager(self) -> tf.train.CheckpointManager:
        """Made on first use, so that it reads the index file `restore` rewrote."""
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(
                self.checkpoint, self._write_dir, max_to_keep=self.loop.max_checkpoints
            )
        return self._manager

    def _writing_logs(self):
        """TensorBoard's writes fail in one line (a full disk, a read-only folder)."""
        return files.explained_write_errors(self.log_dir, _RESUME)

    def _say(self, message: str) -> None:
        if self.is_chief:
            print(message, flush=True)

    def restore(self) -> int:
        """Restores the newest checkpoint that restores, found from the files (see
        `checkpoints`), and returns the step it holds (0: there was none).

        On the chief it first removes what interrupted writes left, and afterwards moves
        aside the newer checkpoints that did not restore and the outputs of a later step
        (`set_aside_outputs_after`), so that nothing the run already wrote is
        overwritten; then it rewrites the index file. It says what it did. Raises
        CheckpointError when checkpoints exist but none restores.
        """
        if self.is_chief:
            with files.explained_write_errors(self.out_dir, _RESUME):
                removed = (checkpoints.remove_temporaries(self.checkpoint_dir)
                           + files.remove_temporaries(self.out_dir))
            if removed:
                self._say(f"Removed what interrupted writes left: {', '.join(removed)}")
        restored = checkpoints.restore_newest(self.checkpoint, self.checkpoint_dir)
        for path, reason in restored.skipped:
            self._say(f"Skipped checkpoint {path}: {reason}")
        if restored.path:
            self._say(f"Resuming from {restored.path} (step {restored.step}).")
        if self.is_chief:
            with files.explained_write_errors(self.out_dir, _RESUME):
                self._tidy_after_restore(restored)
        self._manager = None
        if restored.path is None:
            return 0
        # Keras 3 checkpoints the learning rate; the run's configured one wins, so a
        # resumed run with a new --lr really uses it.
        for optimizer in self.gan_step.models.optimizers():
            optimizer.learning_rate = self.gan_step.config.lr
        return int(self.step.numpy())

    def _tidy_after_restore(self, restored: checkpoints.Restored) -> None:
        if restored.skipped:
            steps = [int(path.rsplit("-", 1)[1]) for path, _ in restored.skipped]
            moved = checkpoints.set_aside(self.checkpoint_dir, steps)
            self._say(f"Moved the checkpoints that did not restore to {moved}")
        moved = set_aside_outputs_after(self.out_dir, restored.step)
        if moved:
            self._say(f"Moved outputs of a later step than {restored.step} to {moved}")
        index = os.path.join(self.checkpoint_dir, checkpoints.INDEX_FILE)
        if restored.path:
            checkpoints.write_index(self.checkpoint_dir, restored.step)
        elif os.path.exists(index):
            os.remove(index)  # it names no checkpoint that exists

    def save(self) -> Optional[str]:
        # CheckpointManager writes the shards first and then replaces the `checkpoint`
        # index file, so an interrupted save never becomes the latest checkpoint.
        step = int(self.step.numpy())
        with files.explained_write_errors(checkpoints.prefix(self._write_dir, step), _RESUME):
            path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
        return path

    # -- the loop ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """Ctrl-C / SIGTERM finish the current call, save and return cleanly.

        Under multi_worker every worker must receive the signal (as cluster managers
        send it); a stop on one worker alone would leave the others in an all-reduce.
        """

        def request_stop(signum, frame):
            if self._stop_requested:  # a second Ctrl-C aborts without saving
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _write_scalars(self, metrics: dict, steps_per_second: float, step: int):
        with self._writing_logs(), self.writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, float(value))
            tf.summary.scalar("performance/steps_per_second", steps_per_second)

    def write_images(self, step: int):
        if self.image_summary_fn is None:
            return
        with self._writing_logs(), self.writer.as_default(step=step):
            tf.summary.image("samples", self.image_summary_fn()[None], max_outputs=1)

    def evaluate(self, step: int, say: Callable[[str], None] = print) -> None:
        """Runs `eval_fn(step)` and writes its values as `eval/<name>` at `step`; `say`
        announces it and then its results, each on a line of its own."""
        say(f"step {step}: evaluating")
        metrics = self.eval_fn(step)
        say(f"step {step}: {results_line(metrics)}")
        with self._writing_logs():
            with self.writer.as_default(step=step):
                for name, value in metrics.items():
                    tf.summary.scalar(f"eval/{name}", float(value))
            self.writer.flush()

    def run(self, start: Optional[int] = None) -> LoopResult:
        """Trains from the restored step to `loop.steps`; returns where it stopped.
        `start`: the step `restore()` already returned (None: restore first)."""
        start = self.restore() if start is None else start
        loop = self.loop
        if start >= loop.steps:
            return LoopResult(start, False, 0.0)
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: self.dataset_fn(context, start)
        )
        iterator = iter(dataset)
        step, last_log_step = start, start
        rate, path = 0.0, None
        # Evaluations stop below the last step: the experiment's final one takes it.
        eval_every = loop.eval_every if self.eval_fn is not None else 0
        bar = progress.Progress(loop.steps, start, enabled=self.is_chief)
        last_log_seconds = bar.training_seconds
        with self._stop_on_signals():
            while step < loop.steps and not self._stop_requested:
                target = min(
                    step + loop.steps_per_call,
                    _next_event(step, loop.log_every, loop.steps),
                    _next_event(step, loop.image_every, loop.steps),
                    _next_event(step, loop.checkpoint_every, loop.steps),
                    _next_event(step, eval_every, loop.steps),
                )
                started = time.perf_counter()
                metrics = self.gan_step.train_step(
                    iterator, tf.constant(target - step, tf.int64), self.per_replica_batch, self.step
                )
                loss = float(metrics["generator/loss"])  # waits for the call to finish
                # Only the seconds of training calls count towards the rate (the bar's
                # and TensorBoard's): not evaluations, images or checkpoints.
                bar.trained(target, time.perf_counter() - started)
                step = target
                if loop.log_every and step % loop.log_every == 0 or step == loop.steps:
                    rate = ((step - last_log_step)
                            / max(bar.training_seconds - last_log_seconds, 1e-9))
                    last_log_step, last_log_seconds = step, bar.training_seconds
                    self._write_scalars(metrics, rate, step)
                bar.advance(step, loss)
                # And at the last step, like the scalars: a run shorter than
                # image_every still shows what it learnt.
                if loop.image_every and (step % loop.image_every == 0 or step == loop.steps):
                    self.write_images(step)
                if eval_every and step % eval_every == 0 and step < loop.steps:
                    self.evaluate(step, bar.say)
                if loop.checkpoint_every and step % loop.checkpoint_every == 0:
                    path = self.save()
            bar.close()
        interrupted = self._stop_requested and step < loop.steps
        if not (loop.checkpoint_every and step % loop.checkpoint_every == 0):
            path = self.save()
        if interrupted and self.is_chief:
            print(f"\nInterrupted at step {step}; checkpoint saved to {path}. "
                  "Run the same command again to resume.")
        with self._writing_logs():
            self.writer.flush()
        return LoopResult(step, interrupted, rate)
