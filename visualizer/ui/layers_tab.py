"""The Layers tab: the logit lens of the page's text, computed when the tab opens; and the /lens API."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..service import lens as service_lens
from ..service import page as service
from ..settings import Settings


def make_layers_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Layers tab and the /lens API, closed over one settings object."""

    def open_layers(text, model, bos, value, classroom, progress=gr.Progress()):
        """The logit lens of the text (cached per model, text and BOS)."""
        try:
            lens = service_lens.lens_for(text, settings, model, bos, on_loading=lambda msg: progress(0, desc=msg))
            return [lens, service_lens.lens_summary(lens), service_lens.lens_figure(lens, value, classroom)]
        except Exception as err:  # noqa: BLE001
            return [None, f"⚠ {service.user_message(err)}", None]

    def layers_if_open(open_tab, text, model, bos, value, classroom, progress=gr.Progress()):
        """After a new analysis, the lens too, but only while the Layers tab is the one shown."""
        return open_layers(text, model, bos, value, classroom, progress) if open_tab == "Layers" else [gr.skip()] * 3

    def redraw_layers(lens, value, classroom):
        return gr.skip() if lens is None else service_lens.lens_figure(lens, value, classroom)

    def track_tab(evt: gr.SelectData):
        return evt.value

    def lens_api(text: str, model: str = settings.model, bos: bool = False) -> dict:
        """API: the logit lens JSON of the text's first tokens (see visualizer.service.lens.LENS_MAX_TOKENS)."""
        try:
            return service_lens.lens_for(text, settings, model, bos).to_dict()
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    return SimpleNamespace(
        **{
            f.__name__: f
            for f in (
                open_layers,
                layers_if_open,
                redraw_layers,
                track_tab,
                lens_api,
            )
        }
    )


def build_layers_tab() -> SimpleNamespace:
    """The Layers tab's components (inside a `gr.Tab`)."""
    c = SimpleNamespace()
    with gr.Row(elem_classes="controls-beside"):  # the figure starts right under the tab bar
        with gr.Column(scale=2, min_width=320):
            gr.Markdown(
                "What each layer would predict if the model stopped there (the *logit lens*), for the text above."
            )
            with gr.Row():
                c.value = gr.Radio(
                    [("p(true next token)", "p_target"), ("rank of the true token", "rank"), ("entropy", "entropy")],
                    value="p_target",
                    label="Colour by",
                    elem_id="lens-value",
                    scale=4,
                )
                c.button = gr.Button("Show layers", variant="primary", elem_id="lens-button", scale=1)
            c.summary = gr.Textbox(
                label="Layers", interactive=False, lines=2, elem_id="lens-summary", elem_classes="summary"
            )
        with gr.Column(scale=5, min_width=480):
            c.plot = gr.Plot(label="Layers x positions", show_label=False, elem_id="lens-heatmap")
    return c


def wire_layers_tab(
    h: SimpleNamespace, lens: SimpleNamespace, lens_state, layers_tab, lens_inputs: list, lens_outputs: list, classroom
) -> None:
    """The lens when the tab opens or its button is pressed, and redrawn in another colour or style."""
    for trigger in (layers_tab.select, lens.button.click):
        trigger(h.open_layers, lens_inputs, lens_outputs, api_visibility="private", concurrency_id="views")
    for control in (lens.value, classroom):
        control.change(
            h.redraw_layers, [lens_state, lens.value, classroom], lens.plot, api_visibility="private", queue=False
        )
