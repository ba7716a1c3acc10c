r"""Exports a finished training run as a TF Serving SavedModel version.

  python -m export.export --run_dir=runs/image2image/factorgan --kind=segmentation \
      --export_base=exports --model_name=cityscapes

rebuilds the generator from `<run_dir>/generator.json` and `generator.weights.h5`
(written after training; runs from before generator.json existed are read from their
`metrics.json` or `separator.json`); writes, reloads and checks the SavedModel and
publishes it
as `<export_base>/<model_name>/<version>/` (see `export/savedmodel.py`), then rewrites
`<export_base>/models.config` to list every model there (see `serving/config.py`).
Prints both paths; `python -m serving.serve --model_config_file=<that file>` serves
them.

Kinds and the experiments they fit (the experiment is the run folder's parent name,
`<out_path>/<experiment>/<experiment_name>`, unless --experiment says otherwise):
  segmentation  image2image (factorgan, gan or cyclegan; 3-channel photos); class_ids
                are ids of the palette in generator.json's data.palette (Cityscapes
                label ids for runs without one)
  samples       paired_mnist (MLP, outputs samples [n, 1568] and images [n, 56, 28, 1]),
                image_pairs (ConvGenerator, samples [n, S, S, C_A + C_B]) or arrays
                (MLP, samples [n, F_1 + ... + F_K] in the data's units and one output
                [n, F_k] per part, named by the part)
  separation    audio_separation (MaskingSeparator; waveforms at 22050 Hz)
"""

import os

from absl import app, flags

from tf_factorgan.cli import command
from tf_factorgan.config import DATA, OUTPUT, SettingError

FLAGS = flags.FLAGS
KINDS = ("segmentation", "separation", "samples")
EXPERIMENTS = {
    "segmentation": ("image2image",),
    "samples": ("paired_mnist", "image_pairs"),
    "separation": ("audio_separation",),
}

flags.DEFINE_string("run_dir", None, "Finished training run folder (holds generator.weights.h5).")
flags.DEFINE_enum("kind", None, KINDS, "What to export.")
flags.DEFINE_string("export_base", "exports", "TF Serving model base folder.")
flags.DEFINE_string("model_name", None, "Model folder under --export_base (default: --kind).")
flags.DEFINE_string(
    "experiment", "", "Experiment of --run_dir (default: the name of its parent folder)."
)
command.group(DATA, "run_dir", "kind", "experiment")
command.group(OUTPUT, "export_base", "model_name")


def _experiment(run_dir: str, kind: str, experiment: str) -> str:
    experiment = experiment or os.path.basename(os.path.dirname(os.path.abspath(run_dir)))
    if experiment not in EXPERIMENTS[kind]:
        raise SettingError(
            f"{{kind}}={kind} exports runs of {EXPERIMENTS[kind]}, but {{run_dir}} {run_dir!r} "
            f"is taken for experiment {experiment!r}; pass {{experiment}} if the folder was moved"
        )
    return experiment


def run_spec(run_dir: str, kind: str, experiment: str = ""):
    """The generator spec of a finished run: its generator.json, or, for runs written
    before that file existed, what their metrics.json / separator.json say."""
    from tf_factorgan.models import legacy_specs, specs

    if os.path.isfile(os.path.join(run_dir, specs.SPEC_FILE)):
        spec = specs.read(run_dir)
        if spec.serves != kind:
            raise SettingError(
                f"{{kind}}={kind}, but {os.path.join(run_dir, specs.SPEC_FILE)} describes a "
                f"generator that serves {spec.serves!r}"
            )
        return spec
    return legacy_specs.legacy_spec(run_dir, _experiment(run_dir, kind, experiment))


def run_palette(run_dir: str, spec):
    """The label palette of a segmentation run: its generator spec's data["palette"]
    (`Palette.to_json()`), or Cityscapes for runs written before specs held one. A
    spec whose palette is null belongs to a run whose B is not a label map."""
    from tf_factorgan.data import palette
    from tf_factorgan.models import specs

    if "palette" not in spec.data:
        return palette.cityscapes()
    value = spec.data["palette"]
    if value is None:
        raise SettingError(
            f"{{kind}}=segmentation needs a run trained on label maps (with {{palette}}, or the "
            f"cityscapes preset); {run_dir!r} was trained without a palette, so its outputs "
            f"are images, not label maps")
    return palette.from_json(value, f"{os.path.join(run_dir, specs.SPEC_FILE)} data.palette")


