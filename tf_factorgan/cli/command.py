"""Flags every trainer shares (optimisation, loop, runtime), and flags -> config.

Each trainer defines its own experiment flags, then calls `define_training_flags`
with its config's defaults; `config_from_flags` fills any `TrainingSettings`
subclass from the flags of the same names.
"""

import dataclasses
import enum
import signal
import sys
from typing import Callable, TypeVar

from absl import app, flags

from tf_factorgan import checkpoints, gan, losses, pairs_loss, strategies
from tf_factorgan.logs import quiet_info_logs
from tf_factorgan.models import specs
from tf_factorgan.data import image_folders
from tf_factorgan.experiments import common, image_data
from tf_factorgan.models import initialisation, spectral

FLAGS = flags.FLAGS
Config = TypeVar("Config", bound=common.TrainingSettings)
T = TypeVar("T")


def define_training_flags(defaults: common.TrainingSettings) -> None:
    d = defaults
    flags.DEFINE_integer("batch_size", d.batch_size, "Global batch size.")
    flags.DEFINE_integer("disc_iter", d.disc_iter, "Discriminator rounds per generator update.")
    flags.DEFINE_float("lr", d.lr, "Adam learning rate of every network.")
    flags.DEFINE_integer("nz", d.nz, "Noise dimensions (Uniform(-1, 1)).")
    flags.DEFINE_enum("generator_objective", d.generator_objective, ["ns", "kl"],
                      "Generator loss: non-saturating or KL (minus mean logit).")
    flags.DEFINE_enum("spectral_norm", d.spectral_norm, list(spectral.SPECTRAL_NORMS),
                      "Discriminators' spectral norm: W / sigma in the forward pass (as the "
                      "original code) or Keras' projection of the kernel in each training call.")
    flags.DEFINE_enum("init", d.init, list(initialisation.INITS),
                      "Initial weights of every network: PyTorch's default (as the original "
                      "code) or Keras' Glorot.")
    flags.DEFINE_float("adam_epsilon", d.adam_epsilon, "Adam's epsilon (PyTorch's default 1e-8).")
    flags.DEFINE_enum("fake_batches", d.fake_batches, list(gan.FAKE_BATCHES),
                      "Each discriminator of a round gets its own fresh fake batch (as the "
                      "original code), or all share one.")
    flags.DEFINE_integer("steps", d.steps, "Generator updates in total.")
    flags.DEFINE_integer("seed", d.seed, "Seed of data order, pairings, weights and noise.")
    flags.DEFINE_string("out_path", d.out_path, "Root of all outputs.")
    flags.DEFINE_string("experiment_name", d.experiment_name,
                        f"Run folder under <out_path>/{d.EXPERIMENT}/.")
    flags.DEFINE_bool("eval_only", d.eval_only, "Only evaluate the run's last checkpoint.")
    flags.DEFINE_enum("strategy", d.strategy, list(strategies.STRATEGY_NAMES),
                      "tf.distribute strategy; multi_worker reads TF_CONFIG.")
    flags.DEFINE_bool("jit_compile", d.jit_compile, "Compile the replica steps with XLA.")
    flags.DEFINE_bool("mixed_precision", d.mixed_precision,
                      "Compute in bfloat16 (float32 variables and losses); for GPUs/TPUs.")
    flags.DEFINE_integer("intra_op_threads", d.intra_op_threads,
                         "Threads per TensorFlow op (0 = TensorFlow's default).")
    flags.DEFINE_integer("inter_op_threads", d.inter_op_threads,
                         "Ops run concurrently (0 = TensorFlow's default).")
    flags.DEFINE_integer("steps_per_call", d.steps_per_call, "Generator updates per tf.function call.")
    flags.DEFINE_integer("log_every", d.log_every, "TensorBoard scalars every N steps.")
    flags.DEFINE_integer("image_every", d.image_every, "TensorBoard images every N steps.")
    flags.DEFINE_integer("eval_every", d.eval_every,
                         "Also evaluate every N steps during training, into the final metrics' "
                         "TensorBoard curves (0 = only at the end; Paired MNIST and arrays on "
                         "--eval_every_samples samples, the others on their validation data).")
    flags.DEFINE_integer("eval_every_samples", d.eval_every_samples,
                         "Samples of each --eval_every evaluation (the final one keeps its own "
                         "count).")
    flags.DEFINE_integer("checkpoint_every", d.checkpoint_every, "Checkpoint every N steps.")
    flags.DEFINE_integer("max_checkpoints", d.max_checkpoints, "Newest checkpoints kept.")
    flags.DEFINE_list("allow_changed", list(d.allow_changed),
                      "Settings this resume may change from those the run recorded in its "
                      "run_settings.json (recorded there with the step); may name "
                      f"{', '.join(d.changeable())}.")


