"""Separation signal path: masks, inversion, resampling, and the oracle check.

The oracle tests separate real MUSDB18 preview songs with the ideal ratio mask of their
true stems through exactly the path a trained model takes (windows, stitching, per-
channel masking, inversion, resampling) and score the result with BSS Eval v4. A
mistake anywhere in that path (misaligned windows, transposed masks, wrong phase, a
sample offset after resampling) costs many dB.
"""

import os

import numpy as np
import pytest

from tf_factorgan.audio import separation, spectrogram
from tf_factorgan.eval import separation_metrics

ROCK = os.path.join("train", "Music Delta - 80s Rock.stem.mp4")
FALCON = os.path.join("test", "The Easton Ellises - Falcon 69.stem.mp4")


def constant_half(windows):
    return np.full(windows.shape, 0.5, np.float32)


def random_masks(seed):
    rng = np.random.default_rng(seed)
    return lambda windows: rng.uniform(0.0, 1.0, windows.shape).astype(np.float32)


def tones(num_samples: int, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """float32 [samples, channels]: sums of random sinusoids below 8 kHz, so that
    nothing is lost by the round trip through 22050 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples)[:, None] / rate
    freqs = rng.uniform(50.0, min(8000.0, 0.4 * rate), size=(1, 12))
    out = np.zeros((num_samples, channels), np.float64)
    for c in range(channels):
        phases = rng.uniform(0, 2 * np.pi, size=(1, 12))
        amps = rng.uniform(0.01, 0.1, size=(1, 12))
        out[:, c] = np.sum(amps * np.sin(2 * np.pi * freqs * t + phases), axis=1)
    return out.astype(np.float32)


def _round_trip(audio: np.ndarray, rate: int) -> np.ndarray:
    """The input as it survives resampling to 22050 Hz and back."""
    there = spectrogram.resample(audio, rate, 22050)
    return spectrogram.resample(there, 22050, rate)[: audio.shape[0]]


def _inner(rate: int) -> slice:
    """All but the first and last 512 samples at 22050 Hz (in input samples).

    The first hop keeps the STFT window's taper (see spectrogram.istft); the last
    frame holds the signal's abrupt end, whose content at the dropped Nyquist bin is
    lost. Both differ from the round trip by up to ~1e-3 of full scale.
    """
    edge = int(np.ceil(512 * rate / 22050))
    return slice(edge, -edge)


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


# --- separate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, rate, channels", [(0.5, 16000, 1), (3.0, 44100, 2), (1.0, 48000, 3)]
)
def test_separate_keeps_length_rate_and_channels(seconds, rate, channels):
    audio = tones(int(seconds * rate), rate, channels)
    out = separation.separate(audio, rate, constant_half)
    assert set(out) == {"vocals", "accompaniment"}
    for estimate in out.values():
        assert estimate.shape == audio.shape and estimate.dtype == np.float32
        assert np.all(np.isfinite(estimate))
    # Masks 0.5 and 1 - 0.5: both estimates are half the round-tripped input.
    np.testing.assert_allclose(out["vocals"], out["accompaniment"], atol=1e-6)
    round_trip = _round_trip(audio, rate)
    inner = _inner(rate)
    np.testing.assert_allclose(2 * out["vocals"][inner], round_trip[inner], atol=1e-5)


def test_separate_keeps_mono_1d_shape_and_handles_empty_audio():
    audio = tones(4000, 16000, 1)[:, 0]
    assert separation.separate(audio, 16000, constant_half)["vocals"].shape == (4000,)
    empty = separation.separate(np.zeros((0, 2), np.float32), 44100, constant_half)
    assert empty["vocals"].shape == (0, 2)


@pytest.mark.parametrize("rate, channels", [(44100, 2), (16000, 1), (48000, 3)])
def test_estimates_sum_to_the_round_tripped_input_for_any_mask(rate, channels):
    audio = tones(int(2.2 * rate), rate, channels, seed=rate)
    out = separation.separate(audio, rate, random_masks(rate), batch_size=3)
    total = out["vocals"] + out["accompaniment"]
    round_trip = _round_trip(audio, rate)
    inner = _inner(rate)
    assert _relative_error(total[inner], round_trip[inner]) < 1e-5
    # Against the input itself the resampling filters' edge effects differ too.
    assert np.corrcoef(total[inner].ravel(), audio[inner].ravel())[0, 1] > 0.999


def test_griffin_lim_refinement_keeps_shapes_and_stays_close():
    rate = 22050
    audio = tones(rate, rate, 2)
    plain = separation.separate(audio, rate, random_masks(1))
    refined = separation.separate(audio, rate, random_masks(1), griffin_lim_iterations=3)
    for name in ("vocals", "accompaniment"):
        assert refined[name].shape == audio.shape
        corr = np.corrcoef(refined[name].ravel(), plain[name].ravel())[0, 1]
        assert corr > 0.5  # started from the mixture phase, not from noise


def test_separate_rejects_integer_audio():
    with pytest.raises(ValueError, match="floating point"):
        separation.separate(np.zeros((100, 2), np.int16), 16000, constant_half)


def test_oracle_mask_is_the_accompaniment_share_and_fits_the_mixture():
    rate = 44100
    vocals, accompaniment = tones(rate, rate, 2, seed=1), tones(rate, rate, 2, seed=2)
    mask = separation.oracle_mask(vocals, accompaniment, rate)
    assert mask.shape == (int(np.ceil(22050 / 256)), 256) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    no_vocals = separation.oracle_mask(0 * vocals, accompaniment, rate)
    assert np.median(no_vocals) > 0.999
    silence = np.zeros_like(vocals)
    np.testing.assert_allclose(separation.oracle_mask(silence, silence, rate), 0.5)


def test_oracle_predictor_refuses_a_longer_mixture():
    rate = 22050
    predictor = separation.OracleMaskPredictor(
        separation.oracle_mask(tones(rate, rate, 1), tones(rate, rate, 1, seed=3), rate)
    )
    with pytest.raises(ValueError, match="longer than the sources"):
        separation.separate(tones(3 * rate, rate, 1), rate, predictor, batch_size=1)


# --- MUSDB18 previews -------------------------------------------------------------


def _stems(musdb_dir: str, relative_path: str):
    """(mixture, vocals, accompaniment) float32 [samples, 2] at 44.1 kHz, and the name."""
    from tf_factorgan.data import musdb

    subset, filename = os.path.split(relative_path)
    name = filename[: -len(".stem.mp4")]
    (track,) = [t for t in musdb.list_tracks(musdb_dir, subset) if t.name == name]
    stems = musdb.decode_stems(track)
    accompaniment = sum(stems[stem] for stem in musdb.ACCOMPANIMENT_STEMS)
    return stems["mixture"], stems["vocals"], accompaniment, track.rate


def _oracle_scores(musdb_dir: str, relative_path: str) -> dict:
    mixture, vocals, accompaniment, rate = _stems(musdb_dir, relative_path)
    predictor = separation.OracleMaskPredictor(
        separation.oracle_mask(vocals, accompaniment, rate)
    )
    estimates = separation.separate(mixture, rate, predictor)
    assert predictor.remaining == 0  # every oracle window went through the model path
    scores = separation_metrics.evaluate_track(
        {"vocals": vocals, "accompaniment": accompaniment}, estimates, rate,
        track_name=relative_path,
    )
    medians = {
        source: {metric: float(np.median(values)) for metric, values in metrics.items()}
        for source, metrics in scores.items()
    }
    print(f"\noracle (ideal ratio mask) BSS Eval v4, 1 s windows, {relative_path}:")
    for source, metrics in medians.items():
        print("  " + source + ": " + ", ".join(f"{m} {v:.2f} dB" for m, v in metrics.items()))
    return medians


def test_oracle_mask_separates_80s_rock_well(musdb_dir):
    # The ideal ratio mask reaches about 10.6 dB vocals SDR here; a broken signal path
    # (window offsets, stitching, transposed masks, lost phase) falls far below 8.
    medians = _oracle_scores(musdb_dir, ROCK)
    assert medians["vocals"]["SDR"] > 8.0
    assert medians["accompaniment"]["SDR"] > 8.0


def test_oracle_mask_on_falcon_69_gives_finite_scores(musdb_dir):
    # This song's mixture is not the sum of its stems, so even the oracle stays low.
    medians = _oracle_scores(musdb_dir, FALCON)
    assert all(np.isfinite(v) for metrics in medians.values() for v in metrics.values())


def test_silent_reference_source_is_skipped_with_a_warning(musdb_dir):
    mixture, vocals, accompaniment, rate = _stems(musdb_dir, ROCK)
    part = slice(0, 2 * rate)  # BSS Eval is slow; two seconds suffice
    estimates = separation.separate(mixture[part], rate, constant_half)
    with pytest.warns(UserWarning, match="rock.*reference vocals is silent"):
        scores = separation_metrics.evaluate_track(
            {"vocals": np.zeros_like(vocals[part]), "accompaniment": accompaniment[part]},
            estimates, rate, track_name="rock",
        )
    assert set(scores) == {"accompaniment"}
    assert np.all(np.isfinite(scores["accompaniment"]["SDR"]))
