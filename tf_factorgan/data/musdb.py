"""MUSDB18 songs as log-magnitude spectrogram snippets (FactorGAN appendix A.2).

Every song gives three spectrograms: the mixture, the accompaniment (drums + bass +
other) and the vocals, each a mono downmix resampled to the settings' rate (22050 Hz)
and stored as log1p magnitudes [frames, 256] (see `tf_factorgan.audio.spectrogram`).
Decoding a song takes about as long as the song's first training steps, so spectrograms
are cached per song and settings, keyed on the track files' bytes
(`cached_track_spectrograms`, `data/spectrogram_cache.py`). Training sees 256 x 128 snippets
cut from them with a stride of 64 frames (`make_snippets`).

MUSDB18 is read through the `musdb` package, which decodes the .stem.mp4 files with
ffmpeg. The `musdb`/`stempeg` import is deferred to the functions that decode: stempeg
refuses to import without ffmpeg, and this module's other parts (snippets, splits,
layout checks) must work without it.
"""

import dataclasses
import os
from typing import Sequence

import numpy as np

from tf_factorgan.config import SettingError, SettingPathError
from tf_factorgan.audio import io as audio_io
from tf_factorgan.audio import spectrogram, windows
from tf_factorgan.data import spectrogram_cache

SUBSETS = ("train", "test")
# Stream order inside a .stem.mp4, and the wav names of the unpacked (is_wav) layout.
STEMS = ("mixture", "drums", "bass", "other", "vocals")
ACCOMPANIMENT_STEMS = ("drums", "bass", "other")
# The spectrograms of a song: the mixture and the sources it is separated into.
SOURCES = ("mixture", *windows.SOURCES)
# The settings that choose MUSDB18 and its paired songs, as error templates name them.
ROOT_SETTING = "{musdb_root}"
JOINT_SONGS_SETTING = "{num_joint_songs}"
MUSDB_URL = "https://sigsep.github.io/datasets/musdb.html"
MUSDB_ZENODO = "https://zenodo.org/record/1117372"
SAMPLE_TRACKS = "../shared/data/musdb18_sample"
SNIPPET_STRIDE = 64


class DecodeError(RuntimeError):
    """An audio file that ffmpeg cannot read completely; the message names the file."""


def _layout_error(root: str, problem: str, setting: str, is_wav: bool) -> SettingPathError:
    if is_wav:
        layout = "<root>/{train,test}/<track>/{" + ",".join(STEMS) + "}.wav"
    else:
        layout = "<root>/train/*.stem.mp4 and <root>/test/*.stem.mp4"
    return SettingPathError(
        f"MUSDB18 folder {root!r} (from {setting}) {problem}; expected {layout}. MUSDB18 "
        f"is available on request from {MUSDB_URL} (Zenodo: {MUSDB_ZENODO}). For tests, "
        f"{SAMPLE_TRACKS} (from the repository root) holds two 7-second preview tracks "
        f"in this layout."
    )


