"""Audio files: decoding any format soundfile or ffmpeg reads, writing float WAVs.

WAV, FLAC and OGG are decoded by soundfile (libsndfile); everything else (mp3, mp4,
MUSDB18's .stem.mp4) by ffmpeg, with ffprobe for the container's declared duration.
Neither decoder reliably reports a cut-off file, so both paths compare the decoded
length with the declared one and name the file when it is short. `check_ffmpeg` names
the missing tools and the package that installs them.
"""

import json
import os
import shutil
import subprocess
from io import BytesIO

import numpy as np
import soundfile

from tf_factorgan import files

FFMPEG_TOOLS = ("ffmpeg", "ffprobe")
# Containers soundfile (libsndfile) decodes itself; everything else goes to ffmpeg.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg")
# A file decoded this much shorter than its container declares is reported as
# truncated (the larger of the two counts). AAC priming and encoder padding let the
# two differ a little in whole files.
TRUNCATION_TOLERANCE = 0.01
TRUNCATION_MIN_SECONDS = 0.1
# libsndfile's and ffmpeg's marker for "length unknown" in a streamed WAV header.
_STREAMED_WAV_SIZES = (0, 0xFFFFFFFF)


def check_ffmpeg(needed_for: str) -> None:
    """Fails naming the missing tools when ffmpeg or ffprobe is not on PATH.

    `needed_for` says what needs them ("decoding MUSDB18"), completing "... needs both
    ffmpeg and ffprobe" in the message.
    """
    missing = [tool for tool in FFMPEG_TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found on PATH; {needed_for} needs both "
            f"ffmpeg and ffprobe. Install them with: sudo apt-get install ffmpeg "
            f"(Debian/Ubuntu package 'ffmpeg')"
        )


def check_rate(rate) -> None:
    """Fails unless `rate` is a positive whole number of Hz (an int or integral float)."""
    if int(rate) != rate or rate < 1:
        raise ValueError(f"sample rate must be a positive whole number of Hz, got {rate!r}")


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """Decodes an audio file -> (float32 [samples, channels], sample rate in Hz).

    WAV, FLAC and OGG are read with soundfile; anything else (mp3, mp4, the first
    audio stream of a MUSDB18 .stem.mp4, i.e. the mixture) is decoded by ffmpeg to a
    float32 WAV in memory. Samples are in [-1, 1] for integer sources; rate and channel
    count are the file's own (a mono file gives [samples, 1]).

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: naming `path`, when the file cannot be decoded, is truncated or holds
        no samples.
      RuntimeError: a file for ffmpeg when ffmpeg or ffprobe is not installed.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio file {path} does not exist")
    if path.lower().endswith(SOUNDFILE_EXTENSIONS):
        audio, rate = _read_with_soundfile(path)
    else:
        audio, rate = _read_with_ffmpeg(path)
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise ValueError(f"audio file {path} holds no samples (shape {audio.shape})")
    return audio, rate


def _read_with_soundfile(path: str) -> tuple[np.ndarray, int]:
    try:
        with soundfile.SoundFile(path) as f:
            _check_wav_not_truncated(path, f)
            expected = f.frames
            audio = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"cannot decode audio file {path}: {error}") from error
    # FLAC/OGG headers declare a length; a cut-off file decodes fewer frames.
    if audio.shape[0] != expected:
        raise ValueError(
            f"audio file {path} is truncated: header declares {expected} frames, "
            f"decoded {audio.shape[0]}"
        )
    return audio, rate


def _check_wav_not_truncated(path: str, f: soundfile.SoundFile) -> None:
    """libsndfile reads a cut-off WAV without complaint, shortening it to the bytes
    present; its header log ("data : 40000 (should be 19978)") gives it away."""
    if f.format != "WAV":
        return
    for line in f.extra_info.splitlines():
        parts = line.replace("(", " ").replace(")", " ").split()
        # ["data", ":", declared, "should", "be", present]
        if len(parts) == 6 and parts[0] == "data" and parts[3:5] == ["should", "be"]:
            try:
                declared, present = int(parts[2]), int(parts[5])
            except ValueError:  # a log format this check does not know
                continue
            if declared not in _STREAMED_WAV_SIZES and present < declared:
                raise ValueError(
                    f"audio file {path} is truncated: its WAV header declares "
                    f"{declared} data bytes, the file holds {present}"
                )


def _read_with_ffmpeg(path: str) -> tuple[np.ndarray, int]:
    """First audio stream, native rate and channels, as float32 WAV through a pipe.

    `-xerror` and a non-empty error log both count as failure: ffmpeg otherwise exits 0
    on a cut-off mp3 after printing the decoding error. A cut-off mp4 decodes without
    any message, so the decoded length is checked against the container's duration.
    """
    check_ffmpeg(f"decoding {path}")
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path,
        "-map", "0:a:0", "-f", "wav", "-acodec", "pcm_f32le", "-",
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    log = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0 or log:
        raise ValueError(f"ffmpeg cannot decode audio file {path}: {log or 'no message'}")
    try:
        # A piped WAV header has no length; libsndfile reads to the end of the bytes.
        audio, rate = soundfile.read(BytesIO(result.stdout), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"cannot decode ffmpeg's output for {path}: {error}") from error
    declared = _declared_seconds(path)
    decoded = audio.shape[0] / rate
    if declared is not None and decoded < declared - max(
        TRUNCATION_TOLERANCE * declared, TRUNCATION_MIN_SECONDS
    ):
        raise ValueError(
            f"audio file {path} is truncated: decoded {decoded:.3f} s, its container "
            f"declares {declared:.3f} s"
        )
    return audio, rate


def _declared_seconds(path: str):
    """The duration ffprobe reads from the container for the first audio stream (or
    the whole file), in seconds; None when the container does not say."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=duration:format=duration", "-of", "json", path,
    ]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        return None
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
    candidates = [s.get("duration") for s in info.get("streams", [])]
    candidates.append(info.get("format", {}).get("duration"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):  # missing or "N/A"
            continue
        if np.isfinite(seconds) and seconds > 0:
            return seconds
    return None


def write_audio(path: str, audio: np.ndarray, rate: int) -> None:
    """Writes audio [samples, channels] or [samples] as a 32-bit float WAV, atomically.

    Float keeps the samples exactly (no 16-bit quantisation, no clipping of separated
    estimates that overshoot [-1, 1]). `path` must end in .wav.
    """
    if not path.lower().endswith(".wav"):
        raise ValueError(f"write_audio writes WAV files; {path} does not end in .wav")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(
            f"audio for {path} must be [samples] or [samples, channels], got {audio.shape}"
        )
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"audio for {path} contains NaN or infinite samples")
    check_rate(rate)
    with files.atomic_path(path, suffix=".wav") as tmp:
        soundfile.write(tmp, audio, int(rate), subtype="FLOAT", format="WAV")
