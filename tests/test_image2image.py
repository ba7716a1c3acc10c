import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.experiments import common, image2image, image_data

TINY = dict(load_size=16, ngf=4, disc_channels=4, batch_size=4, steps=2, steps_per_call=1,
            log_every=1, image_every=2, checkpoint_every=2, num_joint_samples=5)


def _config(tmp_path, dataset_dir, **kw):
    values = dict(TINY, dataset="cityscapes", dataset_dir=dataset_dir, out_path=str(tmp_path),
                  experiment_name=kw.get("model", "factorgan"))
    values.update(kw)
    return image2image.Image2ImageConfig(**values)


@pytest.mark.parametrize("model, discriminators", [
    ("factorgan", ["marginal_1", "p_dependency", "q_dependency"]),
    ("gan", ["joint"]),
    ("cyclegan", ["a", "b"]),
])
def test_every_model_trains_and_writes_segmentation_metrics(tmp_path, segmentation_dir, model,
                                                            discriminators):
    config = _config(tmp_path, segmentation_dir, model=model)
    data = image_data.load_data(config)
    metrics = common.run_experiment(image2image.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["step"] == 2 and metrics["model"] == model
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and 0.0 < metrics["mse"] < 1.0
    assert metrics["num_images"] == 6
    run_dir = config.run_dir
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["mse"] == pytest.approx(metrics["mse"])
    assert os.path.getsize(os.path.join(run_dir, "predictions.png")) > 0
    assert os.listdir(os.path.join(run_dir, "logs"))
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


def test_image_grid_shows_input_prediction_and_truth(tmp_path, segmentation_dir):
    config = _config(tmp_path, segmentation_dir)
    data = image_data.load_data(config)
    loop = image2image.build_trainer(config, data, tf.distribute.get_strategy())
    grid = loop.image_summary_fn()
    # 6 validation images in rows of 2 triplets (input | prediction | truth), 16 pixels each.
    assert grid.shape == (3 * 16, 2 * 3 * 16, 3)
    np.testing.assert_allclose(grid[:16, 32:48], data.val.b[0] / 255, atol=1e-6)


def test_bad_settings_name_their_flag():
    with pytest.raises(ValueError, match="--model"):
        image2image.Image2ImageConfig(model="pix2pix")
    with pytest.raises(ValueError, match="--cycle_weight"):
        image2image.Image2ImageConfig(cycle_weight=-1)


def test_u_net_with_batch_norm_trains_on_two_replicas(tmp_path, segmentation_dir, two_replicas):
    config = _config(tmp_path, segmentation_dir, steps=1)
    data = image_data.load_data(config)
    loop = image2image.build_trainer(config, data, two_replicas)
    result = loop.run()
    assert result.step == 1
    means = [v for v in loop.gan_step.models.generator.non_trainable_weights if "moving_mean" in v.path]
    assert means and any(np.any(m.numpy() != 0) for m in means)