def _track_names(folder: str, is_wav: bool) -> list[str]:
    """Sorted track entries of a subset folder: sub-folders (wav) or .stem.mp4 files."""
    entries = sorted(os.listdir(folder))
    if is_wav:
        return [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    return [e for e in entries if e.endswith(".stem.mp4")]


def check_layout(root: str, setting: str = ROOT_SETTING, is_wav: bool = False, subsets=SUBSETS) -> None:
    """Fails with the expected layout unless every subset folder of `root` holds tracks
    (and, for wav tracks, every track folder all five stem files)."""
    if not os.path.isdir(root):
        raise _layout_error(root, "does not exist", setting, is_wav)
    for subset in subsets:
        folder = os.path.join(root, subset)
        if not os.path.isdir(folder):
            raise _layout_error(root, f"has no {subset}/ folder", setting, is_wav)
        names = _track_names(folder, is_wav)
        if not names:
            raise _layout_error(root, f"has no tracks in {subset}/", setting, is_wav)
        if is_wav:
            for name in names:
                # musdb skips missing stems silently, which would shrink the accompaniment.
                missing = [
                    f"{stem}.wav" for stem in STEMS
                    if not os.path.isfile(os.path.join(folder, name, f"{stem}.wav"))
                ]
                if missing:
                    raise _layout_error(
                        root, f"has track folder {subset}/{name}/ without {', '.join(missing)}",
                        setting, is_wav,
                    )


def _error_detail(error: Exception) -> str:
    """ffmpeg's own last words where the error carries them, else the error itself."""
    stderr = getattr(error, "stderr", None)
    if isinstance(stderr, bytes):
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"{type(error).__name__}: {error}"


def _first_unreadable(folder: str, is_wav: bool):
    """The first track file in `folder` that ffprobe cannot read, or None."""
    import stempeg

    for name in _track_names(folder, is_wav):
        path = os.path.join(folder, name, "mixture.wav") if is_wav else os.path.join(folder, name)
        try:
            stempeg.Info(path)
        except Exception:  # ffmpeg.Error and friends; any failure marks the file
            return path
    return None


def list_tracks(root: str, subset: str, is_wav: bool = False, setting: str = ROOT_SETTING) -> list:
    """All musdb Track objects of one subset folder ("train" or "test"), sorted by name.

    Takes every track of the folder: musdb's own train/validation split is not applied
    (split=None), so "train" includes musdb's 14 validation songs.
    """
    if subset not in SUBSETS:
        raise ValueError(f"MUSDB18 subset must be one of {SUBSETS}, got {subset!r}")
    audio_io.check_ffmpeg("decoding MUSDB18")
    check_layout(root, setting, is_wav, subsets=(subset,))
    import musdb  # imports stempeg, which needs ffmpeg (checked above)

    try:
        db = musdb.DB(root=root, subsets=subset, is_wav=is_wav, split=None)
    except Exception as error:
        # musdb probes every track with ffprobe; its error does not say which file failed.
        bad = _first_unreadable(os.path.join(root, subset), is_wav)
        if bad is None:
            raise
        raise DecodeError(
            f"ffprobe cannot read MUSDB18 track file {bad!r} (truncated or not a .stem.mp4?): "
            f"{_error_detail(error)}"
        ) from error
    return sorted(db.tracks, key=lambda track: track.name)


def _track_location(track) -> str:
    """The file (stems) or folder (wav) a track is read from, for messages."""
    return os.path.dirname(track.path) if track.is_wav else track.path


def decode_stems(track) -> dict:
    """Decodes a track: stem name (see STEMS) -> float32 [samples, channels] in [-1, 1]
    at `track.rate` (44.1 kHz stereo for MUSDB18)."""
    location = _track_location(track)
    try:
        stems = np.asarray(track.stems)
    except Exception as error:  # stempeg raises Warning, ValueError, AttributeError, ...
        raise DecodeError(
            f"could not decode MUSDB18 track {location!r} (truncated or damaged?): "
            f"{_error_detail(error)}"
        ) from error
    if stems.ndim != 3 or stems.shape[0] != len(STEMS) or stems.shape[1] == 0:
        raise DecodeError(
            f"MUSDB18 track {location!r} decoded to shape {stems.shape}; expected "
            f"[{len(STEMS)} stems ({', '.join(STEMS)}), samples > 0, channels]"
        )
    expected = track.samples or 0
    # ffmpeg stops silently at a cut-off file.
    if stems.shape[1] < (1 - audio_io.TRUNCATION_TOLERANCE) * expected:
        raise DecodeError(
            f"MUSDB18 track {location!r} is truncated: decoded {stems.shape[1]} samples, "
            f"its header promises {expected}"
        )
    return {name: stems[i].astype(np.float32) for i, name in enumerate(STEMS)}


def spectrograms_from_audio(
    audio: dict, rate: int, settings: spectrogram.SpectrogramSettings
) -> dict:
    """source -> float [samples, channels] audio at `rate` Hz  ==>  source -> float32
    [frames, num_bins] log1p magnitudes (mono, resampled to settings.sample_rate;
    frames = ceil(resampled samples / hop))."""
    out = {}
    for source, samples in audio.items():
        mono = spectrogram.resample(spectrogram.to_mono(samples), rate, settings.sample_rate)
        spec = spectrogram.stft(mono.astype(np.float32), settings)
        out[source] = spectrogram.log_magnitude(spec).numpy()
    return out


def source_audio(stems: dict) -> dict:
    """Decoded stems (as `decode_stems`) -> the true sources, float32 [samples,
    channels]: the vocals stem, and the accompaniment as the sum of the drums, bass and
    other stems."""
    return {
        windows.VOCALS: stems["vocals"],
        windows.ACCOMPANIMENT: sum(stems[name] for name in ACCOMPANIMENT_STEMS),
    }


def track_spectrograms(track, settings: spectrogram.SpectrogramSettings) -> dict:
    """Decodes a track: source (see SOURCES) -> float32 [frames, num_bins] log1p magnitudes.

    The sources are those of `source_audio`; the mixture is the track's own mixture
    stream (not exactly the stems' sum in every MUSDB18 song).
    """
    stems = decode_stems(track)
    audio = {"mixture": stems["mixture"], **source_audio(stems)}
    return spectrograms_from_audio(audio, track.rate, settings)


def track_files(track) -> list[str]:
    """The files a track is decoded from, sorted: its .stem.mp4, or its stem wavs."""
    return sorted({track.path} | {source.path for source in (track.sources or {}).values()})


def track_recipe(track) -> str:
    """What a cached track entry holds (see `spectrogram_cache`): part of its key."""
    layout = "wav stems" if track.is_wav else ".stem.mp4"
    return (f"musdb18 track ({layout}): mixture stream; accompaniment = "
            f"{' + '.join(ACCOMPANIMENT_STEMS)}; vocals")


def cached_track_spectrograms(cache: spectrogram_cache.SpectrogramCache, track) -> dict:
    """`track_spectrograms` through the cache: decodes only when no entry holds the
    spectrograms of these files' bytes at the cache's settings."""
    return cache.load_or_compute(
        track_recipe(track), track_files(track), SOURCES,
        lambda: track_spectrograms(track, cache.settings),
    )


def snippet_starts(
    num_frames: int, length: int = windows.WINDOW_FRAMES, stride: int = SNIPPET_STRIDE
) -> list[int]:
    """First frames of the windows of `length` frames every `stride` frames.

    Only whole windows are taken, so up to stride - 1 frames at the end of a song are
    left out. A song shorter than one window gives a single window at 0, which
    `make_snippets` pads with zeros (log1p magnitude 0: silence).
    """
    for name, value in (("num_frames", num_frames), ("length", length), ("stride", stride)):
        if value < 1:
            raise ValueError(f"snippet {name} must be positive, got {value}")
    if num_frames <= length:
        return [0]
    return list(range(0, num_frames - length + 1, stride))


@dataclasses.dataclass(frozen=True)
class SnippetSet:
    """Spectrogram snippets as images: mixture, accompaniment, vocals are float32
    [N, num_bins, length, 1] log1p magnitudes (>= 0), frequency as height (bin 0 on
    row 0) and time as width; song_index: int64 [N], the song each snippet is cut from."""

    mixture: np.ndarray
    accompaniment: np.ndarray
    vocals: np.ndarray
    song_index: np.ndarray

    def __len__(self):
        return len(self.song_index)


def cut_snippets(
    spectrograms: Sequence[np.ndarray], length: int = windows.WINDOW_FRAMES,
    stride: int = SNIPPET_STRIDE, dtype=np.float32,
) -> np.ndarray:
    """Spectrograms [frames, bins] (one source of several songs or recordings) ->
    `dtype` [N, bins, length, 1]: every one's windows at `snippet_starts`, in order.
    Written into one preallocated array, so float16 snippets never exist as float32
    all at once."""
    if not len(spectrograms):
        raise ValueError("cut_snippets needs at least one spectrogram")
    starts = [snippet_starts(s.shape[0], length, stride) for s in spectrograms]
    out = np.empty((sum(map(len, starts)), spectrograms[0].shape[1], length, 1), dtype)
    row = 0
    for frames, song_starts in zip(spectrograms, starts):
        out[row:row + len(song_starts)] = windows.cut_windows(frames, song_starts, length)
        row += len(song_starts)
    return out


def make_snippets(
    spectrograms: list, length: int = windows.WINDOW_FRAMES, stride: int = SNIPPET_STRIDE
) -> SnippetSet:
    """Cuts every song (source -> float32 [frames, bins], as `track_spectrograms`) into
    windows at `snippet_starts`; song i's snippets get song_index i."""
    if not spectrograms:
        raise ValueError("make_snippets needs at least one song")
    for i, song in enumerate(spectrograms):
        shapes = {source: song[source].shape for source in SOURCES}
        if len(set(shapes.values())) != 1 or len(shapes["mixture"]) != 2:
            raise ValueError(f"song {i}: sources must share one [frames, bins] shape, got {shapes}")
    song_index = [
        np.full(len(snippet_starts(len(song["mixture"]), length, stride)), i, dtype=np.int64)
        for i, song in enumerate(spectrograms)
    ]
    return SnippetSet(
        **{source: cut_snippets([song[source] for song in spectrograms], length, stride)
           for source in SOURCES},
        song_index=np.concatenate(song_index),
    )


def split_songs(num_songs: int, num_joint_songs: int, seed: int) -> tuple[list[int], list[int]]:
    """Chooses the songs whose sources are seen paired.

    Returns (paired, all): paired is the first `num_joint_songs` of a seeded shuffle of
    range(num_songs), sorted (a larger count with the same seed keeps the smaller set);
    all is range(num_songs) as a list, the songs every marginal source comes from.
    """
    if num_songs < 1:
        raise ValueError(f"split_songs needs at least one song, got {num_songs}")
    if not 1 <= num_joint_songs <= num_songs:
        raise SettingError(
            f"{JOINT_SONGS_SETTING} must lie in [1, {num_songs}] (the number of training "
            f"songs), got {num_joint_songs}"
        )
    order = np.random.default_rng(seed).permutation(num_songs)
    return sorted(int(i) for i in order[:num_joint_songs]), list(range(num_songs))
