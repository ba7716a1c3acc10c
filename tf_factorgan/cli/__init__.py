"""The command-line programs: flags made from settings (`command`), one module per
trainer (flags -> settings -> library call) and `train`, the `factorgan-train` console
script. The repository's `trainers/` modules and the installed console scripts run
these (`pyproject.toml`).

Importing this package sets what every program wants before TensorFlow loads: its
native log lines off (`logs`: until `command.run_main` starts the program, the
imports' writes to stderr are held and the native lines among them dropped), and
Ctrl-C during the imports ending in one line.
"""

import os
import signal
import sys

INTERRUPTED_AT_START = "\ninterrupted while starting; nothing was written"
# argv[0] of the console scripts (`pyproject.toml`): factorgan-train, factorgan-serve, ...
CONSOLE_SCRIPT_PREFIX = "factorgan-"


def _exit_quietly(signum, frame):
    # A hard exit: an exception raised here, inside a C extension's import (NumPy's),
    # would come back as an ImportError with a traceback. Nothing is written yet.
    held = sys.modules.get("tf_factorgan.logs")  # imported once this handler is set
    if held is not None:
        held.release_native_stderr()
    sys.stderr.write(INTERRUPTED_AT_START + "\n")
    os._exit(130)


def _starting_a_program() -> bool:
    """Whether this process is a program starting: `python -m trainers.<name>` (Python
    names argv[0] "-m" while it imports the package) or a console script; not tests
    or programs that import a trainer."""
    return sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0]).startswith(CONSOLE_SCRIPT_PREFIX)


# TensorFlow's native lines (CUDA probing, CPU features, an error-level "failed call to
# cuInit" without a GPU) would bury what the program says; a user who sets
# TF_CPP_MIN_LOG_LEVEL keeps it and sees every line TensorFlow writes at that level.
# Ctrl-C while TensorFlow is still importing (seconds) ends with one line instead of a
# traceback; `command.run_main` hands Ctrl-C back to Python and stderr back to the
# program once the imports are done.
if _starting_a_program():
    signal.signal(signal.SIGINT, _exit_quietly)
    from tf_factorgan import logs

    if logs.quiet_native_logs():
        logs.hold_native_stderr()
