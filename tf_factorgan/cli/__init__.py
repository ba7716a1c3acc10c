"""The command-line programs: flags made from settings (`command`), one module per
trainer (flags -> settings -> library call) and `train`, the `factorgan-train` console
script. The repository's `trainers/` modules and the installed console scripts run
these (`pyproject.toml`).

Importing this package sets what every program wants before TensorFlow loads: its
C++ INFO lines off, and Ctrl-C during the imports ending in one line.
"""

import os
import signal
import sys

# TensorFlow's C++ INFO lines (CUDA probing, CPU features) would bury the progress
# bar; warnings and errors still show. Users can set the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

INTERRUPTED_AT_START = "\ninterrupted while starting; nothing was written"
# argv[0] of the console scripts (`pyproject.toml`): factorgan-train, factorgan-serve, ...
CONSOLE_SCRIPT_PREFIX = "factorgan-"


def _exit_quietly(signum, frame):
    # A hard exit: an exception raised here, inside a C extension's import (NumPy's),
    # would come back as an ImportError with a traceback. Nothing is written yet.
    sys.stderr.write(INTERRUPTED_AT_START + "\n")
    os._exit(130)


def _starting_a_program() -> bool:
    """Whether this process is a program starting: `python -m trainers.<name>` (Python
    names argv[0] "-m" while it imports the package) or a console script; not tests
    or programs that import a trainer."""
    return sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0]).startswith(CONSOLE_SCRIPT_PREFIX)


# Ctrl-C while TensorFlow is still importing (seconds) ends with one line instead of a
# traceback; `command.run_main` hands Ctrl-C back to Python once the imports are done.
if _starting_a_program():
    signal.signal(signal.SIGINT, _exit_quietly)
