"""The masking controls above the views: which labels count (first N, up to a marker, picked tokens), and a
chat example where only the answer counts; editing them re-runs the page's analysis."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..service import labels
from ..service import page as service
from ..service.labels import MASK_MODES
from ..settings import Settings
from .shared import main_analysis


def make_masking_handlers(settings: Settings) -> SimpleNamespace:
    """The chat example's handler, closed over one settings object."""

    def chat(prompt, answer, model):
        """Fill the text with a chat example and mask its prompt."""
        try:
            text, n_prompt = labels.chat_text(prompt, answer, settings, model)
        except Exception as err:  # noqa: BLE001
            return gr.skip(), gr.skip(), gr.skip(), f"⚠ {service.user_message(err)}"
        return text, "first N tokens", n_prompt, f"Only the answer counts: the first {n_prompt} labels are -100."

    return SimpleNamespace(**{f.__name__: f for f in (chat,)})


def build_masking_controls() -> SimpleNamespace:
    """Which labels count: masking mode, N, marker, picked tokens, and a chat example."""
    c = SimpleNamespace()
    with gr.Accordion("Labels: which positions count in the loss (−100 masking)", open=False, elem_id="masking"):
        with gr.Row():
            c.mode = gr.Radio(list(MASK_MODES), value="none", label="Mask", elem_id="mask-mode", scale=3)
            c.n = gr.Number(
                0,
                precision=0,
                label="N (first N tokens)",
                elem_id="mask-n",
                scale=1,
                info="labels[:N] = −100. Nothing predicts label 0, so N = 1 changes no loss.",
            )
            c.marker = gr.Textbox(label="Marker (mask up to and including it)", elem_id="mask-marker", scale=2)
        c.picked = gr.CheckboxGroup(
            choices=[], label="Picked tokens (label index: token) to mask", elem_id="mask-picked"
        )
        with gr.Row():
            c.prompt = gr.Textbox("What does the dog like?", label="Chat example: prompt", scale=2)
            c.answer = gr.Textbox("The dog likes food.", label="answer", scale=2)
            c.chat = gr.Button("Use chat example (only the answer counts)", elem_id="chat-example", scale=1)
        c.note = gr.Markdown("")
    return c


def wire_masking(
    h: SimpleNamespace, page: SimpleNamespace, mask: SimpleNamespace, text, model, inputs, outputs, settings: Settings
) -> None:
    """Editing a masking control re-runs the analysis (unless the labels that count stay the same); the chat
    example fills the text and masks its prompt, then analyses."""
    main = main_analysis(settings, inputs)
    # N and the marker re-run the analysis as the user edits them, not only on Enter: a click on a mode
    # right after typing can be sent before the typed value reaches the page's state (seen in Chromium:
    # 'first N tokens' sent with N = 0), and this later request, numbered after it, then shows the truth.
    # Each is skipped when the held analysis already has those labels (N edited in mode 'none', a blur).
    for trigger in (
        mask.mode.input,
        mask.n.submit,
        mask.n.input,
        mask.marker.submit,
        mask.marker.blur,
        mask.picked.input,
    ):
        trigger(page.analyze_if_changed, inputs, outputs, **main)
    mask.chat.click(
        h.chat,
        [mask.prompt, mask.answer, model],
        [text, mask.mode, mask.n, mask.note],
        api_visibility="private",
        queue=False,
    ).then(page.analyze_page, inputs, outputs, **main)
