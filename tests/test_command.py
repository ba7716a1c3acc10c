import concurrent.futures
import dataclasses
import re
import subprocess
import sys

import pytest
from absl import flags

from tests.conftest import REPO_ROOT
from tf_factorgan import config
from tf_factorgan.cli import command
from tf_factorgan.config import DATA, MODEL, TRAINING, setting
from tf_factorgan.experiments import arrays, audio_separation, image2image, image_pairs, paired_mnist

# trainer module -> its settings class
TRAINERS = {
    "paired_mnist": paired_mnist.PairedMnistConfig,
    "image_pairs": image_pairs.ImagePairsConfig,
    "image2image": image2image.Image2ImageConfig,
    "audio_separation": audio_separation.AudioSeparationConfig,
    "arrays": arrays.ArraysConfig,
}
# Flags of absl itself and of TensorFlow's TPU modules, which --help leaves out.
INTERNALS = ("--logtostderr", "--only_check_args", "--run_with_pdb", "--tt_check_filter",
             "--hbm_oom_exit", "--test_tmpdir")


def _run_all(commands: dict, workers: int = 4) -> dict:
    """{key: CompletedProcess} of `python *args` for every key -> args, a few at a time
    (each imports TensorFlow)."""
    def run(args):
        return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {key: pool.submit(run, args) for key, args in commands.items()}
        return {key: future.result() for key, future in futures.items()}


def _listed_flags(help_text: str) -> list:
    return re.findall(r"^  --(?:\[no\])?(\w+) \(default", help_text, re.MULTILINE)


def test_every_field_of_every_trainers_settings_is_declared_once_with_help_and_group():
    for settings_class in TRAINERS.values():
        fields = [field.name for field in dataclasses.fields(settings_class)]
        declared = dict((field.name, d) for field, d in config.settings(settings_class))
        assert fields == list(declared), settings_class.__name__
        assert all(d.help and d.group in config.GROUPS for d in declared.values())
        off = [name for name, d in declared.items() if not d.flag]
        assert off == (["min_classifier_accuracy"] if settings_class is paired_mnist.PairedMnistConfig
                       else []), settings_class.__name__


@dataclasses.dataclass(frozen=True)
class _Settings:
    steps: int = setting(5, "Updates (see {rate}).", TRAINING, low=0)
    rate: float = setting(0.5, "Learning rate.", TRAINING, above=0)
    kind: str = setting("a", "Kind.", MODEL, choices=("a", "b"))
    folder: str = setting("", "Input folder.", DATA)
    names: tuple[str, ...] = setting(("x",), "Names.", DATA)
    hidden: float = setting(1.0, "Set by programs.", MODEL, flag=False)

    def __post_init__(self):
        config.check(self)


def test_flags_are_made_from_the_settings_and_their_errors_name_the_flag():
    values = flags.FlagValues()
    command.define_settings(_Settings, flag_values=values)
    assert sorted(values) == ["folder", "kind", "names", "rate", "steps"]
    assert values["steps"].default == 5 and values["names"].default == ["x"]
    assert values["steps"].help == "Updates (see --rate)."
    values(["prog", "--steps=7", "--names=p,q", "--kind=b"])
    assert command.settings_from_flags(_Settings, flag_values=values) == _Settings(
        steps=7, names=("p", "q"), kind="b")
    values(["prog", "--rate=0"])
    with pytest.raises(SystemExit) as exited:
        command.settings_from_flags(_Settings, flag_values=values)
    assert exited.value.code == "error: --rate must be > 0, got 0.0"
    only = flags.FlagValues()
    command.define_settings(_Settings, names=("kind",), flag_values=only)
    assert list(only) == ["kind"]


def test_every_trainers_help_lists_its_flags_by_group_and_old_variant_flags_fail_in_one_line():
    helps = {name: ["-m", f"trainers.{name}", "--help"] for name in (*TRAINERS, "paper_grid")}
    helps.update({name: ["-m", name, "--help"] for name in ("export.export", "serving.serve")})
    variant = "the variant is one flag now; use --variant="
    precision = ("the precision is one flag now; use --precision={} (or auto, the default: "
                 "bfloat16 where the hardware has it)")
    old = {
        ("image2image", "--model=cyclegan"): variant + "cyclegan",
        ("image_pairs", "--nofactorgan"): variant + "gan",
        ("audio_separation", "--nofactorgan"): variant + "gan",
        ("paired_mnist", "--mixed_precision"): precision.format("bfloat16"),
        ("arrays", "--nomixed_precision"): precision.format("float32"),
    }
    results = _run_all({**helps, **{key: ["-m", f"trainers.{key[0]}", key[1]] for key in old}})
    for name, settings_class in TRAINERS.items():
        result = results[name]
        assert result.returncode == 0, (name, result.stderr[-2000:])
        text = result.stdout
        expected = [f.name for f, d in config.settings(settings_class) if d.flag]
        expected += ["score_samples"] if name == "paired_mnist" else []  # its own flag
        assert sorted(_listed_flags(text)) == sorted(expected), name
        groups = re.findall(r"^([\w ]+):$", text, re.MULTILINE)
        assert groups == [*config.GROUPS, "every command"], (name, groups)
        assert not any(flag in text for flag in INTERNALS), name
        assert not re.search(r"^  --(\[no\])?(factorgan|use_real_dep_disc|model|mixed_precision) ",
                             text, re.MULTILINE)
    grid = results["paper_grid"].stdout
    assert re.search(r"^grid:\n  --variants \(default: gan,factorgan,factorgan_no_cp\)", grid,
                     re.MULTILINE) and "  --num_joint_samples (default: 100" in grid
    assert _listed_flags(results["export.export"].stdout) == [
        "run_dir", "kind", "experiment", "export_base", "model_name"]
    serve = results["serving.serve"].stdout
    assert re.findall(r"^([\w ]+):$", serve, re.MULTILINE) == ["models", "server", "limits", "every command"]
    assert "  --max_request_mb (default: 1024; >= 1)" in serve
    for (trainer, flag), new in old.items():
        result = results[trainer, flag]
        assert result.returncode == 1 and "Traceback" not in result.stderr, (trainer, flag)
        assert result.stderr.strip().splitlines()[-1] == f"error: {flag}: {new}"


def test_a_missing_optional_part_ends_in_one_line_naming_it():
    command.require_extra("serving", "json")  # present: nothing happens
    with pytest.raises(SystemExit) as exited:
        command.require_extra("audio", "json", "no_such_module_of_tf_factorgan")
    assert exited.value.code == ("error: this command needs no_such_module_of_tf_factorgan, of the "
                                 "optional dependencies 'audio': pip install 'tf-factorgan[audio]'")
