"""Proxy MR's moment predictor (Lee et al. 2019, section 3.3): a network trained by
maximum likelihood on the pairs alone, then frozen, whose predicted mean (and
variance) of the target given the input the generator's samples must match.

The predictor is the generator's architecture without noise for the centre (mean,
median or class probabilities, with the generator's output activation), plus, for a
gaussian or laplace likelihood, a U-Net of the same width for the log-dispersion,
clamped to [-6, 0] (MR-GAN's code; it shares one trunk for both, two networks keep
any generator architecture usable here). It is its own short training stage:

  <out_path>/predictors/<fingerprint>/
      checkpoints/          resumable state (weights, Adam, step, best validation loss)
      logs/                 TensorBoard: predictor/train_loss, predictor/val_loss
      best.weights.h5       the weights of the lowest validation loss so far
      predictor.json        written last: the stage is complete (steps, best step/loss)

The fingerprint hashes everything the result depends on (the paired and validation
data, the architecture, the likelihood, steps, batch, learning rate, seed), so a
later run on the same data reuses a finished predictor, and a changed setting trains
a new one beside it.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import time
from typing import Callable, Iterator, Optional

import keras
import numpy as np
import tensorflow as tf

from tf_factorgan import checkpoints, files, losses, optimizers, progress
from tf_factorgan.data import streams
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs
from tf_factorgan.models.unet import UNet

BEST_WEIGHTS = "best.weights.h5"
DONE_FILE = "predictor.json"


class MomentPredictor(keras.Model):
    """condition [B, ...] -> (centre [B, ..., C], log-dispersion [B, ..., C] in
    LOG_DISPERSION_RANGE, or None for the categorical likelihood).

    centre_net: the generator's network built without noise (called with the
    condition alone); ngf / channels: the log-dispersion U-Net's width and outputs
    (channels None: no dispersion).
    """

    def __init__(self, centre_net: keras.Model, channels: Optional[int], ngf: int, **kwargs):
        super().__init__(**kwargs)
        self.centre_net = centre_net
        self.dispersion_net = (None if channels is None else
                               UNet(channels, ngf=ngf, noise_channels=0, output_activation="linear"))

    def call(self, condition, training=False):
        centre = self.centre_net(condition, training=training)
        if self.dispersion_net is None:
            return centre, None
        low, high = losses.LOG_DISPERSION_RANGE
        return centre, tf.clip_by_value(self.dispersion_net(condition, training=training), low, high)


def negative_log_likelihood(likelihood: str, predicted: tuple, target: tf.Tensor) -> tf.Tensor:
    """[B]: the predictor's loss on its outputs `predicted` for `target` [B, ...]."""
    centre, log_dispersion = predicted
    if likelihood == "categorical":
        return losses.cross_entropy(centre, target)
    return losses.negative_log_likelihood(target, centre, log_dispersion, likelihood)


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """The predictor stage: `steps` Adam updates (lr, beta_1 0.5 as the GAN) on
    batches of `batch_size` pairs, the validation loss every `eval_every` steps."""

    likelihood: str
    steps: int
    eval_every: int
    batch_size: int
    lr: float
    seed: int

    @classmethod
    def of(cls, config) -> "StageSettings":
        """The stage settings of an experiment config (`pairs_loss.PairsLoss` fields
        and the optimisation's batch, learning rate and seed)."""
        return cls(config.likelihood, config.predictor_steps, config.predictor_eval_every,
                   config.batch_size, config.lr, config.seed)


def fingerprint(settings: StageSettings, architecture: dict, arrays: list) -> str:
    """16 hex digits of a hash of the settings, the architecture (JSON-able) and the
    data: each array's shape, dtype and up to 64 evenly spaced rows (cheap for pools of
    any size, and any change of the data set moves them)."""
    digest = hashlib.sha256(json.dumps([dataclasses.asdict(settings), architecture],
                                       sort_keys=True, default=str).encode())
    for array in arrays:
        digest.update(repr((tuple(array.shape), str(np.dtype(array.dtype)))).encode())
        rows = np.unique(np.linspace(0, len(array) - 1, num=min(64, len(array))).astype(np.int64))
        taken = array.take(rows) if hasattr(array, "folder") else np.asarray(array)[rows]
        digest.update(np.ascontiguousarray(taken).tobytes())
    return digest.hexdigest()[:16]


def is_complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, DONE_FILE)) and os.path.isfile(
        os.path.join(folder, BEST_WEIGHTS))


def train(make_predictor: Callable[[], MomentPredictor], partition: Partition,
          joint_stream: streams.Stream, val_samples: np.ndarray, settings: StageSettings,
          folder: str, name: str = "predictor") -> dict:
    """Trains (or resumes, or finds finished) the predictor stage in `folder`.

    make_predictor(): a new, built predictor. joint_stream: whole paired samples (part
    0 the input, parts 1.. the target, in the networks' form); val_samples: float32
    [N, ...] whole validation samples; name: what the terminal and TensorBoard call
    the network. Returns predictor.json's content: {"steps", "best_step",
    "best_val_loss", "settings"}.
    """
    with _stage_lock(folder, name):
        # Complete already, or finished by the process this one waited for.
        if is_complete(folder):
            return files.read_json(os.path.join(folder, DONE_FILE))
        return _train(make_predictor, partition, joint_stream, val_samples, settings, folder, name)


