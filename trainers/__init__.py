"""Command-line entry points (absl flags -> experiment config -> library call)."""

import os

# TensorFlow's C++ INFO lines (CUDA probing, CPU features) would bury the progress
# bar; warnings and errors still show. Users can set the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
