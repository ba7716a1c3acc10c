"""Source separation quality with BSS Eval v4 (museval), as in SiSEC 2018.

`evaluate_track` scores one song: every source's estimate against its reference, in
windows of `window_seconds` every `hop_seconds`, as SDR / SIR / SAR in dB (the
`bss_eval_images` variant with time-invariant distortion filters, museval's "v4").
The defaults, 1 s windows and 1 s hops, are the SiSEC 2018 standard; the original
FactorGAN code evaluated with 15 s windows and 15 s hops, which gives other numbers.

`aggregate` follows SiSEC: per song the median over its windows, then the median over
songs (the figure papers report) and, for reference, the mean over songs.

museval refuses references that are entirely silent (a song without vocals): such a
source is left out of that song with a warning. It also refuses entirely silent
estimates; those are replaced, with a warning, by noise 120 dB below full scale, which
scores as silence should (SDR about 0 dB). Leaving it out is what BSS Eval would
do if it could: a silent reference adds nothing to the subspace that interference is
measured against. Windows where any reference or estimate is silent come back from
museval as NaN and are dropped.
"""

import warnings

import numpy as np

from tf_factorgan.audio.windows import SOURCES

METRICS = ("SDR", "SIR", "SAR")
DEFAULT_WINDOW_SECONDS = 1.0
DEFAULT_HOP_SECONDS = 1.0
# Stand-in for an estimate that is entirely silent (museval refuses those). Image SDR
# compares the estimate with the reference itself, so faint noise scores what silence
# deserves: SDR 0 dB (the error is the whole reference).
_SILENT_ESTIMATE_NOISE = 1e-6


def _as_2d(audio, what: str) -> np.ndarray:
    """float [samples] or [samples, channels] -> float64 [samples, channels]."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
        raise ValueError(f"{what} must be [samples, channels] with both > 0, got {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{what} contains NaN or infinite samples")
    return audio


def _is_silent(audio: np.ndarray) -> bool:
    # museval's own test: some sample-wise channel sum must be non-zero.
    return not np.any(audio.sum(axis=1))


def _source_order(names) -> list:
    """Known sources in SOURCES order, then any others sorted: independent of dict order."""
    return [n for n in SOURCES if n in names] + sorted(n for n in names if n not in SOURCES)


def evaluate_track(
    references: dict,
    estimates: dict,
    rate: int,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    hop_seconds: float = DEFAULT_HOP_SECONDS,
    track_name: str = "track",
) -> dict:
    """BSS Eval v4 of one song.

    Args:
      references: source name -> true source float [samples, channels] at `rate`.
      estimates: the same source names -> estimates of the same shapes.
      rate: sample rate in Hz.
      window_seconds, hop_seconds: evaluation window and hop.
      track_name: names the song in warnings and errors.

    Returns:
      source -> {"SDR", "SIR", "SAR": float64 [windows] in dB}, NaN windows dropped
      (all three metrics of a window are NaN together). Sources with an entirely
      silent reference are missing (with a warning).
    """
    import museval  # imports stempeg, which fails at import time without ffmpeg

    if set(references) != set(estimates):
        raise ValueError(
            f"{track_name}: references have sources {sorted(references)}, estimates "
            f"{sorted(estimates)}"
        )
    if window_seconds <= 0 or hop_seconds <= 0:
        raise ValueError(
            f"window_seconds and hop_seconds must be > 0, got {window_seconds}, {hop_seconds}"
        )
    names, refs, ests = [], [], []
    for name in _source_order(references):
        reference = _as_2d(references[name], f"{track_name}: reference {name}")
        estimate = _as_2d(estimates[name], f"{track_name}: estimate {name}")
        if estimate.shape != reference.shape:
            raise ValueError(
                f"{track_name}: estimate {name} has shape {estimate.shape}, its reference "
                f"{reference.shape}"
            )
        if _is_silent(reference):
            warnings.warn(f"{track_name}: reference {name} is silent; {name} is not evaluated")
            continue
        if _is_silent(estimate):
            warnings.warn(
                f"{track_name}: estimate {name} is silent; scored as faint noise (SDR ~0 dB)"
            )
            estimate = _SILENT_ESTIMATE_NOISE * np.random.default_rng(20180101).standard_normal(
                estimate.shape
            )
        names.append(name)
        refs.append(reference)
        ests.append(estimate)
    if not names:
        return {}

    sdr, _, sir, sar = museval.evaluate(
        np.stack(refs),
        np.stack(ests),
        win=int(round(window_seconds * rate)),
        hop=int(round(hop_seconds * rate)),
        mode="v4",
        padding=False,
    )
    results = {}
    for i, name in enumerate(names):
        frames = np.stack([sdr[i], sir[i], sar[i]])
        keep = ~np.any(np.isnan(frames), axis=0)
        results[name] = {metric: frames[j, keep] for j, metric in enumerate(METRICS)}
    return results


def aggregate(
    per_track: dict,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    hop_seconds: float = DEFAULT_HOP_SECONDS,
) -> dict:
    """Summarises `evaluate_track` results of several songs.

    Args:
      per_track: track name -> source -> metric -> per-window values (NaN are dropped).
      window_seconds, hop_seconds: the settings `evaluate_track` used, recorded.

    Returns:
      {"window_seconds", "hop_seconds", "sources": {source: {metric: {"median",
      "mean", "tracks"}}}} where median / mean are over the songs' per-window medians
      and tracks counts the songs with at least one valid window for that source.
    """
    medians = {}  # (source, metric) -> per-track medians
    for track, sources in per_track.items():
        for source, metrics in sources.items():
            for metric, values in metrics.items():
                values = np.asarray(values, dtype=np.float64).ravel()
                values = values[~np.isnan(values)]
                if values.size:
                    medians.setdefault((source, metric), []).append(float(np.median(values)))
    summary = {}
    for (source, metric), values in sorted(medians.items()):
        summary.setdefault(source, {})[metric] = {
            "median": float(np.median(values)),
            "mean": float(np.mean(values)),
            "tracks": len(values),
        }
    return {
        "window_seconds": float(window_seconds),
        "hop_seconds": float(hop_seconds),
        "sources": summary,
    }
