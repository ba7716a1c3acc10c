"""Singing voice separation with a spectrogram mask predictor (appendix A.2), audio I/O.

Signal path of `separate`:

  audio [samples, channels] at any rate
    -> resample to settings.sample_rate (22050 Hz)
    -> mono downmix -> STFT -> log1p magnitudes [frames, 256]
    -> windows of WINDOW_FRAMES (128) frames -> predict_mask in batches
    -> masks stitched back to [frames, 256]
    -> for every input channel: its own STFT at 22050 Hz, magnitude |X_c| * m
       (accompaniment) or |X_c| * (1 - m) (vocals), phase of X_c (optionally refined by
       Griffin-Lim) -> ISTFT
    -> resample back to the input rate, cut to the input length.

Stereo: the model sees only the mono downmix, and its one mask is applied to every
channel's own STFT. Each channel keeps its own magnitudes and phases, so the stereo
image (level and phase differences between channels) carries over into both estimates.
With the mixture's phase and masks m and 1 - m, vocals + accompaniment equal the
input as it survives the round trip through 22050 Hz: content above 11025 Hz and at
the dropped Nyquist bin is lost, the first hop (256 samples at 22050 Hz, 12 ms) keeps
the STFT window's fade-in (see `spectrogram.istft`), and the last frame, which holds
the signal's abrupt end, loses that end's Nyquist-bin content (errors ~1e-3).

A mask predictor is any callable that maps windows float32 [B, 256, 128, 1] (log1p
magnitudes, frequency x frames) to masks of the same shape with values in [0, 1], the
accompaniment's share of each bin. `separate` calls it on consecutive batches of
windows in the order of `window_starts`, each window exactly once; `OracleMaskPredictor`
relies on that order so that the ideal ratio mask goes through the same windowing,
stitching and inversion as a trained model.
"""

import io
import json
import os
import subprocess
from typing import Callable

import numpy as np
import soundfile
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.audio import spectrogram
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.data import musdb

# Frames per model input window (the U-Net's input width).
WINDOW_FRAMES = 128
# Containers soundfile (libsndfile) decodes itself; everything else goes to ffmpeg.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg")
# A file decoded this much shorter than its container declares is reported as
# truncated (the larger of the two counts).
TRUNCATION_TOLERANCE = 0.01
TRUNCATION_MIN_SECONDS = 0.1
# libsndfile's and ffmpeg's marker for "length unknown" in a streamed WAV header.
_STREAMED_WAV_SIZES = (0, 0xFFFFFFFF)

MaskPredictor = Callable[[np.ndarray], np.ndarray]


