import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tf_factorgan.experiments import paired_mnist
from tf_factorgan.factorisation import Variant


def _tiny_config(tmp_path, **kw):
    values = dict(num_joint_samples=40, batch_size=10, steps=4, steps_per_call=2, log_every=2,
                  image_every=2, checkpoint_every=2, out_path=str(tmp_path), eval_samples=100,
                  min_classifier_accuracy=0.0, experiment_name="tiny")
    values.update(kw)
    return paired_mnist.PairedMnistConfig(**values)


def test_tiny_end_to_end_run_writes_every_output(tmp_path, digits):
    config = _tiny_config(tmp_path)
    data = paired_mnist.build_data(config, *digits)
    metrics = paired_mnist.run_with_data(config, data, tf.distribute.get_strategy())
    run_dir = tmp_path / "paired_mnist" / "tiny"
    written = json.loads((run_dir / "metrics.json").read_text())
    for key in ("fid_upper", "fid_lower", "dependency_distance"):
        assert written[key] == pytest.approx(metrics[key]) and written[key] >= 0
    assert written["step"] == 4 and written["variant"] == "factorgan"
    assert written["eval_samples"] == 100
    assert (run_dir / "samples.png").stat().st_size > 0
    assert (run_dir / "generator.weights.h5").stat().st_size > 0
    assert (run_dir / "checkpoints" / "ckpt-4.index").exists()
    assert os.listdir(run_dir / "logs")
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".tmp")]

    # --eval_only evaluates the same checkpoint again: same generator, same metrics.
    again = paired_mnist.run_with_data(
        _tiny_config(tmp_path, eval_only=True), data, tf.distribute.get_strategy())
    assert again["fid_upper"] == pytest.approx(metrics["fid_upper"], rel=1e-6)
    assert again["dependency_distance"] == pytest.approx(metrics["dependency_distance"])


def test_eval_only_without_a_checkpoint_says_so(tmp_path, digits):
    config = _tiny_config(tmp_path, eval_only=True)
    data = paired_mnist.build_data(config, *digits)
    with pytest.raises(FileNotFoundError, match="--eval_only found no checkpoint"):
        paired_mnist.run_with_data(config, data, tf.distribute.get_strategy())


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_joint_samples=60001), r"--num_joint_samples must lie in \[1, 60000\]"),
    (dict(same_digit_prob=-0.1), r"--same_digit_prob must lie in \[0, 1\]"),
    (dict(factorgan=False, use_real_dep_disc=True), "--use_real_dep_disc needs --factorgan"),
    (dict(batch_size=0), "--batch_size must be >= 1"),
])
def test_bad_settings_fail_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_mnist.PairedMnistConfig(**kwargs).gan_config()


def test_variant_follows_the_flags():
    assert paired_mnist.PairedMnistConfig().variant is Variant.FACTORGAN
    assert paired_mnist.PairedMnistConfig(use_real_dep_disc=False).variant is Variant.FACTORGAN_NO_CP
    assert paired_mnist.PairedMnistConfig(factorgan=False, use_real_dep_disc=False).variant is Variant.GAN


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "trainers.paired_mnist", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_reports_bad_flags_and_missing_data_clearly(tmp_path):
    result = _cli("--nofactorgan", "--use_real_dep_disc", f"--out_path={tmp_path}")
    assert result.returncode != 0
    assert "--use_real_dep_disc needs --factorgan" in result.stderr
    result = _cli(f"--mnist_manual_dir={tmp_path}/nowhere", f"--out_path={tmp_path}")
    assert result.returncode == 1
    assert f"{tmp_path}/nowhere" in result.stderr and "train-images-idx3-ubyte.gz" in result.stderr
    assert not (tmp_path / "paired_mnist").exists()
