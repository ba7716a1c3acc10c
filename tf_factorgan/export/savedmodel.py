"""SavedModels of trained generators in the TF Serving layout
`<export_base>/<model_name>/<version>/`, published atomically.

A version folder appears only once its SavedModel has been written, reloaded and
checked against the in-process Keras model (`publish`), so TF Serving, which polls
the model folder, never loads a half-written export.

Modules (each a tf.Module with `serving_signatures()` for `tf.saved_model.save` and a
`check(loaded)` for `publish`):

  segmentation_module  photo -> colour label map of a palette (conditional U-Net)
      serving_default(images float32 [N, H, W, 3] in [0, 1])
        -> label_rgb float32 [N, H, W, 3] in [0, 1], class_ids int32 [N, H, W]: the
           palette id of each pixel's nearest evaluated colour (Cityscapes: label ids,
           e.g. road = 7)
      predict_uint8(images uint8 [N, H, W, 3] in 0..255) -> the same outputs
      predict_seeded(images float32 [N, H, W, 3], seed int64 [N]) -> the same outputs
      predict_bytes(images string [N] encoded JPEG/PNG/BMP/GIF)
        -> label_png_bytes string [N] PNG label maps of the inputs' sizes
  sampler_module       unconditional generator (Paired MNIST MLP, image-pairs ConvGenerator,
                       arrays MLP)
      serving_default(num_samples int32 [], seed int64 []) -> samples float32 [n, ...]
        (and `images` when the module was given `to_images`; one output per part,
        named by the part, when given `parts`; in the user's units when given the
        data's mean and std)
  separation_module    mixture -> vocals and accompaniment (MaskingSeparator)
      serving_default(waveform float32 [N, samples] or [N, samples, channels] at
        sample_rate int32 [] Hz in [8000, 192000]) -> vocals, accompaniment shaped
        like waveform

Noise is stateless uniform in [-1, 1] from seed=[seed, 0] (`noise.seeded_noise`): a
request with the same seed gives the same output. Segmentation draws one noise row per
image from its seed and separation one row for every window, so results do not depend
on how a request is batched. TF Serving's REST API returns string outputs whose names
end in `_bytes` base64-encoded, hence `label_png_bytes`.
"""

import os
import shutil
import uuid
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from tf_factorgan.audio import separation
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.config import SettingError
from tf_factorgan.data import label_encoding
from tf_factorgan.data import palette as palettes
from tf_factorgan.data.image_folders import RESIZE_MODES
from tf_factorgan.eval import segmentation
from tf_factorgan.noise import noise_per_seed, repeated_noise, samples_per_seed, seeded_noise

ATOL = 1e-4
TMP_PREFIX = ".tmp-"
# The most samples per input a predict_samples call may ask for: a request's memory
# and time grow with it.
MAX_SAMPLES = 32
# The most training-size windows a --resize=crop export labels one image with: an input
# of extreme aspect ratio (1 x 10 000 pixels, a 30 KB request) would otherwise become
# thousands of generator calls; 64 allows aspect ratios up to 1:64.
MAX_CROP_WINDOWS = 64
# Fixed check inputs: odd image sizes; audio long enough for two full separation
# windows and an end-aligned third (259 frames).
_CHECK_IMAGE_SHAPE = (2, 20, 30, 3)
_CHECK_SECONDS = 3.0


# --- Versions and publishing ------------------------------------------------------


def next_version(export_base: str, model_name: str) -> int:
    """1 + the largest integer-named folder in `<export_base>/<model_name>/` (1 if none).

    Other names (temporary `.tmp-*` folders, files) are ignored, as TF Serving does.
    """
    model_dir = os.path.join(export_base, model_name)
    if not os.path.isdir(model_dir):
        return 1
    versions = [
        int(name) for name in os.listdir(model_dir)
        if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))
    ]
    return max(versions, default=0) + 1


