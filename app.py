"""The Gradio app: wiring only. Every handler calls visualizer.service and returns its results.

Run: `python app.py` (serves http://127.0.0.1:7860; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from visualizer import service  # noqa: E402
from visualizer.settings import Settings  # noqa: E402

CSS_PATH = Path(__file__).parent / "assets" / "app.css"
TOGGLE_CLASSROOM_JS = "(on) => { document.body.classList.toggle('classroom', !!on); }"
VIEW_OUTPUTS = 9  # state, summary, 5 figures, detail picker, labels table


def _failure(message: str):
    """Outputs for a failed request: results cleared, one sentence shown."""
    empty = [None] * 5
    return [None, f"⚠ {message}", *empty, gr.Dropdown(choices=[], value=None), None, None, None, None, None]


def _views_outputs(analysis, views):
    """Outputs for a successful request, in the order of `_outputs`."""
    choices = [(f"k={p.k}: {p.context[-40:]} → {p.target.display}", p.k) for p in analysis.positions]
    return [views.token_strip, views.top_k, views.sentence_vocab, views.loss, views.detail,
            gr.Dropdown(choices=choices, value=analysis.positions[-1].k), views.labels]


def make_handlers(settings: Settings):
    """The event handlers, closed over one settings object."""

    def analyze_page(text, model, top_k, bos, color_by, classroom, progress=gr.Progress()):
        """Run one analysis for the page; errors become a message, never a traceback."""
        try:
            analysis = service.run_analysis(
                text, settings, model=model, top_k=top_k, bos=bos,
                on_loading=lambda msg: progress(0, desc=msg),
            )
            views = service.build_views(analysis, color_by, classroom)
            files = service.export_files(analysis)
        except Exception as err:  # noqa: BLE001 - every failure is reported in the page
            return _failure(service.user_message(err))
        return [analysis, views.summary, *_views_outputs(analysis, views), views.positions, *files]

    def redraw(analysis, color_by, classroom, detail_k):
        """Redraw the figures from the held analysis (no forward pass)."""
        if analysis is None:
            return [gr.skip()] * 5
        views = service.build_views(analysis, color_by, classroom, detail_k)
        return [views.token_strip, views.top_k, views.sentence_vocab, views.loss, views.detail]

    def redraw_detail(analysis, detail_k, classroom):
        """The position-detail figure for the chosen k."""
        return gr.skip() if analysis is None else service.detail_figure(analysis, detail_k, classroom)

    def analyze_api(text: str, model: str = settings.model, top_k: int = settings.top_k,
                    bos: bool = False, mask_first: int = 0) -> dict:
        """API: the JSON contract for `text` (see README)."""
        try:
            return service.run_analysis(text, settings, model=model, top_k=top_k, bos=bos, mask_first=mask_first).to_dict()
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    def from_url(request: gr.Request):
        """Fill the text and classroom mode from ?text=...&classroom=1."""
        params = dict(request.query_params) if request else {}
        text = params.get("text") or service.EXAMPLES[0]
        classroom = params.get("classroom", "").lower() in ("1", "true", "yes", "on")
        return text[: settings.max_chars], classroom

    return analyze_page, redraw, redraw_detail, analyze_api, from_url


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The whole page."""
    settings = settings or Settings.from_env()
    analyze_page, redraw, redraw_detail, analyze_api, from_url = make_handlers(settings)
    with gr.Blocks(title="What does the model predict?") as demo:
        gr.Markdown("# What does the model predict, and where does its loss come from?\n"
                    "Type a sentence. For every position the model predicts the next token; "
                    "the loss is the average of −ln p(true next token).")
        state = gr.State(None)
        with gr.Row():
            text = gr.Textbox(label="Text", value=service.EXAMPLES[0], lines=1, max_lines=8, scale=5,
                              elem_id="text-input", placeholder="Type a sentence and press Enter")
            run = gr.Button("Analyze", variant="primary", scale=1, elem_id="analyze-button")
        with gr.Row():
            model = gr.Dropdown(list(settings.models), value=settings.model, label="Model", elem_id="model")
            top_k = gr.Slider(1, settings.max_top_k, value=settings.top_k, step=1, label="Top-K", elem_id="top-k")
            color_by = gr.Radio(["probability", "rank"], value="probability", label="Colour tokens by")
            bos = gr.Checkbox(False, label="Prepend BOS (score the first token too)")
            classroom = gr.Checkbox(False, label="Classroom mode", elem_id="classroom")
        summary = gr.Textbox(label="Loss", interactive=False, lines=2, elem_id="summary", elem_classes="summary")
        with gr.Tabs():
            with gr.Tab("Predictions", id="predictions"):
                strip = gr.Plot(label="Tokens, coloured by p(true next token)", show_label=False, elem_id="token-strip")
                top_plot = gr.Plot(label="Top-K candidates per position", show_label=False, elem_id="top-k-heatmap")
            with gr.Tab("Predicted vs true", id="vocab"):
                vocab_plot = gr.Plot(label="The sentence's tokens: predicted vs one-hot truth", show_label=False, elem_id="vocab-heatmap")
                detail_k = gr.Dropdown(choices=[], label="Position", elem_id="detail-k")
                detail_plot = gr.Plot(label="One position in detail", show_label=False, elem_id="position-detail")
            with gr.Tab("Loss", id="loss"):
                loss_plot = gr.Plot(label="Loss per position", show_label=False, elem_id="loss-bars")
                labels = gr.Dataframe(label="input_ids vs labels: the shift", interactive=False, elem_id="labels-table")
            with gr.Tab("Table & export", id="export"):
                positions = gr.Dataframe(label="Per position", interactive=False, elem_id="positions-table")
                with gr.Row():
                    csv_positions = gr.DownloadButton("Per-position CSV", elem_id="dl-positions")
                    csv_top_k = gr.DownloadButton("Top-K CSV", elem_id="dl-top-k")
                    json_file = gr.DownloadButton("Analysis JSON", elem_id="dl-json")
        inputs = [text, model, top_k, bos, color_by, classroom]
        outputs = [state, summary, strip, top_plot, vocab_plot, loss_plot, detail_plot, detail_k, labels,
                   positions, csv_positions, csv_top_k, json_file]
        figures_out = [strip, top_plot, vocab_plot, loss_plot, detail_plot]
        examples = gr.Examples(service.EXAMPLES, inputs=[text], cache_examples=False, api_visibility="private")
        examples.load_input_event.then(analyze_page, inputs, outputs, api_visibility="private", concurrency_id="analysis")
        for trigger in (text.submit, run.click):
            trigger(analyze_page, inputs, outputs, api_visibility="private", concurrency_id="analysis")
        for control in (color_by, classroom):
            control.change(redraw, [state, color_by, classroom, detail_k], figures_out, api_visibility="private", queue=False)
        classroom.change(None, [classroom], None, js=TOGGLE_CLASSROOM_JS)
        detail_k.input(redraw_detail, [state, detail_k, classroom], detail_plot, api_visibility="private", queue=False)
        gr.api(analyze_api, api_name="analyze", concurrency_id="analysis")
        demo.load(from_url, None, [text, classroom], api_visibility="private", queue=False).then(
            analyze_page, inputs, outputs, api_visibility="private", concurrency_id="analysis")
    return demo


def launch_options() -> dict:
    """Styling passed to launch() (Gradio 6 takes css/theme there)."""
    return {"css": CSS_PATH.read_text(), "theme": gr.themes.Default()}


if __name__ == "__main__":
    build_demo().queue(default_concurrency_limit=1).launch(**launch_options())
