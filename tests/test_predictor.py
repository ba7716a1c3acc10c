import os

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import files, predictor
from tf_factorgan.data import sources
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs
from tests.conftest import scalars

PARTITION = Partition((1, 1))
SPEC = specs.GeneratorSpec("unet", {"output_channels": 1, "ngf": 2, "noise_channels": 2, "noise_stages": 1},
                           [[16, 16, 1], [4]], 4, 0, "segmentation")


def _pairs(count, seed):
    """Input x in [0, 1], target 0.5 x plus noise: [count, 16, 16, 2] whole samples."""
    rng = np.random.default_rng(seed)
    x = rng.random((count, 16, 16, 1)).astype(np.float32)
    return np.concatenate([x, 0.5 * x + 0.05 * rng.standard_normal(x.shape).astype(np.float32)], -1)


def _stage(tmp_path, likelihood="gaussian", steps=30, seed=0):
    train, val = _pairs(12, seed), _pairs(6, seed + 100)
    observations = sources.Observations((train[..., :1], train[..., 1:]), (None, None), ("x", "y"))
    joint = sources.training_streams(observations, {"joint": None})["joint"]
    settings = predictor.StageSettings(likelihood, steps, 10, 4, 1e-3, 0)
    return lambda: predictor.from_stage(SPEC, PARTITION, (16, 16, 2), joint, val, settings,
                                        str(tmp_path / "predictors"), [train, val])


def test_stage_keeps_its_best_checkpoint_and_is_reused(tmp_path):
    make = _stage(tmp_path)()
    (folder,) = [os.path.join(tmp_path / "predictors", name) for name in os.listdir(tmp_path / "predictors")]
    summary = files.read_json(os.path.join(folder, predictor.DONE_FILE))
    losses = dict(scalars(os.path.join(folder, "logs"), "predictor/val_loss"))
    assert sorted(losses) == [10, 20, 30]
    assert summary["best_step"] == min(losses, key=losses.get)
    assert summary["best_val_loss"] == pytest.approx(min(losses.values()), rel=1e-5)
    model = make()
    assert not model.trainable
    centre, log_dispersion = model(tf.zeros([2, 16, 16, 1]))
    assert centre.shape == (2, 16, 16, 1) and log_dispersion.shape == (2, 16, 16, 1)
    low, high = predictor.losses.LOG_DISPERSION_RANGE
    assert low <= float(tf.reduce_min(log_dispersion)) and float(tf.reduce_max(log_dispersion)) <= high
    # The same data and settings again: the finished stage is found, not retrained.
    stamp = os.path.getmtime(os.path.join(folder, predictor.DONE_FILE))
    _stage(tmp_path)()
    assert os.path.getmtime(os.path.join(folder, predictor.DONE_FILE)) == stamp
    # Other data: a stage of its own beside it.
    _stage(tmp_path, steps=10, seed=1)()
    assert len(os.listdir(tmp_path / "predictors")) == 2


def test_an_interrupted_stage_resumes(tmp_path, monkeypatch, capsys):
    saves = []
    original = files.save_weights

    def fail_second(model, path):
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt
        original(model, path)

    monkeypatch.setattr(predictor.files, "save_weights", fail_second)
    # Step 20 improves on step 10 at this learning rate: its weights save fails.
    with pytest.raises(KeyboardInterrupt):
        _stage(tmp_path, likelihood="laplace")()
    (folder,) = [os.path.join(tmp_path / "predictors", n) for n in os.listdir(tmp_path / "predictors")]
    assert not os.path.exists(os.path.join(folder, predictor.DONE_FILE))
    monkeypatch.setattr(predictor.files, "save_weights", original)
    capsys.readouterr()
    _stage(tmp_path, likelihood="laplace")()
    out = capsys.readouterr().out
    assert "predictor: resuming from" in out and "(step 10)" in out
    assert files.read_json(os.path.join(folder, predictor.DONE_FILE))["steps"] == 30


def test_a_second_run_waits_for_the_stage_and_uses_it(tmp_path, capsys):
    import fcntl
    import threading

    stage = _stage(tmp_path)
    stage()  # trains; find its folder and take its lock as another process would
    (name,) = os.listdir(tmp_path / "predictors")
    folder = str(tmp_path / "predictors" / name)
    summary = files.read_json(os.path.join(folder, predictor.DONE_FILE))
    os.remove(os.path.join(folder, predictor.DONE_FILE))  # "not finished yet"
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    waiter = threading.Thread(target=stage)
    waiter.start()
    waiter.join(timeout=5)
    assert waiter.is_alive()  # waits while the stage is held
    files.write_json(os.path.join(folder, predictor.DONE_FILE), summary)  # "finished"
    os.close(fd)
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    out = capsys.readouterr().out
    assert "waiting for another process" in out and "resuming" not in out
