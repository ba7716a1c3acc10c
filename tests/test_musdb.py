import os

import numpy as np
import pytest

from tf_factorgan.audio import spectrogram
from tf_factorgan.data import musdb, spectrogram_cache

SETTINGS = spectrogram.SpectrogramSettings()
TRAIN_TRACK = "Music Delta - 80s Rock"
TEST_TRACK = "The Easton Ellises - Falcon 69"


@pytest.fixture(scope="module")
def decoded(musdb_dir):
    """name -> (track, stems): each preview track decoded once for the whole module."""
    tracks = musdb.list_tracks(musdb_dir, "train") + musdb.list_tracks(musdb_dir, "test")
    return {track.name: (track, musdb.decode_stems(track)) for track in tracks}


@pytest.fixture
def count_decodes(monkeypatch, decoded):
    """Replaces decoding with the module's decoded stems; returns the list of decodes."""
    calls = []

    def fake_decode(track):
        calls.append(track.name)
        return decoded[track.name][1]

    monkeypatch.setattr(musdb, "decode_stems", fake_decode)
    return calls


def test_subsets_list_their_tracks_sorted(musdb_dir):
    train = musdb.list_tracks(musdb_dir, "train")
    test = musdb.list_tracks(musdb_dir, "test")
    assert [t.name for t in train] == [TRAIN_TRACK] and train[0].subset == "train"
    assert [t.name for t in test] == [TEST_TRACK] and test[0].subset == "test"
    with pytest.raises(ValueError, match="subset"):
        musdb.list_tracks(musdb_dir, "valid")


@pytest.mark.parametrize("name, seconds", [(TRAIN_TRACK, 6.8), (TEST_TRACK, 6.08)])
def test_tracks_decode_to_44k_stereo_stems(decoded, name, seconds):
    track, stems = decoded[name]
    assert track.rate == 44100
    assert tuple(stems) == musdb.STEMS
    lengths = {audio.shape for audio in stems.values()}
    assert len(lengths) == 1
    samples, channels = lengths.pop()
    assert channels == 2 and abs(samples / 44100 - seconds) < 0.05
    # AAC decoding may add a few priming samples to what the header says.
    assert abs(samples - track.samples) <= 0.01 * track.samples
    for audio in stems.values():
        assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0


def _mixture_error(stems):
    summed = sum(stems[name] for name in musdb.ACCOMPANIMENT_STEMS) + stems["vocals"]
    return np.linalg.norm(summed - stems["mixture"]) / np.linalg.norm(stems["mixture"])


def test_accompaniment_plus_vocals_approximates_the_mixture(decoded):
    # The data README: ~2.6% relative error for Music Delta, ~17% for Falcon 69.
    assert _mixture_error(decoded[TRAIN_TRACK][1]) < 0.05
    assert 0.10 < _mixture_error(decoded[TEST_TRACK][1]) < 0.25


