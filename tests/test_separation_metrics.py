"""BSS Eval v4 wrapper and SiSEC-style aggregation, on hand-made numbers and signals.

Signals are short and at 8 kHz: BSS Eval's cost grows with the number of samples.
"""

import shutil

import numpy as np
import pytest

from tf_factorgan.eval import separation_metrics

# museval imports stempeg, which refuses to import without ffmpeg and ffprobe.
pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg/ffprobe are not installed (sudo apt-get install ffmpeg)",
)

RATE = 8000


def _sources(seconds: float = 3.0, seed: int = 0) -> dict:
    """Two independent stereo noise sources, float64 [samples, 2]."""
    rng = np.random.default_rng(seed)
    shape = (int(seconds * RATE), 2)
    return {"vocals": rng.normal(size=shape), "accompaniment": rng.normal(size=shape)}


# --- aggregate --------------------------------------------------------------------


def test_aggregate_is_median_and_mean_of_per_track_medians():
    per_track = {
        "a": {"vocals": {"SDR": [1.0, 2.0, 3.0]}},
        "b": {"vocals": {"SDR": [10.0, np.nan, 20.0, 30.0]}},  # NaN frame dropped
        "c": {"vocals": {"SDR": [5.0]}},
    }
    result = separation_metrics.aggregate(per_track, window_seconds=15.0, hop_seconds=15.0)
    # Per-track medians 2, 20, 5.
    assert result["sources"]["vocals"]["SDR"] == {"median": 5.0, "mean": 9.0, "tracks": 3}
    assert result["window_seconds"] == 15.0 and result["hop_seconds"] == 15.0


def test_aggregate_skips_tracks_without_valid_frames_and_keeps_sources_apart():
    per_track = {
        "a": {
            "vocals": {"SDR": [np.nan, np.nan], "SIR": [4.0]},
            "accompaniment": {"SDR": [7.0, 9.0]},
        },
        "b": {"vocals": {"SDR": [1.0]}},
    }
    result = separation_metrics.aggregate(per_track)["sources"]
    assert result["vocals"]["SDR"] == {"median": 1.0, "mean": 1.0, "tracks": 1}
    assert result["vocals"]["SIR"]["tracks"] == 1
    assert result["accompaniment"]["SDR"] == {"median": 8.0, "mean": 8.0, "tracks": 1}


def test_aggregate_defaults_record_one_second_windows():
    result = separation_metrics.aggregate({})
    assert result == {"window_seconds": 1.0, "hop_seconds": 1.0, "sources": {}}


# --- evaluate_track ---------------------------------------------------------------


def test_slightly_noisy_estimates_score_high_and_mixed_ones_lower():
    references = _sources()
    rng = np.random.default_rng(1)
    estimates = {
        "vocals": references["vocals"] + 0.01 * rng.normal(size=references["vocals"].shape),
        "accompaniment": references["accompaniment"] + 0.3 * references["vocals"],
    }
    scores = separation_metrics.evaluate_track(references, estimates, RATE)
    assert list(scores) == ["vocals", "accompaniment"]
    for metrics in scores.values():
        assert set(metrics) == {"SDR", "SIR", "SAR"}
        assert all(values.shape == (3,) for values in metrics.values())  # 3 s, 1 s windows
        assert all(np.all(np.isfinite(values)) for values in metrics.values())
    assert np.median(scores["vocals"]["SDR"]) > 20.0
    # Interference of -10.5 dB (0.3 amplitude): SIR and SDR near 10.5 dB.
    assert np.median(scores["accompaniment"]["SIR"]) == pytest.approx(10.5, abs=1.0)
    assert np.median(scores["accompaniment"]["SDR"]) < 12.0


def test_window_and_hop_set_the_number_of_frames():
    references = _sources(seconds=4.0)
    scores = separation_metrics.evaluate_track(
        references, references, RATE, window_seconds=2.0, hop_seconds=2.0
    )
    assert scores["vocals"]["SDR"].shape == (2,)


def test_frames_with_a_silent_reference_are_dropped():
    references = _sources()
    estimates = {name: audio + 0.01 for name, audio in references.items()}
    references["vocals"][RATE : 2 * RATE] = 0.0  # museval returns NaN for this window
    scores = separation_metrics.evaluate_track(references, estimates, RATE)
    for metrics in scores.values():
        assert all(values.shape == (2,) for values in metrics.values())
        assert all(np.all(np.isfinite(values)) for values in metrics.values())


def test_entirely_silent_reference_is_skipped_with_a_warning():
    references = _sources(seconds=2.0)
    estimates = dict(references)
    references["vocals"] = np.zeros_like(references["vocals"])
    with pytest.warns(UserWarning, match="song 7: reference vocals is silent"):
        scores = separation_metrics.evaluate_track(
            references, estimates, RATE, track_name="song 7"
        )
    assert list(scores) == ["accompaniment"]


def test_entirely_silent_estimate_scores_zero_sdr_with_a_warning():
    # Image SDR of silence: the error is the whole reference, 0 dB.
    references = _sources(seconds=2.0)
    estimates = {"vocals": np.zeros_like(references["vocals"]),
                 "accompaniment": references["accompaniment"] + references["vocals"]}
    with pytest.warns(UserWarning, match="estimate vocals is silent"):
        scores = separation_metrics.evaluate_track(references, estimates, RATE)
    np.testing.assert_allclose(scores["vocals"]["SDR"], 0.0, atol=0.01)


def test_mismatched_inputs_name_the_problem():
    references = _sources(seconds=1.0)
    with pytest.raises(ValueError, match="estimate vocals has shape"):
        separation_metrics.evaluate_track(
            references, {**references, "vocals": references["vocals"][:-1]}, RATE
        )
    with pytest.raises(ValueError, match="sources"):
        separation_metrics.evaluate_track(references, {"vocals": references["vocals"]}, RATE)
