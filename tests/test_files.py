import json

import pytest

from tf_factorgan import files


def test_write_json_replaces_atomically(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    files.write_json(str(path), {"a": 1})
    files.write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(str(path), {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write('{"a": ')  # a writer that dies half-way
            raise RuntimeError("disk full")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    path = tmp_path / "out.json"
    files.write_json(str(path), {})
    assert path.stat().st_mode & 0o777 == 0o644


def test_read_json_reads_what_write_json_wrote_and_names_a_damaged_file(tmp_path):
    path = str(tmp_path / "m.json")
    files.write_json(path, {"step": 3, "fid": [1.5]})
    assert files.read_json(path) == {"step": 3, "fid": [1.5]}
    for damaged in (b'{"step": 3', b"\xff\xfe\x00"):
        (tmp_path / "m.json").write_bytes(damaged)
        with pytest.raises(ValueError, match=f"{path} is not valid JSON"):
            files.read_json(path)


def test_weights_are_made_in_memory_and_load_back(tmp_path, monkeypatch):
    import h5py
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "model.weights.h5")
    # HDF5 must not write the disk itself: a full disk would crash it at exit.
    monkeypatch.setattr(h5py, "File", _no_file(h5py.File))
    files.save_weights(model, path)
    monkeypatch.undo()
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]
    with pytest.raises(ValueError, match="must end in .weights.h5"):
        files.save_weights(model, str(tmp_path / "model.h5"))


def _no_file(h5py_file):
    def only_in_memory(name, *args, **kwargs):
        assert not isinstance(name, (str, bytes)), f"HDF5 opened {name} on disk"
        return h5py_file(name, *args, **kwargs)
    return only_in_memory


def test_remove_temporaries_takes_files_and_folders(tmp_path):
    (tmp_path / ".tmp-a.json").write_text("{")
    (tmp_path / ".tmp-b" / "half").mkdir(parents=True)
    (tmp_path / "kept.json").write_text("{}")
    assert files.remove_temporaries(str(tmp_path)) == [".tmp-a.json", ".tmp-b"]
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]


def test_move_in_replaces_the_completing_files_last(tmp_path, monkeypatch):
    import os

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name, text in (("metrics.json", "old"), ("spec.json", "old"), ("weights", "old")):
        (run_dir / name).write_text(text)
    moves = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moves.append(
        (os.path.basename(b), sorted(p.name for p in run_dir.iterdir()))), replace(a, b)))
    with files.staging_folder(str(run_dir)) as staging:
        assert os.path.dirname(staging) == str(run_dir)
        assert os.path.basename(staging).startswith(".tmp-")
        for name in ("metrics.json", "spec.json", "weights", "samples.png"):
            (tmp_path / "run" / os.path.basename(staging) / name).write_text("new")
        files.move_in(staging, str(run_dir), last=("spec.json", "metrics.json"))
    # The old completing files went first, so no reader sees them beside new weights.
    assert moves[0] == ("samples.png", [os.path.basename(staging), "weights"])
    assert [name for name, _ in moves] == ["samples.png", "weights", "spec.json", "metrics.json"]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "metrics.json", "samples.png", "spec.json", "weights"]
    assert all(p.read_text() == "new" for p in run_dir.iterdir())