def publish(
    module_or_archive_writer,
    export_base: str,
    model_name: str,
    check: Callable[[object], None],
) -> str:
    """Writes, reloads, checks and publishes one SavedModel version; returns its path.

    Args:
      module_or_archive_writer: a tf.Module with a `serving_signatures()` dict (saved with
        `tf.saved_model.save`), or a callable `writer(path)` that writes a SavedModel
        folder at `path` itself.
      export_base: the TF Serving model base folder (created if missing).
      model_name: the model's folder under it; a path component, not a path.
      check: `check(loaded)` gets the `tf.saved_model.load`ed export and raises when
        its outputs differ from the in-process model's.

    The SavedModel is written into `<export_base>/<model_name>/.tmp-<uuid>` and only
    renamed to `<version>` after `check` passed; on any failure the temporary folder
    is removed and no version appears.
    """
    if not model_name or os.sep in model_name or model_name in (".", "..") or model_name.startswith("."):
        raise SettingError(f"{{model_name}} must be a plain folder name, got {model_name!r}")
    model_dir = os.path.join(export_base, model_name)
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f"{TMP_PREFIX}{uuid.uuid4().hex}")
    try:
        if isinstance(module_or_archive_writer, tf.Module):
            tf.saved_model.save(
                module_or_archive_writer, tmp, signatures=module_or_archive_writer.serving_signatures()
            )
        else:
            module_or_archive_writer(tmp)
        check(tf.saved_model.load(tmp))
        # Two exporters may race for a number: rename fails onto an existing non-empty
        # folder, so the loser takes the next one.
        for _ in range(100):
            version_dir = os.path.join(model_dir, str(next_version(export_base, model_name)))
            try:
                os.rename(tmp, version_dir)
                return version_dir
            except OSError:
                if not os.path.isdir(version_dir):
                    raise
        raise RuntimeError(f"could not claim a version folder in {model_dir}")
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _assert_close(name: str, got, expected) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise AssertionError(
            f"exported output {name}: {got.dtype}{list(got.shape)}, in-process "
            f"{expected.dtype}{list(expected.shape)}"
        )
    if expected.dtype.kind in "iub":
        # Class ids may flip where a colour lies halfway between two palette entries.
        mismatch = np.mean(got != expected)
        if mismatch > 1e-3:
            raise AssertionError(f"exported output {name}: {mismatch:.2%} of values differ")
        return
    error = float(np.max(np.abs(got - expected), initial=0.0))
    if not error <= ATOL:
        raise AssertionError(
            f"exported output {name} differs from the in-process model by {error:g} > {ATOL}"
        )


def _check_signature(loaded, signature: str, inputs: dict, expected: dict) -> None:
    """Runs `loaded.signatures[signature](**inputs)` and compares with `expected`."""
    if signature not in loaded.signatures:
        raise AssertionError(f"export lacks signature {signature!r}: {list(loaded.signatures)}")
    outputs = loaded.signatures[signature](**inputs)
    if set(outputs) != set(expected):
        raise AssertionError(
            f"signature {signature} outputs {sorted(outputs)}, expected {sorted(expected)}"
        )
    for name, value in expected.items():
        _assert_close(f"{signature}/{name}", outputs[name].numpy(), np.asarray(value))


def _checked_samples(num_samples) -> tf.Tensor:
    """int32 scalar num_samples, asserted in [1, MAX_SAMPLES] before it is used."""
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    with tf.control_dependencies([
        tf.debugging.assert_greater(num_samples, 0, message="num_samples must be >= 1"),
        tf.debugging.assert_less_equal(num_samples, MAX_SAMPLES,
                                       message=f"num_samples must be <= {MAX_SAMPLES}"),
    ]):
        return tf.identity(num_samples)


class _Held:
    """Hides a Keras model from tf.Module's attribute tracking (see _ServingModule)."""

    def __init__(self, model):
        self.model = model


class _ServingModule(tf.Module):
    """A tf.Module that tracks a Keras 3 model's variables but not the model itself:
    saving a tracked Keras Model makes TF trace its `_default_save_signature`, which
    calls it with its first input only and fails for two-input models such as the
    U-Net."""

    def _hold(self, model) -> None:
        self._held = _Held(model)
        # The tf.Variables inside the Keras variables: what the traced graphs capture.
        self._model_variables = [getattr(v, "value", v) for v in model.variables]

    @property
    def model(self):
        return self._held.model


# --- Segmentation -----------------------------------------------------------------


