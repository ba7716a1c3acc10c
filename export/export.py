"""Exports a finished training run as a TF Serving SavedModel version.

  python -m export.export --run_dir=runs/image2image/factorgan --kind=segmentation \
      --export_base=exports --model_name=cityscapes

rebuilds the generator from `<run_dir>/generator.weights.h5` (written after training)
and the settings in `<run_dir>/metrics.json` ("config") or, for audio,
`<run_dir>/separator.json`; writes, reloads and checks the SavedModel and publishes it
as `<export_base>/<model_name>/<version>/` (see `export/savedmodel.py`), then rewrites
`<export_base>/models.config` to list every model there (see `serving/config.py`).
Prints both paths; `python -m serving.serve --model_config_file=<that file>` serves
them.

Kinds and the experiments they fit (the experiment is the run folder's parent name,
`<out_path>/<experiment>/<experiment_name>`, unless --experiment says otherwise):
  segmentation  image2image (factorgan, gan or cyclegan; 3-channel photos)
  samples       paired_mnist (MLP, outputs samples [n, 1568] and images [n, 56, 28, 1])
                or image_pairs (ConvGenerator, samples [n, S, S, C_A + C_B])
  separation    audio_separation (MaskingSeparator; waveforms at 22050 Hz)
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
KINDS = ("segmentation", "separation", "samples")
EXPERIMENTS = {
    "segmentation": ("image2image",),
    "samples": ("paired_mnist", "image_pairs"),
    "separation": ("audio_separation",),
}
WEIGHTS_FILE = "generator.weights.h5"

flags.DEFINE_string("run_dir", None, "Finished training run folder (holds generator.weights.h5).")
flags.DEFINE_enum("kind", None, KINDS, "What to export.")
flags.DEFINE_string("export_base", "exports", "TF Serving model base folder.")
flags.DEFINE_string("model_name", None, "Model folder under --export_base (default: --kind).")
flags.DEFINE_string(
    "experiment", "", "Experiment of --run_dir (default: the name of its parent folder)."
)


def _experiment(run_dir: str, kind: str, experiment: str) -> str:
    experiment = experiment or os.path.basename(os.path.dirname(os.path.abspath(run_dir)))
    if experiment not in EXPERIMENTS[kind]:
        raise ValueError(
            f"--kind={kind} exports runs of {EXPERIMENTS[kind]}, but --run_dir {run_dir!r} "
            f"is taken for experiment {experiment!r}; pass --experiment if the folder was moved"
        )
    return experiment


def _config(run_dir: str) -> dict:
    """The "config" of `<run_dir>/metrics.json` (the run's flags)."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--run_dir {run_dir!r} lacks metrics.json; it is written after training and "
            "evaluation finish"
        )
    try:
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); re-run the trainer with "
                         "--eval_only to write it again") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("config"), dict):
        raise ValueError(f"{path} has no \"config\" object; was it written by another version?")
    return metrics["config"]


def _setting(config: dict, key: str, run_dir: str):
    if key not in config:
        raise ValueError(f"{os.path.join(run_dir, 'metrics.json')} config lacks {key!r}")
    return config[key]


def _load_weights(model, run_dir: str) -> None:
    path = os.path.join(run_dir, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--run_dir {run_dir!r} lacks {WEIGHTS_FILE}; it is written after training"
        )
    model.load_weights(path)


def build_module(run_dir: str, kind: str, experiment: str = ""):
    """The export module (see export/savedmodel.py) of a finished run."""
    # Heavy imports here: --help and flag errors stay fast.
    import tensorflow as tf

    from export import savedmodel

    experiment = _experiment(run_dir, kind, experiment)
    if kind == "separation":
        from tf_factorgan.experiments import audio_separation

        separator, nz, seed = audio_separation.load_separator(run_dir)
        return savedmodel.separation_module(separator, nz, seed, audio_separation.SETTINGS)

    config = _config(run_dir)
    nz, seed = _setting(config, "nz", run_dir), _setting(config, "seed", run_dir)
    if kind == "segmentation":
        from tf_factorgan.experiments import image_data
        from tf_factorgan.models.unet import UNet

        dataset = _setting(config, "dataset", run_dir)
        if image_data.GREY_A.get(dataset, True):
            raise ValueError(
                f"--kind=segmentation needs a run on RGB photos (cityscapes); {run_dir!r} "
                f"was trained on {dataset!r}"
            )
        load_size, ngf = _setting(config, "load_size", run_dir), _setting(config, "ngf", run_dir)
        noise_channels = 0 if _setting(config, "model", run_dir) == "cyclegan" else 2
        generator = UNet(3, ngf=ngf, noise_channels=noise_channels)
        generator(tf.zeros([1, load_size, load_size, 3]), tf.zeros([1, nz]))
        _load_weights(generator, run_dir)
        return savedmodel.segmentation_module(generator, load_size, nz, seed)

    if experiment == "paired_mnist":
        from tf_factorgan.data import mnist
        from tf_factorgan.models.mlp import MLPGenerator

        generator = MLPGenerator(mnist.PAIR_SIZE)
        generator(tf.zeros([1, nz]))
        _load_weights(generator, run_dir)
        size = mnist.IMAGE_SIZE
        return savedmodel.sampler_module(
            generator, nz, (mnist.PAIR_SIZE,),
            to_images=lambda samples: tf.reshape(samples, [-1, 2 * size, size, 1]),
        )

    from tf_factorgan.experiments import image_data
    from tf_factorgan.models.conv import ConvGenerator

    dataset = _setting(config, "dataset", run_dir)
    if dataset not in image_data.GREY_A:
        raise ValueError(f"{run_dir}/metrics.json names unknown dataset {dataset!r}")
    load_size, ngf = _setting(config, "load_size", run_dir), _setting(config, "ngf", run_dir)
    channels = (1 if image_data.GREY_A[dataset] else 3) + 3
    generator = ConvGenerator(load_size, channels, ngf=ngf)
    generator(tf.zeros([1, nz]))
    _load_weights(generator, run_dir)
    return savedmodel.sampler_module(generator, nz, (load_size, load_size, channels))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from trainers.common_flags import quiet_info_logs

    quiet_info_logs()
    from export import savedmodel
    from serving import config

    try:
        module = build_module(FLAGS.run_dir, FLAGS.kind, FLAGS.experiment)
        path = savedmodel.publish(
            module, FLAGS.export_base, FLAGS.model_name or FLAGS.kind, module.check
        )
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(f"exported: {path}")
    print(f"serving config: {config.write_for_export_base(FLAGS.export_base)}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["run_dir", "kind"])
    app.run(main)
