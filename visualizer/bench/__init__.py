"""The benchmarks, one module per section (`python -m visualizer.bench`); `steps` measures generation and training."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any bench module imports transformers or gradio
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
