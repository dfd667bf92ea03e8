# The app on the bundled offline model. Build: docker build -t lm-visualizer .
# Run: docker run -p 7860:7860 lm-visualizer   (then open http://localhost:7860)
# It installs the way `make run` does: scripts/setup.sh into .venv in the checkout
# (/home/user/app/.venv, first on PATH). tests/test_install.py runs the RUN line that calls
# the script, with this ENV, in a fresh folder (no Docker engine or base image is needed for that).
FROM python:3.11-slim

# PIP_EXTRA_INDEX_URL: pip, inside setup.sh, takes torch's CPU build (2.13.0+cpu satisfies the
# pin torch==2.13.0) instead of PyPI's multi-GB CUDA build. Drop it for a CUDA image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HF_HUB_OFFLINE=1 \
    HOME=/home/user \
    VISUALIZER_CACHE=/home/user/.cache/visualizer \
    PATH=/home/user/app/.venv/bin:$PATH

RUN useradd --create-home --uid 1000 user \
    && install -d -o user -g user /home/user/app
USER 1000
WORKDIR /home/user/app
COPY --chown=1000:1000 . .

# Install, then convert the GGUF weights once so the container starts from the cache.
RUN scripts/setup.sh \
    && visualizer analyze "the dog likes food" --format json > /dev/null

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
CMD ["python", "app.py"]