# --- Audio files ------------------------------------------------------------------


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """Decodes an audio file -> (float32 [samples, channels], sample rate in Hz).

    WAV, FLAC and OGG are read with soundfile; anything else (mp3, mp4, the first
    audio stream of a MUSDB18 .stem.mp4, i.e. the mixture) is decoded by ffmpeg to a
    float32 WAV in memory. Samples are in [-1, 1] for integer sources; rate and channel
    count are the file's own (a mono file gives [samples, 1]).

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: naming `path`, when the file cannot be decoded, is truncated or holds
        no samples.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file {path} does not exist")
    if path.lower().endswith(SOUNDFILE_EXTENSIONS):
        audio, rate = _read_with_soundfile(path)
    else:
        audio, rate = _read_with_ffmpeg(path)
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise ValueError(f"audio file {path} holds no samples (shape {audio.shape})")
    return audio, rate


def _read_with_soundfile(path: str) -> tuple[np.ndarray, int]:
    try:
        with soundfile.SoundFile(path) as f:
            _check_wav_not_truncated(path, f)
            expected = f.frames
            audio = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"cannot decode audio file {path}: {error}") from error
    # FLAC/OGG headers declare a length; a cut-off file decodes fewer frames.
    if audio.shape[0] != expected:
        raise ValueError(
            f"audio file {path} is truncated: header declares {expected} frames, "
            f"decoded {audio.shape[0]}"
        )
    return audio, rate


def _check_wav_not_truncated(path: str, f: soundfile.SoundFile) -> None:
    """libsndfile reads a cut-off WAV without complaint, shortening it to the bytes
    present; its header log ("data : 40000 (should be 19978)") gives it away."""
    if f.format != "WAV":
        return
    for line in f.extra_info.splitlines():
        parts = line.replace("(", " ").replace(")", " ").split()
        # ["data", ":", declared, "should", "be", present]
        if len(parts) == 6 and parts[0] == "data" and parts[3:5] == ["should", "be"]:
            try:
                declared, present = int(parts[2]), int(parts[5])
            except ValueError:  # a log format this check does not know
                continue
            if declared not in _STREAMED_WAV_SIZES and present < declared:
                raise ValueError(
                    f"audio file {path} is truncated: its WAV header declares "
                    f"{declared} data bytes, the file holds {present}"
                )


def _read_with_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    """First audio stream, native rate and channels, as float32 WAV through a pipe.

    `-xerror` and a non-empty error log both count as failure: ffmpeg otherwise exits 0
    on a cut-off mp3 after printing the decoding error. A cut-off mp4 decodes without
    any message, so the decoded length is checked against the container's duration.
    """
    musdb.check_ffmpeg()  # names the tools and the apt package when missing
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path,
        "-map", "0:a:0", "-f", "wav", "-acodec", "pcm_f32le", "-",
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    log = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0 or log:
        raise ValueError(f"ffmpeg cannot decode audio file {path}: {log or 'no message'}")
    try:
        # A piped WAV header has no length; libsndfile reads to the end of the bytes.
        audio, rate = soundfile.read(
            io.BytesIO(result.stdout), dtype="float32", always_2d=True
        )
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"cannot decode ffmpeg's output for {path}: {error}") from error
    declared = _declared_seconds(path)
    decoded = audio.shape[0] / rate
    # Encoder delay and padding make the two differ slightly in whole files.
    if declared is not None and decoded < declared - max(
        TRUNCATION_TOLERANCE * declared, TRUNCATION_MIN_SECONDS
    ):
        raise ValueError(
            f"audio file {path} is truncated: decoded {decoded:.3f} s, its container "
            f"declares {declared:.3f} s"
        )
    return audio, rate


def _declared_seconds(path: str):
    """The duration ffprobe reads from the container for the first audio stream (or
    the whole file), in seconds; None when the container does not say."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=duration:format=duration", "-of", "json", path,
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        return None
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    candidates = [s.get("duration") for s in info.get("streams", [])]
    candidates.append(info.get("format", {}).get("duration"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):  # missing or "N/A"
            continue
        if np.isfinite(seconds) and seconds > 0:
            return seconds
    return None


def write_audio(path: str, audio: np.ndarray, rate: int) -> None:
    """Writes audio [samples, channels] or [samples] as a 32-bit float WAV, atomically.

    Float keeps the samples exactly (no 16-bit quantisation, no clipping of separated
    estimates that overshoot [-1, 1]). `path` must end in .wav.
    """
    if not path.lower().endswith(".wav"):
        raise ValueError(f"write_audio writes WAV files; {path} does not end in .wav")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(
            f"audio for {path} must be [samples] or [samples, channels], got {audio.shape}"
        )
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio for {path} contains NaN or infinite samples")
    _check_rate(rate)
    with files.atomic_path(path, suffix=".wav") as tmp:
        soundfile.write(tmp, audio, int(rate), subtype="FLOAT", format="WAV")


def _check_rate(rate) -> None:
    if int(rate) != rate or rate < 1:
        raise ValueError(f"sample rate must be a positive whole number of Hz, got {rate!r}")


# --- Windows ----------------------------------------------------------------------


def window_starts(num_frames: int, length: int = WINDOW_FRAMES) -> list[int]:
    """First frames of the windows that cover `num_frames` frames.

    Non-overlapping windows of `length` frames from frame 0; when they do not end
    exactly at the last frame, one more window is aligned to the end (it overlaps its
    predecessor). A spectrogram of at most `length` frames is one window at 0 (shorter
    ones are zero-padded by `cut_windows`). Example: 300 frames -> [0, 128, 172].
    """
    if num_frames < 0 or length < 1:
        raise ValueError(
            f"window_starts needs num_frames >= 0 and length >= 1, got {num_frames}, {length}"
        )
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, length))
    if starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    return starts


