"""SavedModel export: reloaded signatures match the Keras models, names/dtypes/shapes
are as documented, versions count up and failed exports leave nothing behind."""

import dataclasses
import io
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import SERVING_LOAD_SIZE as LOAD_SIZE
from tests.conftest import SERVING_NZ as NZ
from tests.conftest import tiny_separator, tiny_unet
from tf_factorgan.audio import separation, spectrogram
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.data import palette
from tf_factorgan.eval import segmentation
from tf_factorgan.export import savedmodel
from tf_factorgan.models.mlp import MLPGenerator


@pytest.fixture(scope="module")
def segmentation_export(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("exports"))
    generator = tiny_unet()
    module = savedmodel.segmentation_module(generator, LOAD_SIZE, NZ, seed=3)
    path = savedmodel.publish(module, base, "seg", module.check)
    return generator, module, path, tf.saved_model.load(path)


def _spec(signature):
    args, kwargs = signature.structured_input_signature
    assert not args
    return {
        name: (spec.dtype, None if spec.shape.rank is None else spec.shape.as_list())
        for name, spec in kwargs.items()
    }


def _outputs(signature):
    return {name: (spec.dtype, spec.shape.as_list()) for name, spec in signature.structured_outputs.items()}


def test_segmentation_signatures(segmentation_export):
    _, _, path, loaded = segmentation_export
    assert os.path.basename(path) == "1"
    assert set(loaded.signatures) == {"serving_default", "predict_uint8", "predict_seeded", "predict_bytes",
                                      "predict_samples"}
    outputs = {
        "label_rgb": (tf.float32, [None, None, None, 3]), "class_ids": (tf.int32, [None, None, None]),
    }
    images = [None, None, None, 3]
    assert _spec(loaded.signatures["serving_default"]) == {"images": (tf.float32, images)}
    assert _spec(loaded.signatures["predict_uint8"]) == {"images": (tf.uint8, images)}
    assert _spec(loaded.signatures["predict_seeded"]) == {
        "images": (tf.float32, images), "seed": (tf.int64, [None]),
    }
    for name in ("serving_default", "predict_uint8", "predict_seeded"):
        assert _outputs(loaded.signatures[name]) == outputs
    assert _spec(loaded.signatures["predict_bytes"]) == {"images": (tf.string, [None])}
    assert _outputs(loaded.signatures["predict_bytes"]) == {"label_png_bytes": (tf.string, [None])}
    assert _spec(loaded.signatures["predict_samples"]) == {
        "images": (tf.float32, images), "seed": (tf.int64, [None]), "num_samples": (tf.int32, []),
    }
    assert _outputs(loaded.signatures["predict_samples"]) == {
        "sample_class_ids": (tf.int32, [None, None, None, None]), "class_ids": (tf.int32, [None, None, None]),
        "label_rgb": (tf.float32, [None, None, None, 3]), "agreement": (tf.float32, [None, None, None]),
        "mean": (tf.float32, [None, None, None, 3]), "variance": (tf.float32, [None, None, None, 3]),
    }


