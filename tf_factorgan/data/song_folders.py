"""Singing voice separation data from the user's own folders.

Paired songs, and test songs, are a folder with one sub-folder per song:

  <folder>/<song>/vocals.<ext>           required
  <folder>/<song>/accompaniment.<ext>    or any number of other stems (drums.<ext>,
                                         bass.<ext>, guitar.<ext>, ...), summed into
                                         the accompaniment; not both
  <folder>/<song>/mixture.<ext>          optional; without it the mixture is
                                         vocals + accompaniment

A stem's name is its file name without the extension, in any case. Every stem that is
not `vocals`, `accompaniment` or `mixture` counts as accompaniment, so backing vocals
belong in vocals.<ext>, and a stem named like the whole mix (MIX_NAMES) is refused. A
given mixture is the model's input (as MUSDB18's mixture stream) and must be the
stems' sum within MIXTURE_TOLERANCE relative error on the mono downmixes
(||mixture - (vocals + accompaniment)|| / ||mixture||; MUSDB18's own test songs reach
0.17, a mixture of another song or shifted in time about 1.4).

Unpaired recordings (vocals alone, accompaniment alone, whole mixes without stems) are
folders searched recursively, every audio file one recording of any length, in order
of their paths.

Formats: whatever `audio.io.read_audio` decodes (AUDIO_EXTENSIONS: wav/flac/ogg with
soundfile, the others with ffmpeg), at any rate and channel count; training downmixes
to mono and resamples to the spectrogram rate as for MUSDB18. Files with other
extensions are skipped and listed (`Listing.ignored`), hidden files and folders
(".name") silently.

Checks, each failing with a message that names the setting (`config.SettingError`) and
the file or folder: a folder that is missing or holds no songs (no recordings), audio
files lying directly in a paired folder, a song without vocals or without accompaniment
stems, two files for one stem, a file that does not decode, stems of one song at
different sample rates, channel counts other than 1 and the song's largest (mono stems are copied to
every channel), lengths differing by more than LENGTH_TOLERANCE_SECONDS (up to that,
encoders' padding, the song is cut to its shortest stem), a silent stem or recording
(RMS below SILENCE_DBFS: delete a stem the song does not have), and a mixture that is
not the stems' sum.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from tf_factorgan.audio import io as audio_io
from tf_factorgan.audio import spectrogram, windows
from tf_factorgan.config import SettingError, SettingPathError, named
from tf_factorgan.data import musdb, spectrogram_cache

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".aac", ".opus",
                    ".aif", ".aiff", ".wma")
# Stem names that mean the whole mix rather than part of the accompaniment.
MIX_NAMES = frozenset({"mix", "master", "full", "full_mix", "fullmix", "song", "mixdown"})
MIXTURE, ACCOMPANIMENT, VOCALS = "mixture", windows.ACCOMPANIMENT, windows.VOCALS
# Stems of one song may differ this much in length: mp3 and AAC encoders pad each file
# to whole frames and add their own delay (up to about 50 ms at 44.1 kHz).
LENGTH_TOLERANCE_SECONDS = 0.1
# A stem or recording whose RMS over all samples and channels lies below this is
# silent (16-bit dither alone is about -95 dBFS).
SILENCE_DBFS = -80.0
MIXTURE_TOLERANCE = 0.5
SPECTROGRAM_SOURCES = musdb.SOURCES  # mixture, accompaniment, vocals


@dataclasses.dataclass(frozen=True)
class SongFolder:
    """One song's files: vocals, the accompaniment stems (summed; one file when the
    song has accompaniment.<ext>) and the mixture (None: the stems' sum)."""

    name: str
    folder: str
    vocals: str
    accompaniment: tuple
    mixture: Optional[str]
    setting: str

    def inputs(self) -> list[str]:
        """Every file, in the order of the cache key."""
        return [self.vocals, *self.accompaniment, *([self.mixture] if self.mixture else [])]

    def recipe(self) -> str:
        mixture = "the mixture file" if self.mixture else "vocals + accompaniment"
        return (f"song folder: vocals file; accompaniment = sum of {len(self.accompaniment)} "
                f"stem files; mixture = {mixture}; lengths within {LENGTH_TOLERANCE_SECONDS} s "
                f"cut to the shortest; silence below {SILENCE_DBFS} dBFS refused; mixture "
                f"within {MIXTURE_TOLERANCE} of the sum")


@dataclasses.dataclass(frozen=True)
class Listing:
    """What a folder holds: items (SongFolders or recording paths, sorted) and the
    files skipped for their extension (paths relative to the folder)."""

    items: list
    ignored: list

    def ignored_note(self, setting: str, shown: int = 5) -> str:
        """One line naming the skipped files ('' when none), printed for the command line:
        the setting `setting` names (a template's `{name}`) as its flag."""
        if not self.ignored:
            return ""
        names = ", ".join(self.ignored[:shown]) + (", ..." if len(self.ignored) > shown else "")
        return (f"{named(setting, '--')}: skipped {len(self.ignored)} file(s) whose extension is "
                f"not one of {' '.join(AUDIO_EXTENSIONS)}: {names}")


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def _visible(names) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def _check_folder(folder: str, setting: str, what: str) -> None:
    if not folder:
        raise SettingError(f"{setting} is empty; give a folder of {what}")
    if not os.path.isdir(folder):
        raise SettingPathError(f"{setting} folder {folder!r} does not exist (expected a folder of {what})")


SONG_LAYOUT = ("<folder>/<song>/vocals.<ext> plus accompaniment.<ext> or other stems "
               "(drums.<ext>, bass.<ext>, ...), optionally mixture.<ext>")


def _song_folder(root: str, name: str, setting: str, ignored: list) -> SongFolder:
    folder = os.path.join(root, name)
    stems = {}  # stem name -> path
    for entry in _visible(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) or not _is_audio(entry):
            ignored.append(os.path.join(name, entry))
            continue
        if entry.lower().endswith(".stem.mp4"):
            raise SettingError(
                f"{setting}: {path!r} is a multi-stream .stem.mp4 (MUSDB18's format); train on "
                f"such tracks with {{musdb_root}}, or unpack the stems into separate files")
        stem = os.path.splitext(entry)[0].lower()
        if stem in stems:
            raise SettingError(f"{setting}: song folder {folder!r} has two files for stem {stem!r}: "
                             f"{os.path.basename(stems[stem])} and {entry}; keep one")
        stems[stem] = path
    found = ", ".join(os.path.basename(p) for p in stems.values()) or "no audio files"
    if VOCALS not in stems:
        raise SettingError(f"{setting}: song folder {folder!r} has no vocals.<ext> (found: {found}); "
                         f"expected {SONG_LAYOUT}")
    vocals, mixture = stems.pop(VOCALS), stems.pop(MIXTURE, None)
    if ACCOMPANIMENT in stems and len(stems) > 1:
        others = ", ".join(os.path.basename(p) for s, p in stems.items() if s != ACCOMPANIMENT)
        raise SettingError(f"{setting}: song folder {folder!r} has accompaniment.<ext> and other stems "
                         f"({others}); give either the accompaniment or the stems it is the sum of")
    if not stems:
        raise SettingError(f"{setting}: song folder {folder!r} has no accompaniment stems (found: "
                         f"{found}); expected {SONG_LAYOUT}")
    mix_like = sorted(set(stems) & MIX_NAMES)
    if mix_like:
        # Summed into the accompaniment, a whole mix would put the vocals in it.
        raise SettingError(f"{setting}: song folder {folder!r} has a stem named "
                         f"{os.path.basename(stems[mix_like[0]])}, which sounds like the whole "
                         f"mix: name it mixture.<ext> (every other stem is summed into the "
                         f"accompaniment)")
    return SongFolder(name, folder, vocals, tuple(stems.values()), mixture, setting)


def list_songs(root: str, setting: str) -> Listing:
    """The song folders of `root` (see the module docstring), sorted by name."""
    _check_folder(root, setting, "song folders")
    entries = _visible(os.listdir(root))
    loose = [e for e in entries if _is_audio(e) and os.path.isfile(os.path.join(root, e))]
    if loose:
        raise SettingError(
            f"{setting} folder {root!r} holds audio files directly ({', '.join(loose[:3])}); put "
            f"each song's stems in a sub-folder of its own: {SONG_LAYOUT}")
    ignored = [e for e in entries if not os.path.isdir(os.path.join(root, e))]
    songs = [_song_folder(root, e, setting, ignored) for e in entries if os.path.isdir(os.path.join(root, e))]
    if not songs:
        raise SettingError(f"{setting} folder {root!r} holds no song folders; expected {SONG_LAYOUT}")
    return Listing(songs, ignored)


def list_recordings(root: str, setting: str) -> Listing:
    """Every audio file under `root`, recursively, sorted by path."""
    _check_folder(root, setting, "recordings")
    recordings, ignored = [], []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = _visible(subfolders)
        for name in _visible(names):
            path = os.path.join(folder, name)
            if name.lower().endswith(".stem.mp4"):
                # Only its first stream, the mixture, would be read.
                raise SettingError(
                    f"{setting}: {path!r} is a multi-stream .stem.mp4 (MUSDB18's format), of "
                    f"which only the mixture would be read; unpack the stem you mean")
            (recordings if _is_audio(name) else ignored).append(path)
    recordings.sort()
    ignored = sorted(os.path.relpath(p, root) for p in ignored)
    if not recordings:
        extra = f" ({len(ignored)} file(s) of other types skipped)" if ignored else ""
        raise SettingError(f"{setting} folder {root!r} holds no audio files{extra}; expected "
                         f"recordings with one of the extensions {' '.join(AUDIO_EXTENSIONS)}")
    return Listing(recordings, ignored)


# --- decoding and checks ------------------------------------------------------------


def _read(path: str, setting: str) -> tuple[np.ndarray, int]:
    try:
        return audio_io.read_audio(path)
    except (ValueError, FileNotFoundError) as error:
        raise SettingError(f"{setting}: {error}") from error


def _check_not_silent(audio: np.ndarray, what: str) -> None:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms < 10 ** (SILENCE_DBFS / 20):
        level = f"{20 * np.log10(rms):.1f} dBFS" if rms > 0 else "all zeros"
        raise SettingError(f"{what} is silent (RMS {level}, below {SILENCE_DBFS:g} dBFS); remove it "
                         f"if the song has no such part, or fix the export")


def decode_song(song: SongFolder) -> tuple[dict, int]:
    """A song's audio after the checks of the module docstring: ({mixture,
    accompaniment, vocals} -> float32 [samples, channels], one shape), rate."""
    setting = song.setting
    decoded = {path: _read(path, setting) for path in song.inputs()}
    rates = {path: rate for path, (_, rate) in decoded.items()}
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{os.path.basename(p)} {r} Hz" for p, r in rates.items())
        raise SettingError(f"{setting}: the stems of song {song.folder!r} have different sample rates "
                         f"({listed}); resample them to one rate")
    (rate,) = set(rates.values())
    channels = max(audio.shape[1] for audio, _ in decoded.values())
    lengths = {path: audio.shape[0] for path, (audio, _) in decoded.items()}
    for path, (audio, _) in decoded.items():
        if audio.shape[1] not in (1, channels):
            raise SettingError(f"{setting}: {path!r} has {audio.shape[1]} channels, another stem of the "
                             f"song {channels}; give every stem 1 or {channels}")
    if max(lengths.values()) - min(lengths.values()) > LENGTH_TOLERANCE_SECONDS * rate:
        listed = ", ".join(f"{os.path.basename(p)} {n / rate:.3f} s" for p, n in lengths.items())
        raise SettingError(f"{setting}: the stems of song {song.folder!r} differ in length by more than "
                         f"{LENGTH_TOLERANCE_SECONDS:g} s ({listed}); they must start together and "
                         f"last equally long")
    length = min(lengths.values())
    audio = {}
    for path, (samples, _) in decoded.items():
        _check_not_silent(samples, f"{setting}: stem {os.path.basename(path)!r} of song {song.name!r} ({path})")
        audio[path] = np.broadcast_to(samples[:length], (length, channels)).astype(np.float32)
    vocals = audio[song.vocals]
    accompaniment = np.sum([audio[p] for p in song.accompaniment], axis=0, dtype=np.float32)
    total = vocals + accompaniment
    if song.mixture is None:
        mixture = total
    else:
        mixture = audio[song.mixture]
        # On the mono downmixes training sees: a mono mixture of panned stems is fine.
        mono_mixture, mono_total = mixture.mean(axis=1), total.mean(axis=1)
        error = float(np.linalg.norm(mono_mixture - mono_total) / np.linalg.norm(mono_mixture))
        if error > MIXTURE_TOLERANCE:
            raise SettingError(
                f"{setting}: {song.mixture!r} is not the sum of the song's stems (relative error "
                f"{error:.2f}, more than {MIXTURE_TOLERANCE}); check that the files belong to one "
                f"song and start together, or delete the mixture to train on the stems' sum")
    return {MIXTURE: mixture, ACCOMPANIMENT: accompaniment, VOCALS: vocals}, rate


def song_spectrograms(cache: spectrogram_cache.SpectrogramCache, song: SongFolder) -> dict:
    """{mixture, accompaniment, vocals} -> float32 [frames, bins] of a song, through
    the cache (decoded and checked only on a miss)."""

    def compute():
        audio, rate = decode_song(song)
        return musdb.spectrograms_from_audio(audio, rate, cache.settings)

    return cache.load_or_compute(song.recipe(), song.inputs(), SPECTROGRAM_SOURCES, compute)


RECORDING_RECIPE = f"single recording; silence below {SILENCE_DBFS} dBFS refused"


def recording_spectrogram(cache: spectrogram_cache.SpectrogramCache, path: str, setting: str) -> np.ndarray:
    """float32 [frames, bins] of one unpaired recording, through the cache."""

    def compute():
        audio, rate = _read(path, setting)
        _check_not_silent(audio, f"{setting}: recording {path!r}")
        return musdb.spectrograms_from_audio({"recording": audio}, rate, cache.settings)

    return cache.load_or_compute(RECORDING_RECIPE, [path], ("recording",), compute)["recording"]


def spectrogram_seconds(frames: int, settings: spectrogram.SpectrogramSettings) -> float:
    """The audio a spectrogram of `frames` frames covers (within one hop)."""
    return frames * settings.hop / settings.sample_rate
