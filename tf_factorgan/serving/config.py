"""TF Serving model config files (`models.config`, a ModelServerConfig text proto).

One file lists every model a server loads: its name (the `<name>` of
`/v1/models/<name>:predict`), the base folder holding its integer version folders,
and which versions to serve. `tensorflow_model_server --model_config_file=...`, the
`tensorflow/serving` Docker image and `serving.dev_server` all read it.

`write_for_export_base` lists every model folder of an export base (what
`export.export` produces) with absolute base paths, so the same file works for the
local server, the development server and Docker when the folder is mounted at the
same path (see docs/export_serving.md).
"""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tf_factorgan import files

CONFIG_FILE = "models.config"


def parse(path: str) -> model_server_config_pb2.ModelServerConfig:
    """Reads and checks a models.config file.

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: naming `path`, when it is not a ModelServerConfig text proto, has no
        model_config_list, or a model lacks a name or base_path, or names repeat.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model config file {path} does not exist")
    with open(path) as f:
        text = f.read()
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(
            f"model config file {path} is not a ModelServerConfig text proto: {error}"
        ) from error
    models = config.model_config_list.config
    if not models:
        raise ValueError(f"model config file {path} lists no models (model_config_list.config)")
    names = set()
    for model in models:
        if not model.name or not model.base_path:
            raise ValueError(f"model config file {path}: every config needs name and base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"model config file {path}: model {model.name!r} has model_platform "
                f"{model.model_platform!r}; only \"tensorflow\" SavedModels are served"
            )
        if model.name in names:
            raise ValueError(f"model config file {path} lists model {model.name!r} twice")
        names.add(model.name)
    return config


def for_models(base_paths: dict[str, str]) -> model_server_config_pb2.ModelServerConfig:
    """{model name: base path} -> a config serving each model's latest version."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in sorted(base_paths.items()):
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = base_path
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = 1
    return config


def model_folders(export_base: str) -> dict[str, str]:
    """{name: absolute path} of the folders of `export_base` holding at least one
    integer-named version folder (hidden and temporary folders are skipped)."""
    if not os.path.isdir(export_base):
        raise FileNotFoundError(f"export base {export_base} is not a folder")
    found = {}
    for name in sorted(os.listdir(export_base)):
        path = os.path.abspath(os.path.join(export_base, name))
        if name.startswith(".") or not os.path.isdir(path):
            continue
        if any(v.isdigit() and os.path.isdir(os.path.join(path, v)) for v in os.listdir(path)):
            found[name] = path
    return found


def write_for_export_base(export_base: str) -> str:
    """(Re)writes `<export_base>/models.config` listing every exported model, atomically;
    returns its path."""
    models = model_folders(export_base)
    if not models:
        raise ValueError(f"export base {export_base} holds no exported model versions")
    path = os.path.join(export_base, CONFIG_FILE)
    files.write_bytes(path, text_format.MessageToString(for_models(models)).encode())
    return path
