import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tf_factorgan.experiments import common, image_data, image_pairs
from tf_factorgan.factorisation import Variant

TINY = dict(load_size=16, ngf=4, disc_channels=4, batch_size=4, steps=2, steps_per_call=1,
            log_every=1, image_every=2, checkpoint_every=2, ls_runs=2, ls_epochs=1,
            num_joint_samples=5)


def _config(tmp_path, dataset_dir, **kw):
    values = dict(TINY, dataset="edges2shoes", dataset_dir=dataset_dir, out_path=str(tmp_path))
    values.update(kw)
    return image_pairs.ImagePairsConfig(**values)


def test_data_follow_the_dataset_and_paired_subset(tmp_path, edges_dir):
    config = _config(tmp_path, edges_dir)
    data = image_data.load_data(config)
    assert data.partition.sizes == (1, 3)  # edge maps become one grey channel
    assert data.sample_shape == (16, 16, 4) and len(data.val) == 6
    assert data.observations.num_paired == 5 and data.observations.num_unpaired(1) == 7
    assert data.summary()["num_unpaired_b"] == 7 and not data.ignored
    # The GAN trains on the pairs only: it reports the rest as ignored, not as unpaired.
    gan = image_data.load_data(_config(tmp_path, edges_dir, variant="gan"))
    assert gan.summary() == {"num_paired": 5, "ignored": ["7 training images after the first num_joint_samples"]}
    with pytest.raises(ValueError, match="num_joint_samples=13 exceeds the 12 training images"):
        image_data.load_data(_config(tmp_path, edges_dir, num_joint_samples=13))


@pytest.mark.parametrize("factorgan, discriminators", [
    (True, ["marginal_0", "marginal_1", "p_dependency", "q_dependency"]), (False, ["joint"])])
def test_training_writes_checkpoint_samples_and_ls_metric(tmp_path, edges_dir, factorgan, discriminators):
    config = _config(tmp_path, edges_dir, variant="factorgan" if factorgan else "gan")
    data = image_data.load_data(config)
    metrics = common.run_experiment(image_pairs.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["step"] == 2
    assert metrics["variant"] == (Variant.FACTORGAN if factorgan else Variant.GAN).value
    assert 0.0 <= metrics["ls_mean"] < 1.0 and len(metrics["ls_runs"]) == 2
    run_dir = config.run_dir
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert json.load(f)["ls_mean"] == pytest.approx(metrics["ls_mean"])
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")).endswith("ckpt-2")
    for name in ("samples.png", "generator.weights.h5"):
        assert os.path.getsize(os.path.join(run_dir, name)) > 0
    loop = image_pairs.build_trainer(config, data, tf.distribute.get_strategy())
    assert list(loop.gan_step.models.discriminators) == discriminators
    assert loop.restore() == 2


def test_big_gan_discriminator_is_wider(tmp_path, edges_dir):
    data = image_data.load_data(_config(tmp_path, edges_dir))

    def weights(**kw):
        loop = image_pairs.build_trainer(_config(tmp_path, edges_dir, variant="gan", **kw), data,
                                         tf.distribute.get_strategy())
        return sum(int(np.prod(w.shape)) for w in loop.gan_step.models.discriminators["joint"].weights)

    assert weights(disc_channels=8) > 1.9 * weights(disc_channels=4)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "trainers.image_pairs", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_names_bad_flags_and_folders(tmp_path):
    result = _cli("--load_size=48", f"--out_path={tmp_path}")
    assert result.returncode != 0 and "--load_size" in result.stderr
    result = _cli(f"--dataset_dir={tmp_path}/nowhere", f"--out_path={tmp_path}")
    assert result.returncode == 1
    assert f"{tmp_path}/nowhere" in result.stderr and "val" in result.stderr


def test_own_aligned_folders_with_unpaired_label_maps_train_pairs(tmp_path):
    """--paired_dir/--val_dir in the aligned A|B form (24 x 64 files, 24 x 32 halves),
    cropped to 16 x 16, with unpaired label maps of a palette for B."""
    from PIL import Image

    from tests.synthetic_pix2pix import write_image_folders

    folders = write_image_folders(str(tmp_path / "own"), {"paired": 5, "val": 6, "unpaired_b": 4},
                                  size=(24, 32))
    for kind in ("paired", "val"):
        os.makedirs(tmp_path / kind)
        a_dir, b_dir = folders[kind]
        for name in sorted(os.listdir(a_dir)):
            a = np.asarray(Image.open(os.path.join(a_dir, name)))
            b = np.asarray(Image.open(os.path.join(b_dir, name.replace(".jpg", ".png"))))
            Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / kind / name.replace(".jpg", ".png"))
    config = _config(tmp_path, "", dataset="folders", num_joint_samples=None, paired_dir=str(tmp_path / "paired"),
                     val_dir=str(tmp_path / "val"), unpaired_b_dir=folders["unpaired_b"][0],
                     palette=str(tmp_path / "own" / "palette.csv"), resize="crop")
    data = image_pairs.load_data(config)
    assert data.sample_shape == (16, 16, 6) and len(data.val) == 6
    assert data.observations.summary()["num_unpaired_b"] == 4
    # The LS metric's minimum is checked before training.
    with pytest.raises(ValueError, match=r"at least 5 validation pairs, the validation set \(val_dir=.*\) holds 4"):
        image_pairs.load_data(dataclasses.replace(config, max_val_images=4))
    metrics = common.run_experiment(image_pairs.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["step"] == 2 and metrics["num_paired"] == 5 and metrics["num_unpaired_a"] == 0
    with pytest.raises(ValueError, match="one power-of-two side"):
        _config(tmp_path, "", dataset="folders", num_joint_samples=None, paired_dir="p", val_dir="v",
                load_size="16,32")