@contextlib.contextmanager
def _stage_lock(folder: str, name: str) -> Iterator[None]:
    """Holds `folder` (created if missing) exclusively: a second run that needs the same
    stage (two runs started side by side) waits for the first to finish it, then uses
    its result. The lock is the folder's own flock, which the kernel drops when a
    process dies."""
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{name}: waiting for another process that trains {folder}", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _train(make_predictor, partition, joint_stream, val_samples, settings, folder, name) -> dict:
    """`train`'s work, in the locked folder."""
    done = os.path.join(folder, DONE_FILE)
    predictor = make_predictor()
    optimizer = optimizers.FusedAdam(settings.lr, beta_1=0.5, name="adam_predictor")
    optimizer.build(predictor.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    best = tf.Variable([np.inf, 0.0], dtype=tf.float64, trainable=False)  # (loss, step)
    checkpoint = tf.train.Checkpoint(predictor=predictor, optimizer=optimizer, step=step, best=best)
    checkpoint_dir = os.path.join(folder, "checkpoints")
    checkpoints.remove_temporaries(checkpoint_dir)
    restored = checkpoints.restore_newest(checkpoint, checkpoint_dir)
    if restored.path:
        print(f"{name}: resuming from {restored.path} (step {restored.step})")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
    writer = tf.summary.create_file_writer(os.path.join(folder, "logs"))

    def split(samples):
        parts = partition.split(samples)
        return parts[0], tf.concat(parts[1:], axis=-1)

    @tf.function
    def update(samples):
        inputs, target = split(samples)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(negative_log_likelihood(
                settings.likelihood, predictor(inputs, training=True), target))
        variables = predictor.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        step.assign_add(1)
        return loss

    @tf.function
    def val_loss_sum(samples):
        inputs, target = split(samples)
        return tf.reduce_sum(negative_log_likelihood(
            settings.likelihood, predictor(inputs, training=False), target))

    def validation_loss() -> float:
        total = sum(float(val_loss_sum(val_samples[i: i + 50])) for i in range(0, len(val_samples), 50))
        return total / len(val_samples)

    start = int(step.numpy())
    batches = iter(streams.streams_dataset_fn({"joint": joint_stream}, settings.batch_size, settings.seed)(
        tf.distribute.InputContext(), start))
    # The trainers' progress: rate and time left count the updates alone, validation
    # results on lines of their own.
    bar = progress.Progress(settings.steps, start, name=name, loss_name="loss")
    while int(step.numpy()) < settings.steps:
        started = time.perf_counter()
        loss = float(update(next(batches)["joint"]))  # waits for the update
        current = int(step.numpy())
        bar.trained(current, time.perf_counter() - started)
        bar.advance(current, loss)
        if current % settings.eval_every and current < settings.steps:
            continue
        val = validation_loss()
        with writer.as_default(step=current):
            tf.summary.scalar(f"{name}/train_loss", loss)
            tf.summary.scalar(f"{name}/val_loss", val)
        # A NaN loss never improves; the first evaluation still leaves weights.
        if val < best[0].numpy() or not os.path.isfile(os.path.join(folder, BEST_WEIGHTS)):
            files.save_weights(predictor, os.path.join(folder, BEST_WEIGHTS))
            best.assign([val, current])
        manager.save(checkpoint_number=current)
        bar.say(f"{name} step {current}: val_loss {val:.4f}, best {best[0].numpy():.4f}")
    bar.close()
    writer.flush()
    summary = {"steps": settings.steps, "best_step": int(best[1].numpy()),
               "best_val_loss": float(best[0].numpy()), "settings": dataclasses.asdict(settings)}
    files.write_json(done, summary)
    print(f"{name}: lowest validation loss {summary['best_val_loss']:.4f} at step "
          f"{summary['best_step']} of {settings.steps} ({folder})")
    return summary


def load(make_predictor: Callable[[], MomentPredictor], folder: str) -> MomentPredictor:
    """A new predictor with the stage's best weights, frozen."""
    predictor = make_predictor()
    predictor.load_weights(os.path.join(folder, BEST_WEIGHTS))
    predictor.trainable = False
    return predictor


def from_stage(spec: specs.GeneratorSpec, partition: Partition, sample_shape: tuple,
               joint_stream: streams.Stream, val_samples: np.ndarray, settings: StageSettings,
               root: str, data_arrays: list, name: str = "predictor") -> Callable[[], MomentPredictor]:
    """Runs (or resumes, or finds) the predictor stage of a generator `spec` in
    `<root>/<fingerprint>` and returns `() -> the frozen predictor` to build under a
    strategy's scope.

    sample_shape: one whole sample's shape, its last axis split by `partition` (part 0
    the input); joint_stream / val_samples: as `train`; data_arrays: what identifies the
    data (paired pools, validation arrays) in the fingerprint; name: as `train`'s.
    """
    noise_free = dataclasses.replace(spec, arguments={**spec.arguments, "noise_channels": 0, "noise_stages": 0})
    dispersion = None if settings.likelihood == "categorical" else partition.total_size - partition.sizes[0]

    def make() -> MomentPredictor:
        model = MomentPredictor(specs.construct(noise_free), dispersion, spec.arguments["ngf"])
        model(tf.zeros([1, *sample_shape[:-1], partition.sizes[0]]))
        return model

    folder = os.path.join(root, fingerprint(settings, {"spec": dataclasses.asdict(spec)}, data_arrays))
    train(make, partition, joint_stream, val_samples, settings, folder, name)
    return lambda: load(make, folder)