def test_segmentation_samples_their_vote_and_spread(segmentation_export):
    generator, _, _, loaded = segmentation_export
    as_float = np.random.default_rng(3).random((2, 20, 30, 3)).astype(np.float32)
    seeds = tf.constant([5, 6], tf.int64)
    out = loaded.signatures["predict_samples"](images=as_float, seed=seeds, num_samples=tf.constant(4))
    seeded = loaded.signatures["predict_seeded"](images=as_float, seed=seeds)
    samples = out["sample_class_ids"].numpy()
    assert samples.shape == (2, 4, 20, 30)
    # Sample 0 of each image is what predict_seeded gives it; the others differ.
    np.testing.assert_array_equal(samples[:, 0], seeded["class_ids"].numpy())
    assert np.any(samples[:, 1] != samples[:, 0])
    # Sample s of image n by hand: noise from seed [seed_n, s].
    for n, seed in enumerate((5, 6)):
        noise = tf.random.stateless_uniform([1, NZ], seed=[seed, 2], minval=-1.0, maxval=1.0)
        small = tf.clip_by_value(tf.image.resize(as_float[n:n + 1], [LOAD_SIZE, LOAD_SIZE], "bicubic",
                                                 antialias=True), 0, 1)
        rgb = np.clip(tf.image.resize(generator(small, noise), (20, 30), antialias=True).numpy(), 0, 1)
        ids = palette.cityscapes().evaluated_ids()[segmentation.train_ids(rgb).numpy()[0]]
        assert np.mean(ids != samples[n, 2]) < 1e-3
    # The vote is each pixel's most frequent sample class, agreement its share.
    counts = (samples[..., None] == np.unique(samples)).sum(axis=1)
    np.testing.assert_allclose(out["agreement"].numpy(), counts.max(axis=-1) / 4)
    voted = np.take_along_axis(samples, np.argmax(samples == out["class_ids"].numpy()[:, None], axis=1)[:, None],
                               axis=1)[:, 0]
    np.testing.assert_array_equal(voted, out["class_ids"].numpy())
    assert out["mean"].shape == (2, 20, 30, 3) and np.all(out["variance"].numpy() >= 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be <= 32"):
        loaded.signatures["predict_samples"](images=as_float, seed=seeds, num_samples=tf.constant(33))


def test_one_hot_segmentation_serves_class_probabilities(tmp_path):
    from tf_factorgan.models.unet import UNet

    cityscapes = palette.cityscapes()
    channels = len(cityscapes.evaluated) + 1  # + void
    tf.keras.utils.set_random_seed(0)
    generator = UNet(channels, ngf=2, noise_stages=2, noise_map_channels=3, output_activation="softmax")
    generator(tf.zeros([1, LOAD_SIZE, LOAD_SIZE, 3]), tf.zeros([1, NZ]))
    module = savedmodel.segmentation_module(generator, LOAD_SIZE, NZ, seed=3, encoding="one_hot")
    loaded = tf.saved_model.load(savedmodel.publish(module, str(tmp_path), "seg", module.check))
    as_float = np.random.default_rng(4).random((2, 16, 16, 3)).astype(np.float32)
    out = loaded.signatures["serving_default"](images=as_float)
    probabilities = out["class_probabilities"].numpy()
    assert probabilities.shape == (2, 16, 16, channels - 1)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    # The class is the most probable evaluated class; label_rgb its exact colour.
    train_ids = probabilities.argmax(axis=-1)
    np.testing.assert_array_equal(out["class_ids"].numpy(), cityscapes.evaluated_ids()[train_ids])
    np.testing.assert_allclose(out["label_rgb"].numpy(), cityscapes.evaluated_colours()[train_ids], atol=1e-6)
    samples = loaded.signatures["predict_samples"](images=as_float, seed=tf.constant([1, 2], tf.int64),
                                                   num_samples=tf.constant(3))
    # Mean and variance of the evaluated classes' probabilities.
    assert samples["mean"].shape == (2, 16, 16, channels - 1)
    np.testing.assert_allclose(samples["mean"].numpy().sum(axis=-1), 1.0, atol=1e-5)


def _by_hand(generator, as_float, seed):
    """The Keras model by hand: resize in (bicubic, as training's photos), generator
    with seed noise, resize out."""
    noise = tf.random.stateless_uniform([1, NZ], seed=[seed, 0], minval=-1.0, maxval=1.0)
    small = tf.clip_by_value(tf.image.resize(as_float, [LOAD_SIZE, LOAD_SIZE], "bicubic", antialias=True), 0, 1)
    expected = tf.image.resize(generator(small, noise), as_float.shape[1:3], antialias=True)
    return np.clip(expected.numpy(), 0, 1)


def test_segmentation_matches_keras(segmentation_export):
    generator, _, _, loaded = segmentation_export
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    as_float = images.astype(np.float32) / 255.0
    out = loaded.signatures["serving_default"](images=tf.constant(as_float))
    assert out["label_rgb"].shape == (2, 20, 30, 3) and out["class_ids"].shape == (2, 20, 30)
    ids = out["class_ids"].numpy()
    rgb = out["label_rgb"].numpy()
    # Cityscapes label ids (road 7, ..., bicycle 33) of the 19 evaluated classes, from
    # each pixel's nearest evaluated colour.
    cityscapes = palette.cityscapes()
    assert set(np.unique(ids)) <= set(cityscapes.evaluated_ids().tolist())
    np.testing.assert_array_equal(ids, cityscapes.evaluated_ids()[segmentation.train_ids(rgb).numpy()])
    # Every image gets the export seed's noise (3), whatever its place in the batch.
    for i in range(2):
        np.testing.assert_allclose(rgb[i : i + 1], _by_hand(generator, as_float[i : i + 1], 3), atol=1e-4)

    uint8 = loaded.signatures["predict_uint8"](images=tf.constant(images))
    np.testing.assert_allclose(uint8["label_rgb"].numpy(), rgb, atol=1e-5)
    np.testing.assert_array_equal(uint8["class_ids"].numpy(), ids)

    seeded = loaded.signatures["predict_seeded"](images=as_float, seed=tf.constant([5, 6], tf.int64))
    for i, seed in enumerate((5, 6)):
        np.testing.assert_allclose(
            seeded["label_rgb"].numpy()[i : i + 1], _by_hand(generator, as_float[i : i + 1], seed), atol=1e-4
        )
    assert np.abs(seeded["label_rgb"].numpy() - rgb).max() > 1e-3  # the seed matters


def test_segmentation_predict_bytes_png_round_trip(segmentation_export):
    _, module, _, loaded = segmentation_export
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    out = loaded.signatures["predict_bytes"](images=tf.constant([buffer.getvalue()]))
    assert out["label_png_bytes"].shape == (1,)
    label = np.asarray(Image.open(io.BytesIO(out["label_png_bytes"].numpy()[0])))
    assert label.shape == (20, 30, 3) and label.dtype == np.uint8
    # Every pixel in the exact palette colour of the class the in-process model gives it.
    expected = module.segment(image[None].astype(np.float32) / 255.0)["label_rgb"].numpy()[0]
    colours = np.round(module.palette.evaluated_colours() * 255).astype(np.uint8)
    np.testing.assert_array_equal(label, colours[segmentation.train_ids(expected).numpy()])


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


def test_sampler_of_named_parts_serves_user_units(tmp_path):
    """Vector data (the arrays experiment): standardised generator outputs come back
    as samples * std + mean, and each part as its own output; values of 1e6 pass the
    export's check (relative to their size)."""
    tf.keras.utils.set_random_seed(0)
    generator = MLPGenerator(5, hidden_units=8, output_activation="linear")
    generator(tf.zeros([1, NZ]))
    mean, std = np.array([1e6, -2e6, 0.0, 3.0, 5.0]), np.array([1e3, 2.0, 1.0, 0.5, 7.0])
    module = savedmodel.sampler_module(generator, NZ, (5,), mean=mean, std=std,
                                       parts=[("a", 2), ("b", 3)])
    path = savedmodel.publish(module, str(tmp_path), "arrays", module.check)
    out = tf.saved_model.load(path).signatures["serving_default"](
        num_samples=tf.constant(4), seed=tf.constant(2, tf.int64))
    assert set(out) == {"samples", "a", "b"}
    noise = tf.random.stateless_uniform([4, NZ], seed=[2, 0], minval=-1.0, maxval=1.0)
    expected = generator(noise).numpy() * std + mean
    np.testing.assert_allclose(out["samples"].numpy(), expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(out["a"].numpy(), out["samples"].numpy()[:, :2])
    np.testing.assert_array_equal(out["b"].numpy(), out["samples"].numpy()[:, 2:])
    for kwargs, words in ((dict(mean=mean), "needs both mean and std"),
                          (dict(mean=mean[:2], std=std[:2]), "one value per feature"),
                          (dict(parts=[("a", 2), ("b", 2)]), "adding up to the 5 features"),
                          (dict(parts=[("samples", 2), ("b", 3)]), "must not be 'samples'")):
        with pytest.raises(ValueError, match=words):
            savedmodel.sampler_module(generator, NZ, (5,), **kwargs)


@pytest.fixture(scope="module")
def separation_export(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("exports"))
    module = savedmodel.separation_module(tiny_separator(), NZ, seed=1, settings=SpectrogramSettings())
    path = savedmodel.publish(module, base, "sep", module.check)
    return module, tf.saved_model.load(path)


@pytest.mark.parametrize("channels", [1, 2])
def test_separation_at_the_model_rate_matches_the_cli_path(separation_export, channels):
    """At 22050 Hz nothing is resampled: the graph equals `separation.separate` (the
    NumPy path of trainers.separate) on a song of three windows (end-aligned last)."""
    module, loaded = separation_export
    signature = loaded.signatures["serving_default"]
    assert _spec(signature) == {"waveform": (tf.float32, None), "sample_rate": (tf.int32, [])}
    waveform = 0.1 * np.random.default_rng(channels).standard_normal((40000, channels))
    waveform = waveform.astype(np.float32)
    predict = lambda windows: module.predict_mask(tf.constant(windows)).numpy()  # noqa: E731
    expected = separation.separate(waveform, 22050, predict)
    out = signature(waveform=tf.constant(waveform[None]), sample_rate=tf.constant(22050))
    assert set(out) == {"vocals", "accompaniment"}
    for name in ("vocals", "accompaniment"):
        assert out[name].shape == (1, 40000, channels) and out[name].dtype == tf.float32
        np.testing.assert_allclose(out[name].numpy()[0], expected[name], atol=1e-4)
    # The masks split the mixture: the sources add up to its STFT round trip.
    settings = SpectrogramSettings()
    round_trip = spectrogram.istft(spectrogram.stft(waveform.T, settings), settings, 40000).numpy().T
    total = (out["vocals"] + out["accompaniment"]).numpy()[0]
    np.testing.assert_allclose(total, round_trip, atol=1e-4)


def test_separation_samples_and_their_spread(separation_export):
    module, loaded = separation_export
    signature = loaded.signatures["predict_samples"]
    assert _spec(signature) == {"waveform": (tf.float32, None), "sample_rate": (tf.int32, []),
                                "num_samples": (tf.int32, [])}
    waveform = (0.1 * np.random.default_rng(7).standard_normal((2, 30000, 2))).astype(np.float32)
    out = signature(waveform=waveform, sample_rate=tf.constant(22050), num_samples=tf.constant(3))
    single = loaded.signatures["serving_default"](waveform=waveform, sample_rate=tf.constant(22050))
    for name in ("vocals", "accompaniment"):
        samples = out[f"{name}_samples"].numpy()
        assert samples.shape == (2, 3, 30000, 2)
        # Sample 0 is serving_default's separation; the noise makes the others differ.
        np.testing.assert_allclose(samples[:, 0], single[name].numpy(), atol=1e-4)
        assert np.abs(samples[:, 1] - samples[:, 0]).max() > 1e-6
        np.testing.assert_allclose(out[f"{name}_mean"].numpy(), samples.mean(axis=1), atol=1e-5)
        np.testing.assert_allclose(out[f"{name}_variance"].numpy(), samples.var(axis=1), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_samples must be >= 1"):
        signature(waveform=waveform, sample_rate=tf.constant(22050), num_samples=tf.constant(0))


def test_separation_resamples_any_rate(separation_export):
    """44.1 kHz stereo and 16 kHz mono come back at their own rate and shape; the
    sources add up to the mixture (tones below both Nyquist limits)."""
    _, loaded = separation_export
    signature = loaded.signatures["serving_default"]
    for rate, shape in ((44100, (2, 30000, 2)), (16000, (1, 12000))):
        t = np.arange(shape[1]) / rate
        tone = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 2500 * t)
        waveform = np.broadcast_to(tone.reshape(1, -1, *[1] * (len(shape) - 2)), shape).astype(np.float32)
        out = signature(waveform=tf.constant(waveform), sample_rate=tf.constant(rate))
        total = (out["vocals"] + out["accompaniment"]).numpy()
        assert total.shape == shape
        inner = slice(rate // 20, -rate // 20)  # past the STFT's first-hop fade
        error = np.abs(total - waveform)[:, inner].max()
        assert error < 2e-3, (rate, error)


def test_separation_rejects_bad_inputs(separation_export):
    _, loaded = separation_export
    signature = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample_rate must be positive"):
        signature(waveform=tf.zeros([1, 1000, 1]), sample_rate=tf.constant(0))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="waveform must be"):
        signature(waveform=tf.zeros([1000]), sample_rate=tf.constant(22050))


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

    from tf_factorgan.export import export

    run_dir = tmp_path / "image2image" / "run"
    run_dir.mkdir(parents=True)
    config = {"dataset": "cityscapes", "load_size": LOAD_SIZE, "ngf": 2, "model": "factorgan",
              "nz": NZ, "seed": 3}
    (run_dir / "metrics.json").write_text(json.dumps({"config": config}))
    generator = tiny_unet()
    generator.save_weights(str(run_dir / "generator.weights.h5"))
    module = export.build_module(str(run_dir), "segmentation")
    assert module.palette == palette.cityscapes()  # an old run: no palette in a spec
    path = savedmodel.publish(module, str(tmp_path / "exports"), "seg", module.check)
    assert path == str(tmp_path / "exports" / "seg" / "1")

    with pytest.raises(ValueError, match="kind=separation"):
        export.build_module(str(run_dir), "separation")
    os.remove(run_dir / "generator.weights.h5")
    with pytest.raises(FileNotFoundError, match="generator.weights.h5"):
        export.build_module(str(run_dir), "segmentation")


def _write_run(run_dir, generator, **files):
    import json

    run_dir.mkdir(parents=True)
    generator.save_weights(str(run_dir / "generator.weights.h5"))
    for name, value in files.items():
        (run_dir / name).write_text(json.dumps(value))


# Two evaluated greys either side of the untrained tiny U-Net's outputs (about 0.5
# grey, green 0.41..0.50), so both occur, and an ignored class between them.
USER_PALETTE = palette.Palette((
    palette.LabelClass(12, "dark", (128, 118, 128), False),
    palette.LabelClass(3, "void", (0, 0, 0), True),
    palette.LabelClass(20, "light", (128, 126, 128), False),
))


def test_a_segmentation_run_serves_the_ids_of_its_spec_palette(tmp_path):
    """generator.json's data.palette decides class_ids: its ids, not 0..K-1."""
    from tf_factorgan.export import export
    from tf_factorgan.models import specs

    run_dir = tmp_path / "image2image" / "run"
    spec = specs.GeneratorSpec(
        "unet", {"output_channels": 3, "ngf": 2}, [[LOAD_SIZE, LOAD_SIZE, 3], [NZ]], NZ, 3, "segmentation",
        {"load_size": LOAD_SIZE, "input_channels": 3, "palette": USER_PALETTE.to_json()},
    )
    _write_run(run_dir, tiny_unet())
    specs.write(str(run_dir), spec)
    module = export.build_module(str(run_dir), "segmentation")
    assert module.palette == USER_PALETTE
    path = savedmodel.publish(module, str(tmp_path / "exports"), "seg", module.check)
    loaded = tf.saved_model.load(path)
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    out = loaded.signatures["predict_uint8"](images=tf.constant(images))
    ids, rgb = out["class_ids"].numpy(), out["label_rgb"].numpy()
    assert ids.dtype == np.int32 and set(np.unique(ids)) == {12, 20}
    # Each pixel's nearest evaluated colour: dark below green (118 + 126) / 2 / 255.
    nearest = segmentation.nearest_colour(rgb, USER_PALETTE.evaluated_colours()).numpy()
    np.testing.assert_array_equal(ids, np.array([12, 20], np.int32)[nearest])
    np.testing.assert_array_equal(ids == 12, rgb[..., 1] < 122 / 255)

    # A damaged palette is named with the spec file.
    bad = dict(spec.data, palette=[{"id": 1, "name": "sea", "colour": [0, 0, 255]}])
    specs.write(str(run_dir), dataclasses.replace(spec, data=bad))
    with pytest.raises(ValueError, match=re.escape(f"{run_dir / 'generator.json'} data.palette: classes[0]")):
        export.build_module(str(run_dir), "segmentation")


def test_cli_exports_sampler_runs(tmp_path):
    """image_pairs and paired_mnist runs become sampler exports with their shapes."""
    from tf_factorgan.export import export
    from tf_factorgan.data import mnist
    from tf_factorgan.models.conv import ConvGenerator

    tf.keras.utils.set_random_seed(0)
    conv = ConvGenerator(16, 4, ngf=2)
    conv(tf.zeros([1, NZ]))
    config = {"dataset": "edges2shoes", "load_size": 16, "ngf": 2, "nz": NZ, "seed": 1}
    _write_run(tmp_path / "image_pairs" / "run", conv, **{"metrics.json": {"config": config}})
    module = export.build_module(str(tmp_path / "image_pairs" / "run"), "samples")
    assert module.sample(2, 0)["samples"].shape == (2, 16, 16, 4)

    mlp = MLPGenerator(mnist.PAIR_SIZE)
    mlp(tf.zeros([1, NZ]))
    _write_run(tmp_path / "paired_mnist" / "run", mlp, **{"metrics.json": {"config": {"nz": NZ, "seed": 2}}})
    module = export.build_module(str(tmp_path / "paired_mnist" / "run"), "samples")
    out = module.sample(3, 0)
    assert out["samples"].shape == (3, mnist.PAIR_SIZE) and out["images"].shape == (3, 56, 28, 1)

    with pytest.raises(ValueError, match="config lacks 'nz'"):
        _write_run(tmp_path / "paired_mnist" / "bad", mlp, **{"metrics.json": {"config": {"seed": 2}}})
        export.build_module(str(tmp_path / "paired_mnist" / "bad"), "samples")


def test_export_command_publishes_a_separation_run_and_its_config(tmp_path):
    """`python -m export.export` on an audio run: a version folder, then models.config."""
    import subprocess
    import sys

    from tf_factorgan.serving import config as serving_config
    from tests.conftest import REPO_ROOT
    from tf_factorgan.models import legacy_specs

    settings = {"spectrogram": {"sample_rate": 22050, "n_fft": 512, "hop": 256}, "snippet_frames": 128}
    _write_run(tmp_path / "audio_separation" / "run", tiny_separator(),
               **{legacy_specs.SEPARATOR_FILE: {"ngf": 2, "nz": NZ, "seed": 4, **settings}})
    command = [
        sys.executable, "-m", "export.export", f"--run_dir={tmp_path / 'audio_separation' / 'run'}",
        "--kind=separation", f"--export_base={tmp_path / 'exports'}",
    ]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        f"exported: {tmp_path / 'exports' / 'separation' / '1'}",
        f"serving config: {tmp_path / 'exports' / 'models.config'}",
    ]
    parsed = serving_config.parse(str(tmp_path / "exports" / "models.config"))
    assert [m.name for m in parsed.model_config_list.config] == ["separation"]

    result = subprocess.run(
        command[:4] + ["--kind=segmentation"] + command[5:], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0 and "--kind=segmentation exports runs of" in result.stderr


@pytest.mark.parametrize("content", [b'{"config": {"nz": 5', b"\xff\xfe\x00\x81", b"[1, 2]"],
                         ids=["truncated", "binary", "not_an_object"])
def test_a_damaged_metrics_json_is_named(tmp_path, content):
    from tf_factorgan.export import export

    run_dir = tmp_path / "paired_mnist" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(run_dir / "metrics.json"))):
        export.build_module(str(run_dir), "samples")