def list_flag(name: str, parse: Callable[[str], T]) -> tuple[T, ...]:
    """The items of list flag --name, each through `parse` (int, float, an enum)."""
    items = FLAGS[name].value
    try:
        return tuple(parse(item) for item in items)
    except ValueError:
        raise ValueError(
            f"--{name} must be a comma-separated list of {parse.__name__} values, "
            f"got {','.join(items)!r}"
        ) from None


def _as_flag_default(value):
    if isinstance(value, enum.Enum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def flag_mismatches(config_class: type) -> dict:
    """Fields of `config_class` without a flag of the same name (other than those in
    its NOT_FLAGS) or whose flag has another default: {field: what is wrong}. A setting
    is declared once, as a config field; its flag must agree."""
    defaults = config_class()
    mismatches = {}
    for field in dataclasses.fields(config_class):
        default = _as_flag_default(getattr(defaults, field.name))
        if field.name not in FLAGS:
            if field.name not in config_class.NOT_FLAGS:
                mismatches[field.name] = "no flag"
        elif FLAGS[field.name].default != default:
            mismatches[field.name] = f"flag default {FLAGS[field.name].default!r}, config {default!r}"
    return mismatches


def config_from_flags(config_class: type[Config]) -> Config:
    """The config whose fields take the values of the flags of the same names; a bad
    value ends the program with one line naming the flag."""
    mismatches = flag_mismatches(config_class)
    if mismatches:  # a programming error, caught by any run of the trainer
        raise RuntimeError(f"flags disagree with {config_class.__name__}: {mismatches}")
    names = [f.name for f in dataclasses.fields(config_class)]
    values = {name: FLAGS[name].value for name in names if name in FLAGS}
    return run_or_exit(lambda: config_class(**values))


def run_main(main: Callable[[list], None]) -> None:
    """`app.run(main)` with TensorFlow's INFO logs off (unless --verbosity). Ctrl-C
    outside the training loop (start-up, evaluation, a second Ctrl-C) ends with one
    line instead of a traceback. Nothing is half-written then: outputs and
    checkpoints are only ever replaced whole."""
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def quiet_main(argv):
        quiet_info_logs()
        return main(argv)

    try:
        app.run(quiet_main)
    except KeyboardInterrupt:
        sys.exit("\ninterrupted; the run folder keeps its last complete checkpoint and "
                 "outputs. Run the same command again to resume.")


def run_or_exit(run: Callable[[], T]) -> T:
    """`run()` (building a config from flags, or an experiment); expected failures (bad
    flag values, missing data, bad files, unusable checkpoints) end the program with
    their one-line message instead of a traceback (or absl's whole usage text)."""
    try:
        return run()
    except (OSError, ValueError, RuntimeError, checkpoints.CheckpointError) as error:
        sys.exit(f"error: {error}")


def run_and_report(task: common.Task, config: common.TrainingSettings,
                   headline: Callable[[dict], str], outputs: tuple[str, ...]) -> None:
    """Runs the experiment `task` with `config` and prints its headline metrics and
    where its outputs are (nothing after Ctrl-C: the loop already said where the
    checkpoint is)."""
    metrics = run_or_exit(lambda: common.run_experiment(task, config))
    if "interrupted_at_step" in metrics:
        return
    run_dir = config.run_dir
    lines = [f"\n{headline(metrics)}", f"  {'metrics:':<13}{run_dir}/metrics.json"]
    lines += [f"  {name.split('.')[0] + ':':<13}{run_dir}/{name}" for name in outputs]
    lines.append(f"  {'spec:':<13}{run_dir}/{specs.SPEC_FILE}")
    lines.append(f"  {'TensorBoard:':<13}tensorboard --logdir {run_dir}/logs")
    print("\n".join(lines))


def define_image_data_flags(defaults) -> None:
    """Flags of `image_data.ImageDataSettings`, shared by the image trainers."""
    d = defaults
    flags.DEFINE_enum("dataset", d.dataset, list(image_data.DATASETS),
                      "A pix2pix preset (edges2shoes: A becomes one grey channel), or "
                      "'folders' for your own images (--paired_*, --unpaired_*, --val_*).")
    flags.DEFINE_string("dataset_dir", d.dataset_dir,
                        "pix2pix folder with train/ and val/ (default: data/<dataset>, where "
                        "trainers.download_pix2pix puts it).")
    flags.DEFINE_string("paired_dir", d.paired_dir, "Folders: aligned pairs, A left and B right in each file.")
    flags.DEFINE_string("paired_a_dir", d.paired_a_dir, "Folders: paired A images (photos), matched to "
                        "--paired_b_dir by file stem.")
    flags.DEFINE_string("paired_b_dir", d.paired_b_dir, "Folders: paired B images (label maps).")
    flags.DEFINE_string("unpaired_a_dir", d.unpaired_a_dir, "Folders: A images without a B (optional).")
    flags.DEFINE_string("unpaired_b_dir", d.unpaired_b_dir, "Folders: B images without an A (optional).")
    flags.DEFINE_string("val_dir", d.val_dir, "Folders: validation pairs, aligned as --paired_dir.")
    flags.DEFINE_string("val_a_dir", d.val_a_dir, "Folders: validation A images, by stem with --val_b_dir.")
    flags.DEFINE_string("val_b_dir", d.val_b_dir, "Folders: validation B images.")
    flags.DEFINE_string("palette", d.palette, "Label classes of B (CSV or JSON: id, name, colour, "
                        "ignored); default: Cityscapes' for --dataset=cityscapes, none otherwise.")
    flags.DEFINE_enum("resize", d.resize, list(image_folders.RESIZE_MODES),
                      "Folders: how images of other sizes reach --load_size.")
    flags.DEFINE_string("image_cache_dir", d.image_cache_dir,
                        "Decoded folders (default <out_path>/image_cache).")
    flags.DEFINE_integer("memory_limit_mb", d.memory_limit_mb,
                         "Image pools larger than this stream from the cache on disk.")
    flags.DEFINE_string("load_size", d.load_size, "Image size: S, or H,W with --dataset=folders "
                        "(presets: a power of two; folders: multiples of 16).")
    flags.DEFINE_integer("num_joint_samples", d.num_joint_samples,
                         "Paired training images: the first N in file order.")
    flags.DEFINE_integer("disc_channels", d.disc_channels, "First-layer filters of every discriminator.")
    flags.DEFINE_integer("max_train_images", d.max_train_images, "Use only the first N training images (0 = all).")
    flags.DEFINE_integer("max_val_images", d.max_val_images, "Use only the first N validation images (0 = all).")
    flags.DEFINE_bool("mirror", d.mirror, "Flip training images left-right at random (a pair together).")
    flags.DEFINE_integer("ls_runs", d.ls_runs, "LS metric: fresh discriminators trained.")
    flags.DEFINE_integer("ls_epochs", d.ls_epochs, "LS metric: epochs per discriminator.")


def define_pairs_loss_flags(defaults) -> None:
    """Flags of `pairs_loss.PairsLoss`, shared by the conditional trainers."""
    d = defaults
    flags.DEFINE_enum("recon_loss", d.recon_loss, list(pairs_loss.KINDS),
                      "The generator's loss on the paired rows: none, pix2pix's l1/l2, "
                      "cross-entropy (ce), MR-GAN's moment reconstruction (mr1, mr2) or proxy MR "
                      "(proxy_mr1, proxy_mr2).")
    flags.DEFINE_enum("likelihood", d.likelihood, list(losses.LIKELIHOODS),
                      "Moment losses: gaussian (mean, variance), laplace (median, mean absolute "
                      "deviation) or categorical (class probabilities, one moment).")
    flags.DEFINE_integer("moment_samples", d.moment_samples, "Moment losses: samples per paired input (K).")
    flags.DEFINE_integer("moment_inputs", d.moment_inputs,
                         "Moment losses: paired inputs per replica and update whose K samples are fitted.")
    flags.DEFINE_float("recon_weight", d.recon_weight, "Weight of l1 / l2 / ce (pix2pix: 100).")
    flags.DEFINE_float("moment_weight", d.moment_weight,
                       "Weight of the mr likelihood or of proxy MR's first moment (MR-GAN: 10).")
    flags.DEFINE_float("second_moment_weight", d.second_moment_weight,
                       "Weight of proxy MR's second moment (MR-GAN: 10).")
    flags.DEFINE_integer("predictor_steps", d.predictor_steps,
                         "Proxy MR: updates of the predictor stage (run once per data and settings).")
    flags.DEFINE_integer("predictor_eval_every", d.predictor_eval_every,
                         "Proxy MR: the predictor's validation loss every N updates; the best is kept.")


def define_noise_map_flags(defaults) -> None:
    """The U-Net's per-pixel noise maps (`models.unet`), shared by the conditional trainers."""
    flags.DEFINE_integer("noise_stages", defaults.noise_stages,
                         "U-Net: last decoder stages (0-4) that also get per-pixel noise maps (MR-GAN: 3).")
    flags.DEFINE_integer("noise_map_channels", defaults.noise_map_channels,
                         "U-Net: channels of each per-pixel noise map (MR-GAN: 32).")
