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