def test_track_spectrograms_shape_and_range(decoded, count_decodes):
    track, stems = decoded[TRAIN_TRACK]
    specs = musdb.track_spectrograms(track, SETTINGS)
    assert count_decodes == [TRAIN_TRACK]
    frames = -(-(-(-len(stems["mixture"]) // 2)) // 256)  # ceil(ceil(samples / 2) / 256)
    assert frames == 586
    assert tuple(specs) == musdb.SOURCES
    for spec in specs.values():
        assert spec.shape == (frames, 256) and spec.dtype == np.float32
        assert np.all(np.isfinite(spec)) and spec.min() >= 0
    # The accompaniment is built from the stems, not copied from another source.
    assert not np.allclose(specs["accompaniment"], specs["mixture"])
    assert specs["vocals"].mean() < specs["mixture"].mean()


def test_cache_decodes_each_track_once_per_settings(decoded, count_decodes, tmp_path):
    track = decoded[TRAIN_TRACK][0]
    cache = spectrogram_cache.SpectrogramCache(str(tmp_path), SETTINGS)
    first = musdb.cached_track_spectrograms(cache, track)
    again = spectrogram_cache.SpectrogramCache(str(tmp_path), SETTINGS)
    second = musdb.cached_track_spectrograms(again, track)
    assert count_decodes == [TRAIN_TRACK]
    for source in musdb.SOURCES:
        np.testing.assert_array_equal(first[source], second[source])
    # Keyed on the bytes of the track's file: a folder per settings, one entry per track.
    path = cache.path(musdb.track_recipe(track), musdb.track_files(track))
    entry = tmp_path / "sr22050_fft512_hop256" / os.path.basename(path)
    assert path == str(entry) and entry.is_file()
    assert musdb.track_files(track) == [track.path]
    assert sorted(os.listdir(entry.parent)) == [entry.name]  # no temporary left behind

    coarse = spectrogram.SpectrogramSettings(n_fft=1024, hop=512)
    other = musdb.cached_track_spectrograms(spectrogram_cache.SpectrogramCache(str(tmp_path), coarse), track)
    assert count_decodes == [TRAIN_TRACK, TRAIN_TRACK]
    assert other["mixture"].shape == (293, 512)
    assert set(os.listdir(tmp_path)) == {
        "sr22050_fft512_hop256", "sr22050_fft1024_hop512", spectrogram_cache.DIGEST_FOLDER}


def test_unreadable_cache_entry_is_recomputed(decoded, count_decodes, tmp_path):
    track = decoded[TEST_TRACK][0]
    cache = spectrogram_cache.SpectrogramCache(str(tmp_path), SETTINGS)
    expected = musdb.cached_track_spectrograms(cache, track)
    with open(cache.path(musdb.track_recipe(track), musdb.track_files(track)), "wb") as f:
        f.write(b"not a zip file")
    again = musdb.cached_track_spectrograms(cache, track)
    assert count_decodes == [TEST_TRACK, TEST_TRACK]
    np.testing.assert_array_equal(again["vocals"], expected["vocals"])
    musdb.cached_track_spectrograms(cache, track)
    assert len(count_decodes) == 2


def test_cache_entry_of_other_bytes_is_recomputed(decoded, count_decodes, tmp_path, monkeypatch):
    track = decoded[TEST_TRACK][0]
    cache = spectrogram_cache.SpectrogramCache(str(tmp_path), SETTINGS)
    musdb.cached_track_spectrograms(cache, track)
    # e.g. the same name, re-encoded (the file-level tests are in test_song_folders.py)
    monkeypatch.setattr(cache, "file_digest", lambda path: "another file")
    musdb.cached_track_spectrograms(cache, track)
    musdb.cached_track_spectrograms(cache, track)
    assert count_decodes == [TEST_TRACK, TEST_TRACK]


def test_preview_track_snippets(decoded, count_decodes):
    specs = musdb.track_spectrograms(decoded[TRAIN_TRACK][0], SETTINGS)
    assert musdb.snippet_starts(586) == [0, 64, 128, 192, 256, 320, 384, 448]
    snippets = musdb.make_snippets([specs])
    assert len(snippets) == 8
    for source in musdb.SOURCES:
        images = getattr(snippets, source)
        assert images.shape == (8, 256, 128, 1) and images.dtype == np.float32
        np.testing.assert_array_equal(images[3, :, :, 0], specs[source][192:320].T)
    np.testing.assert_array_equal(snippets.song_index, np.zeros(8))


def _song(frames, value, bins=4):
    return {source: np.full([frames, bins], value, np.float32) for source in musdb.SOURCES}


def test_short_song_gives_one_zero_padded_snippet():
    assert musdb.snippet_starts(50) == [0] and musdb.snippet_starts(128) == [0]
    assert musdb.snippet_starts(129) == [0] and musdb.snippet_starts(192) == [0, 64]
    snippets = musdb.make_snippets([_song(50, 1.0), _song(200, 2.0)])
    assert snippets.vocals.shape == (3, 4, 128, 1)
    np.testing.assert_array_equal(snippets.song_index, [0, 1, 1])
    np.testing.assert_array_equal(snippets.mixture[0, :, :50], 1.0)
    np.testing.assert_array_equal(snippets.mixture[0, :, 50:], 0.0)


def test_snippets_refuse_sources_of_different_lengths():
    song = _song(200, 1.0)
    song["vocals"] = song["vocals"][:100]
    with pytest.raises(ValueError, match="song 0"):
        musdb.make_snippets([song])


def test_split_songs_is_seeded_and_nested():
    paired, everything = musdb.split_songs(100, 10, seed=3)
    assert len(paired) == 10 and everything == list(range(100))
    assert paired == sorted(paired) and set(paired) <= set(everything)
    assert musdb.split_songs(100, 10, seed=3)[0] == paired
    assert musdb.split_songs(100, 10, seed=4)[0] != paired
    assert set(paired) <= set(musdb.split_songs(100, 20, seed=3)[0])
    for bad in (0, 101):
        with pytest.raises(ValueError, match="num_joint_songs"):
            musdb.split_songs(100, bad, seed=3)


def test_wrong_layout_names_root_flag_and_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        musdb.check_layout(str(tmp_path), setting="{musdb_dir}")
    message = str(info.value)
    assert str(tmp_path) in message and "(from musdb_dir)" in message
    assert "(from --musdb_dir)" in info.value.as_flags()
    assert "<root>/train/*.stem.mp4" in message and "sigsep.github.io" in message
    assert "musdb18_sample" in message


def test_wav_layout_names_missing_stem_files(tmp_path):
    for subset in musdb.SUBSETS:
        track = tmp_path / subset / "Artist - Song"
        track.mkdir(parents=True)
        for stem in musdb.STEMS:
            (track / f"{stem}.wav").write_bytes(b"")
    os.remove(tmp_path / "test" / "Artist - Song" / "bass.wav")
    musdb.check_layout(str(tmp_path), is_wav=True, subsets=("train",))
    with pytest.raises(FileNotFoundError, match=r"test/Artist - Song/ without bass\.wav"):
        musdb.check_layout(str(tmp_path), is_wav=True)


def test_listing_tracks_without_ffmpeg_says_musdb_needs_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="decoding MUSDB18 needs both ffmpeg and ffprobe"):
        musdb.list_tracks(str(tmp_path), "train")


def _cut_copy(musdb_dir, tmp_path, subset, keep):
    """A copy of the training preview under tmp_path/<subset>/ keeping `keep` bytes
    (a slice object); the other subset gets an intact copy."""
    source = os.path.join(musdb_dir, "train", f"{TRAIN_TRACK}.stem.mp4")
    with open(source, "rb") as f:
        data = f.read()
    for name in musdb.SUBSETS:
        (tmp_path / name).mkdir()
        cut = data[keep] if name == subset else data
        (tmp_path / name / "Cut - Song.stem.mp4").write_bytes(cut)
    return str(tmp_path / subset / "Cut - Song.stem.mp4")


def test_truncated_track_is_named(musdb_dir, tmp_path):
    # The header survives, so listing works; decoding stops early.
    path = _cut_copy(musdb_dir, tmp_path, "train", slice(None, 500_000))
    (track,) = musdb.list_tracks(str(tmp_path), "train")
    with pytest.raises(musdb.DecodeError) as info:
        musdb.decode_stems(track)
    assert path in str(info.value)


def test_unreadable_track_is_named(musdb_dir, tmp_path):
    # Without its header ffprobe cannot read the file, which fails the listing.
    path = _cut_copy(musdb_dir, tmp_path, "test", slice(-600_000, None))
    with pytest.raises(musdb.DecodeError, match="ffprobe cannot read") as info:
        musdb.list_tracks(str(tmp_path), "test")
    assert path in str(info.value)


def test_wav_layout_tracks_decode_and_sum_the_accompaniment(ffmpeg, tmp_path):
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(22050) / 44100
    stems = {
        "drums": 0.1 * rng.standard_normal([22050, 2]).clip(-2, 2),
        "bass": np.stack([0.2 * np.sin(2 * np.pi * 110 * t)] * 2, axis=1),
        "other": np.stack([0.1 * np.sin(2 * np.pi * 880 * t), np.zeros_like(t)], axis=1),
        "vocals": np.stack([0.1 * np.sin(2 * np.pi * 440 * t)] * 2, axis=1),
    }  # peaks below 0.6, so the 16-bit mixture does not clip
    stems["mixture"] = sum(stems.values())
    for subset in musdb.SUBSETS:
        folder = tmp_path / subset / "Synth - Tones"
        folder.mkdir(parents=True)
        for name, audio in stems.items():
            soundfile.write(str(folder / f"{name}.wav"), audio, 44100, subtype="PCM_16")
    (track,) = musdb.list_tracks(str(tmp_path), "test", is_wav=True)
    decoded = musdb.decode_stems(track)
    for name in musdb.STEMS:
        np.testing.assert_allclose(decoded[name], stems[name], atol=1e-4)
    specs = musdb.track_spectrograms(track, SETTINGS)
    accompaniment = sum(decoded[name] for name in musdb.ACCOMPANIMENT_STEMS)
    expected = musdb.spectrograms_from_audio({"accompaniment": accompaniment}, 44100, SETTINGS)
    np.testing.assert_allclose(specs["accompaniment"], expected["accompaniment"], atol=1e-5)
    assert specs["vocals"].shape == (-(-11025 // 256), 256)
