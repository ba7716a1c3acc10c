"""Temporaries of interrupted writes (`.tmp-*`) in caches are removed by the next
writer, once no other process writes there (issue 23, item 10). Export folders:
test_export.py; run folders: test_trainer.py."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO_ROOT
from tf_factorgan import files
from tf_factorgan.audio import spectrogram
from tf_factorgan.data import image_folders, spectrogram_cache
from tf_factorgan.eval import mnist_classifier_training as training


def _orphans(folder, *names):
    """Leftovers of killed writers: a temporary file and a half-written folder."""
    os.makedirs(folder, exist_ok=True)
    for name in names:
        if name.endswith("/"):
            os.makedirs(os.path.join(folder, name, "part"), exist_ok=True)
        else:
            open(os.path.join(folder, name), "wb").write(b"half")


def _tmp_names(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


def test_orphans_go_once_no_writer_is_left_and_a_killed_writer_counts_for_none(tmp_path):
    folder = str(tmp_path / "cache")
    _orphans(folder, ".tmp-a1.npz", ".tmp-b2/")
    open(os.path.join(folder, "entry.npz"), "wb").write(b"kept")
    # A live writer in another process: its temporaries may be the ones lying there.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tf_factorgan import files\n"
         "with files.writing_into(sys.argv[1]):\n print('writing', flush=True); sys.stdin.read()",
         folder], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "writing\n"
        assert files.remove_orphaned_temporaries(folder) == []
        with files.writing_into(folder, tidy=True) as removed:  # writers share the folder
            assert removed == []
        assert _tmp_names(folder) == [".tmp-a1.npz", ".tmp-b2"]
    finally:
        holder.kill()  # killed mid-write: the kernel drops its lock
        holder.wait()
    assert files.remove_orphaned_temporaries(folder) == [".tmp-a1.npz", ".tmp-b2"]
    assert sorted(os.listdir(folder)) == ["entry.npz"]  # the lock is the folder's own
    assert files.remove_orphaned_temporaries(str(tmp_path / "absent")) == []


def test_subfolders_are_tidied_when_asked(tmp_path):
    folder = str(tmp_path)
    _orphans(os.path.join(folder, "settings"), ".tmp-x.npz")
    _orphans(folder, ".tmp-y/")
    assert files.remove_orphaned_temporaries(folder) == [".tmp-y"]
    assert files.remove_orphaned_temporaries(folder, subfolders=True) == [
        os.path.join("settings", ".tmp-x.npz")]


def test_the_image_cache_removes_what_killed_decodes_left(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * index, np.uint8)).save(images / f"{index}.png")
    cache = str(tmp_path / "cache")
    _orphans(cache, ".tmp-k1lled/")
    items = image_folders.whole(image_folders.list_images(str(images), "--paired_dir"))
    rows = image_folders.decode_to_cache(items, image_folders.PartSpec(image_folders.PHOTO, (8, 8)),
                                         cache, "--paired_dir", progress=False)
    assert len(rows) == 3 and _tmp_names(cache) == []
    said = capsys.readouterr().out
    assert f"Removed what interrupted decodes left in {cache}: .tmp-k1lled" in said


def test_the_spectrogram_cache_removes_what_killed_writes_left(tmp_path):
    settings = spectrogram.SpectrogramSettings()
    cache_dir = str(tmp_path / "cache")
    _orphans(os.path.join(cache_dir, settings.cache_key()), ".tmp-entry.npz")
    _orphans(os.path.join(cache_dir, spectrogram_cache.DIGEST_FOLDER), ".tmp-note")
    song = tmp_path / "song.wav"
    song.write_bytes(b"not decoded here")
    cache = spectrogram_cache.SpectrogramCache(cache_dir, settings)
    frames = np.zeros([3, settings.num_bins], np.float32)
    cache.load_or_compute("recipe", [str(song)], ["mix"], lambda: {"mix": frames})
    for folder in (settings.cache_key(), spectrogram_cache.DIGEST_FOLDER):
        assert _tmp_names(os.path.join(cache_dir, folder)) == []
    assert len(os.listdir(os.path.join(cache_dir, settings.cache_key()))) == 1


def test_the_classifier_cache_removes_what_killed_writes_left(tmp_path, digits):
    train, test = digits
    cache = str(tmp_path)
    _orphans(cache, ".tmp-abc.weights.h5", ".tmp-def")
    recipe = dataclasses.replace(training.TUNED, epochs=1, batch_size=64)
    training.train_or_load_classifier(cache, train.images[:200], train.labels[:200], test.images,
                                      test.labels, recipe, 0, min_accuracy=0.0)
    assert _tmp_names(cache) == []
    assert sorted(n for n in os.listdir(cache) if not n.startswith(".")) == sorted(
        training.cache_files(recipe, 0))
