"""A run's checkpoints found from the files themselves, restored newest-first, tidied.

TensorFlow's `checkpoint` index file names the newest checkpoint, but it is one small
text file: missing, truncated, garbled or naming a deleted checkpoint, it would make a
run start again at step 0 beside valid checkpoints and then overwrite them. Here the
files decide: every step with a `ckpt-<step>.index` or data shard is a candidate,
newest first; the first that restores wins, those newer than it are moved aside (never
overwritten), and the index is rewritten from what is left.

Layout (TensorFlow's `CheckpointManager`): `ckpt-<step>.index`,
`ckpt-<step>.data-<k>-of-<n>` for k < n, the index file `checkpoint`; an interrupted
save leaves `ckpt-<step>_temp/` folders and `checkpoint.tmp<hex>` files.
"""

import dataclasses
import datetime
import os
import re
import shutil
from typing import Optional

import tensorflow as tf

from tf_factorgan import files

INDEX_FILE = "checkpoint"
# Checkpoints that did not restore, moved here rather than deleted or overwritten.
UNRESTORABLE_DIR = "unrestorable"
_FILE = re.compile(r"^ckpt-(?P<step>\d+)\.(?:index|data-\d+-of-(?P<shards>\d+))$")
_TEMPORARY = re.compile(r"^(?:ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]*)$")


class CheckpointError(RuntimeError):
    """Checkpoints exist but none can be restored."""


@dataclasses.dataclass(frozen=True)
class Restored:
    """What `restore_newest` did.

    step: the restored checkpoint's number (its training step); 0 when there was none.
    path: its prefix (`<dir>/ckpt-<step>`), or None.
    skipped: (prefix, reason) of every newer checkpoint that did not restore.
    """

    step: int
    path: Optional[str]
    skipped: tuple[tuple[str, str], ...] = ()


def prefix(directory: str, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}")


def steps_on_disk(directory: str) -> list[int]:
    """Steps with at least one checkpoint file in `directory`, newest first."""
    if not os.path.isdir(directory):
        return []
    steps = {int(m["step"]) for m in map(_FILE.match, os.listdir(directory)) if m}
    return sorted(steps, reverse=True)


def _files_of(directory: str, step: int) -> list[str]:
    return [name for name in os.listdir(directory)
            if (m := _FILE.match(name)) and int(m["step"]) == step]


def missing_files(directory: str, step: int) -> list[str]:
    """The files checkpoint `step` needs but lacks: its index and each data shard (the
    shard count is in the shards' names; with none present, the first is missing)."""
    present = set(_files_of(directory, step))
    shard_counts = {int(m["shards"]) for m in map(_FILE.match, present) if m["shards"]}
    needed = {f"ckpt-{step}.index"}
    for count in shard_counts or {1}:
        needed.update(f"ckpt-{step}.data-{k:05d}-of-{count:05d}" for k in range(count))
    return sorted(needed - present)


def _reason(error: Exception) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}"[:300]


def restore_newest(checkpoint: tf.train.Checkpoint, directory: str) -> Restored:
    """Restores the newest checkpoint in `directory` that restores completely.

    Raises CheckpointError naming the folder and each checkpoint's fault when there are
    checkpoints but none restores: starting afresh would overwrite them.
    """
    skipped = []
    for step in steps_on_disk(directory):
        path = prefix(directory, step)
        missing = missing_files(directory, step)
        if missing:
            skipped.append((path, f"incomplete, lacks {', '.join(missing)}"))
            continue
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except Exception as error:  # noqa: BLE001 -- any failure means unusable
            skipped.append((path, _reason(error)))
            continue
        return Restored(step, path, tuple(skipped))
    if skipped:
        faults = "; ".join(f"{os.path.basename(p)}: {reason}" for p, reason in skipped)
        raise CheckpointError(
            f"none of the {len(skipped)} checkpoints in {directory} restores ({faults}). "
            "Starting afresh would overwrite them: move or delete that folder to train from "
            "step 0, or put back a complete checkpoint."
        )
    return Restored(0, None)


def set_aside(directory: str, steps: list[int]) -> Optional[str]:
    """Moves every file of checkpoints `steps` into a new
    `<directory>/unrestorable/<UTC time>/`; returns that folder (None if no files)."""
    names = [name for step in steps for name in _files_of(directory, step)]
    if not names:
        return None
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = os.path.join(directory, UNRESTORABLE_DIR, stamp)
    os.makedirs(target)
    for name in names:
        os.replace(os.path.join(directory, name), os.path.join(target, name))
    return target


def remove_temporaries(directory: str) -> list[str]:
    """Deletes what interrupted saves leave (`ckpt-<n>_temp/`, `checkpoint.tmp*`);
    returns their names. Only safe while no save into `directory` is under way."""
    if not os.path.isdir(directory):
        return []
    removed = sorted(name for name in os.listdir(directory) if _TEMPORARY.match(name))
    for name in removed:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    return removed


def write_index(directory: str, latest: int) -> None:
    """Rewrites the `checkpoint` index (atomically) to list every complete checkpoint
    up to `latest` in `directory`, `latest` as the newest: what `CheckpointManager`
    reads to resume its numbering and to delete the oldest beyond max_to_keep."""
    kept = sorted(s for s in steps_on_disk(directory)
                  if s <= latest and not missing_files(directory, s))
    # The manager only ever deletes checkpoints younger than last_preserved_timestamp.
    times = [os.path.getmtime(prefix(directory, s) + ".index") for s in kept]
    lines = [f'model_checkpoint_path: "ckpt-{latest}"']
    lines += [f'all_model_checkpoint_paths: "ckpt-{s}"' for s in kept]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
    lines.append(f"last_preserved_timestamp: {min(times, default=0.0) - 1.0!r}")
    files.write_bytes(os.path.join(directory, INDEX_FILE), ("\n".join(lines) + "\n").encode())
