#!/usr/bin/env bash
# Create (or reuse) the virtual environment at .venv and install what is asked:
#   scripts/setup.sh         the app and the bundled model
#   scripts/setup.sh --dev   also the test tools and Debian's Chromium for browser tests
# Re-running is cheap: a stamp records what was installed from which requirement files.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi

files="requirements.txt requirements-bundled.txt pyproject.toml"
[ "$dev" = 1 ] && files="$files requirements-dev.txt"
stamp=".venv/.installed-$(cat $files | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned, so nothing later pulls a different (CUDA) build.
  .venv/bin/pip install --quiet "$(grep -E '^torch==' requirements.txt)"
  .venv/bin/pip install --quiet -r requirements.txt
  .venv/bin/pip install --quiet --no-deps -r requirements-bundled.txt
  .venv/bin/pip install --quiet --no-deps -e .
  [ "$dev" = 1 ] && .venv/bin/pip install --quiet -r requirements-dev.txt
  touch "$stamp"
fi

if [ "$dev" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: Debian's chromium is not installed; browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi
