"""Spectrograms computed from audio files, kept on disk and keyed on the files' bytes.

Decoding and transforming a song takes about as long as its first training steps, so
every song (MUSDB18 tracks, the song folders of `data/song_folders.py`, single
recordings) is decoded once per spectrogram setting. An entry is

  <cache_dir>/<settings.cache_key()>/<key>.npz

where `key` is a BLAKE2b digest over the entry format, a *recipe* (how the files
become spectrograms: which file is the vocals, which stems are summed, which checks
they passed) and the BLAKE2b digest of every input file's bytes, in order. So a song
that is renamed or moved hits its entry, a file changed in place misses it (whatever
its size), and two recipes over the same files never share an entry.

Hashing reads every byte of every file. `<cache_dir>/file_digests/` remembers each
file's digest with its size, inode, mtime and ctime (nanoseconds), and a file whose
four values are unchanged is not read again. The kernel sets ctime on every write and
no program can set it back, so an edit in place is seen even when the editor
restores the mtime.

Entries and digest notes are written atomically (a killed run leaves no half file,
and the temporary it leaves is removed by the next writer once no process writes);
an entry that cannot be read or has the wrong shapes is recomputed: the cache holds
derived data only, and deleting it is always safe.
"""

import contextlib
import hashlib
import os
import zipfile
from typing import Callable, Iterator, Sequence

import numpy as np

from tf_factorgan import files
from tf_factorgan.audio import spectrogram

# Part of every key: a new entry layout or a new meaning of the arrays bumps it.
FORMAT = "spectrogram-cache-v2"
DIGEST_FOLDER = "file_digests"
_CHUNK_BYTES = 1 << 20


def _stat_signature(path: str) -> list:
    status = os.stat(path)
    return [status.st_size, status.st_ino, status.st_mtime_ns, status.st_ctime_ns]


def _hash_file(path: str) -> str:
    digest = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SpectrogramCache:
    """source name -> float32 [frames, settings.num_bins] log1p magnitudes per entry
    (see the module docstring)."""

    def __init__(self, cache_dir: str, settings: spectrogram.SpectrogramSettings):
        self.cache_dir = cache_dir
        self.settings = settings
        # Digests found by this process (a file read twice in one run is hashed once).
        self._digests: dict = {}
        self._tidied = False

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every write into the cache: the first of this object removes what
        killed writers left (once no other process writes the cache), each holds the
        cache folder's shared lock while its temporary exists (`files.writing_into`)."""
        then = "then run the same command again, or choose another {cache_dir}"
        with files.explained_write_errors(self.cache_dir, then), files.writing_into(
                self.cache_dir, tidy=not self._tidied, subfolders=True) as removed:
            self._tidied = True
            if removed:
                print(f"Removed what interrupted writes left in {self.cache_dir}: "
                      f"{', '.join(removed)}")
            yield

    def file_digest(self, path: str) -> str:
        """BLAKE2b (160 bits, hex) of the bytes of `path`; hashed only when the file
        is new to the cache or its size, inode, mtime or ctime changed."""
        real = os.path.realpath(path)
        signature = _stat_signature(real)
        known = self._digests.get(real)
        if known and known[0] == signature:
            return known[1]
        name = hashlib.blake2b(real.encode(), digest_size=16).hexdigest()
        note_path = os.path.join(self.cache_dir, DIGEST_FOLDER, f"{name}.json")
        digest = None
        try:
            note = files.read_json(note_path)
            if note.get("path") == real and note.get("stat") == signature:
                digest = str(note["digest"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # missing or damaged: hash the file
        if digest is None:
            digest = _hash_file(real)
            with self._writing():
                files.write_json(note_path, {"path": real, "stat": signature, "digest": digest})
        self._digests[real] = (signature, digest)
        return digest

    def key(self, recipe: str, inputs: Sequence[str]) -> str:
        """The entry name of `recipe` applied to the files `inputs` (in that order)."""
        digest = hashlib.blake2b(digest_size=20)
        for part in (FORMAT, recipe, *(self.file_digest(p) for p in inputs)):
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def path(self, recipe: str, inputs: Sequence[str]) -> str:
        return os.path.join(self.cache_dir, self.settings.cache_key(), f"{self.key(recipe, inputs)}.npz")

    def _read(self, path: str, sources: Sequence[str]):
        if not os.path.isfile(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                spectrograms = {source: data[source] for source in sources}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        shapes = {s.shape for s in spectrograms.values()}
        if len(shapes) != 1:
            return None
        (shape,) = shapes
        if len(shape) != 2 or shape[1] != self.settings.num_bins:
            return None
        if any(s.dtype != np.float32 for s in spectrograms.values()):
            return None
        return spectrograms

    def load_or_compute(self, recipe: str, inputs: Sequence[str], sources: Sequence[str],
                        compute: Callable[[], dict]) -> dict:
        """source -> float32 [frames, num_bins] of `sources`, from the entry of
        (`recipe`, `inputs`), or from `compute()` (which decodes the files and raises
        on bad audio) on a miss; only a successful `compute` writes an entry."""
        path = self.path(recipe, inputs)
        cached = self._read(path, sources)
        if cached is not None:
            return cached
        spectrograms = compute()
        missing = set(sources) - set(spectrograms)
        if missing:
            raise ValueError(f"spectrograms for the cache lack sources {sorted(missing)}")
        spectrograms = {s: np.asarray(spectrograms[s], np.float32) for s in sources}
        # np.savez appends ".npz" to names without it, so the temporary name keeps it.
        with self._writing(), files.atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **spectrograms)
        return spectrograms
