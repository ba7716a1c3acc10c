"""The distribution as a new user gets it (pyproject.toml): a wheel built from a copy of
the sources holds only `tf_factorgan`; installed into a scratch environment, it imports
from another folder, its console scripts answer --help and the Python API (docs/python_api.md)
example runs. An editable install works too. Nothing here can pass from the source
folder: every command runs elsewhere, and the import is checked to come from the
scratch environment.

The scratch environments get the project's dependencies (TensorFlow ...) from this
interpreter's site-packages through a .pth file, and the package with --no-deps:
installing TensorFlow again would take minutes and gigabytes. The build itself runs as
`pip install .` runs it on a fresh machine, in an isolated environment with a
setuptools from PyPI.
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

from tests.conftest import REPO_ROOT
from tf_factorgan import __version__

SCRIPTS = ("factorgan-train", "factorgan-separate", "factorgan-download-pix2pix",
           "factorgan-export", "factorgan-serve", "factorgan-client")
# What `pip install .` needs of the checkout.
SOURCES = ("tf_factorgan", "pyproject.toml", "README.md", "LICENSE")


def _run(args, cwd, timeout=600, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def _copy_sources(target) -> str:
    for name in SOURCES:
        source = os.path.join(REPO_ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)
    return str(target)


def _scratch_venv(path) -> str:
    """A new virtual environment at `path` without pip or any package, that sees this
    interpreter's packages (the dependencies) after its own; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = str(path / "bin" / "python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(own, "project_dependencies.pth"), "w") as f:
        f.write("\n".join(sorted(ours)) + "\n")
    return python


def _pip(python: str, *args, cwd):
    return _run([sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check",
                 "install", "--no-deps", "--quiet", *args], cwd=cwd)


def _python_api_example() -> str:
    """The ```python blocks of docs/python_api.md (the README links it), joined."""
    with open(os.path.join(REPO_ROOT, "docs", "python_api.md")) as f:
        page = f.read()
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert blocks, "docs/python_api.md has no ```python block"
    return "\n".join(blocks)


def test_the_wheel_installs_tf_factorgan_alone_with_working_console_scripts(tmp_path):
    source = _copy_sources(tmp_path / "source")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
          "-w", str(tmp_path / "dist"), source], cwd=str(elsewhere))
    (wheel,) = (tmp_path / "dist").iterdir()
    assert wheel.name == f"tf_factorgan-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"tf_factorgan-{__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    # One top-level name: no trainers/, export/, serving/, tests/ or benchmarks/.
    assert {name.split("/")[0] for name in names} == {"tf_factorgan", info}
    assert {"tf_factorgan/data/palettes/cityscapes.csv", "tf_factorgan/cli/train.py",
            "tf_factorgan/serving/dev_server.py", "tf_factorgan/export/savedmodel.py",
            f"{info}/licenses/LICENSE"} <= set(names)
    assert f"Version: {__version__}" in metadata and "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: audio" in metadata and "Provides-Extra: serving" in metadata
    assert sorted(re.findall(r"^(factorgan-[\w-]+) =", entry_points, re.MULTILINE)) == sorted(SCRIPTS)

    python = _scratch_venv(tmp_path / "venv")
    _pip(python, str(wheel), cwd=str(elsewhere))
    imported = _run([python, "-c", "import tf_factorgan; print(tf_factorgan.__file__, "
                     "tf_factorgan.__version__)"], cwd=str(elsewhere)).stdout.split()
    assert imported[0].startswith(str(tmp_path / "venv")) and imported[1] == __version__
    bin_dir = tmp_path / "venv" / "bin"
    commands = {script: [str(bin_dir / script), "--help"] for script in SCRIPTS}
    commands["factorgan-train paired_mnist"] = [str(bin_dir / "factorgan-train"), "paired_mnist", "--help"]
    commands["example"] = [python, "-c", _python_api_example()]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runs = {name: pool.submit(_run, args, str(elsewhere)) for name, args in commands.items()}
        out = {name: run.result().stdout for name, run in runs.items()}
    assert "factorgan-train EXPERIMENT" in out["factorgan-train"] and "image2image" in out["factorgan-train"]
    assert "  --variant (default: factorgan; one of: gan, factorgan, factorgan_no_cp)" in (
        out["factorgan-train paired_mnist"])
    for script, flag in (("factorgan-separate", "--output_dir"), ("factorgan-export", "--run_dir"),
                         ("factorgan-serve", "--model_config_file"), ("factorgan-client", "--protocol"),
                         ("factorgan-download-pix2pix", "--dataset")):
        assert f"\n  {flag} (default" in out[script], script
    assert "fd_joint" in out["example"]


def test_an_editable_install_imports_from_the_sources_from_another_folder(tmp_path):
    source = _copy_sources(tmp_path / "source")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = _scratch_venv(tmp_path / "venv")
    _pip(python, "-e", source, cwd=str(elsewhere))
    imported = _run([python, "-c", "import tf_factorgan.cli.train as t; print(t.__file__)"],
                    cwd=str(elsewhere)).stdout.strip()
    assert imported == os.path.join(source, "tf_factorgan", "cli", "train.py")
    assert os.path.isfile(tmp_path / "venv" / "bin" / "factorgan-train")

