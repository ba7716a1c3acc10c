"""Command-line entry points (absl flags -> experiment config -> library call)."""

import os
import signal
import sys

# TensorFlow's C++ INFO lines (CUDA probing, CPU features) would bury the progress
# bar; warnings and errors still show. Users can set the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

INTERRUPTED_AT_START = "\ninterrupted while starting; nothing was written"


def _exit_quietly(signum, frame):
    # A hard exit: an exception raised here, inside a C extension's import (NumPy's),
    # would come back as an ImportError with a traceback. Nothing is written yet.
    sys.stderr.write(INTERRUPTED_AT_START + "\n")
    os._exit(130)


# Ctrl-C while TensorFlow is still importing (seconds) ends with one line instead of a
# traceback; `common_flags.run_main` hands Ctrl-C back to Python once the imports are
# done. Only for `python -m trainers.<name>` (Python names argv[0] "-m" while it
# imports the package), not when tests or programs import a trainer.
if sys.argv[:1] == ["-m"]:
    signal.signal(signal.SIGINT, _exit_quietly)
