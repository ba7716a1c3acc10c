"""Audio from the user's own folders (`data/song_folders.py`) into the audio experiment.

Songs are 2-3 s of synthetic tones and noise at 8 or 16 kHz, mono and stereo, wav and
flac, written with soundfile into temporary folders.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from tests.conftest import REPO_ROOT
from tf_factorgan import gan
from tf_factorgan.data import song_folders, sources, spectrogram_cache
from tf_factorgan.experiments import audio_separation

FLAG = "--paired_songs_dir"
TINY = dict(ngf=2, disc_channels=2, batch_size=2, steps=1, steps_per_call=1, log_every=1,
            image_every=1, checkpoint_every=1, snippet_stride=128, max_eval_songs=1)


def _signal(seconds, rate, channels, freq, seed, amplitude=0.2):
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    tone = amplitude * np.sin(2 * np.pi * freq * t)[:, None] * np.linspace(1, 0.5, channels)
    return (tone + 0.02 * rng.standard_normal((len(t), channels))).astype(np.float32)


def _write(path, audio, rate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(str(path), audio, rate, subtype="FLOAT" if str(path).endswith(".wav") else "PCM_16")


def _song(folder, rate=16000, seconds=2.0, channels=2, stems=("accompaniment",), mixture=False,
          ext=".wav", seed=0):
    """vocals + `stems` (written as given), the mixture their sum; returns the audio."""
    audio = {"vocals": _signal(seconds, rate, channels, 440, seed)}
    for i, stem in enumerate(stems):
        audio[stem] = _signal(seconds, rate, channels, 110 * (i + 1), seed + i + 1)
    for stem, samples in audio.items():
        _write(os.path.join(folder, stem + ext), samples, rate)
    if mixture:
        _write(os.path.join(folder, "mixture" + ext), sum(audio.values()), rate)
    return audio


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """paired/ (2 songs: stereo 16 kHz stems incl. flac and a mono bass, with mixture;
    mono 8 kHz, accompaniment file), unpaired vocals (nested), accompaniment and
    mixtures, and test/ (1 song)."""
    root = tmp_path_factory.mktemp("own_data")
    song_a = _song(root / "paired" / "Song A", stems=("drums",), mixture=True, seconds=3.0)
    bass = _signal(3.0, 16000, 1, 55, 9)
    soundfile.write(str(root / "paired" / "Song A" / "bass.flac"), bass, 16000)
    _write(root / "paired" / "Song A" / "mixture.wav", song_a["vocals"] + song_a["drums"] + bass, 16000)
    (root / "paired" / "Song A" / "notes.txt").write_text("not audio")
    (root / "paired" / ".DS_Store").write_bytes(b"hidden")
    _song(root / "paired" / "Song B", rate=8000, channels=1, seed=3)
    _write(root / "vocals" / "take 1" / "lead.wav", _signal(3.0, 16000, 2, 330, 4), 16000)
    _write(root / "vocals" / "solo.flac", _signal(2.0, 8000, 1, 660, 5), 8000)
    _write(root / "accompaniment" / "backing.wav", _signal(2.0, 16000, 2, 220, 6), 16000)
    _write(root / "mixtures" / "mix.wav", _signal(2.0, 16000, 2, 250, 7), 16000)
    _song(root / "test" / "Song T", stems=("accompaniment",), mixture=True, seed=8)
    return root


def _folder_config(folders, tmp_path, **kw):
    return audio_separation.AudioSeparationConfig(
        paired_songs_dir=str(folders / "paired"), unpaired_vocals_dir=str(folders / "vocals"),
        unpaired_accompaniment_dir=str(folders / "accompaniment"),
        unpaired_mixtures_dir=str(folders / "mixtures"), test_songs_dir=str(folders / "test"),
        out_path=str(tmp_path), **dict(TINY, **kw))


@pytest.fixture(scope="module")
def data(folders, tmp_path_factory):
    config = _folder_config(folders, tmp_path_factory.mktemp("run"),
                            cache_dir=str(folders / "cache"))
    return audio_separation.load_data(config)


def test_folders_are_listed_with_stems_summed_and_other_files_skipped(folders):
    listing = song_folders.list_songs(str(folders / "paired"), FLAG)
    song_a, song_b = listing.items
    assert (song_a.name, song_b.name) == ("Song A", "Song B")
    assert [os.path.basename(p) for p in song_a.accompaniment] == ["bass.flac", "drums.wav"]
    assert song_a.mixture.endswith("mixture.wav") and song_b.mixture is None
    assert listing.ignored == ["Song A/notes.txt"]
    assert "skipped 1 file(s)" in listing.ignored_note(FLAG) and "notes.txt" in listing.ignored_note(FLAG)
    vocals = song_folders.list_recordings(str(folders / "vocals"), "--unpaired_vocals_dir").items
    assert [os.path.relpath(p, folders / "vocals") for p in vocals] == ["solo.flac", "take 1/lead.wav"]

    audio, rate = song_folders.decode_song(song_a)
    assert rate == 16000 and {a.shape for a in audio.values()} == {(48000, 2)}
    drums, _ = soundfile.read(song_a.accompaniment[1], dtype="float32")
    bass, _ = soundfile.read(song_a.accompaniment[0], dtype="float32")
    # The mono bass is copied to both channels, then summed with the drums.
    np.testing.assert_allclose(audio["accompaniment"], drums + bass[:, None], atol=1e-6)
    audio, rate = song_folders.decode_song(song_b)
    assert rate == 8000 and audio["mixture"].shape == (16000, 1)
    np.testing.assert_allclose(audio["mixture"], audio["vocals"] + audio["accompaniment"])


def _bad_song(root, problem):
    """A folder of one song with `problem`; returns the folder of songs."""
    song = root / "songs" / "Bad Song"
    if problem == "loose file":
        _write(root / "songs" / "vocals.wav", _signal(1.0, 8000, 1, 440, 0), 8000)
    elif problem == "no vocals":
        _write(song / "drums.wav", _signal(1.0, 8000, 1, 110, 0), 8000)
    elif problem == "no accompaniment":
        _song(song, rate=8000, stems=(), mixture=True)
    elif problem == "both":
        _song(song, rate=8000, stems=("accompaniment", "drums"))
    elif problem == "twice":
        _song(song, rate=8000)
        _write(song / "Vocals.flac", _signal(1.0, 8000, 1, 440, 0), 8000)
    elif problem == "stem.mp4":
        _song(song, rate=8000)
        (song / "track.stem.mp4").write_bytes(b"")
    elif problem == "named mix":
        _song(song, rate=8000, stems=("instrumental", "mix"))
    return str(root / "songs")


@pytest.mark.parametrize("problem, message", [
    ("loose file", r"holds audio files directly \(vocals.wav\); put each song's stems in a sub-folder"),
    ("no vocals", r"Bad Song' has no vocals.<ext> \(found: drums.wav\)"),
    ("no accompaniment", r"Bad Song' has no accompaniment stems \(found: mixture.wav, vocals.wav\)"),
    ("both", r"has accompaniment.<ext> and other stems \(drums.wav\)"),
    ("twice", r"has two files for stem 'vocals': Vocals.flac and vocals.wav"),
    ("stem.mp4", r"track.stem.mp4' is a multi-stream .stem.mp4"),
    ("named mix", r"has a stem named mix.wav, which sounds like the whole mix: name it mixture"),
])
def test_bad_layouts_name_the_flag_and_the_folder(tmp_path, problem, message):
    songs = _bad_song(tmp_path, problem)
    with pytest.raises(ValueError, match=message) as info:
        song_folders.list_songs(songs, FLAG)
    assert str(info.value).startswith(FLAG) and songs in str(info.value)


def test_a_stem_mp4_among_unpaired_recordings_is_refused(tmp_path):
    _write(tmp_path / "vocals" / "take.wav", _signal(1.0, 8000, 1, 440, 0), 8000)
    (tmp_path / "vocals" / "song.stem.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match=r"--unpaired_vocals_dir: '.*song.stem.mp4' is a multi-stream"):
        song_folders.list_recordings(str(tmp_path / "vocals"), "--unpaired_vocals_dir")


def test_a_mono_mixture_of_panned_stems_is_their_sum(tmp_path):
    song = tmp_path / "songs" / "Panned"
    t = np.arange(8000) / 8000
    vocals = 0.2 * np.sin(2 * np.pi * 440 * t)[:, None] * np.array([1.0, 0.3], np.float32)
    accompaniment = 0.2 * np.sin(2 * np.pi * 110 * t)[:, None] * np.array([0.3, 1.0], np.float32)
    _write(song / "vocals.wav", vocals.astype(np.float32), 8000)
    _write(song / "accompaniment.wav", accompaniment.astype(np.float32), 8000)
    _write(song / "mixture.wav", (vocals + accompaniment).mean(axis=1, keepdims=True).astype(np.float32), 8000)
    (listed,) = song_folders.list_songs(str(tmp_path / "songs"), FLAG).items
    audio, _ = song_folders.decode_song(listed)
    assert audio["mixture"].shape == (8000, 2)


def test_empty_or_missing_folders_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    with pytest.raises(ValueError, match=r"--paired_songs_dir folder '.*empty' holds no song folders"):
        song_folders.list_songs(str(tmp_path / "empty"), FLAG)
    with pytest.raises(ValueError, match=r"--unpaired_vocals_dir folder '.*empty' holds no audio files "
                                         r"\(1 file\(s\) of other types skipped\)"):
        song_folders.list_recordings(str(tmp_path / "empty"), "--unpaired_vocals_dir")
    with pytest.raises(FileNotFoundError, match=r"--test_songs_dir folder '.*nowhere' does not exist"):
        song_folders.list_songs(str(tmp_path / "nowhere"), "--test_songs_dir")


def _decode_problem(song, problem):
    if problem == "unreadable":
        (song / "accompaniment.wav").write_bytes(b"RIFF0000WAVEnot really")
    elif problem == "rates":
        _write(song / "accompaniment.wav", _signal(1.0, 16000, 1, 110, 1), 16000)
    elif problem == "lengths":
        _write(song / "accompaniment.wav", _signal(1.2, 8000, 1, 110, 1), 8000)
    elif problem == "channels":
        _write(song / "accompaniment.wav", _signal(1.0, 8000, 3, 110, 1), 8000)
        _write(song / "vocals.wav", _signal(1.0, 8000, 2, 440, 0), 8000)
    elif problem == "silent":
        _write(song / "accompaniment.wav", np.full((8000, 1), 1e-5, np.float32), 8000)
    elif problem == "mixture":
        _write(song / "mixture.wav", _signal(1.0, 8000, 1, 1000, 7), 8000)


@pytest.mark.parametrize("problem, message", [
    ("unreadable", r"--paired_songs_dir: cannot decode audio file .*Bad Song/accompaniment.wav"),
    ("rates", r"stems of song '.*Bad Song' have different sample rates \(vocals.wav 8000 Hz, "
              r"accompaniment.wav 16000 Hz\)"),
    ("lengths", r"differ in length by more than 0.1 s \(vocals.wav 1.000 s, accompaniment.wav 1.200 s\)"),
    ("channels", r"vocals.wav' has 2 channels, another stem of the song 3; give every stem 1 or 3"),
    ("silent", r"stem 'accompaniment.wav' of song 'Bad Song' \(.*\) is silent \(RMS -100.0 dBFS"),
    ("mixture", r"mixture.wav' is not the sum of the song's stems \(relative error 1\.\d\d"),
])
def test_bad_audio_is_named_when_decoded(tmp_path, problem, message):
    _song(tmp_path / "songs" / "Bad Song", rate=8000, seconds=1.0, channels=1)
    _decode_problem(tmp_path / "songs" / "Bad Song", problem)
    (song,) = song_folders.list_songs(str(tmp_path / "songs"), FLAG).items
    with pytest.raises(ValueError, match=message) as info:
        song_folders.decode_song(song)
    assert str(info.value).startswith(FLAG)


def test_lengths_within_the_tolerance_are_cut_to_the_shortest_and_silent_recordings_refused(tmp_path):
    _song(tmp_path / "songs" / "Song", rate=8000, seconds=1.0, channels=1)
    _write(tmp_path / "songs" / "Song" / "accompaniment.wav", _signal(1.05, 8000, 1, 110, 1), 8000)
    (song,) = song_folders.list_songs(str(tmp_path / "songs"), FLAG).items
    audio, _ = song_folders.decode_song(song)
    assert {a.shape for a in audio.values()} == {(8000, 1)}
    _write(tmp_path / "quiet" / "silence.wav", np.zeros((8000, 2), np.float32), 8000)
    cache = spectrogram_cache.SpectrogramCache(str(tmp_path / "cache"), audio_separation.SETTINGS)
    with pytest.raises(ValueError, match=r"--unpaired_vocals_dir: recording '.*silence.wav' is "
                                         r"silent \(RMS all zeros"):
        song_folders.recording_spectrogram(cache, str(tmp_path / "quiet" / "silence.wav"), "--unpaired_vocals_dir")


def test_cache_is_keyed_on_the_bytes_of_the_files(tmp_path, monkeypatch):
    decodes, hashes = [], []
    decode, hash_file = song_folders.decode_song, spectrogram_cache._hash_file
    monkeypatch.setattr(song_folders, "decode_song", lambda song: decodes.append(song.name) or decode(song))
    monkeypatch.setattr(spectrogram_cache, "_hash_file", lambda path: hashes.append(path) or hash_file(path))
    _song(tmp_path / "songs" / "Song", rate=8000, seconds=1.0, channels=1, stems=("drums", "bass"))

    def spectrograms(folder="songs"):
        # A fresh cache object each time: what a new run finds on disk.
        cache = spectrogram_cache.SpectrogramCache(str(tmp_path / "cache"), audio_separation.SETTINGS)
        (song,) = song_folders.list_songs(str(tmp_path / folder), FLAG).items
        return song_folders.song_spectrograms(cache, song)

    first = spectrograms()
    assert decodes == ["Song"] and len(hashes) == 3
    np.testing.assert_array_equal(spectrograms()["vocals"], first["vocals"])
    assert decodes == ["Song"] and len(hashes) == 3  # size, inode, mtime, ctime unchanged: no re-hash
    vocals = tmp_path / "songs" / "Song" / "vocals.wav"
    os.utime(vocals, ns=(1, 1))  # touched: hashed again, the same bytes hit
    spectrograms()
    assert decodes == ["Song"] and len(hashes) == 4
    # Other bytes of the same size, and the old mtime put back: ctime still tells.
    status = os.stat(vocals)
    time.sleep(0.05)  # past the kernel's timestamp granularity
    _write(vocals, 0.5 * _signal(1.0, 8000, 1, 440, 0), 8000)
    os.utime(vocals, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert os.path.getsize(vocals) == status.st_size
    changed = spectrograms()
    assert decodes == ["Song", "Song"]
    assert not np.allclose(changed["vocals"], first["vocals"])
    os.rename(tmp_path / "songs", tmp_path / "moved")  # the bytes, not the names, are the key
    spectrograms("moved")
    assert decodes == ["Song", "Song"]
    entries = os.listdir(tmp_path / "cache" / audio_separation.SETTINGS.cache_key())
    assert len(entries) == 2 and all(e.endswith(".npz") and not e.startswith(".tmp") for e in entries)


def test_unpaired_recordings_reach_their_marginal_streams_only(data):
    observations = data.observations
    # Song A: 3 s = 259 frames -> snippets at 0, 128; Song B: 2 s = 173 frames -> 0.
    assert observations.num_paired == 3 and data.paired_songs == ("Song A", "Song B")
    assert observations.summary() == {
        "num_paired": 3, "num_unpaired_mixture": 1, "num_unpaired_accompaniment": 1,
        "num_unpaired_vocals": 3, "paired_fraction_mixture": 3 / 4,
        "paired_fraction_accompaniment": 3 / 4, "paired_fraction_vocals": 3 / 6}
    assert {p.dtype for p in observations.paired + observations.unpaired} == {np.dtype(np.float16)}
    # Each part's paired and unpaired snippets share one array: its marginal pool is a view.
    assert all(np.shares_memory(observations.marginal_pool(i), observations.paired[i]) for i in range(3))
    factorgan = audio_separation.AudioSeparationConfig(variant="factorgan").gan_config()
    streams = gan.model_layout(factorgan, 3).streams
    assert sources.counts_by_stream(observations, streams) == {
        "joint": {"paired": 3, "unpaired": 0},
        "marginal_0": {"paired": 3, "unpaired": 1},  # the generator's inputs
        "marginal_1": {"paired": 3, "unpaired": 1},
        "marginal_2": {"paired": 3, "unpaired": 3}}
    joint = sources.training_streams(observations, streams)["joint"]
    rows = joint.make_gather(0)(np.arange(3)).numpy()
    np.testing.assert_array_equal(rows, np.concatenate(observations.paired, axis=-1).astype(np.float32))
    baseline = audio_separation.AudioSeparationConfig(variant="gan").gan_config()
    assert sources.counts_by_stream(observations, gan.model_layout(baseline, 3).streams) == {
        "joint": {"paired": 3, "unpaired": 0}}
    # Seconds as the spectrograms count them: frames x hop / rate, within one hop.
    expected = {"paired": (2, "song", 5.0), "unpaired_mixture": (1, "recording", 2.0),
                "unpaired_accompaniment": (1, "recording", 2.0),
                "unpaired_vocals": (2, "recording", 5.0), "test": (1, "song", 2.0)}
    assert list(data.durations) == list(expected)
    for source, (count, unit, seconds) in expected.items():
        entry = data.durations[source]
        assert (entry["count"], entry["unit"]) == (count, unit)
        assert seconds <= entry["seconds"] <= seconds + 0.03, source
    assert audio_separation.describe_durations(data.durations).startswith(
        "audio: paired 2 songs 5.0 s, unpaired mixture 1 recording 2.0 s")


def test_folder_flags_do_not_mix_with_musdb():
    with pytest.raises(ValueError, match="unpaired_vocals_dir needs paired_songs_dir"):
        audio_separation.AudioSeparationConfig(unpaired_vocals_dir="v")
    with pytest.raises(ValueError, match="musdb_root applies to MUSDB18, not to paired_songs_dir"):
        audio_separation.AudioSeparationConfig(paired_songs_dir="p", musdb_root="m")
    with pytest.raises(ValueError, match="num_joint_songs applies to MUSDB18"):
        audio_separation.AudioSeparationConfig(paired_songs_dir="p", num_joint_songs=3)


def test_train_from_folders_then_export_and_separate(folders, data, tmp_path):
    """The trainer's command line -> one step -> BSS Eval of the test song -> a
    SavedModel export (which checks itself against the NumPy path) -> separating a
    file as trainers.separate does."""
    from tf_factorgan.export import export, savedmodel
    from tf_factorgan.cli import command

    config = _folder_config(folders, tmp_path, cache_dir=str(folders / "cache"))
    flags = dict(TINY, disc_iter=1, out_path=tmp_path, cache_dir=folders / "cache",
                 paired_songs_dir=folders / "paired", unpaired_vocals_dir=folders / "vocals",
                 unpaired_accompaniment_dir=folders / "accompaniment",
                 unpaired_mixtures_dir=folders / "mixtures", test_songs_dir=folders / "test")
    result = subprocess.run(
        [sys.executable, "-m", "trainers.audio_separation", *(f"--{k}={v}" for k, v in flags.items())],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data: 3 paired samples, 1 unpaired mixture" in result.stdout
    assert "audio: paired 2 songs" in result.stdout
    assert "--paired_songs_dir: skipped 1 file(s)" in result.stdout
    assert "vocals SDR" in result.stdout
    with open(os.path.join(config.run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["data_source"] == "folders" and metrics["num_test_songs"] == 1
    assert metrics["paired_songs"] == ["Song A", "Song B"] and metrics["num_unpaired_vocals"] == 3
    assert metrics["durations"] == data.durations and np.isfinite(metrics["vocals/SDR/median"])
    assert list(metrics["per_song"]) == ["Song T"]

    module = export.build_module(config.run_dir, "separation")
    path = savedmodel.publish(module, str(tmp_path / "exports"), "separation", module.check)
    assert path == str(tmp_path / "exports" / "separation" / "1")
    song = str(folders / "test" / "Song T" / "mixture.wav")
    outputs = audio_separation.separate_file(config.run_dir, song, str(tmp_path / "separated"))
    for source in ("vocals", "accompaniment"):
        audio, rate = soundfile.read(outputs[source])
        assert rate == 16000 and audio.shape == (32000, 2)

    # The trainer ends a bad folder with this one line (run_or_exit, as in main).
    missing = dataclasses.replace(config, paired_songs_dir=str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as info:
        command.run_or_exit(lambda: audio_separation.load_data(missing))
    assert str(info.value) == (f"error: --paired_songs_dir folder '{tmp_path}/nowhere' does not "
                               f"exist (expected a folder of song folders)")
