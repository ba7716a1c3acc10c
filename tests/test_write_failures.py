"""A full disk or a read-only folder ends a run in one line naming the path and what
to do (exit code 1), and the final outputs appear together or not at all (issue 23,
item 9)."""

import dataclasses
import errno
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from tests import kill_program
from tests.conftest import REPO_ROOT
from tf_factorgan import files
from tf_factorgan.experiments import paired_mnist
from tf_factorgan.models import specs
from tf_factorgan.cli import command


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("classifiers"))


def _mount(*args) -> str:
    """Runs mount(8); the reason it failed, or ''."""
    try:
        result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    except OSError as error:
        return str(error)
    return result.stderr.strip() if result.returncode else ""


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs: a disk that really fills up. Needs root (mount)."""
    path = tmp_path / "disk"
    path.mkdir()
    failed = _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path))
    if failed:
        pytest.skip(f"cannot mount a tmpfs here: {failed}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nothing can be written into: chmod for a user, a read-only bind mount
    for root (whom permissions do not stop)."""
    path = tmp_path / "read_only"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    failed = (_mount("--bind", str(path), str(path))
              or _mount("-o", "remount,bind,ro", str(path)))
    if failed:
        subprocess.run(["umount", "-l", str(path)], check=False)
        pytest.skip(f"cannot make a read-only folder as root here: {failed}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def _one_line_exit(run) -> str:
    """What `run_or_exit(run)` ends the program with: one line, exit code 1."""
    with pytest.raises(SystemExit) as exited:
        command.run_or_exit(run)
    message = exited.value.code
    assert isinstance(message, str) and "\n" not in message  # sys.exit(str): code 1
    return message


def _folder_state(run_dir):
    """The run folder's files but TensorBoard's event files (every start writes one)."""
    return {name: open(os.path.join(run_dir, name), "rb").read()
            for name in sorted(os.listdir(run_dir))
            if os.path.isfile(os.path.join(run_dir, name)) and "tfevents" not in name}


@pytest.mark.parametrize("failing", [specs.WEIGHTS_FILE, "metrics.json"])  # first, last
def test_a_failed_final_write_leaves_the_earlier_outputs_whole(tmp_path, classifier_cache,
                                                              monkeypatch, failing):
    config = kill_program.config(str(tmp_path), "run", 2, classifier_cache_dir=classifier_cache)
    kill_program.run(config)
    before = _folder_state(config.run_dir)
    assert {specs.WEIGHTS_FILE, specs.SPEC_FILE, "samples.png", "metrics.json"} <= set(before)
    write_bytes = files.write_bytes

    def disk_full_at(path, data):
        if os.path.basename(path) == failing:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        write_bytes(path, data)

    monkeypatch.setattr(files, "write_bytes", disk_full_at)
    again = dataclasses.replace(config, eval_only=True)  # evaluates and writes them again
    message = _one_line_exit(lambda: kill_program.run(again))
    assert message == (
        f"error: cannot write {config.run_dir}: its disk is full: free some space (or move the "
        "folder to a disk with room); then run the same command again: it evaluates the last "
        "checkpoint and writes the outputs")
    # None of the new outputs appeared beside the earlier ones, and no temporary is left.
    assert _folder_state(config.run_dir) == before
    assert not [n for n in os.listdir(config.run_dir) if n.startswith(".tmp-")]
    monkeypatch.undo()
    assert kill_program.run(again)["step"] == 2  # once there is room, the same command finishes
    assert _folder_state(config.run_dir).keys() == before.keys()


def test_a_full_disk_at_the_final_outputs_ends_in_one_line_without_a_crash(small_disk,
                                                                           classifier_cache):
    """The issue's case: a real full disk while the weights are written (HDF5 used to
    crash at exit, rc 139, leaving a spec without weights)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.disk_full_program", str(small_disk), "200000",
         classifier_cache], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    run_dir = small_disk / "paired_mnist" / "full"
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot write {run_dir}: its disk is full: free some space (or move the folder "
        "to a disk with room); then run the same command again: it evaluates the last "
        "checkpoint and writes the outputs")
    assert "Traceback" not in result.stderr
    # No spec without weights: no outputs at all, and no temporaries.
    assert [name for name in sorted(os.listdir(run_dir)) if "tfevents" not in name] == [
        "checkpoints", "run_settings.json"]


def test_a_full_disk_at_a_checkpoint_ends_in_one_line(tmp_path, digits, monkeypatch):
    config = kill_program.config(str(tmp_path), "run", 4)
    loop = paired_mnist.build_trainer(config, paired_mnist.build_data(config, *digits),
                                      tf.distribute.get_strategy())

    def disk_full(self, checkpoint_number=None):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{self.directory}/ckpt-{checkpoint_number}_temp/part-00000-of-00001"
            ".data-00000-of-00001.tempstate1; No space left on device [Op:SaveV2]")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", disk_full)
    assert _one_line_exit(loop.run) == (
        f"error: cannot write {loop.checkpoint_dir}/ckpt-2: its disk is full: free some space "
        "(or move the folder to a disk with room); then run the same command again: it resumes "
        "from the last complete checkpoint")


def test_a_read_only_output_folder_ends_in_one_line(read_only_dir, digits):
    config = kill_program.config(str(read_only_dir), "run", 2)
    cause = "(it is on a read-only file system: choose a writable folder|permission denied: .*)"
    message = _one_line_exit(lambda: kill_program.run(config))
    assert re.fullmatch(
        rf"error: cannot write {re.escape(config.run_dir)}/run\.lock: {cause}; then run the same "
        "command again", message), message
    # A trainer used on its own: TensorBoard's writer (CreateSummaryFileWriter).
    message = _one_line_exit(lambda: paired_mnist.build_trainer(
        config, paired_mnist.build_data(config, *digits), tf.distribute.get_strategy()))
    assert re.fullmatch(rf"error: cannot write {re.escape(config.run_dir)}: {cause}; then "
                        "run the same command again: it resumes from the last complete "
                        "checkpoint", message), message


def test_only_failed_writes_of_the_path_for_want_of_space_or_permission_are_explained(tmp_path):
    target = str(tmp_path / "out")
    with pytest.raises(files.WriteError, match=f"^cannot write {target}: its disk is full"):
        with files.explained_write_errors(target):
            raise OSError(errno.ENOSPC, "No space left on device", os.path.join(target, "x"))
    with pytest.raises(files.WriteError, match="the disk quota is used up"):
        with files.explained_write_errors(target):
            raise tf.errors.ResourceExhaustedError(None, None, "x; Disk quota exceeded")
    # An input that cannot be read, memory that runs out, other faults: unchanged.
    for error in (PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "in.png")),
                  tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
                  ValueError("No space left on device")):
        with pytest.raises(type(error)) as raised:
            with files.explained_write_errors(target):
                raise error
        assert raised.value is error
