"""SavedModel export: reloaded signatures match the Keras models, names/dtypes/shapes
are as documented, versions count up and failed exports leave nothing behind."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export import savedmodel
from tf_factorgan.audio import spectrogram
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.models.masking import MaskingSeparator
from tf_factorgan.models.mlp import MLPGenerator
from tf_factorgan.models.unet import UNet

NZ = 4
LOAD_SIZE = 16


def _unet():
    tf.keras.utils.set_random_seed(0)
    generator = UNet(3, ngf=2)
    generator(tf.zeros([1, LOAD_SIZE, LOAD_SIZE, 3]), tf.zeros([1, NZ]))
    return generator


def _separator():
    tf.keras.utils.set_random_seed(0)
    separator = MaskingSeparator(ngf=2)
    separator(tf.zeros([1, 256, 128, 1]), tf.zeros([1, NZ]))
    return separator


@pytest.fixture(scope="module")
def segmentation_export(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("exports"))
    generator = _unet()
    module = savedmodel.segmentation_module(generator, LOAD_SIZE, NZ, seed=3)
    path = savedmodel.publish(module, base, "seg", module.check)
    return generator, module, path, tf.saved_model.load(path)


def _spec(signature):
    args, kwargs = signature.structured_input_signature
    assert not args
    return {name: (spec.dtype, spec.shape.as_list()) for name, spec in kwargs.items()}


def _outputs(signature):
    return {name: (spec.dtype, spec.shape.as_list()) for name, spec in signature.structured_outputs.items()}


def test_segmentation_signatures(segmentation_export):
    _, _, path, loaded = segmentation_export
    assert os.path.basename(path) == "1"
    assert set(loaded.signatures) == {"serving_default", "predict_uint8", "predict_bytes"}
    default = loaded.signatures["serving_default"]
    assert _spec(default) == {
        "images": (tf.float32, [None, None, None, 3]), "seed": (tf.int64, []),
    }
    assert _outputs(default) == {
        "label_rgb": (tf.float32, [None, None, None, 3]), "class_ids": (tf.int32, [None, None, None]),
    }
    assert _spec(loaded.signatures["predict_uint8"])["images"] == (tf.uint8, [None, None, None, 3])
    assert _spec(loaded.signatures["predict_bytes"]) == {"images": (tf.string, [None])}
    assert _outputs(loaded.signatures["predict_bytes"]) == {"label_png": (tf.string, [None])}


def test_segmentation_matches_keras(segmentation_export):
    generator, _, _, loaded = segmentation_export
    images = np.random.default_rng(1).integers(0, 256, (1, 20, 30, 3), dtype=np.uint8)
    as_float = images.astype(np.float32) / 255.0
    out = loaded.signatures["serving_default"](images=tf.constant(as_float), seed=tf.constant(5, tf.int64))
    assert out["label_rgb"].shape == (1, 20, 30, 3) and out["label_rgb"].dtype == tf.float32
    assert out["class_ids"].shape == (1, 20, 30) and out["class_ids"].dtype == tf.int32
    ids = out["class_ids"].numpy()
    assert ids.min() >= 0 and ids.max() <= 18
    rgb = out["label_rgb"].numpy()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0

    # The Keras model by hand: resize in, generator with seed-5 noise, resize out.
    noise = tf.random.stateless_uniform([1, NZ], seed=[5, 0], minval=-1.0, maxval=1.0)
    small = tf.image.resize(as_float, [LOAD_SIZE, LOAD_SIZE], antialias=True)
    expected = tf.image.resize(generator(small, noise), [20, 30], antialias=True)
    np.testing.assert_allclose(rgb, np.clip(expected.numpy(), 0, 1), atol=1e-4)

    uint8 = loaded.signatures["predict_uint8"](images=tf.constant(images), seed=tf.constant(5, tf.int64))
    np.testing.assert_allclose(uint8["label_rgb"].numpy(), rgb, atol=1e-5)
    np.testing.assert_array_equal(uint8["class_ids"].numpy(), ids)


def test_segmentation_predict_bytes_png_round_trip(segmentation_export):
    _, module, _, loaded = segmentation_export
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    out = loaded.signatures["predict_bytes"](images=tf.constant([buffer.getvalue()]))
    assert out["label_png"].shape == (1,)
    label = np.asarray(Image.open(io.BytesIO(out["label_png"].numpy()[0])))
    assert label.shape == (20, 30, 3) and label.dtype == np.uint8
    expected = module.segment(image[None].astype(np.float32) / 255.0, module.seed)["label_rgb"]
    assert np.max(np.abs(label / 255.0 - expected.numpy()[0])) <= 0.5 / 255 + 1e-4


def test_sampler_export(tmp_path):
    tf.keras.utils.set_random_seed(0)
    generator = MLPGenerator(12, hidden_units=8)
    generator(tf.zeros([1, NZ]))
    to_images = lambda samples: tf.reshape(samples, [-1, 4, 3, 1])  # noqa: E731
    module = savedmodel.sampler_module(generator, NZ, (12,), to_images)
    path = savedmodel.publish(module, str(tmp_path), "mnist", module.check)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert _spec(signature) == {"num_samples": (tf.int32, []), "seed": (tf.int64, [])}
    out = signature(num_samples=tf.constant(5), seed=tf.constant(9, tf.int64))
    noise = tf.random.stateless_uniform([5, NZ], seed=[9, 0], minval=-1.0, maxval=1.0)
    np.testing.assert_allclose(out["samples"].numpy(), generator(noise).numpy(), atol=1e-5)
    assert out["images"].shape == (5, 4, 3, 1)


@pytest.fixture(scope="module")
def separation_export(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("exports"))
    module = savedmodel.separation_module(_separator(), NZ, seed=1, settings=SpectrogramSettings())
    path = savedmodel.publish(module, base, "sep", module.check)
    return module, tf.saved_model.load(path)


@pytest.mark.parametrize("channels", [1, 2])
def test_separation_shapes_and_values(separation_export, channels):
    module, loaded = separation_export
    signature = loaded.signatures["serving_default"]
    assert _spec(signature) == {
        "waveform": (tf.float32, [None, None, None]), "sample_rate": (tf.int32, []),
    }
    waveform = 0.1 * np.random.default_rng(channels).standard_normal((2, 3000, channels))
    waveform = waveform.astype(np.float32)
    out = signature(waveform=tf.constant(waveform), sample_rate=tf.constant(22050))
    assert set(out) == {"vocals", "accompaniment"}
    expected = module.separate(waveform, 22050)
    for name in ("vocals", "accompaniment"):
        assert out[name].shape == waveform.shape and out[name].dtype == tf.float32
        np.testing.assert_allclose(out[name].numpy(), expected[name].numpy(), atol=1e-4)
    # The masks split the mixture: the sources add up to its STFT round trip.
    settings = SpectrogramSettings()
    channels_first = np.transpose(waveform, [0, 2, 1])
    round_trip = spectrogram.istft(spectrogram.stft(channels_first, settings), settings, 3000)
    total = (out["vocals"] + out["accompaniment"]).numpy()
    np.testing.assert_allclose(total, np.transpose(round_trip.numpy(), [0, 2, 1]), atol=1e-4)


def test_separation_rejects_other_rates(separation_export):
    _, loaded = separation_export
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample_rate must be 22050"):
        loaded.signatures["serving_default"](
            waveform=tf.zeros([1, 1000, 1]), sample_rate=tf.constant(44100)
        )


def test_versions_count_up_and_failures_leave_nothing(tmp_path):
    base = str(tmp_path)
    assert savedmodel.next_version(base, "m") == 1
    tf.keras.utils.set_random_seed(0)
    generator = MLPGenerator(6, hidden_units=4)
    generator(tf.zeros([1, NZ]))
    module = savedmodel.sampler_module(generator, NZ, (6,))
    first = savedmodel.publish(module, base, "m", module.check)
    second = savedmodel.publish(module, base, "m", module.check)
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert savedmodel.next_version(base, "m") == 3

    def failing_check(loaded):
        raise AssertionError("mismatch")

    with pytest.raises(AssertionError, match="mismatch"):
        savedmodel.publish(module, base, "m", failing_check)
    assert sorted(os.listdir(os.path.join(base, "m"))) == ["1", "2"]

    def failing_writer(path):
        os.makedirs(path)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        savedmodel.publish(failing_writer, base, "m", module.check)
    assert sorted(os.listdir(os.path.join(base, "m"))) == ["1", "2"]


def test_check_catches_a_different_model(tmp_path):
    """A check against other weights fails, so such an export is never published."""
    tf.keras.utils.set_random_seed(0)
    generator = MLPGenerator(6, hidden_units=4)
    generator(tf.zeros([1, NZ]))
    module = savedmodel.sampler_module(generator, NZ, (6,))
    tf.keras.utils.set_random_seed(1)
    other = MLPGenerator(6, hidden_units=4)
    other(tf.zeros([1, NZ]))
    with pytest.raises(AssertionError, match="differs"):
        savedmodel.publish(module, str(tmp_path), "m", savedmodel.sampler_module(other, NZ, (6,)).check)
    assert os.listdir(os.path.join(str(tmp_path), "m")) == []


def test_cli_exports_an_image2image_run(tmp_path):
    """export.build_module rebuilds the U-Net from metrics.json + generator.weights.h5."""
    import json

    from export import export

    run_dir = tmp_path / "image2image" / "run"
    run_dir.mkdir(parents=True)
    config = {"dataset": "cityscapes", "load_size": LOAD_SIZE, "ngf": 2, "model": "factorgan",
              "nz": NZ, "seed": 3}
    (run_dir / "metrics.json").write_text(json.dumps({"config": config}))
    generator = _unet()
    generator.save_weights(str(run_dir / "generator.weights.h5"))
    module = export.build_module(str(run_dir), "segmentation")
    path = savedmodel.publish(module, str(tmp_path / "exports"), "seg", module.check)
    assert path == str(tmp_path / "exports" / "seg" / "1")

    with pytest.raises(ValueError, match="--kind=separation"):
        export.build_module(str(run_dir), "separation")
    os.remove(run_dir / "generator.weights.h5")
    with pytest.raises(FileNotFoundError, match="generator.weights.h5"):
        export.build_module(str(run_dir), "segmentation")
