"""Audio files: decoding WAV with soundfile and other formats with ffmpeg, truncated
and broken files named in the error, float WAVs written exactly, the ffmpeg check."""

import os
import subprocess

import numpy as np
import pytest
import soundfile

from tf_factorgan.audio import io as audio_io

ROCK = os.path.join("train", "Music Delta - 80s Rock.stem.mp4")


@pytest.mark.parametrize("shape", [(1000, 2), (1000,)])
def test_write_then_read_wav_round_trip(tmp_path, shape):
    audio = np.random.default_rng(0).uniform(-1.2, 1.2, shape).astype(np.float32)
    path = str(tmp_path / "out" / "song.wav")
    audio_io.write_audio(path, audio, 16000)
    assert os.listdir(tmp_path / "out") == ["song.wav"]  # no temporary file left
    read, rate = audio_io.read_audio(path)
    assert rate == 16000
    np.testing.assert_array_equal(read, audio.reshape(shape[0], -1))  # float: exact


def test_write_audio_rejects_other_extensions(tmp_path):
    with pytest.raises(ValueError, match="song.mp3"):
        audio_io.write_audio(str(tmp_path / "song.mp3"), np.zeros(10), 16000)


def _pcm_wav_bytes(tmp_path) -> bytes:
    path = str(tmp_path / "full.wav")
    soundfile.write(path, np.zeros((4000, 2)) + 0.1, 16000, subtype="PCM_16")
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "header only"])
def test_broken_wav_files_raise_naming_the_file(tmp_path, kind):
    data = _pcm_wav_bytes(tmp_path)
    content = {
        "truncated": data[: len(data) // 2],
        "garbage": np.random.default_rng(0).bytes(1000),
        "empty": b"",
        "header only": data[:30],
    }[kind]
    path = str(tmp_path / "broken.wav")
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(ValueError, match="broken.wav"):
        audio_io.read_audio(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.wav"):
        audio_io.read_audio(str(tmp_path / "nothing.wav"))


def test_missing_ffmpeg_is_named_with_its_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        audio_io.check_ffmpeg("decoding MUSDB18")
    assert "ffmpeg and ffprobe not found" in str(info.value)
    assert "sudo apt-get install ffmpeg" in str(info.value)
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match="^ffprobe not found"):
        audio_io.check_ffmpeg("decoding MUSDB18")


def test_reading_an_mp3_without_ffmpeg_names_the_file(monkeypatch, tmp_path):
    path = tmp_path / "song.mp3"
    path.write_bytes(b"not decoded")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="decoding .*song.mp3 needs both ffmpeg and ffprobe"):
        audio_io.read_audio(str(path))


# --- MUSDB18 previews (ffmpeg) ----------------------------------------------------


def test_stem_mp4_reads_its_mixture_as_stereo_44k(musdb_dir):
    audio, rate = audio_io.read_audio(os.path.join(musdb_dir, ROCK))
    assert rate == 44100 and audio.ndim == 2 and audio.shape[1] == 2
    assert audio.dtype == np.float32
    assert 6.5 * rate < audio.shape[0] < 7.0 * rate
    assert 0.1 < np.max(np.abs(audio)) <= 1.0


def _assert_truncated_copy_is_named(source: str, cut: str, fraction: int) -> None:
    """Writes the first 1/fraction of `source` to `cut`; reading it must fail naming it."""
    with open(source, "rb") as f:
        data = f.read()
    with open(cut, "wb") as f:
        f.write(data[: len(data) // fraction])
    with pytest.raises(ValueError, match=os.path.basename(cut)):
        audio_io.read_audio(cut)


def test_truncated_stem_mp4_raises_naming_the_file(musdb_dir, tmp_path):
    _assert_truncated_copy_is_named(os.path.join(musdb_dir, ROCK), str(tmp_path / "cut.stem.mp4"), 2)


def test_truncated_mp3_raises_naming_the_file(musdb_dir, tmp_path):
    path = str(tmp_path / "song.mp3")
    encoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", os.path.join(musdb_dir, ROCK),
         "-map", "0:a:0", "-t", "2", path],
        capture_output=True, check=False,
    )
    if encoded.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode mp3: {encoded.stderr.decode()[:200]}")
    audio, rate = audio_io.read_audio(path)
    assert rate == 44100 and audio.shape[1] == 2
    _assert_truncated_copy_is_named(path, str(tmp_path / "cut.mp3"), 3)
