"""A run folder's owner.

`locked(run_dir)`: one process at a time trains in a run folder. The lock is an
exclusive `flock` on `<run_dir>/run.lock`, which names its holder (host, pid, start)
and is removed when the run ends. The kernel drops the lock when its process ends in
any way, so the file a killed run left blocks nothing; a second run started beside a
live one refuses in one line naming the folder and the holder.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket
from typing import Iterator

LOCK_FILE = "run.lock"


class FolderInUse(RuntimeError):
    """Another live process holds the run folder."""



# -- the lock ---------------------------------------------------------------------------


def _holder(fd: int) -> str:
    """Who holds the lock, from the lock file's JSON ("pid P on host H since T")."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"pid {owner['pid']} on host {owner['host']} since {owner['started']}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "a process that has not yet written its name"


def _missing_folders(folder: str) -> list[str]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        folder = parent if parent != folder else ""
    return missing


def _acquire(path: str, run_dir: str) -> int:
    """An open descriptor of the lock file `path`, exclusively locked."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderInUse(
                f"{run_dir} is in use by another run ({holder}); wait for it to end, or "
                "give this one another --experiment_name or --out_path") from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)  # its holder removed that file as it let go: lock the new one


@contextlib.contextmanager
def locked(run_dir: str) -> Iterator[None]:
    """Holds `run_dir` (created if missing) for this process; raises FolderInUse,
    naming the folder and the holder, when another live process holds it. On the
    way out the lock file goes, and the folders it created if they stayed empty (a
    run that failed before writing anything leaves nothing behind)."""
    path = os.path.join(run_dir, LOCK_FILE)
    created = _missing_folders(os.path.abspath(run_dir))
    os.makedirs(run_dir, exist_ok=True)
    fd = _acquire(path, run_dir)
    try:
        owner = {"host": socket.gethostname(), "pid": os.getpid(),
                 "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)  # a killed holder's name may still be there
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        yield
    finally:
        # Removed while still locked: a process that opened it meanwhile finds it gone
        # once it gets the lock, and takes a new one (`_acquire`).
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        os.close(fd)
        for folder in created:
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the run wrote there
                break
