"""A run folder's owner and the settings that define its run.

`locked(run_dir)`: one process at a time trains in a run folder. The lock is an
exclusive `flock` on `<run_dir>/run.lock`, which names its holder (host, pid, start)
and is removed when the run ends. The kernel drops the lock when its process ends in
any way, so the file a killed run left blocks nothing; a second run started beside a
live one refuses in one line naming the folder and the holder.

`settings_check(run_dir, settings, ...)`: `<run_dir>/run_settings.json` keeps the
settings that define the run (what a resume must not change silently) and the history
of those changed on purpose:

  {"settings": {name: value},
   "history": [{"step": N, "changed": {name: {"old": value, "new": value}}}]}

A resume whose settings differ is refused in one line listing `name: old -> new`,
unless every difference is one the command allows (allow_changed); those are then
recorded at the step the run resumed from.
"""

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import socket
from typing import Callable, Iterator, Optional

from tf_factorgan import files
from tf_factorgan.config import NamesSettings

LOCK_FILE = "run.lock"
SETTINGS_FILE = "run_settings.json"
# Runs written before run_settings.json existed kept their settings only here.
METRICS_FILE = "metrics.json"


class FolderInUse(NamesSettings, RuntimeError):
    """Another live process holds the run folder."""


class SettingsChanged(NamesSettings, RuntimeError):
    """A resume whose settings differ from those the run was trained with."""


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
                "give this one another {experiment_name} or {out_path}") from None
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
    with files.explained_write_errors(path, "then run the same command again"):
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


# -- the settings -----------------------------------------------------------------------


def as_json(value):
    """`value` as it reads back from JSON (tuples become lists), so that recorded
    and current settings compare equal when they are."""
    return json.loads(json.dumps(value))


def _recorded(run_dir: str) -> tuple[Optional[dict], list, str]:
    """(settings, history, file) as recorded; settings None when nothing is.
    Runs from before run_settings.json have their metrics.json's "config"."""
    path = os.path.join(run_dir, SETTINGS_FILE)
    if os.path.isfile(path):
        record = files.read_json(path)
        if not (isinstance(record, dict) and isinstance(record.get("settings"), dict)
                and isinstance(record.get("history", []), list)):
            raise ValueError(
                f'{path} must hold {{"settings": {{...}}, "history": [...]}}; restore it, or '
                f"delete it to take this command's settings as the run's")
        return record["settings"], record.get("history", []), path
    legacy = os.path.join(run_dir, METRICS_FILE)
    if os.path.isfile(legacy):
        with contextlib.suppress(ValueError, OSError):
            config = files.read_json(legacy).get("config")
            if isinstance(config, dict):
                return config, [], legacy
    return None, [], path


def differences(recorded: dict, current: dict) -> dict:
    """{name: (old, new)} of the settings both hold with different values (a setting
    only one side holds, of another version of the code, is no difference)."""
    return {name: (recorded[name], value) for name, value in sorted(current.items())
            if name in recorded and as_json(recorded[name]) != as_json(value)}


def listed(changes: dict) -> str:
    """{name: (old, new)} as "name: old -> new, ..." (values as JSON)."""
    return ", ".join(f"{name}: {json.dumps(old)} -> {json.dumps(new)}"
                     for name, (old, new) in changes.items())


@dataclasses.dataclass(frozen=True)
class SettingsCheck:
    """What `settings_check` found: `changed` ({name: (old, new)}) are the allowed
    differences, `unrecorded` says that a resumed run had no record of its settings;
    `record(step)` writes the current settings and the changes."""

    run_dir: str
    settings: dict
    history: list
    changed: dict
    unrecorded: bool = False

    def record(self, step: int) -> list:
        """Writes run_settings.json (atomically): the current settings, and the
        allowed changes as made at `step` (the step the run resumed from). Returns
        the history of changes."""
        history = list(self.history)
        if self.changed:
            history.append({"step": int(step), "changed": {
                name: {"old": old, "new": new} for name, (old, new) in self.changed.items()}})
        path = os.path.join(self.run_dir, SETTINGS_FILE)
        with files.explained_write_errors(path):
            files.write_json(path, {"settings": as_json(self.settings), "history": history})
        return history


def settings_check(run_dir: str, settings: dict, resuming: bool,
                   changeable: frozenset, allowed: frozenset,
                   upgrade: Callable[[dict], dict] = lambda recorded: recorded) -> SettingsCheck:
    """Compares `settings` (name -> JSON value) with those `run_dir` recorded.

    Args:
      resuming: the run continues from checkpoints; else it starts at step 0 and its
        settings replace any recorded ones.
      changeable: settings a resume may change at all (others define the run).
      allowed: those this command allows to change (allow_changed); a subset of
        `changeable`.
      upgrade: the recorded settings named as `settings` names them (settings an
        earlier version recorded under other names).

    Raises SettingsChanged listing every difference that is not allowed, in one
    line, with what to do.
    """
    if not resuming:
        return SettingsCheck(run_dir, settings, [], {})
    recorded, history, source = _recorded(run_dir)
    if recorded is None:
        return SettingsCheck(run_dir, settings, [], {}, unrecorded=True)
    changes = differences(upgrade(recorded), settings)
    refused = {name: change for name, change in changes.items() if name not in allowed}
    if refused:
        fixed = [name for name in refused if name not in changeable]
        may = [name for name in refused if name in changeable]
        advice = []
        if fixed:
            advice.append(f"{', '.join(fixed)} define{'s' if len(fixed) == 1 else ''} the run: "
                          "give the recorded value or train a new run under another "
                          "{experiment_name}")
        if may:
            advice.append(f"to change {', '.join(may)} from here on, add "
                          f"{{allow_changed}}={','.join(sorted(allowed | set(may)))}")
        raise SettingsChanged(
            f"{run_dir} was trained with other settings (recorded in {source}): "
            f"{listed(refused)}. {'; '.join(advice)}")
    return SettingsCheck(run_dir, settings, history, changes)