def cut_windows(
    frames: np.ndarray, starts: list[int], length: int = WINDOW_FRAMES
) -> np.ndarray:
    """frames [num_frames, bins] -> model windows float32 [len(starts), bins, length, 1].

    Windows run past the end only when num_frames < length; the missing frames are 0
    (silence in log1p magnitudes).
    """
    windows = np.zeros((len(starts), frames.shape[1], length, 1), np.float32)
    for i, start in enumerate(starts):
        chunk = frames[start : start + length]
        windows[i, :, : chunk.shape[0], 0] = chunk.T
    return windows


def stitch_windows(
    windows: np.ndarray, starts: list[int], out: np.ndarray, covered: int
) -> int:
    """Writes windows [B, bins, length, 1] into out [num_frames, bins] in order.

    Of each window only the frames from `covered` (the first frame no earlier window
    wrote) on are used, so the end-aligned last window adds just its new frames.
    Returns the new `covered`.
    """
    num_frames, length = out.shape[0], windows.shape[2]
    for window, start in zip(windows, starts):
        end = min(start + length, num_frames)
        if end > covered:
            out[covered:end] = window[:, covered - start : end - start, 0].T
            covered = end
    return covered


def predict_full_mask(
    log_spec: np.ndarray, predict_mask: MaskPredictor, batch_size: int = 16
) -> np.ndarray:
    """log1p magnitudes [frames, bins] -> mask float32 [frames, bins] in [0, 1].

    Only `batch_size` windows exist at a time, so memory stays small for long tracks.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num_frames = log_spec.shape[0]
    starts = window_starts(num_frames)
    mask = np.empty(log_spec.shape, np.float32)
    covered = 0
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        windows = cut_windows(log_spec, batch_starts)
        masks = _checked_mask(predict_mask(windows), windows.shape)
        covered = stitch_windows(masks, batch_starts, mask, covered)
    return mask


def _checked_mask(masks, shape) -> np.ndarray:
    """The predictor's output as float32 `shape`, checked to be finite and in [0, 1]."""
    masks = np.asarray(masks, dtype=np.float32)
    if masks.shape != tuple(shape):
        raise ValueError(
            f"predict_mask returned shape {masks.shape} for windows of shape {tuple(shape)}"
        )
    if not np.all(np.isfinite(masks)):
        raise ValueError("predict_mask returned NaN or infinite mask values")
    # A little slack for rounding in a sigmoid or a float16 model.
    low, high = float(masks.min()), float(masks.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(f"predict_mask returned values in [{low}, {high}], not [0, 1]")
    return np.clip(masks, 0.0, 1.0)


# --- Separation -------------------------------------------------------------------


def separate(
    audio: np.ndarray,
    rate: int,
    predict_mask: MaskPredictor,
    settings: SpectrogramSettings = SpectrogramSettings(),
    griffin_lim_iterations: int = 0,
    batch_size: int = 16,
) -> dict[str, np.ndarray]:
    """Splits a mixture into vocals and accompaniment (see the module docstring).

    Args:
      audio: float [samples, channels] (or [samples]) mixture at `rate`, any length.
      rate: its sample rate in Hz.
      predict_mask: windows float32 [B, bins, 128, 1] of log1p magnitudes -> masks of
        the same shape in [0, 1] (accompaniment share); called on consecutive batches
        in window order.
      settings: the STFT the model was trained with.
      griffin_lim_iterations: 0 inverts with each channel's mixture phase; more refine
        that phase with Griffin-Lim per source and channel.
      batch_size: windows per predict_mask call.

    Returns:
      {"vocals": ..., "accompaniment": ...}, float32 shaped like `audio`, at `rate`.
    """
    audio = _checked_audio(audio)
    _check_rate(rate)
    if griffin_lim_iterations < 0:
        raise ValueError(f"griffin_lim_iterations must be >= 0, got {griffin_lim_iterations}")
    as_2d = audio if audio.ndim == 2 else audio[:, None]
    num_samples, num_channels = as_2d.shape
    outputs = {name: np.zeros(as_2d.shape, np.float32) for name in ("vocals", "accompaniment")}
    if num_samples == 0:
        return {name: out.reshape(audio.shape) for name, out in outputs.items()}

    mono = _to_model_rate(spectrogram.to_mono(as_2d), rate, settings)
    mono_log_spec = spectrogram.log_magnitude(spectrogram.stft(mono, settings)).numpy()
    mask = predict_full_mask(mono_log_spec, predict_mask, batch_size)

    # Channel by channel: one full-length STFT at a time.
    for channel in range(num_channels):
        signal = _to_model_rate(as_2d[:, channel], rate, settings)
        estimates = _masked_sources(signal, mask, settings, griffin_lim_iterations)
        for name, estimate in estimates.items():
            outputs[name][:, channel] = _from_model_rate(estimate, rate, settings, num_samples)
    return {name: out.reshape(audio.shape) for name, out in outputs.items()}


def _checked_audio(audio) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.dtype.kind != "f":
        raise ValueError(
            f"audio must be floating point (samples in [-1, 1]), got dtype {audio.dtype}"
        )
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[1] == 0):
        raise ValueError(f"audio must be [samples] or [samples, channels], got {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def _to_model_rate(signal: np.ndarray, rate: int, settings: SpectrogramSettings):
    """float [samples] at `rate` -> float32 [samples'] at settings.sample_rate."""
    resampled = spectrogram.resample(signal, rate, settings.sample_rate)
    return np.ascontiguousarray(resampled, dtype=np.float32)


def _from_model_rate(
    signal: np.ndarray, rate: int, settings: SpectrogramSettings, num_samples: int
) -> np.ndarray:
    """float32 [samples'] at settings.sample_rate -> [num_samples] at `rate`."""
    resampled = spectrogram.resample(signal, settings.sample_rate, rate)[:num_samples]
    return np.pad(resampled, (0, num_samples - resampled.shape[0]))


def _masked_sources(
    signal: np.ndarray, mask: np.ndarray, settings: SpectrogramSettings, iterations: int
) -> dict[str, np.ndarray]:
    """One channel [samples] at the model rate -> {source: [samples]} through the mask."""
    spec = spectrogram.stft(signal, settings)
    if spec.shape[0] != mask.shape[0]:  # both come from signals of the same length
        raise AssertionError(f"mask frames {mask.shape[0]} != STFT frames {spec.shape[0]}")
    length = signal.shape[0]
    shares = {"accompaniment": tf.constant(mask), "vocals": tf.constant(1.0 - mask)}
    if iterations == 0:
        # Masking the complex STFT keeps its phase; istft is linear, so the two
        # estimates add up to the round-tripped signal.
        return {
            name: spectrogram.istft(spec * tf.cast(share, tf.complex64), settings, length).numpy()
            for name, share in shares.items()
        }
    magnitude, phase = tf.abs(spec), tf.math.angle(spec)
    return {
        name: spectrogram.griffin_lim(
            magnitude * share, phase, settings, length, iterations
        ).numpy()
        for name, share in shares.items()
    }


# --- Separation in a graph (exported SavedModels) ---------------------------------


def separate_in_graph(
    waveform,
    sample_rate,
    predict_mask: Callable[[tf.Tensor], tf.Tensor],
    settings: SpectrogramSettings = SpectrogramSettings(),
    batch_size: int = 16,
) -> dict[str, tf.Tensor]:
    """`separate` in TF ops only (no Griffin-Lim), for exported SavedModels.

    Args:
      waveform: float32 [N, samples, channels], N mixtures of equal length.
      sample_rate: their rate in Hz, an int or scalar int tensor; any rate. Resampling
        is `spectrogram.resample_tf` (windowed sinc) where `separate` uses SciPy's
        polyphase filter, so the two agree exactly only at settings.sample_rate.
      predict_mask: TF function windows float32 [B, bins, 128, 1] -> masks of the same
        shape in [0, 1] (accompaniment share).
      settings: the STFT the model was trained with.
      batch_size: windows per predict_mask call; bounds memory on long songs.

    Returns:
      {"vocals", "accompaniment"}: float32 [N, samples, channels] at `sample_rate`.
      Windows and stitching are those of `separate` (end-aligned last window).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    length = tf.shape(waveform)[1]
    channels_first = tf.transpose(waveform, [0, 2, 1])  # [N, C, samples]
    at_model_rate = spectrogram.resample_tf(channels_first, sample_rate, settings.sample_rate)
    mono = tf.reduce_mean(at_model_rate, axis=1)
    log_spec = spectrogram.log_magnitude(spectrogram.stft(mono, settings))  # [N, T, F]
    mask = _full_mask_in_graph(log_spec, predict_mask, batch_size)[:, None]  # [N, 1, T, F]
    spec = spectrogram.stft(at_model_rate, settings)  # [N, C, T, F]
    model_length = tf.shape(at_model_rate)[-1]

    def source(share):
        # Masking the complex STFT keeps the mixture's phase.
        signal = spectrogram.istft(spec * tf.cast(share, tf.complex64), settings, model_length)
        # ceil(ceil(L r'/r) r/r') >= L: the round trip never comes back short.
        signal = spectrogram.resample_tf(signal, settings.sample_rate, sample_rate)[..., :length]
        return tf.transpose(signal, [0, 2, 1])

    return {"vocals": source(1.0 - mask), "accompaniment": source(mask)}


def _window_layout_in_graph(num_frames) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`window_starts` for a scalar int32 tensor: (starts int32 [num_windows], the
    number of full windows from frame 0, the frames the end-aligned window adds)."""
    covered = tf.maximum(num_frames, WINDOW_FRAMES)
    num_full = covered // WINDOW_FRAMES
    remainder = covered - num_full * WINDOW_FRAMES
    # One end-aligned window more when the full ones stop short of the last frame.
    starts = tf.concat([
        tf.range(num_full) * WINDOW_FRAMES,
        tf.fill([tf.minimum(remainder, 1)], covered - WINDOW_FRAMES),
    ], 0)
    return starts, num_full, remainder


def _full_mask_in_graph(log_spec, predict_mask, batch_size: int) -> tf.Tensor:
    """log1p magnitudes [N, T, F] -> mask [N, T, F]: `predict_full_mask` in TF ops."""
    batch, num_frames = tf.shape(log_spec)[0], tf.shape(log_spec)[1]
    bins = log_spec.shape[-1]
    starts, num_full, remainder = _window_layout_in_graph(num_frames)
    num_windows = tf.size(starts)
    # Songs shorter than a window are zero-padded (silence in log1p), as in cut_windows.
    padded = tf.pad(log_spec, [[0, 0], [0, tf.maximum(WINDOW_FRAMES - num_frames, 0)], [0, 0]])
    windows = tf.gather(padded, starts[:, None] + tf.range(WINDOW_FRAMES), axis=1)  # [N, W, 128, F]
    windows = tf.reshape(tf.transpose(windows, [0, 1, 3, 2]), [-1, bins, WINDOW_FRAMES, 1])
    masks = _in_batches(predict_mask, windows, batch_size)
    masks = tf.reshape(masks, [batch, num_windows, bins, WINDOW_FRAMES])
    masks = tf.clip_by_value(tf.transpose(masks, [0, 1, 3, 2]), 0.0, 1.0)  # [N, W, 128, F]
    # The full windows in order, then only the new frames of the end-aligned one.
    body = tf.reshape(masks[:, :num_full], [batch, -1, bins])
    tail = tf.reshape(masks[:, num_full:], [batch, -1, bins])[:, WINDOW_FRAMES - remainder :]
    return tf.concat([body, tail], axis=1)[:, :num_frames]


def _in_batches(predict_mask, windows, batch_size: int) -> tf.Tensor:
    """predict_mask over windows [B, F, T, 1], `batch_size` at a time, one after the
    other (parallel_iterations=1 keeps only one batch's activations alive)."""
    count = tf.shape(windows)[0]
    # Short songs are one smaller batch, not a batch padded with silent windows.
    size = tf.maximum(tf.minimum(count, batch_size), 1)
    padded_count = (count + size - 1) // size * size
    windows = tf.pad(windows, [[0, padded_count - count], [0, 0], [0, 0], [0, 0]])
    batches = tf.reshape(windows, [-1, size, *windows.shape[1:]])
    masks = tf.map_fn(
        lambda batch: tf.cast(predict_mask(batch), tf.float32),
        batches,
        fn_output_signature=tf.TensorSpec([None, *windows.shape[1:]], tf.float32),
        parallel_iterations=1,
    )
    return tf.reshape(masks, [-1, *windows.shape[1:]])[:count]


# --- Oracle -----------------------------------------------------------------------


def oracle_mask(
    vocals_audio: np.ndarray,
    accompaniment_audio: np.ndarray,
    rate: int,
    settings: SpectrogramSettings = SpectrogramSettings(),
) -> np.ndarray:
    """The ideal ratio mask of the true sources: float32 [frames, bins] in [0, 1].

    m = (|A| + eps) / (|A| + |V| + 2 eps) on the mono STFTs at settings.sample_rate of
    the accompaniment A and vocals V ([samples, channels] or [samples] at `rate`, equal
    shapes). eps (1e-8) only matters where both are silent, where m is 0.5. Frames
    match those `separate` computes for a mixture of the same length; wrap the mask in
    `OracleMaskPredictor` to separate with it.
    """
    vocals_audio, accompaniment_audio = (
        _checked_audio(vocals_audio), _checked_audio(accompaniment_audio)
    )
    if vocals_audio.shape != accompaniment_audio.shape:
        raise ValueError(
            f"vocals {vocals_audio.shape} and accompaniment {accompaniment_audio.shape} "
            "must have the same shape"
        )
    _check_rate(rate)
    eps = 1e-8

    def mono_magnitude(audio):
        mono = _to_model_rate(spectrogram.to_mono(audio), rate, settings)
        return np.abs(spectrogram.stft(mono, settings).numpy())

    vocals, accompaniment = mono_magnitude(vocals_audio), mono_magnitude(accompaniment_audio)
    return ((accompaniment + eps) / (accompaniment + vocals + 2 * eps)).astype(np.float32)


class OracleMaskPredictor:
    """A mask predictor that hands out windows of a precomputed mask [frames, bins].

    `separate` calls its predictor on consecutive batches in window order; this object
    cuts `mask` with the same `window_starts`/`cut_windows` and returns the next windows
    on each call, so an oracle mask takes exactly the model's windowing, stitching and
    inversion path. Use one instance per `separate` call; `remaining` is the number of
    windows not yet handed out (0 after a complete separation).
    """

    def __init__(self, mask: np.ndarray):
        mask = np.asarray(mask, np.float32)
        if mask.ndim != 2:
            raise ValueError(f"oracle mask must be [frames, bins], got shape {mask.shape}")
        self._windows = cut_windows(mask, window_starts(mask.shape[0]))
        self._next = 0

    @property
    def remaining(self) -> int:
        return self._windows.shape[0] - self._next

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        count = windows.shape[0]
        if count > self.remaining:
            raise ValueError(
                f"oracle mask has {self.remaining} windows left, asked for {count}: the "
                "mixture is longer than the sources the mask was computed from"
            )
        out = self._windows[self._next : self._next + count]
        if out.shape != windows.shape:
            raise ValueError(
                f"oracle mask windows {out.shape[1:]} do not match input windows "
                f"{windows.shape[1:]}"
            )
        self._next += count
        return out
