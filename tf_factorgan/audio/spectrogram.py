"""The spectrogram signal path of the singing voice separation experiment (appendix A.2).

Audio is downmixed to mono, resampled to `SpectrogramSettings.sample_rate` and turned
into an STFT with a Hann window; the top (Nyquist) bin is dropped so that a spectrogram
has a power-of-two height (256 bins for n_fft 512), which the U-Net and the
convolutional discriminators need. Networks see log1p magnitudes; separated magnitudes
go back to audio with the mixture's phase (`istft`) or Griffin-Lim (`griffin_lim`).

STFT/ISTFT use `tf.signal` so that training, separation and an exported SavedModel share
one implementation. Resampling and downmixing are data preparation and use NumPy/SciPy.
"""

import dataclasses
import math

import numpy as np
import scipy.signal
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SpectrogramSettings:
    """sample_rate in Hz; n_fft: STFT frame and FFT length in samples; hop: frame step."""

    sample_rate: int = 22050
    n_fft: int = 512
    hop: int = 256

    def __post_init__(self):
        for name in ("sample_rate", "n_fft", "hop"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"spectrogram setting {name} must be a positive int, got {value!r}"
                )
        if self.n_fft % 2:
            raise ValueError(f"spectrogram setting n_fft must be even, got {self.n_fft}")
        # With a hop above n_fft samples would fall between frames and be lost.
        if self.hop > self.n_fft:
            raise ValueError(
                f"spectrogram setting hop ({self.hop}) must not exceed n_fft ({self.n_fft})"
            )

    @property
    def num_bins(self) -> int:
        """Frequency bins kept: n_fft // 2 (bins 0 .. n_fft/2 - 1; Nyquist dropped)."""
        return self.n_fft // 2

    def cache_key(self) -> str:
        """A short stable name for these settings, e.g. "sr22050_fft512_hop256"."""
        return f"sr{self.sample_rate}_fft{self.n_fft}_hop{self.hop}"


def to_mono(audio: np.ndarray) -> np.ndarray:
    """float [samples, channels] or [samples] -> [samples], the mean of the channels."""
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise ValueError(f"audio must be [samples] or [samples, channels], got shape {audio.shape}")
    return audio.mean(axis=1)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resamples along axis 0 (any further axes are channels) by a rational factor.

    Uses scipy's polyphase filter with up/down = to_rate/from_rate reduced by their gcd;
    the output has ceil(samples * to_rate / from_rate) samples and keeps a float dtype.
    """
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        if int(rate) != rate or rate < 1:
            raise ValueError(f"resample {name} must be a positive whole number of Hz, got {rate!r}")
    from_rate, to_rate = int(from_rate), int(to_rate)
    audio = np.asarray(audio)
    if from_rate == to_rate:
        return audio
    common = math.gcd(from_rate, to_rate)
    out = scipy.signal.resample_poly(audio, to_rate // common, from_rate // common, axis=0)
    return out.astype(audio.dtype if audio.dtype.kind == "f" else np.float64, copy=False)


def stft(signal, settings: SpectrogramSettings) -> tf.Tensor:
    """float32 [..., samples] -> complex64 [..., frames, num_bins].

    frames = ceil(samples / hop): the end is zero-padded so that every sample lies in a
    frame. The Nyquist bin is dropped.
    """
    spec = tf.signal.stft(
        tf.convert_to_tensor(signal, tf.float32),
        frame_length=settings.n_fft,
        frame_step=settings.hop,
        fft_length=settings.n_fft,
        window_fn=tf.signal.hann_window,
        pad_end=True,
    )
    return spec[..., : settings.num_bins]


def istft(spec, settings: SpectrogramSettings, length) -> tf.Tensor:
    """complex64 [..., frames, num_bins] -> float32 [..., length], the inverse of `stft`.

    The dropped Nyquist bin is taken as zero, so reconstruction is exact (up to float32
    rounding, ~4e-7) only for signals without content there, and never in the first hop
    samples: only one frame covers them, and they keep the taper of its window. A signal
    that stops abruptly gets Nyquist content in its last frames from the step down to
    pad_end's zeros; its last n_fft samples then err by up to ~2e-3 of the step's size.
    Output is cut or zero-padded to `length` (an int or a scalar int tensor).
    """
    spec = tf.convert_to_tensor(spec, tf.complex64)
    full = tf.concat([spec, tf.zeros_like(spec[..., :1])], axis=-1)
    signal = tf.signal.inverse_stft(
        full,
        frame_length=settings.n_fft,
        frame_step=settings.hop,
        fft_length=settings.n_fft,
        window_fn=tf.signal.inverse_stft_window_fn(
            settings.hop, forward_window_fn=tf.signal.hann_window
        ),
    )
    return _fit_length(signal, length)


def _fit_length(signal: tf.Tensor, length) -> tf.Tensor:
    """Cuts or zero-pads the last axis of `signal` to `length` samples."""
    length = tf.convert_to_tensor(length, tf.int32)
    signal = signal[..., :length]
    missing = tf.maximum(length - tf.shape(signal)[-1], 0)
    rank = tf.rank(signal)
    paddings = tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, missing]]], axis=0)
    return tf.pad(signal, paddings)


def log_magnitude(spec) -> tf.Tensor:
    """complex [...] -> float32 [...] log(1 + |spec|), >= 0: the networks' input scale."""
    return tf.math.log1p(tf.abs(tf.convert_to_tensor(spec, tf.complex64)))


def magnitude_from_log(log_mag) -> tf.Tensor:
    """The inverse of `log_magnitude`: float32 [...] exp(x) - 1."""
    return tf.math.expm1(tf.convert_to_tensor(log_mag, tf.float32))


def _with_phase(magnitude: tf.Tensor, phase: tf.Tensor) -> tf.Tensor:
    return tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))


def griffin_lim(magnitude, phase, settings: SpectrogramSettings, length, iterations) -> tf.Tensor:
    """Griffin-Lim phase reconstruction started from a given phase.

    Args:
      magnitude: float32 [..., frames, num_bins] linear magnitudes (>= 0).
      phase: float32 [..., frames, num_bins] initial phase in radians (for separation
        the mixture's phase, which is already close to the source's).
      settings: the STFT settings the magnitudes were made with.
      length: samples of the returned signal (int or scalar int tensor).
      iterations: rounds of "invert, re-analyse, keep the phase" (int or scalar
        tensor); 0 is plain inversion with the given phase.

    Returns:
      float32 [..., length] signal.
    """
    magnitude = tf.convert_to_tensor(magnitude, tf.float32)
    phase = tf.convert_to_tensor(phase, tf.float32)

    def refine(i, phase):
        # The inner signals keep full length: cutting them would discard frames.
        frames = tf.shape(magnitude)[-2]
        signal = istft(_with_phase(magnitude, phase), settings, frames * settings.hop)
        return i + 1, tf.math.angle(stft(signal, settings))

    # tf.while_loop keeps `iterations` usable as a tensor in an exported graph.
    _, phase = tf.while_loop(lambda i, _: i < iterations, refine, [tf.constant(0), phase])
    return istft(_with_phase(magnitude, phase), settings, length)