def run_resize(run_dir: str, spec) -> str:
    """How the run brought its photos to the training size (`data.image_folders`
    RESIZE_MODES): its generator spec's record; for runs from before specs recorded it,
    the run's settings (run_settings.json, folder runs), else "stretch" (the presets'
    only mode)."""
    if "resize" in spec.data:
        return spec.data["resize"]
    from tf_factorgan import files, run_folder

    path = os.path.join(run_dir, run_folder.SETTINGS_FILE)
    try:
        recorded = files.read_json(path)
    except (OSError, ValueError):
        return "stretch"
    settings = recorded.get("settings", recorded) if isinstance(recorded, dict) else {}
    if isinstance(settings, dict) and settings.get("dataset") == "folders":
        return settings.get("resize", "stretch")
    return "stretch"


def build_module(run_dir: str, kind: str, experiment: str = ""):
    """The export module (see export/savedmodel.py) of a finished run, rebuilt from
    its generator spec and weights alone."""
    # Heavy imports here: --help and flag errors stay fast.
    import tensorflow as tf

    from tf_factorgan.export import savedmodel
    from tf_factorgan.audio.spectrogram import SpectrogramSettings
    from tf_factorgan.models import specs

    spec = run_spec(run_dir, kind, experiment)
    generator = specs.load(run_dir, spec)
    if kind == "separation":
        settings = SpectrogramSettings(**spec.data["spectrogram"])
        return savedmodel.separation_module(generator, spec.nz, spec.seed, settings)
    if kind == "segmentation":
        if spec.data.get("direction", "a_to_b") != "a_to_b":
            raise SettingError(
                f"{{kind}}=segmentation serves photo -> label map generators; {run_dir!r} was "
                f"trained with {{direction}}={spec.data['direction']} (label map -> photo)")
        if spec.data["input_channels"] != 3:
            raise SettingError(
                f"{{kind}}=segmentation needs a run on RGB photos; {run_dir!r} was "
                f"trained on {spec.data['input_channels']}-channel inputs"
            )
        return savedmodel.segmentation_module(
            generator, spec.data.get("image_size", spec.data["load_size"]), spec.nz, spec.seed,
            run_palette(run_dir, spec), spec.data.get("label_encoding", "rgb"), run_resize(run_dir, spec)
        )
    image_shape = spec.data.get("image_shape")
    to_images = (lambda samples: tf.reshape(samples, [-1, *image_shape])) if image_shape else None
    # Vector data in named parts (arrays): standardised by the run, served in user units.
    parts = spec.data.get("parts")
    return savedmodel.sampler_module(
        generator, spec.nz, tuple(spec.data["sample_shape"]), to_images,
        mean=spec.data.get("mean"), std=spec.data.get("std"),
        parts=None if parts is None else [(part["name"], part["size"]) for part in parts],
    )


def publish(module, export_base: str, model_name: str) -> tuple[str, list[str]]:
    """Publishes `module` as the next version of `<export_base>/<model_name>`
    (`savedmodel.publish`) and returns (its path, the temporaries removed first).

    Exports killed half-way leave `.tmp-*` folders in the model folder; they are
    removed when no other export is writing there (`files.writing_into`, which
    every export through here holds while it writes)."""
    from tf_factorgan.export import savedmodel
    from tf_factorgan import files

    model_dir = os.path.join(export_base, model_name)
    plain = os.path.basename(os.path.normpath(model_dir)) == model_name and model_name[:1] != "."
    if not plain:  # not one folder name: savedmodel.publish refuses it, naming the flag
        return savedmodel.publish(module, export_base, model_name, module.check), []
    with files.explained_write_errors(model_dir, "then export again"), \
            files.writing_into(model_dir, tidy=True) as removed:
        return savedmodel.publish(module, export_base, model_name, module.check), removed


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    command.require_extra("serving", "tensorflow_serving")  # models.config
    from tf_factorgan.logs import quiet_info_logs

    quiet_info_logs()
    from tf_factorgan.serving import config

    try:
        module = build_module(FLAGS.run_dir, FLAGS.kind, FLAGS.experiment)
        path, removed = publish(module, FLAGS.export_base, FLAGS.model_name or FLAGS.kind)
    except (OSError, ValueError) as error:
        command.exit_with(error)
    if removed:
        print(f"removed what interrupted exports left in {os.path.dirname(path)}: "
              f"{', '.join(removed)}")
    print(f"exported: {path}")
    print(f"serving config: {config.write_for_export_base(FLAGS.export_base)}")


def run() -> None:
    flags.mark_flags_as_required(["run_dir", "kind"])
    command.run_main(main, __doc__)


if __name__ == "__main__":
    run()
