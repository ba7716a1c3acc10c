import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tf_factorgan.experiments import audio_separation, common

TINY = dict(ngf=2, disc_channels=2, batch_size=2, steps=1, steps_per_call=1, log_every=1,
            image_every=1, checkpoint_every=1, num_joint_songs=1, snippet_stride=128)


@pytest.fixture(scope="module")
def data(musdb_dir, tmp_path_factory):
    config = audio_separation.AudioSeparationConfig(
        musdb_root=musdb_dir, cache_dir=str(tmp_path_factory.mktemp("cache")), **TINY)
    return audio_separation.load_data(config)


def _config(tmp_path, musdb_dir, **kw):
    return audio_separation.AudioSeparationConfig(
        musdb_root=musdb_dir, out_path=str(tmp_path), **dict(TINY, **kw))


def test_snippets_put_the_paired_song_first(data):
    assert data.paired_songs == ("Music Delta - 80s Rock",)
    # 7 s at 22050 Hz / 256 = 603 frames -> windows at 0, 128, 256, 384 (stride 128).
    observations = data.observations
    assert observations.num_paired == 4 and observations.unpaired == (None, None, None)
    assert [p.shape for p in observations.paired] == [(4, 256, 128, 1)] * 3
    assert {p.dtype for p in observations.paired} == {np.dtype(np.float16)}
    assert [t.name for t in data.test_songs] == ["The Easton Ellises - Falcon 69"]
    assert data.durations["paired"] == {"count": 1, "unit": "song", "seconds": 6.8}


@pytest.mark.parametrize("factorgan, discriminators, inputs", [
    (True, ["marginal_1", "marginal_2", "p_dependency", "q_dependency"], [1, 1, 2, 2]),
    (False, ["joint"], [2]),
])
def test_one_step_trains_and_no_discriminator_sees_the_mixture(tmp_path, musdb_dir, data, factorgan,
                                                               discriminators, inputs):
    loop = audio_separation.build_trainer(_config(tmp_path, musdb_dir, variant="factorgan" if factorgan else "gan"), data,
                                          tf.distribute.get_strategy())
    models = loop.gan_step.models
    assert list(models.discriminators) == discriminators
    assert [d.conv_0.layer.kernel.shape[2] for d in models.discriminators.values()] == inputs
    before = [w.numpy().copy() for w in models.generator.trainable_weights]
    assert loop.run().step == 1
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, models.generator.trainable_weights))


def test_training_evaluates_and_the_cli_separates_any_file(tmp_path, musdb_dir, data):
    config = _config(tmp_path, musdb_dir, experiment_name="run")
    metrics = common.run_experiment(audio_separation.TASK, config, data, tf.distribute.get_strategy())
    assert np.isfinite(metrics["vocals/SDR/median"]) and metrics["step"] == 1
    with open(os.path.join(config.run_dir, "metrics.json")) as f:
        written = json.load(f)
    assert written["eval_window_seconds"] == 1.0 and written["data_source"] == "musdb18"
    assert written["num_paired"] == written["num_joint_snippets"] == written["num_training_snippets"] == 4
    assert written["durations"]["test"]["count"] == 1
    # A 0.4 s, 48 kHz, 3-channel file: shorter than one window, odd rate and channels.
    song = tmp_path / "short.wav"
    soundfile.write(song, np.random.default_rng(0).uniform(-0.5, 0.5, (19200, 3)), 48000)
    out = tmp_path / "separated"
    result = subprocess.run(
        [sys.executable, "-m", "trainers.separate", str(song), "-o", str(out), f"--run_dir={config.run_dir}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for source in ("vocals", "accompaniment"):
        audio, rate = soundfile.read(out / f"{source}.wav")
        assert rate == 48000 and audio.shape == (19200, 3)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF0000WAVEnot really")
    with pytest.raises(ValueError, match="garbage.wav"):
        audio_separation.separate_file(config.run_dir, str(garbage), str(out))


def test_cli_names_a_missing_run(tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF0000WAVEnot really")
    result = subprocess.run(
        [sys.executable, "-m", "trainers.separate", str(garbage), "-o", str(tmp_path / "o"),
         f"--run_dir={tmp_path}/nowhere"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and f"{tmp_path}/nowhere" in result.stderr


def test_bad_settings_name_their_flag():
    with pytest.raises(ValueError, match="num_joint_songs"):
        audio_separation.AudioSeparationConfig(num_joint_songs=0)


@pytest.mark.parametrize("flag, value", [("batch_size", 0), ("lr", float("nan")), ("steps", -1)])
def test_bad_training_flags_fail_before_any_song_is_read(tmp_path, flag, value):
    # The config alone refuses them: the trainer builds it before decoding songs.
    with pytest.raises(ValueError, match=f"{flag} must be"):
        audio_separation.AudioSeparationConfig(musdb_root=str(tmp_path / "absent"), **{flag: value})


@pytest.mark.parametrize("factorgan, recon_loss, likelihood", [
    (True, "l1", "gaussian"), (False, "mr2", "laplace"), (True, "proxy_mr2", "gaussian")])
def test_pairs_losses_train_separation_and_its_samples_are_served(tmp_path, musdb_dir, data, factorgan,
                                                                  recon_loss, likelihood):
    from tf_factorgan.export import export

    config = _config(tmp_path, musdb_dir, variant="factorgan" if factorgan else "gan", recon_loss=recon_loss, likelihood=likelihood,
                     moment_samples=2, moment_inputs=1, predictor_steps=2, predictor_eval_every=1,
                     noise_stages=2, noise_map_channels=2, experiment_name=recon_loss, max_eval_songs=1)
    metrics = common.run_experiment(audio_separation.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["step"] == 1 and np.isfinite(metrics["vocals/SDR/median"])
    if recon_loss == "proxy_mr2":  # its predictor validated on every 10th paired snippet
        (stage,) = os.listdir(tmp_path / "predictors")
        assert os.path.isfile(tmp_path / "predictors" / stage / "best.weights.h5")
    module = export.build_module(config.run_dir, "separation")
    waveform = tf.random.uniform([1, 30000], -0.1, 0.1, seed=3)
    out = module.separate_samples(waveform, 22050, 2)
    assert out["vocals_samples"].shape == (1, 2, 30000)
    assert float(tf.reduce_max(out["vocals_variance"])) > 0  # the noise maps make samples differ


def test_losses_on_class_probabilities_are_refused_for_separation():
    with pytest.raises(ValueError, match="class probabilities"):
        audio_separation.AudioSeparationConfig(recon_loss="ce")
    with pytest.raises(ValueError, match="class probabilities"):
        audio_separation.AudioSeparationConfig(recon_loss="mr1", likelihood="categorical")
