"""Singing voice separation with a spectrogram mask predictor (appendix A.2).

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
stitching and inversion as a trained model. Windowing and stitching are in
`audio/windows.py`, reading and writing files in `audio/io.py`.
"""

from typing import Callable

import numpy as np
import tensorflow as tf

from tf_factorgan.audio import io as audio_io
from tf_factorgan.audio import spectrogram
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.audio.windows import (
    ACCOMPANIMENT,
    SOURCES,
    VOCALS,
    MaskPredictor,
    cut_windows,
    predict_full_mask,
    predict_full_mask_tf,
    window_starts,
)

# serving/cli.py still reads and writes files through this module; new code imports
# them from `audio.io`.
read_audio, write_audio = audio_io.read_audio, audio_io.write_audio


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
    audio_io.check_rate(rate)
    if griffin_lim_iterations < 0:
        raise ValueError(f"griffin_lim_iterations must be >= 0, got {griffin_lim_iterations}")
    as_2d = audio if audio.ndim == 2 else audio[:, None]
    num_samples, num_channels = as_2d.shape
    outputs = {name: np.zeros(as_2d.shape, np.float32) for name in SOURCES}
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
    shares = {ACCOMPANIMENT: tf.constant(mask), VOCALS: tf.constant(1.0 - mask)}
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
    analysis = _analyse(waveform, sample_rate, settings)
    return _sources(analysis, predict_full_mask_tf(analysis["log_spec"], predict_mask, batch_size),
                    sample_rate, settings)


def _analyse(waveform, sample_rate, settings: SpectrogramSettings) -> dict:
    """What every mask of one request is applied to: the mixtures [N, samples, C] at
    the model rate, their mono log-magnitude windows' source and complex STFTs."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    channels_first = tf.transpose(waveform, [0, 2, 1])  # [N, C, samples]
    at_model_rate = spectrogram.resample_tf(channels_first, sample_rate, settings.sample_rate)
    mono = tf.reduce_mean(at_model_rate, axis=1)
    return {
        "length": tf.shape(waveform)[1],
        "log_spec": spectrogram.log_magnitude(spectrogram.stft(mono, settings)),  # [N, T, F]
        "spec": spectrogram.stft(at_model_rate, settings),  # [N, C, T, F]
        "model_length": tf.shape(at_model_rate)[-1],
    }


def _sources(analysis: dict, mask, sample_rate, settings: SpectrogramSettings) -> dict:
    """The sources of one accompaniment mask [N, T, F] in [0, 1]: {vocals,
    accompaniment} float32 [N, samples, C] at `sample_rate`."""
    mask = mask[:, None]  # [N, 1, T, F]: every channel

    def source(share):
        # Masking the complex STFT keeps the mixture's phase.
        signal = spectrogram.istft(analysis["spec"] * tf.cast(share, tf.complex64), settings,
                                   analysis["model_length"])
        # ceil(ceil(L r'/r) r/r') >= L: the round trip never comes back short.
        signal = spectrogram.resample_tf(signal, settings.sample_rate, sample_rate)[..., :analysis["length"]]
        return tf.transpose(signal, [0, 2, 1])

    return {VOCALS: source(1.0 - mask), ACCOMPANIMENT: source(mask)}


def separate_samples_in_graph(
    waveform,
    sample_rate,
    predict_mask_of_sample: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    num_samples,
    settings: SpectrogramSettings = SpectrogramSettings(),
    batch_size: int = 16,
) -> dict[str, tf.Tensor]:
    """`separate_in_graph` for `num_samples` S masks (noise draws) of the same songs:
    the resampling and STFTs run once, the masks and inverse STFTs once per sample.

    predict_mask_of_sample(windows, s): the masks of sample s (int32 scalar tensor).
    Returns {"vocals", "accompaniment"}: float32 [S, N, samples, channels].
    """
    analysis = _analyse(waveform, sample_rate, settings)

    def one(sample):
        mask = predict_full_mask_tf(analysis["log_spec"], lambda windows: predict_mask_of_sample(windows, sample),
                                    batch_size)
        return _sources(analysis, mask, sample_rate, settings)

    spec = tf.TensorSpec([None, None, None], tf.float32)
    return tf.map_fn(one, tf.range(num_samples), fn_output_signature={VOCALS: spec, ACCOMPANIMENT: spec})


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
    audio_io.check_rate(rate)
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
