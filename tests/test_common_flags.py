import subprocess
import sys

from tests.conftest import REPO_ROOT

# trainer module -> (experiment module, config class)
TRAINERS = {
    "paired_mnist": ("paired_mnist", "PairedMnistConfig"),
    "image_pairs": ("image_pairs", "ImagePairsConfig"),
    "image2image": ("image2image", "Image2ImageConfig"),
    "audio_separation": ("audio_separation", "AudioSeparationConfig"),
    "arrays": ("arrays", "ArraysConfig"),
}
CHECK = """
import sys
from absl import flags
import trainers.{trainer}
from tf_factorgan.cli import command
from tf_factorgan.experiments.{module} import {config}
flags.FLAGS(["check"])
print(command.flag_mismatches({config}))
"""


def test_every_trainers_flags_agree_with_its_config():
    # One process per trainer: each defines the shared flags once.
    processes = {trainer: subprocess.Popen(
        [sys.executable, "-c", CHECK.format(trainer=trainer, module=module, config=config)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for trainer, (module, config) in TRAINERS.items()}
    for trainer, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == "{}", (trainer, out)


def test_a_flag_with_another_default_is_reported(monkeypatch):
    import dataclasses

    from absl import flags

    from tf_factorgan.cli import command

    @dataclasses.dataclass(frozen=True)
    class Settings:
        NOT_FLAGS = ("internal",)
        steps: int = 5
        name: str = "run"
        internal: float = 0.5

    values = flags.FlagValues()
    flags.DEFINE_integer("steps", 7, "", flag_values=values)
    values(["check"])
    monkeypatch.setattr(command, "FLAGS", values)
    assert command.flag_mismatches(Settings) == {
        "steps": "flag default 7, config 5", "name": "no flag"}
