"""Atomic writes: a reader sees the old file or the complete new one, never a part."""

import contextlib
import json
import os
import tempfile

# Temporary files are named so that a later run can find and remove those a killed
# process left.
_TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yields a temporary path beside `path`; renames it over `path` on success.

    `suffix` keeps extensions that writers insist on (Keras needs ".weights.h5").
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=suffix, dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make outputs private
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path: str, value) -> None:
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str):
    """The JSON value in `path`; a file that is not UTF-8 JSON raises ValueError
    naming it."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is no error
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None


def save_weights(model, path: str) -> None:
    """`model.save_weights` to `path` (which must end in .weights.h5), atomically."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def remove_temporaries(directory: str) -> list[str]:
    """Deletes the temporary files killed writers left in `directory`; returns their
    names. Only safe while nothing writes into `directory`."""
    if not os.path.isdir(directory):
        return []
    removed = sorted(n for n in os.listdir(directory) if n.startswith(_TEMPORARY_PREFIX))
    for name in removed:
        os.remove(os.path.join(directory, name))
    return removed
