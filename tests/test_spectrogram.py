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


def test_log_magnitude():
    spec = tf.complex([[3.0, 0.0]], [[4.0, 0.0]])
    np.testing.assert_allclose(sp.log_magnitude(spec), [[np.log(6.0), 0.0]], rtol=1e-6)


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


def tone(frequency: float, rate: int, samples: int) -> np.ndarray:
    """float32 [samples] sin(2 pi f n / rate), phase computed in float64."""
    return np.sin(2 * np.pi * frequency * np.arange(samples) / rate).astype(np.float32)


def noise_below(samples: int, rate: int, top_hz: float) -> np.ndarray:
    """float32 [samples] peak 1 noise without content above top_hz."""
    spectrum = np.fft.rfft(np.random.default_rng(3).standard_normal(samples))
    spectrum[np.fft.rfftfreq(samples, 1 / rate) > top_hz] = 0
    signal = np.fft.irfft(spectrum, samples)
    return (signal / np.abs(signal).max()).astype(np.float32)


def db(power_ratio) -> float:
    return 10 * float(np.log10(power_ratio))


@pytest.mark.parametrize(
    "from_rate,to_rate", [(44100, 22050), (48000, 22050), (22050, 44100), (16000, 22050)]
)
def test_resample_tf_matches_scipy_resample(from_rate, to_rate):
    # Noise up to 80% of the lower Nyquist, where both filters pass everything.
    signal = noise_below(from_rate, from_rate, 0.4 * min(from_rate, to_rate))
    expected = sp.resample(signal, from_rate, to_rate)
    result = sp.resample_tf(signal, from_rate, to_rate).numpy()
    assert result.shape == expected.shape == (to_rate,)
    edge = 16 * max(1, from_rate // to_rate) + 16  # where the filters see beyond the ends
    error = result[edge:-edge] - expected[edge:-edge]
    # Measured 59-62 dB, limited by SciPy's filter (Kaiser beta 5, 10 zero crossings).
    assert db(np.mean(expected**2) / np.mean(error**2)) > 52


def test_resample_tf_removes_content_above_the_new_nyquist_and_keeps_what_is_below():
    def gain_db(frequency):
        result = sp.resample_tf(tone(frequency, 44100, 44100), 44100, 22050).numpy()
        return db(np.mean(result[200:-200] ** 2) / 0.5)

    assert gain_db(15000) < -85  # measured -100 dB: a 15 kHz tone would alias to 7050 Hz
    assert gain_db(13000) < -85  # measured -94 dB
    assert abs(gain_db(5000)) < 0.01
    assert abs(gain_db(9000)) < 0.1  # measured -0.03 dB; the cutoff is 0.95 * 11025 Hz


def test_resample_tf_equal_rates_batches_and_short_inputs():
    signal = noise_below(500, 16000, 6000)
    batch = np.stack([np.stack([signal * k, -signal, signal[::-1]]) for k in (1, 2)])  # [2, 3, 500]
    np.testing.assert_array_equal(sp.resample_tf(batch, 8000, tf.constant(8000)), batch)
    result = sp.resample_tf(batch, 16000, 22050).numpy()
    assert result.shape == (2, 3, 690)  # ceil(500 * 22050 / 16000)
    np.testing.assert_allclose(result[1, 0], 2 * result[0, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result[1, 2], sp.resample_tf(signal[::-1], 16000, 22050), atol=1e-6)
    assert sp.resample_tf(np.zeros([2, 0], np.float32), 44100, 22050).shape == (2, 0)
    # Shorter than the filter (68 taps): a constant still comes out near 1 in the middle.
    short = sp.resample_tf(np.ones([9], np.float32), 44100, 22050).numpy()
    assert short.shape == (5,) and abs(short[2] - 1) < 0.2


def test_resample_tf_with_tensor_rates_in_a_saved_model(tmp_path):
    spec = [tf.TensorSpec([None, None], tf.float32)] + [tf.TensorSpec([], tf.int32)] * 2
    module = tf.Module()
    module.resample = tf.function(sp.resample_tf, input_signature=spec)
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    signal = np.stack([noise_below(3000, 48000, 8000), tone(440, 48000, 3000)])
    for rates in [(48000, 22050), (22050, 22050), (44101, 22050), (22050, 48000)]:
        np.testing.assert_allclose(
            loaded.resample(signal, *map(tf.constant, rates)), sp.resample_tf(signal, *rates),
            atol=1e-6,
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="from_rate/to_rate must be positive"):
        loaded.resample(signal, tf.constant(0), tf.constant(22050))


def test_resample_tf_round_trip_and_odd_rates_keep_a_sine():
    sine = tone(1000, 44100, 44100)
    back = sp.resample_tf(sp.resample_tf(sine, 44100, 22050), 22050, 44100).numpy()
    assert back.shape == (44100,)
    assert np.abs(back - sine)[100:-100].max() < 1e-4  # measured 1.7e-5
    # 44101 Hz is coprime with 22050: every output has its own filter phase.
    odd = sp.resample_tf(tone(1000, 44101, 44101), 44101, 22050).numpy()
    assert odd.shape == (22050,)  # ceil(44101 * 22050 / 44101)
    assert np.abs(odd - tone(1000, 22050, 22050))[100:-100].max() < 1e-4  # measured 6e-6


def test_resample_tf_positions_do_not_drift_over_a_long_signal():
    # 30 s at 48 kHz: float32 positions m * 48000 / 22050 would be off by up to 0.11
    # input samples by the end (errors up to 1.4e-2 on this tone); int64 ones are exact.
    result = sp.resample_tf(tone(1000, 48000, 30 * 48000), 48000, 22050).numpy()
    assert result.shape == (30 * 22050,)
    last_second = slice(29 * 22050, 30 * 22050 - 100)
    expected = np.sin(2 * np.pi * 1000 * (np.arange(30 * 22050)[last_second] % 22050) / 22050)
    assert np.abs(result[last_second] - expected).max() < 1e-4  # measured 6e-6


@pytest.mark.parametrize("block_size", [100, 1000])
def test_resample_tf_chunks_do_not_change_the_result(block_size):
    # 48000 -> 22050 repeats its weights every 147 outputs: blocks of 100 compute them
    # per output, blocks of 1000 take them from a table.
    signal = noise_below(7000, 48000, 10000)
    whole = sp.resample_tf(signal, 48000, 22050)
    chunked = sp.resample_tf(signal, 48000, 22050, block_size=block_size)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
