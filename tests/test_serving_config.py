"""models.config files: the shipped one and the written ones parse as TF Serving's
ModelServerConfig, list what was exported, and bad files are refused by name."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.conftest import REPO_ROOT
from tf_factorgan.serving import config


def test_shipped_config_is_a_model_server_config():
    path = os.path.join(REPO_ROOT, "serving", "models.config")
    # The protos of tensorflow-serving-api, as tensorflow_model_server reads it.
    parsed = text_format.Parse(open(path).read(), model_server_config_pb2.ModelServerConfig())
    assert [(m.name, m.base_path, m.model_platform) for m in parsed.model_config_list.config] == [
        ("segmentation", "/models/segmentation", "tensorflow"),
        ("separation", "/models/separation", "tensorflow"),
    ]
    assert config.parse(path) == parsed


def test_written_config_lists_exported_models(tmp_path):
    for folder in ("segmentation/1", "segmentation/2", "separation/1", "empty", ".tmp-x/1"):
        os.makedirs(tmp_path / folder)
    (tmp_path / "notes.txt").write_text("not a model")
    path = config.write_for_export_base(str(tmp_path))
    assert path == str(tmp_path / "models.config")
    parsed = config.parse(path)
    models = {m.name: m for m in parsed.model_config_list.config}
    assert sorted(models) == ["segmentation", "separation"]
    assert models["segmentation"].base_path == str(tmp_path / "segmentation")
    assert os.path.isabs(models["separation"].base_path)
    assert models["separation"].model_version_policy.latest.num_versions == 1
    assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp-") and name != ".tmp-x"] == []


def test_nothing_to_list(tmp_path):
    with pytest.raises(ValueError, match="holds no exported model versions"):
        config.write_for_export_base(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        config.write_for_export_base(str(tmp_path / "missing"))


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: 'a' base_pth: '/x' } }", "not a ModelServerConfig"),
    ("", "lists no models"),
    ("model_config_list { config { name: 'a' } }", "needs name and base_path"),
    ("model_config_list { config { name: 'a' base_path: '/x' } config { name: 'a' base_path: '/y' } }", "twice"),
    ("model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }", "only \"tensorflow\""),
])
def test_bad_config_files_are_named(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        config.parse(str(path))
    assert str(path) in str(raised.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        config.parse(str(tmp_path / "other.config"))