def test_an_export_removes_what_killed_exports_left_unless_one_is_under_way(tmp_path):
    from tf_factorgan.export import export
    from tf_factorgan import files

    tf.keras.utils.set_random_seed(0)
    generator = MLPGenerator(6, hidden_units=4)
    generator(tf.zeros([1, NZ]))
    module = savedmodel.sampler_module(generator, NZ, (6,))
    model_dir = tmp_path / "m"
    (model_dir / ".tmp-5ee1d0e1" / "variables").mkdir(parents=True)  # a killed export's
    # While another export writes there, its temporary may be the one lying there.
    with files.writing_into(str(model_dir)):
        path, removed = export.publish(module, str(tmp_path), "m")
    assert removed == [] and (model_dir / ".tmp-5ee1d0e1").exists()
    path, removed = export.publish(module, str(tmp_path), "m")
    assert removed == [".tmp-5ee1d0e1"] and os.path.basename(path) == "2"
    assert sorted(os.listdir(model_dir)) == ["1", "2"]
    with pytest.raises(ValueError, match="model_name must be a plain folder name"):
        export.publish(module, str(tmp_path), "../m")


class _Identity:
    """A "generator" whose label maps are its input photos: what it is given shows."""

    variables = []

    def __call__(self, images, noise, training=False):
        return images


