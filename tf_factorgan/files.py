"""Atomic writes: a reader sees the old file or the complete new one, never a part.

Also what keeps folders tidy and failures readable: failed writes explained in one
line (`WriteError`), outputs that appear together (`staging_folder`, `move_in`), and
the temporaries killed writers leave, removed once nobody writes there
(`writing_into`, `remove_orphaned_temporaries`).
"""

import contextlib
import errno
import fcntl
import io
import json
import os
import shutil
import tempfile
from typing import Iterator, Sequence

from tf_factorgan.config import NamesSettings

# Temporary files are named so that a later run can find and remove those a killed
# process left.
_TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yields a temporary path beside `path`; renames it over `path` on success.

    `suffix` keeps extensions that writers insist on (np.savez needs ".npz").
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


def weights_h5_bytes(model) -> bytes:
    """The `.weights.h5` file that `model.save_weights` writes, made in memory.

    HDF5 writing to a disk that fills up fails, and leaves ids behind that crash
    HDF5's exit handler (a segmentation fault after the error message). In memory it
    cannot fail so; the bytes reach the disk through Python's own writes, whose
    failure is an ordinary OSError. Keras' writer of the format takes a BytesIO only
    through `saving_lib`, not through `save_weights`.
    """
    from keras.src.saving import saving_lib

    if not model.built:
        raise ValueError(f"cannot save the weights of {model.name}: it is not built yet")
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                               visited_saveables=set())
    finally:
        store.close()
    return buffer.getvalue()


def save_weights(model, path: str) -> None:
    """`model.save_weights` to `path` (which must end in .weights.h5), atomically; a
    full disk is an OSError (see `weights_h5_bytes`)."""
    if not path.endswith(".weights.h5"):
        raise ValueError(f"weights files must end in .weights.h5, got {path}")
    write_bytes(path, weights_h5_bytes(model))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.remove(path)


def remove_temporaries(directory: str) -> list[str]:
    """Deletes the temporary files and folders killed writers left in `directory`;
    returns their names. Only safe while nothing writes into `directory`."""
    if not os.path.isdir(directory):
        return []
    removed = sorted(n for n in os.listdir(directory) if n.startswith(_TEMPORARY_PREFIX))
    for name in removed:
        _remove(os.path.join(directory, name))
    return removed


# -- shared folders: temporaries removed once nobody writes ---------------------------


def _open_folder(directory: str) -> int:
    """A descriptor of the folder itself, to `flock`: the lock of a shared folder (a
    cache, an export's model folder) needs no file in it, so the folder holds only
    what its readers expect."""
    os.makedirs(directory, exist_ok=True)
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY)


@contextlib.contextmanager
def writing_into(directory: str, tidy: bool = False,
                 subfolders: bool = False) -> Iterator[list[str]]:
    """Holds a shared lock on `directory` while the caller writes there (and in its
    subfolders): `remove_orphaned_temporaries` then leaves the folder alone. The
    kernel drops the lock of a killed process, so its temporaries become removable.

    With `tidy`, first removes the temporaries of killed writers
    (`remove_orphaned_temporaries(directory, subfolders)`); yields their paths
    relative to `directory` ([] without `tidy`).
    """
    removed = remove_orphaned_temporaries(directory, subfolders) if tidy else []
    fd = _open_folder(directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only for a tidy under way
        yield removed
    finally:
        os.close(fd)  # releases the lock


def remove_orphaned_temporaries(directory: str, subfolders: bool = False) -> list[str]:
    """Removes the temporaries (`.tmp-*` files and folders) of killed writers from
    `directory` (and its immediate subfolders with `subfolders`), if no process is
    writing there now (none is inside `writing_into(directory)`). Returns their paths
    relative to `directory`; [] when the folder is in use or absent, or where the
    file system cannot lock it exclusively (NFS emulates flock with write locks,
    which a folder cannot take): then the temporaries stay, never a live one goes."""
    if not os.path.isdir(directory):
        return []
    fd = _open_folder(directory)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: in use
            return []
        removed = remove_temporaries(directory)
        if subfolders:
            for entry in sorted(os.scandir(directory), key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False):
                    removed += [os.path.join(entry.name, name)
                                for name in remove_temporaries(entry.path)]
        return removed
    finally:
        os.close(fd)


# -- outputs that appear together -------------------------------------------------------


@contextlib.contextmanager
def staging_folder(directory: str) -> Iterator[str]:
    """Yields a new empty temporary folder inside `directory` (so that `move_in` only
    renames); removes it, with whatever is left in it, on the way out."""
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX, dir=directory)
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would make outputs private
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def move_in(staging: str, directory: str, last: Sequence[str] = ()) -> list[str]:
    """Renames every file of `staging` into `directory`, replacing files of the same
    names, those named in `last` at the end and in that order (a file whose presence
    says that the others are complete). Returns the names moved.

    The files of `last` that `directory` already holds are removed first: while the
    others are being replaced, no reader takes the old ones for complete.
    """
    names = sorted(os.listdir(staging))
    ordered = [n for n in names if n not in last] + [n for n in last if n in names]
    for name in last:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, name))
    for name in ordered:
        os.replace(os.path.join(staging, name), os.path.join(directory, name))
    return ordered


