#!/usr/bin/env bash
# Checks the system tools the project needs and says which Debian/Ubuntu package to
# install for each one that is missing (exit status 1). ffmpeg, needed only by the audio
# experiment (MUSDB18 decoding, museval), is installed with apt-get when we may (root or
# password-less sudo); if that is not possible it is only a warning.
set -u
missing=0
need() {  # need <command> <apt package> <why>
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: '$1' ($3). Install it with: sudo apt-get install $2" >&2
    missing=1
  fi
}
apt_install() {  # apt_install <package>: quietly, where we are allowed to
  local run=""
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || return 1
    run="sudo -n"
  fi
  echo "installing the Debian package $1 ..." >&2
  $run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 || {
    $run apt-get update -q >/dev/null 2>&1 &&
      $run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1
  }
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
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then apt_install ffmpeg; fi
fi
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 || echo "warning: '$tool' is missing: the audio" \
    "experiment and its tests need it (sudo apt-get install ffmpeg); the rest works without" >&2
done
exit $missing
