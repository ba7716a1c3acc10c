import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tf_factorgan import logs

# Lines TensorFlow 2.21 writes while it is imported, before absl's log is initialised.
NATIVE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796585318.162226    4326 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796585320.588673    4326 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
]


def test_native_log_lines_are_told_from_other_output():
    assert all(logs.is_native_log_line(line) for line in NATIVE)
    for line in ("error: --batch_size must be >= 1, got 0", "I0000 is no log line",
                 "WARNING:tensorflow:From x.py:27: tf_record_iterator is deprecated"):
        assert not logs.is_native_log_line(line)


def test_the_native_log_level_is_set_unless_the_user_set_it():
    environ = {}
    assert logs.quiet_native_logs(environ) and environ == {"TF_CPP_MIN_LOG_LEVEL": "3"}
    environ = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert not logs.quiet_native_logs(environ) and environ == {"TF_CPP_MIN_LOG_LEVEL": "0"}


HOLDING_PROGRAM = """
import os, sys
from tf_factorgan import logs
logs.hold_native_stderr()
os.write(2, {native!r}.encode())
print("a warning", file=sys.stderr)
{end}
"""


def _stderr(end: str) -> str:
    program = HOLDING_PROGRAM.format(native="".join(line + "\n" for line in NATIVE), end=end)
    return subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60).stderr


def test_held_stderr_comes_back_without_the_native_lines():
    assert _stderr("logs.release_native_stderr(); print('after', file=sys.stderr)") == (
        "a warning\nafter\n")


def test_held_stderr_comes_back_at_exit_with_an_error_that_ends_the_program():
    err = _stderr("raise RuntimeError('broken import')")
    assert err.startswith("a warning\nTraceback") and err.endswith("RuntimeError: broken import\n")


def test_a_trainer_starts_without_tensorflows_native_lines():
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "trainers.paired_mnist", "--batch_size=0"],
                            cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "error: --batch_size must be >= 1, got 0\n")
