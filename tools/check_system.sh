#!/usr/bin/env bash
# Checks the system tools the project needs and says which Debian/Ubuntu package to
# install for each one that is missing. Exit status 1 if anything is missing.
set -u
missing=0
need() {  # need <command> <apt package> <why>
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: '$1' ($3). Install it with: sudo apt-get install $2" >&2
    missing=1
  fi
}
need "${PYTHON:-python3}" python3 "the interpreter"
if command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
  if ! "${PYTHON:-python3}" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))'; then
    echo "unsupported: $("${PYTHON:-python3}" --version) (TensorFlow 2.21 needs Python 3.10-3.13)" >&2
    missing=1
  elif ! "${PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    v=$("${PYTHON:-python3}" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "missing: the venv module. Install it with: sudo apt-get install python${v}-venv" >&2
    missing=1
  fi
fi
exit $missing
