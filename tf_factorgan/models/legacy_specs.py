"""Generator specs of runs written before `generator.json` existed, read once from
what those runs left: `metrics.json` ("config", the run's flags) and, for audio,
`separator.json`.

The architectures below are those the experiments built at the time, restated here
so that reading an old run needs no experiment code.
"""

import os

from tf_factorgan import files
from tf_factorgan.config import SettingError, SettingPathError
from tf_factorgan.data import mnist, pix2pix
from tf_factorgan.models.specs import GeneratorSpec

SEPARATOR_FILE = "separator.json"
# The spectrogram windows the separator was trained on: 128 STFT frames.
_SEPARATOR_FRAMES = 128


def _run_config(run_dir: str) -> dict:
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        raise SettingPathError(
            f"{{run_dir}} {run_dir!r} lacks generator.json and metrics.json; they are written "
            "after training and evaluation finish"
        )
    metrics = files.read_json(path)
    if not isinstance(metrics, dict) or not isinstance(metrics.get("config"), dict):
        raise ValueError(f"{path} has no \"config\" object; was it written by another version?")
    config = metrics["config"]

    def setting(key):
        if key not in config:
            raise ValueError(f"{path} config lacks {key!r}")
        return config[key]

    return setting


def _separator(run_dir: str) -> GeneratorSpec:
    path = os.path.join(run_dir, SEPARATOR_FILE)
    if not os.path.isfile(path):
        raise SettingPathError(
            f"{{run_dir}} {run_dir!r} lacks generator.json and {SEPARATOR_FILE}; point it at a "
            "finished run of trainers.audio_separation (they are written after training)"
        )
    old = files.read_json(path)
    if not isinstance(old, dict) or old.get("snippet_frames") != _SEPARATOR_FRAMES or not all(
            isinstance(old.get(key), int) for key in ("ngf", "nz", "seed")) or not isinstance(
            old.get("spectrogram"), dict) or not isinstance(old["spectrogram"].get("n_fft"), int):
        raise ValueError(
            f"{path} does not describe a separator of this version (expected integer ngf, nz, "
            f"seed, a spectrogram object and snippet_frames {_SEPARATOR_FRAMES})"
        )
    bins = old["spectrogram"]["n_fft"] // 2
    return GeneratorSpec(
        "masking_separator", {"ngf": old["ngf"]}, [[bins, _SEPARATOR_FRAMES, 1], [old["nz"]]],
        old["nz"], old["seed"], "separation",
        {"spectrogram": old["spectrogram"], "window_frames": _SEPARATOR_FRAMES},
    )


def legacy_spec(run_dir: str, experiment: str) -> GeneratorSpec:
    """The spec of an old run of `experiment` (the run folder's parent name)."""
    if experiment == "audio_separation":
        return _separator(run_dir)
    setting = _run_config(run_dir)
    nz, seed = setting("nz"), setting("seed")
    if experiment == "paired_mnist":
        size = mnist.IMAGE_SIZE
        return GeneratorSpec("mlp", {"output_dim": mnist.PAIR_SIZE}, [[nz]], nz, seed, "samples",
                             {"sample_shape": [mnist.PAIR_SIZE], "image_shape": [2 * size, size, 1]})
    dataset = setting("dataset")
    if dataset not in pix2pix.GREY_A:
        raise ValueError(f"{run_dir}/metrics.json names unknown dataset {dataset!r}")
    load_size, ngf = setting("load_size"), setting("ngf")
    a_channels = 1 if pix2pix.GREY_A[dataset] else 3
    if experiment == "image_pairs":
        channels = a_channels + 3
        return GeneratorSpec("conv", {"output_size": load_size, "output_channels": channels, "ngf": ngf},
                             [[nz]], nz, seed, "samples",
                             {"sample_shape": [load_size, load_size, channels]})
    if experiment == "image2image":
        noise_channels = 0 if setting("model") == "cyclegan" else 2
        return GeneratorSpec(
            "unet", {"output_channels": 3, "ngf": ngf, "noise_channels": noise_channels},
            [[load_size, load_size, a_channels], [nz]], nz, seed, "segmentation",
            {"load_size": load_size, "input_channels": a_channels})
    raise SettingError(f"{{run_dir}} {run_dir!r} is of unknown experiment {experiment!r}")
