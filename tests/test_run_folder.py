"""A run folder has one owner at a time (issue 23, item 7)."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests import kill_program
from tests.conftest import REPO_ROOT
from tf_factorgan import checkpoints, run_folder


# -- item 7: one run at a time ----------------------------------------------------------


def test_a_second_run_beside_a_live_one_refuses_naming_the_folder_and_the_holder(tmp_path):
    run_dir = tmp_path / "paired_mnist" / "shared"
    with open(tmp_path / "first.log", "w+") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_program", str(tmp_path), "shared", "1000000"],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not checkpoints.steps_on_disk(str(run_dir / "checkpoints")):
                assert first.poll() is None, "the first run ended early"
                assert time.monotonic() < deadline, "the first run wrote no checkpoint"
                time.sleep(0.05)
            # Another seed, as in the issue: it must not train into the same folder.
            second = kill_program.config(str(tmp_path), "shared", 4, seed=7)
            with pytest.raises(run_folder.FolderInUse) as refused:
                kill_program.run(second)
            message = str(refused.value)
            assert re.fullmatch(
                rf"{re.escape(str(run_dir))} is in use by another run \(pid {first.pid} on host "
                r"\S+ since \S+\); wait for it to end, or give this one another "
                r"--experiment_name or --out_path", message)
            assert first.poll() is None  # the first run goes on
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    # The killed run's lock file is still there and names it, yet blocks nothing.
    assert f'"pid": {first.pid}' in (run_dir / run_folder.LOCK_FILE).read_text()
    with run_folder.locked(str(run_dir)):
        assert f'"pid": {os.getpid()}' in (run_dir / run_folder.LOCK_FILE).read_text()
    assert not (run_dir / run_folder.LOCK_FILE).exists()


def test_the_lock_is_exclusive_and_a_failed_start_leaves_no_folder(tmp_path):
    run_dir = str(tmp_path / "out" / "experiment" / "run")
    with run_folder.locked(run_dir):
        # flock is per open file: a second holder in this process conflicts as well.
        with pytest.raises(run_folder.FolderInUse, match=rf"pid {os.getpid()} on host"):
            with run_folder.locked(run_dir):
                pass
        assert os.listdir(run_dir) == [run_folder.LOCK_FILE]
    assert not os.path.exists(tmp_path / "out")  # nothing was written: nothing stays
    with run_folder.locked(run_dir):
        open(os.path.join(run_dir, "metrics.json"), "w").close()
    assert os.listdir(run_dir) == ["metrics.json"]