# -- failed writes in one line ----------------------------------------------------------


class WriteError(NamesSettings, OSError):
    """A write that failed for want of space or permission, in one line that names
    the path and what to do (which may name a setting, `{name}`: `config.NamesSettings`);
    `errno` is the cause's (ENOSPC, EROFS, EACCES, ...)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)  # str() is the message alone, without "[Errno n]"
        self.errno = code


# Causes in the text of TensorFlow's errors (its file system ops report no errno).
_CAUSES = (
    ("No space left on device", errno.ENOSPC),
    ("Disk quota exceeded", errno.EDQUOT),
    ("Read-only file system", errno.EROFS),
    ("Permission denied", errno.EACCES),
)
_ADVICE = {
    errno.ENOSPC: "its disk is full: free some space (or move the folder to a disk with room)",
    errno.EDQUOT: "the disk quota is used up: free some space (or move the folder to a disk "
                  "with room)",
    errno.EROFS: "it is on a read-only file system: choose a writable folder",
    errno.EACCES: "permission denied: make it writable for this user, or choose another folder",
    errno.EPERM: "operation not permitted: make it writable for this user, or choose another "
                 "folder",
}


def _related(filename, path: str) -> bool:
    """Whether an error's file is `path`, inside it, or a folder above it (one being
    created for it); an error without a file name may be any of these."""
    if filename is None:
        return True
    a, b = os.path.abspath(os.fsdecode(filename)), os.path.abspath(path)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(
        a.rstrip(os.sep) + os.sep)


def _cause(error: BaseException, path: str):
    """The errno of a failed write of `path` for want of space or permission, or
    None. Also reads the texts of TensorFlow's errors (ResourceExhaustedError of
    SaveV2 and summaries, PermissionDeniedError, FailedPreconditionError), whose
    types also stand for other faults (a ResourceExhaustedError may be out of
    memory). An OSError of another file (an input that cannot be read) is none."""
    if isinstance(error, OSError):
        if not _related(error.filename, path):
            return None
        if error.errno in _ADVICE:
            return error.errno
    elif not type(error).__module__.startswith("tensorflow"):
        return None
    text = str(error)
    return next((code for cause, code in _CAUSES if cause in text), None)


@contextlib.contextmanager
def explained_write_errors(path: str,
                           then: str = "then run the same command again") -> Iterator[None]:
    """Turns a write inside that fails for want of space or permission into a
    WriteError: "cannot write <path>: <cause and remedy>; <then>". Other errors pass
    unchanged."""
    try:
        yield
    except WriteError:
        raise
    except Exception as error:  # noqa: BLE001 -- only the explained causes are caught
        code = _cause(error, path)
        if code is None:
            raise
        raise WriteError(code, f"cannot write {path}: {_ADVICE[code]}; {then}") from error
