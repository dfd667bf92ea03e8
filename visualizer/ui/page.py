"""The whole page: the text and its controls on top, the masking controls, then every tab group's tabs;
each group builds its components and wires its events (analysis_tabs, generate_tab, layers_tab,
label_tabs, compare_tab, masking). `build_demo` returns the Blocks; app.py styles and launches it."""

from __future__ import annotations

import gradio as gr

from ..analysis.trained_copies import TRAINED
from ..service import page as service
from ..settings import Settings
from .analysis_tabs import (
    build_analysis_tabs,
    make_analysis_handlers,
    wire_analysis_tabs,
)
from .compare_tab import make_compare_handlers, wire_compare_tab
from .data_tab import build_data_tab, make_data_handlers, wire_data_tab
from .generate_tab import (
    build_generate_tab,
    generation_limit,
    make_generation_handlers,
    wire_generate_tab,
)
from .label_tabs import build_label_tabs, make_label_handlers, wire_label_tabs
from .layers_tab import build_layers_tab, make_layers_handlers, wire_layers_tab
from .lesson_tab import build_lesson_tab, make_lesson_handlers, wire_lesson_tab
from .masking import build_masking_controls, make_masking_handlers, wire_masking
from .shared import DESCRIBE_FIGURES_JS, LIVE_TYPING_JS, RELAYOUT_JS, main_analysis


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The whole page."""
    settings = settings or Settings.from_env()
    page = make_analysis_handlers(settings)
    generation, layers = make_generation_handlers(settings), make_layers_handlers(settings)
    # delete_cache: Gradio's copies of the downloads are removed 10-11 minutes after they were handed out.
    with gr.Blocks(title="What does the model predict?", delete_cache=(60, 600)) as demo:
        gr.Markdown(
            elem_id="page-title",
            value="# What does the model predict, and where does its loss come from?\n"
            "Type a sentence. For every position the model predicts the next token; "
            "the loss is the average of −ln p(true next token).",
        )
        state = gr.State(None)
        with gr.Row():
            text = gr.Textbox(
                label="Text",
                value=service.EXAMPLES[0],
                lines=1,
                max_lines=8,
                scale=5,
                elem_id="text-input",
                placeholder="Type a sentence and press Enter",
            )
            run = gr.Button("Analyze", variant="primary", scale=1, elem_id="analyze-button")
            live = gr.Button("Analyze as typed", elem_id="live-analyze", elem_classes="offstage")
        with gr.Row(elem_id="controls"):
            model = gr.Dropdown(
                list(settings.models), value=settings.model, label="Model", elem_id="model", min_width=320
            )
            top_k = gr.Slider(1, settings.max_top_k, value=settings.top_k, step=1, label="Top-K", elem_id="top-k")
            color_by = gr.Radio(
                ["probability", "rank"], value="probability", label="Colour tokens by", elem_id="color-by"
            )
            bos = gr.Checkbox(False, label="Prepend BOS (score the first token too)")
            classroom = gr.Checkbox(False, label="Classroom mode", elem_id="classroom")
        mask = build_masking_controls()
        summary = gr.Textbox(label="Loss", interactive=False, lines=2, elem_id="summary", elem_classes="summary")
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # every view one click away, no "more" menu
            lesson = build_lesson_tab()
            views = build_analysis_tabs()
            with gr.Tab("Generate", id="generate"):
                gen = build_generate_tab()
                # A GenerationRun, kept by reference (Gradio deep-copies only a State's initial value); an
                # idle one is dropped after an hour and the next click starts afresh.
                gen_state = gr.State(None, time_to_live=3600)
            with gr.Tab("Layers", id="layers") as layers_tab:
                lens = build_layers_tab()
                lens_state, open_tab = gr.State(None), gr.State(None)
            labels_c = build_label_tabs(settings)
            with gr.Tab("Your data", id="data"):
                data_c = build_data_tab(settings)
        mask_inputs = [mask.mode, mask.n, mask.marker, mask.picked]
        request_order = gr.Number(0, precision=0, visible=False, elem_id="request-order")
        inputs = [state, text, model, top_k, bos, color_by, classroom, *mask_inputs, open_tab, request_order]
        main = main_analysis(settings, inputs)
        outputs = [
            state,
            summary,
            views.strip,
            views.top_plot,
            views.vocab_plot,
            views.loss_plot,
            views.detail_plot,
            views.detail_k,
            views.labels,
            views.positions,
            views.drawn,
            mask.picked,
        ]
        examples = gr.Examples(
            service.EXAMPLES, inputs=[text], cache_examples=False, api_visibility="private", elem_id="examples"
        )
        examples.load_input_event.then(page.analyze_page, inputs, outputs, **main)
        lens_inputs = [text, model, bos, lens.value, classroom]
        lens_outputs = [lens_state, lens.summary, lens.plot]
        # Typing analyses the text once it rests (LIVE_TYPING_JS clicks the hidden button), Enter at once; one
        # event for both, so a newer text waits for the running one and the text shown is never run again.
        # Its progress (a model loading, the queue) shows on the loss box alone, as a line of text: dimming every
        # figure at each pause in the typing cost ~0.15 s of keystroke-to-figure time, and Gradio's full tracker
        # on the box (its animated logo over the loss line) ~60 ms of the browser's main thread per analysis,
        # while the server computes (benchmarks: visualizer.bench.typing; BENCHMARKS.md, live typing).
        typed = gr.on(
            [text.submit, live.click],
            page.analyze_if_changed,
            inputs,
            outputs,
            show_progress="minimal",
            show_progress_on=summary,
            **main,
        )
        for event in (typed, run.click(page.analyze_page, inputs, outputs, **main)):
            event.then(
                layers.layers_if_open,
                [open_tab, *lens_inputs],
                lens_outputs,
                api_visibility="private",
                concurrency_id="views",
            )
        wire_analysis_tabs(page, views, state, open_tab, color_by, classroom)
        gr.api(
            page.analyze_api, api_name="analyze", concurrency_id="analysis", concurrency_limit=main["concurrency_limit"]
        )
        wire_generate_tab(generation, gen, gen_state, [model, bos, classroom], settings)
        wire_layers_tab(layers, lens, lens_state, layers_tab, lens_inputs, lens_outputs, classroom)
        gr.api(generation.generate_api, api_name="generate", **generation_limit(settings))
        gr.api(layers.lens_api, api_name="lens", concurrency_id="views")
        tabs.select(layers.track_tab, None, open_tab, api_visibility="private", queue=False)
        wire_lesson_tab(make_lesson_handlers(settings), lesson, state, classroom, model, open_tab, demo)
        tabs.select(None, None, None, js=RELAYOUT_JS)
        shared = [state, text, model, top_k, bos, classroom]
        wire_masking(make_masking_handlers(settings), page, mask, text, model, inputs, outputs, settings)
        label_handlers = make_label_handlers(settings)
        wire_label_tabs(label_handlers, labels_c, shared, mask_inputs, settings)
        wire_compare_tab(make_compare_handlers(settings), labels_c, shared, mask_inputs)
        wire_data_tab(make_data_handlers(settings), data_c, state, summary, model, top_k, classroom)
        demo.unload(label_handlers.release)
        demo.load(page.from_url, None, [text, classroom], api_visibility="private", queue=False).then(
            page.analyze_page, inputs, outputs, **main
        )
        demo.load(None, None, None, js=LIVE_TYPING_JS).then(None, None, None, js=DESCRIBE_FIGURES_JS)
    return demo


def configure_queue(demo: gr.Blocks, settings: Settings) -> gr.Blocks:
    """A bounded queue: main analyses `batch_size` at once (sharing forward passes), the other model
    views `analysis_concurrency` at once; a full queue answers 'busy' at once."""
    TRAINED.max_copies = settings.max_trained_copies
    return demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.analysis_concurrency)
