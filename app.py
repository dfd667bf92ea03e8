"""The Gradio app: `python app.py` builds the page (visualizer.ui) and serves it on http://127.0.0.1:7860
(GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured); settings come from the VISUALIZER_* variables."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from visualizer.service.page import preload  # noqa: E402
from visualizer.settings import Settings  # noqa: E402
from visualizer.ui.page import build_demo, configure_queue  # noqa: E402

CSS_PATH = Path(__file__).parent / "assets" / "app.css"


def launch_options() -> dict:
    """Styling passed to launch() (Gradio 6 takes css/theme there)."""
    return {"css": CSS_PATH.read_text(), "theme": gr.themes.Default()}


if __name__ == "__main__":
    SETTINGS = Settings.from_env()
    preload(SETTINGS)
    configure_queue(build_demo(SETTINGS), SETTINGS).launch(**launch_options())
