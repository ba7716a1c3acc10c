"""The arrays experiment end to end on a tiny synthetic set (two correlated Gaussian
parts, unpaired files of each): training writes metrics.json, samples.npz and a spec;
unpaired rows reach the marginal streams only; the export serves samples in the
user's units, one output per part, through the development server too; the trainer
reports bad input in one line."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, scalars
from tf_factorgan import gan
from tf_factorgan.data import arrays as array_data
from tf_factorgan.data import sources
from tf_factorgan.experiments import arrays, common

NUM_PAIRED, NUM_ONLY_X, NUM_ONLY_Y = 40, 100, 80


def _draw(rng, n):
    """x [n, 3] around 10 (scale 5), y [n, 2] around -3 correlated with x."""
    x = rng.normal(size=(n, 3))
    y = x[:, :2] @ np.array([[0.8, 0.0], [0.0, -0.6]]) + 0.5 * rng.normal(size=(n, 2))
    return 10 + 5 * x, y - 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arrays_data")
    rng = np.random.default_rng(0)
    x, y = _draw(rng, NUM_PAIRED)
    np.savez(folder / "pairs.npz", x=x, y=y)
    np.save(folder / "only_x.npy", _draw(rng, NUM_ONLY_X)[0])
    np.savez(folder / "only_y.npz", y=_draw(rng, NUM_ONLY_Y)[1])
    return folder


def _config(data_dir, out_path, **kw):
    values = dict(
        paired=str(data_dir / "pairs.npz"),
        unpaired=f"x={data_dir / 'only_x.npy'},{data_dir / 'only_y.npz'}",
        batch_size=10, nz=4, generator_hidden=8, disc_hidden=8, steps=20, steps_per_call=10,
        log_every=10, image_every=0, checkpoint_every=20, eval_samples=200, eval_every=10,
        eval_every_samples=100,
        out_path=str(out_path), experiment_name="tiny")
    values.update(kw)
    return arrays.ArraysConfig(**values)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    config = _config(data_dir, out)
    metrics = common.run_experiment(arrays.TASK, config, strategy=tf.distribute.get_strategy())
    return config, metrics, out / "arrays" / "tiny"


def test_training_writes_metrics_samples_and_spec(trained, capsys):
    config, metrics, run_dir = trained
    written = json.loads((run_dir / "metrics.json").read_text())
    for key in ("fd_x", "fd_y", "fd_marginal_mean", "fd_joint", "dependency_distance"):
        assert written[key] == pytest.approx(metrics[key]) and written[key] >= 0, key
    assert list(written["dependency_pairs"]) == ["x,y"]
    assert written["step"] == 20 and written["config"]["variant"] == "factorgan"
    assert written["parts"] == ["x", "y"] and written["part_sizes"] == [3, 2]
    assert written["num_paired"] == NUM_PAIRED and written["num_unpaired_x"] == NUM_ONLY_X
    assert written["eval_reference"] == "training" and written["eval_samples"] == 200
    assert written["generator_hidden_units"] == 8
    assert set(written["disc_hidden_units"]) == {"marginal_0", "marginal_1", "p_dependency", "q_dependency"}
    for key in arrays.HEADLINE_METRICS:  # --eval_every=10: a point at 10, the final at 20
        assert [step for step, _ in scalars(str(run_dir), f"eval/{key}")] == [10]
        assert scalars(str(run_dir), f"final/{key}") == [(20, pytest.approx(metrics[key]))]
    with np.load(run_dir / arrays.SAMPLES_FILE) as samples:
        assert samples.files == ["x", "y"]
        assert samples["x"].shape == (arrays.NUM_WRITTEN_SAMPLES, 3) and samples["y"].shape[1] == 2
    spec = json.loads((run_dir / "generator.json").read_text())
    assert spec["arguments"]["output_activation"] == "linear"
    assert spec["data"]["parts"] == [{"name": "x", "size": 3}, {"name": "y", "size": 2}]
    assert len(spec["data"]["mean"]) == 5 and spec["data"]["mean"][0] == pytest.approx(10, abs=2)


def test_unpaired_rows_reach_the_marginal_streams_but_not_the_joint(trained, data_dir):
    config, metrics, _ = trained
    assert metrics["streams"] == {
        "joint": {"paired": NUM_PAIRED, "unpaired": 0},
        "marginal_0": {"paired": NUM_PAIRED, "unpaired": NUM_ONLY_X},
        "marginal_1": {"paired": NUM_PAIRED, "unpaired": NUM_ONLY_Y},
    }
    data = array_data.load(config.paired, config.unpaired)
    layout_streams = gan.model_layout(config.gan_config(), 2).streams
    streams = sources.training_streams(data.observations, layout_streams)
    assert {k: s.num_items for k, s in streams.items()} == {
        "joint": NUM_PAIRED, "marginal_0": NUM_PAIRED + NUM_ONLY_X, "marginal_1": NUM_PAIRED + NUM_ONLY_Y}
    # Every joint row drawn is a paired sample, whole.
    paired = np.concatenate(data.observations.paired, axis=1)
    rows = streams["joint"].make_gather(0)(tf.range(NUM_PAIRED, dtype=tf.int64)).numpy()
    np.testing.assert_array_equal(rows, paired)
    # The baselines: the GAN reads only the paired set, FactorGAN-no-cp only the marginals.
    for variant, keys in (("gan", ["joint"]), ("factorgan_no_cp", ["marginal_0", "marginal_1"])):
        details = arrays.TASK.details(_config(data_dir, "unused", variant=variant), data)
        assert sorted(details["streams"]) == keys, variant


def test_export_serves_the_samples_in_user_units(trained, tmp_path):
    from tf_factorgan.export import export, savedmodel
    from tf_factorgan.serving import config as serving_config
    from tf_factorgan.serving.client import RestClient
    from tf_factorgan.serving.dev_server import DevServer
    from tf_factorgan.serving.repository import ModelRepository

    config, _, run_dir = trained
    module = export.build_module(str(run_dir), "samples")
    base = str(tmp_path / "exports")
    path = savedmodel.publish(module, base, "arrays", module.check)
    serving_config.write_for_export_base(base)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    out = signature(num_samples=tf.constant(arrays.NUM_WRITTEN_SAMPLES), seed=tf.constant(config.seed, tf.int64))
    assert set(out) == {"samples", "x", "y"}
    with np.load(run_dir / arrays.SAMPLES_FILE) as written:
        # The run's samples.npz: the same noise, mapped back the same way.
        np.testing.assert_allclose(out["x"].numpy(), written["x"], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["y"].numpy(), written["y"], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out["samples"].numpy(), np.concatenate([out["x"], out["y"]], axis=1))

    repository = ModelRepository(serving_config.parse(os.path.join(base, serving_config.CONFIG_FILE)))
    server = DevServer(repository, rest_port=0, grpc_port=0).start()
    try:
        served = RestClient(f"localhost:{server.rest_port}").predict(
            "arrays", {"num_samples": np.array(3, np.int32), "seed": np.array(config.seed, np.int64)})
    finally:
        server.stop()
    assert set(served) == {"samples", "x", "y"}
    np.testing.assert_allclose(served["x"], out["x"].numpy()[:3], rtol=1e-6)


def test_trainer_reports_bad_input_in_one_line(data_dir, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.ones((4, 3)), y=np.ones((5, 2)))
    result = subprocess.run(
        [sys.executable, "-m", "trainers.arrays", f"--paired={bad}", f"--out_path={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    noise = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|To enable the following)")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not noise.match(line)]
    assert lines == [f"error: --paired parts must have one row per sample, aligned, but their row "
                     f"counts differ: {bad}, key 'x' has 4, {bad}, key 'y' has 5"]
