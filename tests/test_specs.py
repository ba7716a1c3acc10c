import json

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.models import specs
from tf_factorgan.models.specs import GeneratorSpec

SPECS = {
    "mlp": GeneratorSpec("mlp", {"output_dim": 6, "hidden_units": 4}, [[3]], 3, 1, "samples",
                         {"sample_shape": [6]}),
    "conv": GeneratorSpec("conv", {"output_size": 8, "output_channels": 4, "ngf": 2}, [[3]], 3, 1,
                          "samples", {"sample_shape": [8, 8, 4]}),
    "unet": GeneratorSpec("unet", {"output_channels": 3, "ngf": 2}, [[16, 16, 3], [3]], 3, 1,
                          "segmentation", {"load_size": 16, "input_channels": 3}),
    "masking_separator": GeneratorSpec("masking_separator", {"ngf": 2}, [[16, 16, 1], [3]], 3, 1,
                                       "separation", {"window_frames": 16}),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_written_spec_rebuilds_the_same_network(tmp_path, name):
    spec = SPECS[name]
    model = specs.build(spec)
    files.save_weights(model, str(tmp_path / specs.WEIGHTS_FILE))
    specs.write(str(tmp_path), spec)
    again = specs.read(str(tmp_path))
    assert again == spec
    loaded = specs.load(str(tmp_path), again)
    inputs = [tf.random.stateless_uniform([2, *s], [0, i]) for i, s in enumerate(spec.input_shapes)]
    np.testing.assert_array_equal(model(*inputs, training=False), loaded(*inputs, training=False))


@pytest.mark.parametrize("change, message", [
    ({"architecture": "resnet"}, "'architecture' must be one of"),
    ({"serves": "music"}, "'serves' must be one of"),
    ({"nz": 0}, "'nz' must be a positive integer"),
    ({"seed": "7"}, "'seed' must be an integer"),
    ({"input_shapes": [[3, -1]]}, "'input_shapes' must be a non-empty list"),
    ({"arguments": [1]}, "'arguments' must be an object"),
])
def test_a_bad_spec_names_the_file_and_the_field(tmp_path, change, message):
    fields = {**json.loads(json.dumps(SPECS["mlp"].__dict__)), **change}
    (tmp_path / specs.SPEC_FILE).write_text(json.dumps(fields))
    with pytest.raises(ValueError, match=f"{tmp_path / specs.SPEC_FILE}: .*{message}"):
        specs.read(str(tmp_path))


@pytest.mark.parametrize("content, message", [
    ("{", "is not valid JSON"), ('{"architecture": "mlp"}', "must be an object with the fields")])
def test_an_unreadable_spec_names_the_file(tmp_path, content, message):
    (tmp_path / specs.SPEC_FILE).write_text(content)
    with pytest.raises(ValueError, match=message):
        specs.read(str(tmp_path))


def test_missing_weights_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="generator.weights.h5"):
        specs.load(str(tmp_path), SPECS["mlp"])
