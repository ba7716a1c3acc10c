"""Command-line entry points (absl flags -> experiment config -> library call)."""
