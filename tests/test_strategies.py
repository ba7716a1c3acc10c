import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tf_factorgan import strategies


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_strategy_names():
    assert strategies.make_strategy("default").num_replicas_in_sync == 1
    assert isinstance(strategies.make_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="strategy must be one of"):
        strategies.make_strategy("tpu")
    assert strategies.is_chief(tf.distribute.get_strategy())


def test_two_workers_train_to_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO_ROOT,
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.multi_worker_program", str(tmp_path / "out"),
             str(tmp_path / f"w{index}.npz")],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("multi-worker training did not finish in 300 s")
        assert proc.returncode == 0, output.decode()[-3000:]
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert int(w0["step"]) == int(w1["step"]) == 6
    assert int(w0["replicas"]) == 2 and bool(w0["chief"]) and not bool(w1["chief"])
    arrays = [k for k in w0.files if k.startswith("arr_")]
    assert len(arrays) > 20
    for key in arrays:
        np.testing.assert_array_equal(w0[key], w1[key])
    checkpoints = tmp_path / "out" / "paired_mnist" / "mw" / "checkpoints"
    assert (checkpoints / "ckpt-6.index").exists()
    assert not any(name.startswith("worker_tmp") for name in os.listdir(tmp_path / "out" / "paired_mnist" / "mw"))


def test_negative_thread_counts_are_refused():
    with pytest.raises(ValueError, match="intra_op_threads must be >= 0"):
        strategies.configure_cpu_threads(-1, 0)


def test_devices_are_named_for_the_start_up_line():
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    described = strategies.describe_devices(tf.distribute.get_strategy())
    assert described.startswith("GPU (") if on_gpu else described == "CPU"
    assert strategies.describe_devices(tf.distribute.OneDeviceStrategy("/cpu:0")) == "CPU"