@pytest.mark.parametrize("resize, scaled", [("stretch", (16, 32)), ("crop", (16, 48)), ("pad", (11, 32))])
def test_served_inputs_are_prepared_as_training_prepared_its_photos(tmp_path, resize, scaled):
    """A 20 x 60 photo, trained at 16 x 32: what the served generator sees is what
    `image_folders` made of the same file for training (stretch, crop or pad), and an
    identity generator gives the photo back at its own size (crop: every pixel, from
    three windows; pad: the border cut off)."""
    from tf_factorgan.data import image_folders

    photo = np.random.default_rng(4).integers(0, 256, (20, 60, 3), dtype=np.uint8)
    photo[:, :, 0] = np.linspace(0, 255, 60)[None].astype(np.uint8)  # a ramp: windows cannot hide
    path = str(tmp_path / "photo.png")
    Image.fromarray(photo).save(path)
    trained = image_folders.decode((path, None), image_folders.PartSpec(image_folders.PHOTO, (16, 32), resize))
    module = savedmodel.segmentation_module(_Identity(), (16, 32), NZ, seed=3, resize=resize)
    as_float = photo[None].astype(np.float32) / 255.0
    assert tuple(module.scaled_size(tf.constant([20, 60])).numpy()) == scaled
    served = module.prepare(tf.constant(as_float)).numpy()[0] * 255.0
    assert served.shape == trained.shape == (16, 32, 3)
    # TF's and PIL's antialiased bicubic kernels agree to a few levels in 255.
    assert np.abs(served - trained).mean() < 1.0 and np.abs(served - trained).max() < 8.0
    if resize == "pad":  # black bands above and below, as training filled them
        assert trained[:3].max() == 0 and trained[-2:].max() == 0 and served[:3].max() == served[-2:].max() == 0
    back = module.label_maps(tf.constant(as_float), tf.zeros([1, NZ])).numpy()[0] * 255.0
    assert back.shape == (20, 60, 3)
    if resize != "stretch":  # aspect kept: the round trip only blurs
        assert np.abs(back[..., 0] - photo[..., 0]).mean() < 3.0


