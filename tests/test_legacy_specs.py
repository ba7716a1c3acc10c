import json
import os

import pytest

from tf_factorgan.models import legacy_specs
from tf_factorgan.models.specs import GeneratorSpec


@pytest.mark.parametrize("experiment, config, expected", [
    ("paired_mnist", {"nz": 5, "seed": 2},
     GeneratorSpec("mlp", {"output_dim": 1568}, [[5]], 5, 2, "samples",
                   {"sample_shape": [1568], "image_shape": [56, 28, 1]})),
    ("image_pairs", {"nz": 5, "seed": 2, "dataset": "edges2shoes", "load_size": 16, "ngf": 2},
     GeneratorSpec("conv", {"output_size": 16, "output_channels": 4, "ngf": 2}, [[5]], 5, 2,
                   "samples", {"sample_shape": [16, 16, 4]})),
    ("image2image", {"nz": 5, "seed": 2, "dataset": "cityscapes", "load_size": 16, "ngf": 2,
                     "model": "cyclegan"},
     GeneratorSpec("unet", {"output_channels": 3, "ngf": 2, "noise_channels": 0},
                   [[16, 16, 3], [5]], 5, 2, "segmentation", {"load_size": 16, "input_channels": 3})),
])
def test_old_runs_are_read_from_their_metrics_json(tmp_path, experiment, config, expected):
    (tmp_path / "metrics.json").write_text(json.dumps({"step": 10, "config": config}))
    assert legacy_specs.legacy_spec(str(tmp_path), experiment) == expected


def test_old_separators_are_read_from_separator_json(tmp_path):
    spectrogram = {"sample_rate": 22050, "n_fft": 512, "hop": 256}
    (tmp_path / "separator.json").write_text(json.dumps(
        {"ngf": 2, "nz": 5, "seed": 4, "spectrogram": spectrogram, "snippet_frames": 128}))
    assert legacy_specs.legacy_spec(str(tmp_path), "audio_separation") == GeneratorSpec(
        "masking_separator", {"ngf": 2}, [[256, 128, 1], [5]], 5, 4, "separation",
        {"spectrogram": spectrogram, "window_frames": 128})
    (tmp_path / "separator.json").write_text(json.dumps({"ngf": 2, "nz": 5}))
    with pytest.raises(ValueError, match="does not describe a separator of this version"):
        legacy_specs.legacy_spec(str(tmp_path), "audio_separation")
    os.remove(tmp_path / "separator.json")
    with pytest.raises(FileNotFoundError, match="lacks generator.json and separator.json"):
        legacy_specs.legacy_spec(str(tmp_path), "audio_separation")
