"""Log levels for the command-line programs (trainers, export, the serving server):
TensorFlow's native (C++) log lines and absl's Python ones kept off the terminal unless
the user asks for them.

TensorFlow's C++ code logs through two channels. Its own logging honours
TF_CPP_MIN_LOG_LEVEL (read once, when TensorFlow loads): `quiet_native_logs` sets it
to 3 (errors off too: "failed call to cuInit" on a machine without a GPU, grappler's
"remapper failed") unless the user set it. The absl logging inside TensorFlow's
libraries writes every line it logs before `absl::InitializeLog` (oneDNN and CUDA
notes, once per library, during `import tensorflow`) to file descriptor 2 whatever
that variable says; `hold_native_stderr` / `release_native_stderr` catch what is
written to the descriptor while the program imports and drop the lines in the native
log format (`is_native_log_line`), passing everything else (Python warnings, a
traceback) on.
"""

import atexit
import os
import re
import sys
import tempfile
from typing import Optional

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# 3: TensorFlow's native INFO, WARNING and ERROR lines off (a fatal error still shows).
QUIET_LEVEL = "3"
# "I0000 00:00:1796585445.308358    5874 port.cc:153] text": severity, date, time,
# thread, file:line]; and the note absl writes before such lines.
_NATIVE_LINE = re.compile(r"[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-/]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"

# While held: (the real descriptor 2, duplicated; the file that receives the writes).
_held: Optional[tuple[int, object]] = None


def is_native_log_line(line: str) -> bool:
    """Whether `line` is one of the native log lines `release_native_stderr` drops."""
    return bool(_NATIVE_LINE.match(line)) or line.startswith(_ABSL_PREAMBLE)


def quiet_native_logs(environ=os.environ) -> bool:
    """Sets TF_CPP_MIN_LOG_LEVEL to QUIET_LEVEL in `environ` unless it is set (a user's
    own value wins); returns whether it set it, i.e. whether the native lines are the
    program's to hide. Must run before TensorFlow is imported."""
    if LEVEL_VARIABLE in environ:
        return False
    environ[LEVEL_VARIABLE] = QUIET_LEVEL
    return True


def hold_native_stderr() -> None:
    """Sends what is written to file descriptor 2 (by C++ and by Python) to a temporary
    file until `release_native_stderr`, which also runs at exit, so that nothing the
    program writes there is lost (a traceback of a failed import included)."""
    global _held
    if _held is not None:
        return
    sys.stderr.flush()
    held = tempfile.TemporaryFile(mode="w+b")
    _held = (os.dup(2), held)
    os.dup2(held.fileno(), 2)
    atexit.register(release_native_stderr)


def release_native_stderr() -> None:
    """Gives file descriptor 2 back and writes to it what was held, but the native log
    lines. Does nothing when nothing is held."""
    global _held
    if _held is None:
        return
    saved, held = _held
    _held = None
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    held.seek(0)
    text = held.read().decode("utf-8", errors="replace")
    held.close()
    kept = "".join(line for line in text.splitlines(keepends=True)
                   if not is_native_log_line(line))
    if kept:
        os.write(2, kept.encode("utf-8"))


def quiet_info_logs() -> None:
    """TensorFlow's INFO lines would bury the program's own output (a progress bar,
    the paths it wrote), unless --verbosity asks for them."""
    # Imported here: the rest of this module runs at a program's start, before any
    # import that takes time (Ctrl-C then must end it in one line, `tf_factorgan.cli`).
    from absl import flags, logging

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