def test_the_export_serves_with_the_resize_mode_its_run_recorded(tmp_path):
    """The spec's "resize"; a run from before specs recorded it: its run_settings.json
    (folders), else stretch."""
    import json
    from types import SimpleNamespace

    from tf_factorgan.export import export

    spec = SimpleNamespace(data={"resize": "pad"})
    assert export.run_resize(str(tmp_path), spec) == "pad"
    old = SimpleNamespace(data={})
    assert export.run_resize(str(tmp_path), old) == "stretch"
    (tmp_path / "run_settings.json").write_text(json.dumps({"settings": {"dataset": "folders", "resize": "crop"}}))
    assert export.run_resize(str(tmp_path), old) == "crop"
    (tmp_path / "run_settings.json").write_text(json.dumps({"settings": {"dataset": "cityscapes"}}))
    assert export.run_resize(str(tmp_path), old) == "stretch"


def test_a_crop_export_refuses_an_extreme_aspect_ratio_before_scaling_it():
    """1 x 2 000 pixels at a 16 x 16 training size would be 2 000 windows: refused in one
    message naming the input; 1:64 (the most windows allowed) is labelled."""
    module = savedmodel.segmentation_module(_Identity(), 16, NZ, seed=3, resize="crop")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images: an aspect ratio beyond 1:64"):
        module.label_maps(tf.zeros([1, 1, 2000, 3]), tf.zeros([1, NZ]))
    assert module.label_maps(tf.zeros([1, 2, 128, 3]), tf.zeros([1, NZ])).shape == (1, 2, 128, 3)