class SegmentationModule(_ServingModule):
    """See `segmentation_module`."""

    def __init__(self, generator, load_size: int, nz: int, seed: int, palette=None,
                 encoding: str = label_encoding.RGB, resize: str = "stretch"):
        super().__init__(name="segmentation")
        self._hold(generator)
        # (H, W) the generator was trained at, from S or (H, W).
        sides = [int(load_size)] * 2 if isinstance(load_size, (int, str)) else [int(s) for s in load_size]
        self.image_size = tuple(sides)
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        self.resize = resize
        self.nz = int(nz)
        self.seed = int(seed)
        # The label classes of class_ids (a Palette; not saved as such: the graphs hold
        # its colours and ids as constants) and the form of the generator's outputs.
        self.palette = palettes.cityscapes() if palette is None else palette
        self.encoding = label_encoding.LabelEncoding(self.palette, encoding)
        images = lambda dtype: tf.TensorSpec([None, None, None, 3], dtype, name="images")  # noqa: E731
        seeds = tf.TensorSpec([None], tf.int64, name="seed")
        self.serving_default = tf.function(
            lambda images: self.segment(images), input_signature=[images(tf.float32)]
        )
        self.predict_uint8 = tf.function(
            lambda images: self.segment(tf.cast(images, tf.float32) / 255.0),
            input_signature=[images(tf.uint8)],
        )
        self.predict_seeded = tf.function(self.segment, input_signature=[images(tf.float32), seeds])
        self.predict_bytes = tf.function(
            lambda images: {"label_png_bytes": self.encode_labels(images)},
            input_signature=[tf.TensorSpec([None], tf.string, name="images")],
        )
        self.predict_samples = tf.function(
            self.sample_maps,
            input_signature=[images(tf.float32), seeds, tf.TensorSpec([], tf.int32, name="num_samples")],
        )

    def serving_signatures(self) -> dict:
        names = ("serving_default", "predict_uint8", "predict_seeded", "predict_bytes", "predict_samples")
        return {name: getattr(self, name).get_concrete_function() for name in names}

    def _outputs(self, maps) -> dict:
        """Label maps [..., H, W, C] in the generator's form -> {label_rgb float32
        [..., H, W, 3], class_ids int32 [..., H, W] palette ids, and for one-hot
        outputs class_probabilities float32 [..., H, W, K]}."""
        train_ids = self.encoding.train_ids(maps)
        outputs = {"label_rgb": self.encoding.to_rgb(maps),
                   "class_ids": tf.gather(tf.constant(self.palette.evaluated_ids()), train_ids)}
        if self.encoding.kind == label_encoding.ONE_HOT:
            outputs["class_probabilities"] = self.encoding.class_probabilities(maps)
        return outputs

    def segment(self, images, seed=None) -> dict:
        """float [N, H, W, 3] in [0, 1], int64 seeds [N] (default: the export seed for
        every image) -> {label_rgb float32 [N, H, W, 3] in [0, 1] (colours, or the
        colour of each pixel's class for one-hot outputs), class_ids int32 [N, H, W]
        palette ids of each pixel's class (+ class_probabilities float32 [N, H, W, K]
        for one-hot outputs)}. Plain TF ops: runs eagerly or traced."""
        images = tf.convert_to_tensor(images, tf.float32)
        if seed is None:
            seed = tf.fill([tf.shape(images)[0]], tf.constant(self.seed, tf.int64))
        return self._outputs(self.label_maps(images, noise_per_seed(self._checked(seed, images), self.nz)))

    def _checked(self, seed, images):
        tf.debugging.assert_equal(
            tf.size(seed), tf.shape(images)[0], message="seed must hold one value per image ([N])"
        )
        return seed

    def label_maps(self, images, noise) -> tf.Tensor:
        """The generator's label maps (its output form: colours or probabilities) of
        images float32 [N, H, W, 3] at their size, from noise [N, nz]."""
        images = tf.convert_to_tensor(images, tf.float32)
        size = tf.shape(images)[1:3]
        # The generator only knows its training size (its noise projection is built
        # for that bottleneck) and the scale its training images had: inputs are
        # brought to it as training brought them (`prepare`).
        if self.resize == "crop":
            maps = self._cropped_maps(images, noise)
        else:
            maps = self._maps_of_window(images, noise)
        maps = tf.image.resize(tf.cast(maps, tf.float32), size, method="bilinear", antialias=True)
        # Resizing can overshoot [0, 1] slightly.
        return tf.clip_by_value(maps, 0.0, 1.0)

    def scaled_size(self, size) -> tf.Tensor:
        """int32 [2] (h, w): what an image of `size` (int32 [2] H, W) is scaled to before
        it is cut (crop) or padded (pad) to the training size: aspect kept, the training
        size covered (crop) or fitted (pad), as `data.image_folders` does; stretch: the
        training size."""
        if self.resize == "stretch":
            return tf.constant(self.image_size, tf.int32)
        target = tf.constant(self.image_size, tf.float64)
        ratios = target / tf.cast(size, tf.float64)
        scale = tf.reduce_max(ratios) if self.resize == "crop" else tf.reduce_min(ratios)
        # Python's round (half to even), as image_folders' PIL sizes.
        return tf.maximum(tf.cast(tf.math.round(tf.cast(size, tf.float64) * scale), tf.int32), 1)

    def prepare(self, images) -> tf.Tensor:
        """float32 [N, H, W, 3] in [0, 1] -> [N, h, w, 3] at the training size (h, w), as
        training prepared its photos (`data.image_folders`, resize mode `self.resize`):
        stretch resizes; pad scales to fit and fills the border black, centred; crop
        scales to cover and cuts out the centre. Antialiased bicubic, as PIL's."""
        scaled = self._scaled(images)
        height, width = self.image_size
        if self.resize == "stretch":
            return scaled
        top, left = self._offsets(tf.shape(scaled)[1:3])
        if self.resize == "crop":
            return scaled[:, top:top + height, left:left + width]
        return tf.image.pad_to_bounding_box(scaled, top, left, height, width)

    def _scaled(self, images) -> tf.Tensor:
        # stretch: the static size, so traced graphs keep static shapes.
        size = list(self.image_size) if self.resize == "stretch" else self.scaled_size(tf.shape(images)[1:3])
        scaled = tf.image.resize(images, size, method="bicubic", antialias=True)
        # Bicubic overshoots; training's images were rounded to 0..255.
        return tf.clip_by_value(scaled, 0.0, 1.0)

    def _offsets(self, scaled_size) -> tuple:
        """Where the training window sits in a scaled image (crop: inside it; pad: the
        scaled image inside the window), as PIL's integer centring does."""
        gap = tf.constant(self.image_size, tf.int32) - scaled_size
        # crop: gap <= 0, the window starts at (-gap) // 2; pad: gap >= 0, the image at
        # -((-gap) // 2) (image_folders pastes at -((scaled - size) // 2)).
        start = (-gap) // 2 if self.resize == "crop" else -((-gap) // 2)
        return start[0], start[1]

    def _maps_of_window(self, images, noise) -> tf.Tensor:
        """stretch and pad: the generator's maps of the prepared images, at the scaled
        size (pad: the border cut off again)."""
        maps = self.model(self.prepare(images), noise, training=False)
        if self.resize == "stretch":
            return maps
        scaled_size = self.scaled_size(tf.shape(images)[1:3])
        top, left = self._offsets(scaled_size)
        return maps[:, top:top + scaled_size[0], left:left + scaled_size[1]]

    def _cropped_maps(self, images, noise) -> tf.Tensor:
        """crop: maps of the whole scaled image (aspect kept, covering the training
        size), from training-size windows: the centre one, as training cut it, when
        that is all there is, else evenly spaced windows from edge to edge (each with
        the image's noise), each pixel taken from the window whose centre is nearest,
        so every pixel lies inside its window."""
        window = tf.constant(self.image_size, tf.int32)
        # Windows per axis (>= 1), from the sizes alone: checked before anything is scaled.
        count = (self.scaled_size(tf.shape(images)[1:3]) + window - 1) // window
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                count[0] * count[1], MAX_CROP_WINDOWS,
                message=f"images: an aspect ratio beyond 1:{MAX_CROP_WINDOWS} (a --resize=crop model labels "
                        f"an image in at most {MAX_CROP_WINDOWS} training-size windows)")]):
            scaled = self._scaled(images)
        batch = tf.shape(images)[0]
        size = tf.shape(scaled)[1:3]
        # Offsets: evenly spaced from 0 to size - window; one window: the centred one.
        spacing = tf.cast(size - window, tf.float64) / tf.cast(tf.maximum(count - 1, 1), tf.float64)

        def axis(a):
            steps = tf.cast(tf.range(count[a]), tf.float64)
            offsets = tf.where(count[a] > 1, tf.cast(tf.math.round(steps * spacing[a]), tf.int32),
                               tf.fill([count[a]], (size[a] - window[a]) // 2))
            positions = tf.range(size[a])
            centres = tf.cast(offsets, tf.float64) + tf.cast(window[a], tf.float64) / 2
            nearest = tf.argmin(tf.abs(tf.cast(positions, tf.float64)[:, None] + 0.5 - centres[None]),
                                axis=1, output_type=tf.int32)
            rows = offsets[:, None] + tf.range(window[a])[None]  # [count, window]
            return rows, nearest, positions - tf.gather(offsets, nearest)

        rows, row_window, row_local = axis(0)
        cols, col_window, col_local = axis(1)
        # [N, cy, h, cx, w, 3] -> [cy * cx * N, h, w, 3], window-major.
        windows = tf.gather(tf.gather(scaled, rows, axis=1), cols, axis=3)
        windows = tf.transpose(windows, [1, 3, 0, 2, 4, 5])
        windows = tf.reshape(windows, [-1, *self.image_size, 3])
        maps = self.model(windows, tf.tile(noise, [count[0] * count[1], 1]), training=False)
        # The channels stay static: label maps' consumers check for [..., 3].
        channels = maps.shape[-1] if maps.shape[-1] is not None else tf.shape(maps)[-1]
        maps = tf.reshape(tf.cast(maps, tf.float32), [count[0], count[1], batch, *self.image_size, channels])
        maps = tf.transpose(maps, [0, 1, 3, 4, 2, 5])  # [cy, cx, h, w, N, C]
        grid = lambda values: tf.broadcast_to(values, size)  # noqa: E731
        indices = tf.stack([grid(row_window[:, None]), grid(col_window[None]),
                            grid(row_local[:, None]), grid(col_local[None])], axis=-1)
        return tf.transpose(tf.gather_nd(maps, indices), [2, 0, 1, 3])  # [N, sh, sw, C]

    def sample_maps(self, images, seed, num_samples) -> dict:
        """Uncertainty: `num_samples` S (1..MAX_SAMPLES) label maps per image, sample s
        of image n from seed [seed[n], s] (sample 0 is `predict_seeded`'s output).

        Returns {sample_class_ids int32 [N, S, H, W]; class_ids int32 [N, H, W] and
        label_rgb float32 [N, H, W, 3]: each pixel's majority class over the samples
        (ties to the lower class) and its colour; agreement float32 [N, H, W] in
        (0, 1]: the share of samples that chose it; mean, variance float32 [N, H, W, C]:
        the samples' per-pixel mean and (population) variance in the generator's
        output form (colours, or class probabilities of the evaluated classes)}.
        """
        images = tf.convert_to_tensor(images, tf.float32)
        num_samples = _checked_samples(num_samples)
        batch, size = tf.shape(images)[0], tf.shape(images)[1:3]
        noise = samples_per_seed(self._checked(seed, images), num_samples, self.nz)
        maps = self.label_maps(tf.repeat(images, num_samples, axis=0), noise)
        maps = tf.reshape(maps, tf.concat([[batch, num_samples], size, [tf.shape(maps)[-1]]], 0))
        train_ids = self.encoding.train_ids(maps)
        counts = tf.reduce_sum(tf.one_hot(train_ids, self.encoding.num_classes), axis=1)
        vote = tf.argmax(counts, axis=-1, output_type=tf.int32)
        ids = tf.constant(self.palette.evaluated_ids())
        values = (self.encoding.class_probabilities(maps) if self.encoding.kind == label_encoding.ONE_HOT
                  else maps)
        mean, variance = tf.nn.moments(values, axes=[1])
        return {
            "sample_class_ids": tf.gather(ids, train_ids),
            "class_ids": tf.gather(ids, vote),
            "label_rgb": segmentation.colourise(vote, self.palette),
            "agreement": tf.reduce_max(counts, axis=-1) / tf.cast(num_samples, tf.float32),
            "mean": mean,
            "variance": variance,
        }

    def encode_labels(self, encoded) -> tf.Tensor:
        """string [N] encoded images -> string [N] PNG label maps in the palette's
        exact colours (each pixel its class's colour), one image at a time (sizes may
        differ), with the export seed."""

        def one(data):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            maps = self.label_maps(tf.cast(image, tf.float32)[None] / 255.0,
                                   noise_per_seed(tf.constant([self.seed], tf.int64), self.nz))
            colours = segmentation.colourise(self.encoding.train_ids(maps[0]), self.palette)
            return tf.io.encode_png(tf.cast(tf.round(colours * 255.0), tf.uint8))

        return tf.map_fn(one, encoded, fn_output_signature=tf.TensorSpec([], tf.string))

    def check(self, loaded) -> None:
        """Raises unless `loaded`'s signatures match this module run eagerly."""
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, _CHECK_IMAGE_SHAPE, dtype=np.uint8)
        as_float = images.astype(np.float32) / 255.0
        expected = {k: v.numpy() for k, v in self.segment(as_float).items()}
        _check_signature(loaded, "serving_default", {"images": tf.constant(as_float)}, expected)
        _check_signature(loaded, "predict_uint8", {"images": tf.constant(images)}, expected)
        seeds = np.arange(len(images), dtype=np.int64) + 11
        seeded = {k: v.numpy() for k, v in self.segment(as_float, seeds).items()}
        _check_signature(loaded, "predict_seeded",
                         {"images": tf.constant(as_float), "seed": tf.constant(seeds)}, seeded)
        samples = {k: v.numpy() for k, v in self.sample_maps(as_float, seeds, 3).items()}
        _check_signature(loaded, "predict_samples",
                         {"images": tf.constant(as_float), "seed": tf.constant(seeds),
                          "num_samples": tf.constant(3, tf.int32)}, samples)
        # Sample 0 of an image is what predict_seeded gives it.
        _assert_close("predict_samples/sample_class_ids[:, 0]", samples["sample_class_ids"][:, 0],
                      seeded["class_ids"])
        png = tf.stack([tf.io.encode_png(image) for image in images])
        got = loaded.signatures["predict_bytes"](images=png)["label_png_bytes"].numpy()
        decoded = np.stack([tf.io.decode_png(data).numpy() for data in got])
        # Each pixel the colour of the class the in-process model gives it (ids may
        # flip where a colour lies halfway between two palette entries).
        colours = np.round(segmentation.colourise(
            self.encoding.train_ids(self.label_maps(as_float, noise_per_seed(
                np.full(len(images), self.seed, np.int64), self.nz))), self.palette).numpy() * 255.0)
        mismatch = float(np.mean(np.any(decoded != colours.astype(np.uint8), axis=-1)))
        if mismatch > 1e-3:
            raise AssertionError(
                f"predict_bytes label_png_bytes differs from the in-process model's classes "
                f"in {mismatch:.2%} of pixels"
            )


def segmentation_module(generator, load_size: int, nz: int, seed: int, palette=None,
                        encoding: str = label_encoding.RGB, resize: str = "stretch") -> SegmentationModule:
    """A servable photo -> label map model.

    Args:
      generator: built conditional U-Net, generator(images [N, h, w, 3] in [0, 1],
        noise [N, nz]) -> label maps [N, h, w, C]: colours in [0, 1] (C = 3) or class
        probabilities (`encoding` "one_hot", C = K or K + 1 with void).
      load_size: the size the generator was trained at, S (square) or (h, w); inputs
        of any H x W are brought to h x w as training brought its photos (`resize`)
        and the outputs back to H x W (bilinear, antialiased).
      nz: noise size.
      seed: the noise seed of every image unless predict_seeded is given seeds.
      palette: the label classes (tf_factorgan.data.palette.Palette; default
        Cityscapes): `class_ids` is the id of each pixel's class (the nearest
        evaluated colour, or the most probable evaluated class), for Cityscapes the
        label id (road = 7), which the Cityscapes benchmark scripts expect in
        prediction files; `predict_bytes` PNGs hold those classes' colours.
      encoding: the generator's output form, `data.label_encoding` "rgb" or "one_hot".
      resize: how training brought its photos to h x w (`data.image_folders`
        RESIZE_MODES; antialiased bicubic): "stretch" (the presets'; runs that
        recorded none) resizes; "pad" scales to fit, borders black, and cuts the
        border off the output; "crop" scales to cover, aspect kept, and labels the
        whole scaled image with training-size windows (`SegmentationModule.prepare`).

    Every image's noise comes from its own seed (`noise.noise_per_seed`), so an image
    gets the same label map alone or in any batch; `predict_samples` draws several per
    image and returns their consensus and spread. TF Serving allows one dtype per
    input name and no optional inputs, hence one signature per input variant.
    """
    return SegmentationModule(generator, load_size, nz, seed, palette, encoding, resize)


# --- Sampling ---------------------------------------------------------------------


class SamplerModule(_ServingModule):
    """See `sampler_module`."""

    def __init__(self, generator, nz: int, output_shape: Sequence[int], to_images=None,
                 mean=None, std=None, parts=None):
        super().__init__(name="sampler")
        self._hold(generator)
        self.nz = int(nz)
        self.output_shape = tuple(int(d) for d in output_shape)
        self.to_images = to_images
        features = self.output_shape[-1]
        if (mean is None) != (std is None):
            raise ValueError("a sampler's standardisation needs both mean and std")
        self.mean = self.std = None
        if mean is not None:
            mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
            if mean.shape != (features,) or std.shape != (features,):
                raise ValueError(f"mean and std must hold one value per feature ({features}), "
                                 f"got {mean.shape} and {std.shape}")
            self.mean, self.std = mean, std
        self.parts = None
        if parts is not None:
            parts = tuple((str(name), int(size)) for name, size in parts)
            names = [name for name, _ in parts]
            if sum(size for _, size in parts) != features or len(set(names)) != len(names):
                raise ValueError(f"parts {list(parts)} must have distinct names and sizes "
                                 f"adding up to the {features} features of a sample")
            if set(names) & {"samples", "images"}:
                raise ValueError(f"part names {names} must not be 'samples' or 'images'")
            self.parts = parts
        self.serving_default = tf.function(
            self.sample,
            input_signature=[
                tf.TensorSpec([], tf.int32, name="num_samples"),
                tf.TensorSpec([], tf.int64, name="seed"),
            ],
        )

    def serving_signatures(self) -> dict:
        return {"serving_default": self.serving_default.get_concrete_function()}

    def sample(self, num_samples, seed) -> dict:
        """-> {samples float32 [num_samples, *output_shape]} (+ images via to_images,
        + one output per part)."""
        tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0")
        noise = seeded_noise(num_samples, self.nz, seed)
        samples = tf.cast(self.model(noise, training=False), tf.float32)
        samples = tf.reshape(samples, [-1, *self.output_shape])
        if self.mean is not None:
            samples = samples * tf.constant(self.std) + tf.constant(self.mean)
        outputs = {"samples": samples}
        if self.to_images is not None:
            outputs["images"] = tf.convert_to_tensor(self.to_images(samples), tf.float32)
        if self.parts is not None:
            values = tf.split(samples, [size for _, size in self.parts], axis=-1)
            outputs.update({name: value for (name, _), value in zip(self.parts, values)})
        return outputs

    def check(self, loaded) -> None:
        expected = {k: v.numpy() for k, v in self.sample(3, 7).items()}
        inputs = {"num_samples": tf.constant(3, tf.int32), "seed": tf.constant(7, tf.int64)}
        if self.mean is None:
            _check_signature(loaded, "serving_default", inputs, expected)
            return
        # In the user's units values may be large: float32 rounding of the graph's
        # fused ops then differs by more than ATOL, so compare relative to the size.
        scale = max(1.0, float(np.max(np.abs(expected["samples"]), initial=0.0)))
        outputs = loaded.signatures["serving_default"](**inputs)
        if set(outputs) != set(expected):
            raise AssertionError(f"signature serving_default outputs {sorted(outputs)}, "
                                 f"expected {sorted(expected)}")
        for name, value in expected.items():
            _assert_close(f"serving_default/{name} (relative to {scale:g})",
                          outputs[name].numpy() / np.float32(scale), value / np.float32(scale))


def sampler_module(generator, nz: int, output_shape: Sequence[int], to_images=None,
                   mean=None, std=None, parts=None) -> SamplerModule:
    """A servable unconditional generator.

    Args:
      generator: built model, generator(noise [N, nz] in [-1, 1]) -> [N, ...] float.
      nz: noise size.
      output_shape: one sample's shape, e.g. (1568,) for Paired MNIST or (64, 64, 4)
        for image pairs.
      to_images: optional TF function samples [N, *output_shape] -> float32 images
        [N, H, W, C], added as output `images` (e.g. stacked MNIST digit pairs).
      mean, std: optional [output_shape[-1]] each: the generator makes standardised
        features, served as `samples * std + mean` (the user's units).
      parts: optional [(name, size)] splitting the last axis: each part is also its
        own output `name` [N, ..., size] (vector data of named parts).
    """
    return SamplerModule(generator, nz, output_shape, to_images, mean, std, parts)


# --- Separation -------------------------------------------------------------------


class SeparationModule(_ServingModule):
    """See `separation_module`."""

    # The rates `separate` takes, in Hz: telephone audio up to 192 kHz masters. The graph
    # resamples to settings.sample_rate, so a sample sent at r Hz costs 22050 / r samples
    # there: unbounded, a 4 KB request at 1 Hz took 1.3 GB. Servers may check the range
    # before running the graph (serving.repository does).
    SAMPLE_RATES = (8000, 192000)

    def __init__(self, separator, nz: int, seed: int, settings: SpectrogramSettings):
        super().__init__(name="separation")
        self._hold(separator)
        self.nz = int(nz)
        self.seed = int(seed)
        self.settings = settings
        # Unknown rank: mono [N, samples] and multichannel [N, samples, C].
        waveform = tf.TensorSpec(None, tf.float32, name="waveform")
        rate = tf.TensorSpec([], tf.int32, name="sample_rate")
        self.serving_default = tf.function(self.separate, input_signature=[waveform, rate])
        self.predict_samples = tf.function(
            self.separate_samples,
            input_signature=[waveform, rate, tf.TensorSpec([], tf.int32, name="num_samples")])

    def serving_signatures(self) -> dict:
        return {name: getattr(self, name).get_concrete_function()
                for name in ("serving_default", "predict_samples")}

    def predict_mask(self, windows, sample=0) -> tf.Tensor:
        """windows [B, bins, 128, 1] -> masks in [0, 1]; every window gets the same
        noise row (of draw `sample` of the export seed), as in
        `audio_separation.mask_predictor`."""
        noise = repeated_noise(tf.shape(windows)[0], self.nz, self.seed, sample)
        return self.model.mask(windows, noise, training=False)

    def _checked_input(self, waveform, sample_rate):
        waveform = tf.convert_to_tensor(waveform, tf.float32)
        low, high = self.SAMPLE_RATES
        positive = tf.debugging.assert_positive(sample_rate, message="sample_rate must be positive (Hz)")
        # After `positive`, so that a rate of 0 or below keeps its own message.
        with tf.control_dependencies([positive] if positive is not None else []):
            message = f"sample_rate must be within [{low}, {high}] Hz"
            in_range = [
                tf.debugging.assert_greater_equal(sample_rate, low, message=message),
                tf.debugging.assert_less_equal(sample_rate, high, message=message),
            ]
        checks = [
            tf.debugging.assert_rank_in(
                waveform, [2, 3],
                message="waveform must be [N, samples] (mono) or [N, samples, channels]",
            ),
            positive, *in_range,
        ]
        # Graph ops run in any order: without this, a slice of a rank-1 waveform could
        # fail first with a message that names no input, and resampling from a rate out
        # of range would allocate before its check failed.
        with tf.control_dependencies([check for check in checks if check is not None]):
            return tf.identity(waveform), tf.identity(sample_rate)

    def separate(self, waveform, sample_rate) -> dict:
        """float32 [N, samples] or [N, samples, channels] at `sample_rate` Hz ->
        {vocals, accompaniment} float32 shaped like `waveform`."""
        waveform, sample_rate = self._checked_input(waveform, sample_rate)
        shape = tf.shape(waveform)
        as_3d = tf.reshape(waveform, [shape[0], shape[1], -1])
        sources = separation.separate_in_graph(
            as_3d, sample_rate, self.predict_mask, self.settings
        )
        return {name: tf.reshape(value, shape) for name, value in sources.items()}

    def separate_samples(self, waveform, sample_rate, num_samples) -> dict:
        """Uncertainty: `num_samples` S (1..MAX_SAMPLES) separations of each waveform,
        sample s from noise draw s of the export seed (sample 0 is `separate`'s).

        Returns, for each source of {vocals, accompaniment}: `<source>_samples` float32
        [N, S, ...] (`...` the waveform's shape after N), and `<source>_mean`,
        `<source>_variance` [N, ...]: the samples' mean and (population) variance at
        every audio sample.
        """
        waveform, sample_rate = self._checked_input(waveform, sample_rate)
        num_samples = _checked_samples(num_samples)
        shape = tf.shape(waveform)
        as_3d = tf.reshape(waveform, [shape[0], shape[1], -1])
        sources = separation.separate_samples_in_graph(
            as_3d, sample_rate, self.predict_mask, num_samples, self.settings)
        outputs = {}
        for name, value in sources.items():  # [S, N, samples, C]
            samples = tf.reshape(tf.transpose(value, [1, 0, 2, 3]),
                                 tf.concat([shape[:1], [num_samples], shape[1:]], 0))
            mean, variance = tf.nn.moments(samples, axes=[1])
            outputs.update({f"{name}_samples": samples, f"{name}_mean": mean, f"{name}_variance": variance})
        return outputs

    def check(self, loaded) -> None:
        """The export against `separation.separate` (the NumPy path of the CLI) at the
        model rate, where both resample nothing, for mono and stereo."""
        rng = np.random.default_rng(0)
        rate = self.settings.sample_rate
        stereo = (0.1 * rng.standard_normal((int(rate * _CHECK_SECONDS), 2))).astype(np.float32)
        predict = lambda windows: self.predict_mask(tf.constant(windows)).numpy()  # noqa: E731
        for waveform in (stereo, stereo[:, 0]):
            expected = separation.separate(waveform, rate, predict, self.settings)
            inputs = {"waveform": tf.constant(waveform[None]), "sample_rate": tf.constant(rate, tf.int32)}
            _check_signature(loaded, "serving_default", inputs,
                             {name: value[None] for name, value in expected.items()})
        # The last waveform (mono): two samples, the first of them serving_default's.
        samples = {k: v.numpy() for k, v in self.separate_samples(inputs["waveform"], rate, 2).items()}
        _check_signature(loaded, "predict_samples", {**inputs, "num_samples": tf.constant(2, tf.int32)},
                         samples)
        for name, value in expected.items():
            _assert_close(f"predict_samples/{name}_samples[:, 0]", samples[f"{name}_samples"][0, 0], value)


def separation_module(
    separator, nz: int, seed: int, settings: SpectrogramSettings = SpectrogramSettings()
) -> SeparationModule:
    """A servable singing voice separator.

    Args:
      separator: built MaskingSeparator (windows [B, num_bins, 128, 1] -> masks).
      nz: noise size; seed: the noise seed (fixed at export: one song separates the
        same way every time).
      settings: the STFT the separator was trained with.

    The signature resamples `sample_rate` (8000 to 192000 Hz, SeparationModule.SAMPLE_RATES;
    other rates fail an assertion) to settings.sample_rate (22050 Hz) and back in the
    graph, then runs `separation.separate_in_graph`: mono downmix for the mask, which is
    applied to every channel's own STFT.
    """
    return SeparationModule(separator, nz, seed, settings)
