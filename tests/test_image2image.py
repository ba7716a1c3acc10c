import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import pairs_loss
from tf_factorgan.experiments import common, image2image, image_data

TINY = dict(load_size=16, ngf=4, disc_channels=4, batch_size=4, steps=2, steps_per_call=1,
            log_every=1, image_every=2, checkpoint_every=2, num_joint_samples=5)


def _config(tmp_path, dataset_dir, **kw):
    values = dict(TINY, dataset="cityscapes", dataset_dir=dataset_dir, out_path=str(tmp_path),
                  experiment_name=kw.get("variant", "factorgan"))
    values.update(kw)
    return image2image.Image2ImageConfig(**values)


@pytest.mark.parametrize("model, discriminators", [
    ("factorgan", ["marginal_1", "p_dependency", "q_dependency"]),
    ("gan", ["joint"]),
    ("cyclegan", ["a", "b"]),
])
def test_every_model_trains_and_writes_segmentation_metrics(tmp_path, segmentation_dir, model,
                                                            discriminators):
    config = _config(tmp_path, segmentation_dir, variant=model)
    data = image_data.load_data(config)
    metrics = common.run_experiment(image2image.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["step"] == 2 and metrics["variant"] == model
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and 0.0 < metrics["mse"] < 1.0
    assert metrics["num_images"] == 6
    run_dir = config.run_dir
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["mse"] == pytest.approx(metrics["mse"])
    assert os.path.getsize(os.path.join(run_dir, "predictions.png")) > 0
    assert [name for name in os.listdir(run_dir) if "tfevents" in name]
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    assert list(loop.gan_step.models.discriminators) == discriminators
    assert loop.restore() == 2


def test_conditional_factorgan_streams_every_photo_and_the_paired_subset(tmp_path, segmentation_dir):
    config = _config(tmp_path, segmentation_dir)
    data = image_data.load_data(config)
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    batch = next(iter(loop.dataset_fn(tf.distribute.InputContext(), 0)))
    assert set(batch) == {"joint", "marginal_0", "marginal_1"}
    assert batch["joint"].shape == (4, 16, 16, 6) and batch["marginal_0"].shape == (4, 16, 16, 3)
    paired = np.concatenate(data.observations.paired, -1).astype(np.float32) / 255
    for sample in batch["joint"].numpy():  # every joint sample is one of the first 5 pairs
        assert np.min(np.abs(paired - sample).max(axis=(1, 2, 3))) < 1e-6


def test_image_grid_shows_input_truth_samples_consensus_and_spread(tmp_path, segmentation_dir):
    config = _config(tmp_path, segmentation_dir, label_encoding="one_hot")
    data = image2image.load_data(config)
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    grid = loop.image_summary_fn()
    # 4 validation inputs, a row each: input | truth | 3 samples | vote | spread, 16
    # pixels each, framed by 2 pixels.
    assert grid.shape == (4 * 18 + 2, 7 * 16 + 4, 3)
    np.testing.assert_allclose(grid[2:18, 2:18], data.val.a[0] / 255, atol=1e-6)
    np.testing.assert_allclose(grid[2:18, 18:34], data.val.b[0] / 255, atol=1e-6)
    # One-hot samples and the vote are palette colours; the spread is grey.
    colours = np.round(data.palette.evaluated_colours() * 255)
    panels = np.round(grid[2:18, 34:34 + 4 * 16] * 255).reshape(-1, 3)
    assert np.all(np.any(np.all(panels[:, None] == colours[None], axis=-1), axis=1))
    spread = grid[2:18, 34 + 4 * 16:34 + 5 * 16]
    assert np.all(spread[..., 0] == spread[..., 2]) and 0 <= spread.min() and spread.max() <= 1


def test_bad_settings_name_their_flag():
    with pytest.raises(ValueError, match="variant must be one of gan, factorgan, factorgan_no_cp, cyclegan"):
        image2image.Image2ImageConfig(variant="pix2pix")
    with pytest.raises(ValueError, match="cycle_weight"):
        image2image.Image2ImageConfig(cycle_weight=-1)


def test_u_net_with_batch_norm_trains_on_two_replicas(tmp_path, segmentation_dir, two_replicas):
    config = _config(tmp_path, segmentation_dir, steps=1)
    data = image_data.load_data(config)
    loop = image2image.build_trainer(config, data, two_replicas)
    result = loop.run()
    assert result.step == 1
    means = [v for v in loop.gan_step.models.generator.non_trainable_weights if "moving_mean" in v.path]
    assert means and any(np.any(m.numpy() != 0) for m in means)


# Folders pair every file of the paired set: num_joint_samples is a preset's setting.
FOLDER_TINY = {k: v for k, v in TINY.items() if k != "num_joint_samples"}


def _folder_config(tmp_path, folders, **kw):
    values = dict(FOLDER_TINY, dataset="folders", load_size="16,32", out_path=str(tmp_path / "runs"),
                  paired_a_dir=folders["paired"][0], paired_b_dir=folders["paired"][1],
                  unpaired_a_dir=folders["unpaired_a"][0], unpaired_b_dir=folders["unpaired_b"][0],
                  val_a_dir=folders["val"][0], val_b_dir=folders["val"][1],
                  palette=os.path.join(os.path.dirname(folders["paired"][0]), "palette.csv"),
                  resize="crop", image_cache_dir=str(tmp_path / "cache"),
                  experiment_name=kw.get("variant", "factorgan"))
    values.update(kw)
    return image2image.Image2ImageConfig(**values)


@pytest.fixture(scope="module")
def user_folders(tmp_path_factory):
    """4 pairs, 7 unpaired photos, 9 unpaired label maps (of other images), 3 val pairs,
    24 x 32 files with class-index label PNGs and a 3-class palette."""
    from tests.synthetic_pix2pix import write_image_folders

    root = str(tmp_path_factory.mktemp("own_images"))
    return write_image_folders(root, {"paired": 4, "unpaired_a": 7, "unpaired_b": 9, "val": 3},
                               size=(24, 32), index_labels=True)


@pytest.mark.parametrize("model, counts", [
    # stream -> (paired, unpaired) rows it draws from
    ("factorgan", {"joint": (4, 0), "marginal_0": (4, 7), "marginal_1": (4, 9)}),
    ("gan", {"joint": (4, 0)}),
    ("cyclegan", {"marginal_0": (4, 7), "marginal_1": (4, 9)}),
])
def test_own_folders_reach_the_streams_their_model_may_see(tmp_path, user_folders, model, counts):
    from tf_factorgan.data import sources

    config = _folder_config(tmp_path, user_folders, variant=model)
    data = image_data.load_data(config)
    assert data.sample_shape == (16, 32, 6) and len(data.val) == 3
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    streams = loop.gan_step.updates.data_streams()
    seen = sources.counts_by_stream(data.observations, streams)
    assert {k: (v["paired"], v["unpaired"]) for k, v in seen.items()} == counts
    if model == "gan":
        # The GAN reads neither unpaired folder (nothing decoded: paired and val parts
        # only in the cache) and says so instead of counting them.
        assert data.observations.unpaired == (None, None)
        assert len(os.listdir(config.cache_dir)) == 4
        assert data.summary() == {"num_paired": 4, "ignored": ["unpaired_a_dir", "unpaired_b_dir"]}
        assert data.describe().endswith("; ignored, as the GAN trains on the pairs only: "
                                        "--unpaired_a_dir, --unpaired_b_dir, 3 validation pairs")
    else:
        assert data.summary()["num_unpaired_a"] == 7 and not data.ignored
    batch = next(iter(loop.dataset_fn(tf.distribute.InputContext(), 0)))
    if "joint" in batch:  # whole paired samples only
        paired = np.concatenate(data.observations.paired, -1).astype(np.float32) / 255
        for sample in batch["joint"].numpy():
            assert np.min(np.abs(paired - sample).max(axis=(1, 2, 3))) < 1e-6


def test_own_folders_train_evaluate_with_the_palette_and_export(tmp_path, user_folders):
    from tf_factorgan.export import export
    from tf_factorgan.models import specs

    config = _folder_config(tmp_path, user_folders)
    metrics = common.run_experiment(image2image.TASK, config)
    assert metrics["num_paired"] == 4 and metrics["num_unpaired_a"] == 7 and metrics["num_unpaired_b"] == 9
    assert metrics["num_classes_evaluated"] == 3 and metrics["image_size"] == [16, 32]
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and 0.0 <= metrics["mean_iou"] <= 1.0
    assert {f"iou/{name}" for name in ("road", "sky", "car")} <= set(metrics)
    spec = specs.read(config.run_dir)
    assert [c["name"] for c in spec.data["palette"]] == ["road", "sky", "car", "void"]
    assert spec.input_shapes[0] == (16, 32, 3)
    # Served inputs are prepared as training cropped them.
    assert spec.data["resize"] == "crop"
    # The export serves the run's classes at any input size.
    module = export.build_module(config.run_dir, "segmentation")
    served = module.serving_default(tf.random.uniform([2, 40, 50, 3], seed=1))
    assert served["label_rgb"].shape == (2, 40, 50, 3)
    assert set(np.unique(served["class_ids"].numpy())) <= {0, 1, 2}


def test_folder_runs_record_the_pairs_they_use_as_num_joint_samples(tmp_path, user_folders):
    """num_joint_samples is a preset's (default 100); folders use every pair, refuse the
    setting in one line, and record the count they used; runs of earlier versions that
    recorded a folder run's unused 100 resume."""
    preset = image2image.Image2ImageConfig(out_path=str(tmp_path))
    assert preset.num_joint_samples == 100
    config = _folder_config(tmp_path, user_folders, max_train_images=3)
    assert config.num_joint_samples is None
    details = image_data.details(config, image_data.load_data(config))
    assert details["num_joint_samples"] == 3 and details["num_paired"] == 3
    with pytest.raises(ValueError, match=r"^num_joint_samples=100 applies to the presets; dataset=folders "
                                         r"pairs every file .* max_train_images=N"):
        _folder_config(tmp_path, user_folders, num_joint_samples=100)
    old = {"dataset": "folders", "num_joint_samples": 100, "variant": "gan"}
    assert image2image.Image2ImageConfig.upgraded(old)["num_joint_samples"] is None
    assert image2image.Image2ImageConfig.upgraded({**old, "dataset": "cityscapes"})["num_joint_samples"] == 100


def test_folder_settings_are_checked_before_any_image_is_read(tmp_path):
    make = lambda **kw: image2image.Image2ImageConfig(out_path=str(tmp_path), **kw)
    with pytest.raises(ValueError, match="paired_a_dir need dataset=folders"):
        make(paired_a_dir="x")
    with pytest.raises(ValueError, match="needs a paired set: paired_dir or paired_a_dir"):
        make(dataset="folders", val_dir="v")
    with pytest.raises(ValueError, match="paired_a_dir and paired_b_dir go together"):
        make(dataset="folders", paired_a_dir="a", val_dir="v")
    with pytest.raises(ValueError, match="give val_dir .* not both"):
        make(dataset="folders", paired_dir="p", val_dir="v", val_a_dir="a", val_b_dir="b")
    with pytest.raises(ValueError, match="resize must be one of"):
        make(dataset="folders", paired_dir="p", val_dir="v", resize="squash")
    with pytest.raises(ValueError, match="load_size must be a power of two"):
        make(load_size=48)
    with pytest.raises(ValueError, match="^snap_label_colours applies to dataset=folders; the cityscapes preset"):
        make(snap_label_colours=40)
    with pytest.raises(ValueError, match="^snap_label_colours snaps label maps to the colours of palette"):
        make(dataset="folders", paired_dir="p", val_dir="v", snap_label_colours=40)


def test_own_folders_without_a_palette_score_mse_and_are_not_served_as_segmentation(tmp_path):
    """B grey photos, no palette: B is an image, not a label map."""
    from PIL import Image

    from tf_factorgan.export import export

    rng = np.random.default_rng(0)
    for folder in ("a", "b", "val_a", "val_b"):
        os.makedirs(tmp_path / folder)
        for i in range(5):
            shape = [16, 16] if folder.endswith("b") else [16, 16, 3]
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    config = image2image.Image2ImageConfig(
        **FOLDER_TINY, dataset="folders", out_path=str(tmp_path / "runs"), variant="gan",
        paired_a_dir=str(tmp_path / "a"), paired_b_dir=str(tmp_path / "b"),
        val_a_dir=str(tmp_path / "val_a"), val_b_dir=str(tmp_path / "val_b"),
        image_cache_dir=str(tmp_path / "cache"))
    metrics = common.run_experiment(image2image.TASK, config)
    assert set(metrics) >= {"mse", "num_images"} and "pixel_accuracy" not in metrics
    assert 0.0 < metrics["mse"] < 1.0 and metrics["num_images"] == 5
    with pytest.raises(ValueError, match="trained without a palette"):
        export.build_module(config.run_dir, "segmentation")


def _combination(model, recon_loss):
    """Settings that exercise one model x pairs loss on tiny data: one-hot label maps
    for the losses on probabilities, a likelihood of each kind across the models."""
    likelihood = {"factorgan": "gaussian", "factorgan_no_cp": "laplace", "gan": "categorical"}[model]
    if recon_loss in ("mr2", "proxy_mr2") and likelihood == "categorical":
        likelihood = "gaussian"
    one_hot = recon_loss == "ce" or (recon_loss not in ("none", "l1", "l2") and likelihood == "categorical")
    return dict(variant=model, recon_loss=recon_loss, likelihood=likelihood,
                label_encoding="one_hot" if one_hot or model == "factorgan_no_cp" else "rgb",
                moment_samples=2, moment_inputs=2, predictor_steps=2, predictor_eval_every=1,
                eval_samples=2, noise_stages=2, noise_map_channels=2, mirror=True, jitter=0.125,
                experiment_name=f"{model}_{recon_loss}")


@pytest.mark.parametrize("model", ["factorgan", "factorgan_no_cp", "gan"])
@pytest.mark.parametrize("recon_loss", pairs_loss.KINDS)
def test_every_model_and_pairs_loss_trains_evaluates_and_exports(tmp_path, segmentation_dir, model,
                                                                 recon_loss):
    from tf_factorgan.export import export

    config = _config(tmp_path, segmentation_dir, **_combination(model, recon_loss))
    metrics = common.run_experiment(image2image.TASK, config)
    assert metrics["step"] == 2 and metrics["eval_samples"] == 2
    for key in ("pixel_accuracy", "vote/pixel_accuracy", "mean_iou", "diversity/class_change"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["diversity/mean_pairwise_l1"] > 0  # the noise maps reach the output
    if recon_loss.startswith("proxy"):  # the predictor stage ran, beside the run
        assert len(os.listdir(os.path.join(str(tmp_path), "predictors"))) == 1
    module = export.build_module(config.run_dir, "segmentation")
    served = module.sample_maps(tf.random.uniform([2, 24, 20, 3], seed=2), tf.constant([3, 4], tf.int64), 3)
    assert served["sample_class_ids"].shape == (2, 3, 24, 20)
    assert served["mean"].shape[-1] == (19 if config.label_encoding == "one_hot" else 3)


def test_label_maps_to_photos_score_realism_and_diversity(tmp_path, segmentation_dir, monkeypatch):
    from tf_factorgan.export import export
    from tf_factorgan import predictor
    from tf_factorgan.eval import realism

    # A tiny instrument: the recipe's shape, a few steps.
    monkeypatch.setattr(realism, "INSTRUMENT", predictor.StageSettings("categorical", 4, 2, 4, 1e-3, 0))
    monkeypatch.setattr(realism, "INSTRUMENT_NGF", 2)
    config = _config(tmp_path, segmentation_dir, variant="gan", direction="b_to_a", label_encoding="one_hot",
                     recon_loss="mr1", likelihood="laplace", moment_samples=2, moment_inputs=2,
                     eval_samples=2, noise_stages=2, noise_map_channels=2, ls_runs=1, ls_epochs=1,
                     experiment_name="labels_to_photos")
    data = image2image.load_data(config)
    assert data.partition.sizes == (20, 3) and data.label_part == 0  # one-hot input, photo output
    np.testing.assert_array_equal(data.val.a, image_data.load_data(config).val.b)
    metrics = common.run_experiment(image2image.TASK, config, data, tf.distribute.get_strategy())
    for key in ("fcn/pixel_accuracy", "fcn/real_pixel_accuracy", "fcn/mean_iou"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert 0.0 <= metrics["ls_mean"] and 0.0 < metrics["mse"] < 1.0 and 0.0 < metrics["mean/mse"] < 1.0
    assert metrics["diversity/mean_pairwise_l1"] > 0 and "pixel_accuracy" not in metrics
    assert "segmenter/val_loss" in {tag for _, tag, _ in _summaries(tmp_path)}
    with pytest.raises(ValueError, match="direction=b_to_a"):
        export.build_module(config.run_dir, "segmentation")


def _summaries(tmp_path):
    from tests.conftest import summary_values

    (stage,) = os.listdir(tmp_path / "segmenters")
    return summary_values(str(tmp_path / "segmenters" / stage / "logs"))


def test_settings_that_do_not_fit_together_are_refused(tmp_path):
    make = lambda **kw: image2image.Image2ImageConfig(out_path=str(tmp_path), **kw)
    with pytest.raises(ValueError, match="label_encoding=one_hot"):
        make(recon_loss="ce")
    with pytest.raises(ValueError, match="direction=a_to_b"):
        make(recon_loss="ce", label_encoding="one_hot", direction="b_to_a")
    with pytest.raises(ValueError, match="CycleGAN|cyclegan"):
        make(variant="cyclegan", recon_loss="l1")
    with pytest.raises(ValueError, match="direction must be one of"):
        make(direction="up")


def test_own_folders_translate_label_maps_to_photos(tmp_path, user_folders):
    config = _folder_config(tmp_path, user_folders, variant="factorgan", direction="b_to_a",
                            recon_loss="l1", eval_samples=2, noise_stages=1, noise_map_channels=2,
                            ls_runs=1, ls_epochs=1, experiment_name="to_photos")
    data = image2image.load_data(config)
    # The label maps (3-class palette) are the input now, every folder's rows swapped.
    assert data.partition.sizes == (3, 3) and data.label_part == 0
    assert data.observations.num_unpaired(0) == 9 and data.observations.num_unpaired(1) == 7
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    assert loop.run().step == 2
    # The factorgan's marginal discriminator judges photos now (3 channels).
    assert list(loop.gan_step.models.discriminators) == ["marginal_1", "p_dependency", "q_dependency"]


def test_from_flags_a_factorgan_with_proxy_mr2_trains_exports_and_serves_samples(tmp_path, segmentation_dir):
    """The user's route, one command after another: train from flags (the predictor
    stage included), export the run, serve the export folder, ask for samples over REST."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT
    from tf_factorgan.serving import client, config
    from tf_factorgan.serving.dev_server import DevServer
    from tf_factorgan.serving.repository import ModelRepository

    def run(*args):
        result = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]

    out, exports = tmp_path / "runs", tmp_path / "exports"
    run("trainers.image2image", "--dataset=cityscapes", f"--dataset_dir={segmentation_dir}",
        f"--out_path={out}", "--experiment_name=fg_proxy", "--variant=factorgan", "--recon_loss=proxy_mr2",
        "--label_encoding=one_hot", "--discrete_fakes", "--mirror", "--noise_stages=2",
        "--noise_map_channels=2", "--load_size=16", "--ngf=4", "--disc_channels=4", "--batch_size=4",
        "--steps=2", "--steps_per_call=1", "--num_joint_samples=5", "--moment_samples=2",
        "--moment_inputs=2", "--predictor_steps=2", "--predictor_eval_every=1", "--eval_samples=2")
    run_dir = out / "image2image" / "fg_proxy"
    with open(run_dir / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["step"] == 2 and 0.0 <= metrics["vote/pixel_accuracy"] <= 1.0
    assert len(os.listdir(out / "predictors")) == 1
    run("export.export", f"--run_dir={run_dir}", "--kind=segmentation", f"--export_base={exports}",
        "--model_name=cityscapes")

    repository = ModelRepository(config.parse(str(exports / "models.config")))
    server = DevServer(repository, rest_port=0, grpc_port=0).start()
    try:
        images = np.random.default_rng(0).random((1, 20, 24, 3)).astype(np.float32)
        got = client.RestClient(f"localhost:{server.rest_port}").predict(
            "cityscapes", {"images": images, "seed": np.array([3], np.int64),
                           "num_samples": np.array(4, np.int32)}, "predict_samples")
    finally:
        server.stop()
    assert got["sample_class_ids"].shape == (1, 4, 20, 24)
    assert got["mean"].shape == (1, 20, 24, 19)  # class probabilities over the 19 classes
    np.testing.assert_allclose(got["mean"].sum(-1), 1.0, atol=1e-4)
    # The vote is a class some sample chose, and its agreement is the fraction that chose it.
    chose = got["sample_class_ids"] == got["class_ids"][:, None]
    assert chose.any(axis=1).all()
    np.testing.assert_allclose(got["agreement"], chose.mean(axis=1), atol=1e-6)


def test_the_segmentation_flag_file_makes_settings_that_train_on_label_maps(tmp_path, segmentation_dir):
    """trainers/flagfiles/segmentation.cfg, the recipe docs/images.md recommends, is a
    valid set of settings: class probabilities out, cross-entropy on the pairs."""
    import dataclasses

    from tests.conftest import REPO_ROOT

    types = {f.name: f.type for f in dataclasses.fields(image2image.Image2ImageConfig)}
    values = {}
    with open(os.path.join(REPO_ROOT, "trainers", "flagfiles", "segmentation.cfg")) as f:
        for line in f:
            if line.startswith("--"):
                name, _, value = line.strip()[2:].partition("=")
                kind = {"int": int, "float": float}.get(types[name], types[name])
                values[name] = True if not value else kind(value) if kind in (int, float) else value
    assert values == dict(variant="gan", label_encoding="one_hot", discrete_fakes=True,
                          recon_loss="ce", mirror=True, noise_stages=3, lr=1e-3)
    config = _config(tmp_path, segmentation_dir, **values)
    assert config.outputs_class_probabilities and config.gan_config().discrete_fakes
