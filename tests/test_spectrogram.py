import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.audio import spectrogram as sp

SETTINGS = sp.SpectrogramSettings()


def bandlimited_noise(samples: int, seed: int = 0, fade_out: bool = False) -> np.ndarray:
    """float32 [samples] peak 1 noise without content above 80% of Nyquist, so that
    dropping the Nyquist bin loses nothing; `fade_out` ramps the last 10% to zero."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum[int(len(spectrum) * 0.8):] = 0
    signal = np.fft.irfft(spectrum, samples)
    if fade_out:
        signal *= np.minimum(1.0, np.linspace(10.0, 0.0, samples))
    return (signal / np.abs(signal).max()).astype(np.float32)


def test_default_settings_and_cache_key():
    assert (SETTINGS.sample_rate, SETTINGS.n_fft, SETTINGS.hop) == (22050, 512, 256)
    assert SETTINGS.num_bins == 256
    assert SETTINGS.cache_key() == "sr22050_fft512_hop256"
    assert sp.SpectrogramSettings(16000, 1024, 512).cache_key() == "sr16000_fft1024_hop512"


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hop"):
        sp.SpectrogramSettings(hop=1024)
    with pytest.raises(ValueError, match="n_fft must be even"):
        sp.SpectrogramSettings(n_fft=511)


@pytest.mark.parametrize("samples", [10000, 10240, 22050])
def test_stft_shape_is_ceil_samples_over_hop_by_256(samples):
    spec = sp.stft(np.zeros([2, samples], np.float32), SETTINGS)
    assert spec.dtype == tf.complex64
    assert spec.shape == (2, -(-samples // 256), 256)


@pytest.mark.parametrize("samples", [10000, 10240])
def test_istft_inverts_stft(samples):
    signal = bandlimited_noise(samples)
    restored = sp.istft(sp.stft(signal, SETTINGS), SETTINGS, samples).numpy()
    assert restored.shape == (samples,)
    error = np.abs(restored - signal)
    # Exact up to float32 rounding (~4e-7) where two frames overlap. The first hop
    # samples lie in one frame only and keep its window's taper; the abrupt end of the
    # signal has some energy at the dropped Nyquist bin (errors ~4e-4 in the last frame).
    assert error[256:-512].max() < 1e-5
    assert error[-512:].max() < 2e-3
    assert error[:256].max() > 0.01  # documents the first-hop taper


def test_istft_inverts_stft_to_the_end_of_a_faded_signal():
    signal = bandlimited_noise(10000, seed=1, fade_out=True)
    restored = sp.istft(sp.stft(signal, SETTINGS), SETTINGS, 10000).numpy()
    assert np.abs(restored - signal)[256:].max() < 1e-5


def test_istft_cuts_and_pads_to_length_for_batches():
    signal = bandlimited_noise(5000, fade_out=True)
    spec = sp.stft(np.stack([signal, -signal]), SETTINGS)
    long = sp.istft(spec, SETTINGS, 7000).numpy()
    assert long.shape == (2, 7000) and np.all(long[:, 5400:] == 0)
    np.testing.assert_allclose(long[1, 256:5000], -signal[256:], atol=1e-5)
    assert sp.istft(spec, SETTINGS, 300).shape == (2, 300)


def test_log_magnitude_round_trip():
    spec = tf.complex([[3.0, 0.0]], [[4.0, 0.0]])
    np.testing.assert_allclose(sp.log_magnitude(spec), [[np.log(6.0), 0.0]], rtol=1e-6)
    restored = sp.magnitude_from_log(sp.log_magnitude(spec))
    np.testing.assert_allclose(restored, [[5.0, 0.0]], rtol=1e-6)


def test_to_mono():
    stereo = np.array([[1.0, 3.0], [-2.0, 0.0]], np.float32)
    np.testing.assert_array_equal(sp.to_mono(stereo), [2.0, -1.0])
    np.testing.assert_array_equal(sp.to_mono(np.array([1.0, 2.0])), [1.0, 2.0])
    with pytest.raises(ValueError, match="samples, channels"):
        sp.to_mono(np.zeros([2, 2, 2]))


def test_resample_round_trip_keeps_a_sine():
    t = np.arange(44100) / 44100
    sine = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    stereo = np.stack([sine, 0.5 * sine], axis=1)
    half = sp.resample(stereo, 44100, 22050)
    assert half.shape == (22050, 2) and half.dtype == np.float32
    back = sp.resample(half, 22050, 44100)[:, 0]
    assert back.shape == (44100,)
    # Away from the edges, where the filter sees zeros beyond the signal.
    assert np.corrcoef(back[1000:-1000], sine[1000:-1000])[0, 1] > 0.999
    assert sp.resample(sine, 22050, 22050) is sine
    assert sp.resample(sine, 44100, 16000).shape == (16000,)


def test_griffin_lim_without_iterations_is_istft_with_that_phase():
    spec = sp.stft(bandlimited_noise(6000), SETTINGS)
    plain = sp.griffin_lim(tf.abs(spec), tf.math.angle(spec), SETTINGS, 6000, 0)
    np.testing.assert_allclose(plain, sp.istft(spec, SETTINGS, 6000), atol=1e-6)


def test_griffin_lim_iterations_do_not_increase_spectral_convergence_error():
    magnitude = tf.abs(sp.stft(bandlimited_noise(8000, fade_out=True), SETTINGS))
    phase = np.random.default_rng(2).uniform(-np.pi, np.pi, magnitude.shape).astype(np.float32)

    def error(iterations):
        signal = sp.griffin_lim(magnitude, phase, SETTINGS, 8000, iterations)
        rebuilt = tf.abs(sp.stft(signal, SETTINGS))
        return float(tf.norm(rebuilt - magnitude) / tf.norm(magnitude))

    errors = [error(n) for n in (0, 1, 4, 16)]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.5 * errors[0], errors


def test_signal_path_runs_in_a_graph_of_unknown_length():
    # As in an exported SavedModel: signal length and iterations are tensors.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32)])
    def run(signal, iterations):
        spec = sp.stft(signal, SETTINGS)
        length = tf.shape(signal)[0]
        restored = sp.griffin_lim(tf.abs(spec), tf.math.angle(spec), SETTINGS, length, iterations)
        return restored, sp.istft(spec, SETTINGS, length)

    signal = bandlimited_noise(3000, fade_out=True)
    restored, plain = run(signal, tf.constant(2))
    assert restored.shape == plain.shape == (3000,)
    np.testing.assert_allclose(plain[256:], signal[256:], atol=1e-5)
