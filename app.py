"""The Gradio app: wiring only. Every handler calls visualizer.service.page or service_steps and returns the results.

Run: `python app.py` (serves http://127.0.0.1:7860; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gradio as gr  # noqa: E402

from visualizer.service import page as service  # noqa: E402
from visualizer.service import compare as service_compare  # noqa: E402
from visualizer.service import labels as service_labels  # noqa: E402
from visualizer.service import steps as service_steps  # noqa: E402
from visualizer.service.labels import MASK_MODES, MISTAKES, TRAINED_CHOICE  # noqa: E402
from visualizer.service.batching import NewestRequests  # noqa: E402
from visualizer.analysis.training import TRAINED  # noqa: E402
from visualizer.analysis.generation import DEFAULT_NEW_TOKENS, MAX_NEW_TOKENS  # noqa: E402
from visualizer.views.generation_figures import FORCED_COLUMNS  # noqa: E402
from visualizer.settings import Settings  # noqa: E402

CSS_PATH = Path(__file__).parent / "assets" / "app.css"
# A resize event makes Gradio measure the tab bar again and Plotly fit each figure to its box: neither
# notices new font sizes, nor a figure drawn while its tab was hidden (Plotly then draws it 700 px wide).
RELAYOUT = "requestAnimationFrame(() => window.dispatchEvent(new Event('resize')))"
TOGGLE_CLASSROOM_JS = f"(on) => {{ document.body.classList.toggle('classroom', !!on); {RELAYOUT}; }}"
RELAYOUT_JS = f"() => {{ {RELAYOUT}; }}"
DOWNLOAD_ID = "download-file"
START_DOWNLOAD_JS = f"() => document.querySelector('#{DOWNLOAD_ID}')?.click()"
NEWEST = NewestRequests()


def _failure(message: str):
    """Outputs for a failed request: results cleared, one sentence shown, and the picked tokens cleared too
    (with no analysis held, nothing could tell whether a pick still names the token it was made on)."""
    empty = [None] * 5
    return [None, f"⚠ {message}", *empty, gr.Dropdown(choices=[], value=None), None, None, gr.CheckboxGroup(value=[])]


def _session(request: gr.Request | None) -> str | None:
    """The browser session's id (None for API calls without one)."""
    return getattr(request, "session_hash", None)


def _picker(analysis, picked):
    """The 'picked tokens' choices for this text: one per label that could count (1..n-1)."""
    choices = [(f"{i}: {t.display}", i) for i, t in enumerate(analysis.tokens) if i > 0]
    keep = [i for i in (picked or []) if 0 < i < len(analysis.tokens)]
    return gr.CheckboxGroup(choices=choices, value=keep)


def _views_outputs(analysis, views):
    """Outputs for a successful request, in the order of `_outputs`."""
    targets = analysis.tokens[1:]
    choices = [(f"k={k}: {c[-40:]} → {t.display}", k) for k, (c, t) in enumerate(zip(analysis.contexts, targets), 1)]
    return [views.token_strip, views.top_k, views.sentence_vocab, views.loss, views.detail,
            gr.Dropdown(choices=choices, value=len(targets)), views.labels]


def make_handlers(settings: Settings):
    """The event handlers, closed over one settings object."""

    def run_analysis(held, text, model, top_k, bos, color_by, classroom, mask_mode, mask_n, marker, picked, order,
                     request, progress, skip_if_shown=False):
        """One analysis for the page; errors become a message, never a traceback. `held`: the analysis
        the page shows, which keeps the picked tokens that still mean the same token and, with
        `skip_if_shown`, makes a request that would give the same labels show nothing. Analyses run at
        once, so one that a newer request of the same page overtook shows nothing (`order`: the page's
        own number for this request, see `number_requests_js`)."""
        session = _session(request)
        ticket = NEWEST.begin(session, int(order) if order else None)
        try:
            mask = service_labels.page_mask(held, text, settings, model, bos, session, mask_mode, mask_n, marker, picked)
            if skip_if_shown and service_labels.already_shown(held, text, settings, model, mask, top_k=top_k, bos=bos):
                return [gr.skip()] * len(_failure(""))
            analysis, views = service_labels.page_analysis(
                text, settings, model, mask, session, top_k=top_k, bos=bos, color_by=color_by,
                classroom=classroom, on_loading=lambda msg: progress(0, desc=msg),
            )
        except Exception as err:  # noqa: BLE001 - every failure is reported in the page
            outputs = _failure(service.user_message(err))
        else:
            outputs = [analysis, views.summary, *_views_outputs(analysis, views), views.positions,
                       _picker(analysis, mask.picked)]
        return outputs if NEWEST.is_newest(session, ticket) else [gr.skip()] * len(outputs)

    def analyze_page(held, text, model, top_k, bos, color_by, classroom, mask_mode, mask_n, marker, picked,
                     order=None, request: gr.Request = None, progress=gr.Progress()):
        """Run one analysis for the page (text, model or options changed, or Analyze pressed)."""
        return run_analysis(held, text, model, top_k, bos, color_by, classroom, mask_mode, mask_n, marker, picked,
                            order, request, progress)

    def analyze_masking(held, text, model, top_k, bos, color_by, classroom, mask_mode, mask_n, marker, picked,
                        order=None, request: gr.Request = None, progress=gr.Progress()):
        """After a masking control is touched: the analysis, unless the labels that count stayed the same."""
        return run_analysis(held, text, model, top_k, bos, color_by, classroom, mask_mode, mask_n, marker, picked,
                            order, request, progress, skip_if_shown=True)

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
                    bos: bool = False, mask_first: int = 0, sentence_vocab: bool = True) -> dict:
        """API: the JSON contract for `text` (see README); sentence_vocab=False leaves out its largest part."""
        try:
            return service.analysis_contract(text, settings, model=model, top_k=top_k, bos=bos, mask_first=mask_first,
                                             sentence_vocab=sentence_vocab)
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    def download(kind: str):
        """A handler that writes one download of the held analysis when its button is clicked."""

        def write(analysis):
            if analysis is None:
                gr.Warning("Analyze a text first: there is nothing to download yet.")
                return None
            try:
                return service.export_file(analysis, kind)
            except Exception as err:  # noqa: BLE001 - one sentence, never a traceback
                raise gr.Error(service.user_message(err)) from None

        write.__name__ = f"download_{kind}"
        return write

    def from_url(request: gr.Request):
        """Fill the text and classroom mode from ?text=...&classroom=1."""
        params = dict(request.query_params) if request else {}
        text = params.get("text") or service.EXAMPLES[0]
        classroom = params.get("classroom", "").lower() in ("1", "true", "yes", "on")
        return text[: settings.max_chars], classroom

    return SimpleNamespace(**{f.__name__: f for f in (
        analyze_page, analyze_masking, redraw, redraw_detail, analyze_api, from_url, download)})


def make_label_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Batches, Shift mistakes, Train and Compare tabs, closed over one settings object."""

    def batch(texts, model, mask_pads, classroom):
        try:
            result, grid, losses, table, explanation = service_labels.run_batch(texts, settings, model, mask_pads,
                                                                                classroom)
            return result, explanation, grid, losses, table
        except Exception as err:  # noqa: BLE001
            return None, f"⚠ {service.user_message(err)}", None, None, None

    def shift(text, model, mistake, bos, classroom):
        try:
            comparison, fig, table, explanation = service_labels.run_shift(text, settings, model, mistake, bos,
                                                                           classroom)
            return comparison, explanation, fig, table
        except Exception as err:  # noqa: BLE001
            return None, f"⚠ {service.user_message(err)}", None, None

    def train(text, model, steps, optimizer, lr, bos, classroom, mask_mode, mask_n, marker, picked, held=None,
              request: gr.Request = None, progress=gr.Progress()):
        """Train this session's copy; the trained copy joins the model menus."""
        try:
            session = _session(request)
            views = service_labels.run_training(
                session, text, settings, model, steps, optimizer, lr or None,
                service_labels.page_mask(held, text, settings, model, bos, session, mask_mode, mask_n, marker, picked),
                bos, classroom,
                progress=lambda step, total, loss: progress(step / total, desc=f"step {step}/{total}, loss {loss:.3f}"))
        except Exception as err:  # noqa: BLE001
            return [gr.skip(), f"⚠ {service.user_message(err)}", *[gr.skip()] * 4, *[gr.skip()] * 3]
        menus = [gr.Dropdown(choices=_model_choices(settings, True))] * 3
        return [views.redrawable, views.summary, views.curve, views.heatmap, views.before, views.after, *menus]

    def reset(model, request: gr.Request):
        menus = [gr.Dropdown(choices=_model_choices(settings, False))] * 3
        chosen = settings.model if model == TRAINED_CHOICE else model
        return [None, service_labels.reset_training(_session(request)), None, None, None, None,
                gr.Dropdown(choices=_model_choices(settings, False), value=chosen), *menus[1:]]

    def compare(text, model_a, model_b, view, top_k, bos, classroom, mask_mode, mask_n, marker, picked, held=None,
                model=None, request: gr.Request = None):
        """Two models on the text with the page's masking (picks made on the page's model, carried over by
        their characters), lined up; then the chosen view of both."""
        try:
            session, page_model = _session(request), model or model_a
            mask = service_labels.page_mask(held, text, settings, page_model, bos, session, mask_mode, mask_n,
                                            marker, picked)
            compared = service_compare.compare_analyses(text, settings, model_a, model_b, session, top_k, bos, mask,
                                                        page_model)
            return [compared, compared.note, *_compared_outputs(compared, view, classroom)]
        except Exception as err:  # noqa: BLE001
            return [None, f"⚠ {service.user_message(err)}", *[None] * 5, gr.Dropdown(choices=[], value=None)]

    def compare_view(compared, view, classroom, row=None):
        """Another view, or another position, of the models last compared (no model call)."""
        return [gr.skip()] * 6 if compared is None else _compared_outputs(compared, view, classroom, row)

    def restyle(batched, shifted, trained, compared, classroom, view=service_compare.COMPARE_VIEWS[0], row=None):
        """The Batches, Shift mistakes, Train and Compare figures redrawn in the chosen style (no model call)."""
        skip = gr.skip()
        return [*(service_labels.batch_figures(batched, classroom) if batched else [skip] * 2),
                service_labels.shift_figure(shifted, classroom) if shifted else skip,
                *(service_labels.training_figures(*trained, classroom) if trained else [skip] * 4),
                *(_compared_figures(compared, view, classroom, row) if compared else [skip] * 3)]

    def chat(prompt, answer, model):
        """Fill the text with a chat example and mask its prompt."""
        try:
            text, n_prompt = service_labels.chat_text(prompt, answer, settings, model)
        except Exception as err:  # noqa: BLE001
            return gr.skip(), gr.skip(), gr.skip(), f"⚠ {service.user_message(err)}"
        return text, "first N tokens", n_prompt, f"Only the answer counts: the first {n_prompt} labels are -100."

    def release(request: gr.Request):
        """Free the session's trained copy and its records when its page closes."""
        TRAINED.release(_session(request) or "")
        NEWEST.forget(_session(request))

    return SimpleNamespace(**{f.__name__: f for f in (batch, shift, train, reset, compare, compare_view, restyle,
                                                      chat, release)})


def _compared_outputs(compared, view: str, classroom: bool, row=None) -> list:
    """[plot A, plot B, table A, table B, difference, position menu] for one view of two compared models."""
    views = service_compare.compare_views(compared, view, classroom, row)
    table = view == "labels table"
    return [*(gr.Plot(None if table else fig, visible=not table) for fig in (views.left, views.right)),
            *(gr.Dataframe(fig if table else None, visible=table) for fig in (views.left, views.right)),
            views.difference, gr.Dropdown(choices=views.rows, value=views.row, visible=view == "position detail")]


def _compared_figures(compared, view: str, classroom: bool, row=None) -> list:
    """[plot A, plot B, difference] in the chosen style; the tables' view keeps its hidden plots as they are."""
    views = service_compare.compare_views(compared, view, classroom, row)
    halves = [gr.skip()] * 2 if view == "labels table" else [views.left, views.right]
    return [*halves, views.difference]


def _model_choices(settings: Settings, trained: bool) -> list[str]:
    """The model menu: the configured models, and this session's trained copy when it has one."""
    return [*settings.models, *([TRAINED_CHOICE] if trained else [])]


def _masking_controls() -> SimpleNamespace:
    """Which labels count: masking mode, N, marker, picked tokens, and a chat example."""
    c = SimpleNamespace()
    with gr.Accordion("Labels: which positions count in the loss (−100 masking)", open=False, elem_id="masking"):
        with gr.Row():
            c.mode = gr.Radio(list(MASK_MODES), value="none", label="Mask", elem_id="mask-mode", scale=3)
            c.n = gr.Number(0, precision=0, label="N (first N tokens)", elem_id="mask-n", scale=1,
                            info="labels[:N] = −100. Nothing predicts label 0, so N = 1 changes no loss.")
            c.marker = gr.Textbox(label="Marker (mask up to and including it)", elem_id="mask-marker", scale=2)
        c.picked = gr.CheckboxGroup(choices=[], label="Picked tokens (label index: token) to mask", elem_id="mask-picked")
        with gr.Row():
            c.prompt = gr.Textbox("What does the dog like?", label="Chat example: prompt", scale=2)
            c.answer = gr.Textbox("The dog likes food.", label="answer", scale=2)
            c.chat = gr.Button("Use chat example (only the answer counts)", elem_id="chat-example", scale=1)
        c.note = gr.Markdown("")
    return c


def _labels_tabs(settings: Settings) -> SimpleNamespace:
    """The Batches, Shift mistakes, Train and Compare tabs (inside `gr.Tabs`)."""
    c = SimpleNamespace()
    with gr.Tab("Batches & padding", id="batches"):
        # What each tab last showed, kept to redraw its figures when classroom mode changes (inside a
        # tab: a State directly in gr.Tabs makes Gradio draw a visited tab's button twice).
        c.batch_state, c.shift_state, c.train_state, c.compare_state = (gr.State(None) for _ in range(4))
        c.batch_texts = gr.Textbox("the dog likes food\nthe cat sleeps on the warm mat all day", lines=3, label="Sentences, one per line",
                                   elem_id="batch-texts")
        with gr.Row():
            c.mask_pads = gr.Checkbox(True, label="Pad labels are −100 (uncheck to see what goes wrong)", elem_id="mask-pads")
            c.batch_run = gr.Button("Run the batch", variant="primary", elem_id="batch-run")
        c.batch_note = gr.Textbox(label="Why the batch loss differs from the mean of row losses", interactive=False,
                                  lines=3, elem_id="batch-note")
        c.batch_grid = gr.Plot(show_label=False, elem_id="batch-grid")
        c.batch_losses = gr.Plot(show_label=False, elem_id="batch-losses")
        c.batch_table = gr.Dataframe(label="Rows", headers=list(service_labels.BATCH_COLUMNS), interactive=False,
                                     elem_id="batch-table")
    with gr.Tab("Shift mistakes", id="shifts"):
        with gr.Row():
            c.mistake = gr.Radio(list(MISTAKES), value=list(MISTAKES)[0], label="Mistake", elem_id="mistake", scale=3)
            c.shift_run = gr.Button("Show it on the text", variant="primary", elem_id="shift-run", scale=1)
        c.shift_note = gr.Textbox(label="What goes wrong", interactive=False, lines=3, elem_id="shift-note")
        c.shift_plot = gr.Plot(show_label=False, elem_id="shift-plot")
        c.shift_table = gr.Dataframe(label="Right vs mistaken, per position", headers=list(service_labels.SHIFT_COLUMNS),
                                     interactive=False, elem_id="shift-table")
    with gr.Tab("Train", id="train"):
        gr.Markdown("Train a private copy of the model on the text (respecting the masking above); the shared "
                    "model never changes. This server trains "
                    f"{settings.training_concurrency} text{'s' if settings.training_concurrency != 1 else ''} at a "
                    "time; others wait in the queue, which shows their place.")
        with gr.Row():
            c.steps = gr.Slider(1, settings.max_train_steps, value=10, step=1, label="Steps", elem_id="train-steps")
            c.optimizer = gr.Radio(["adamw", "sgd"], value="adamw", label="Optimizer", elem_id="train-optimizer")
            c.lr = gr.Number(0, label="Learning rate (0: the default, 1e-4 AdamW / 1e-3 SGD)",
                             elem_id="train-lr")
        with gr.Row():
            c.train = gr.Button("Train", variant="primary", elem_id="train-run")
            c.reset = gr.Button("Reset to the base model", elem_id="train-reset")
        c.train_note = gr.Textbox(label="Training", interactive=False, lines=3, elem_id="train-note")
        c.curve = gr.Plot(show_label=False, elem_id="train-curve")
        c.heat = gr.Plot(show_label=False, elem_id="train-heatmap")
        c.before = gr.Plot(show_label=False, elem_id="train-before")
        c.after = gr.Plot(show_label=False, elem_id="train-after")
    with gr.Tab("Compare", id="compare"):
        _compare_tab(c, settings)
    return c


def _compare_tab(c: SimpleNamespace, settings: Settings) -> None:
    """The Compare tab's components: two models, a view, and the two halves side by side (stacked below
    1280 px: assets/app.css), then the loss difference."""
    with gr.Row():
        c.model_a = gr.Dropdown(list(settings.models), value=settings.model, label="Model A", elem_id="compare-a")
        c.model_b = gr.Dropdown(list(settings.models), value=settings.models[-1], label="Model B", elem_id="compare-b")
        c.compare = gr.Button("Compare on the text", variant="primary", elem_id="compare-run")
    c.view = gr.Radio(list(service_compare.COMPARE_VIEWS), value="loss per position", label="View",
                      elem_id="compare-view")
    c.compare_position = gr.Dropdown(choices=[], label="Position (a row of both models)", visible=False,
                                     elem_id="compare-position")
    c.compare_note = gr.Markdown("With only one model installed, train a copy first: it appears as "
                                 f"'{TRAINED_CHOICE}'.", elem_id="compare-note")
    with gr.Row(elem_id="compare-pair"):
        for side in "ab":
            with gr.Column(min_width=0, elem_classes="compare-half"):
                setattr(c, f"plot_{side}", gr.Plot(show_label=False, elem_id=f"compare-plot-{side}"))
                setattr(c, f"table_{side}", gr.Dataframe(label=f"{side.upper()}: input_ids vs labels", visible=False,
                                                         interactive=False, max_height=100_000,
                                                         elem_id=f"compare-table-{side}"))
    c.diff = gr.Plot(show_label=False, elem_id="compare-diff")


def _generation_outputs(run, views):
    """Outputs of a generation step, in the order of the Generate tab's `outputs`."""
    return [run, views.summary, views.text, views.steps, views.step, views.forced, views.table,
            gr.Dropdown(choices=views.step_choices, value=views.step_choices[-1][1])]


def make_step_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Generate and Layers tabs and their API, closed over one settings object."""

    def advance(to_end, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress):
        """One step or the rest of the held generation (a new one when the controls changed)."""
        try:
            dec = service_steps.page_decoding(max_new, mode, temperature, top_k, top_p, seed)
            run = service_steps.advance(run, prompt, settings, model, dec, bos, to_end=to_end,
                                        on_loading=lambda msg: progress(0, desc=msg))
            return _generation_outputs(run, service_steps.generation_views(run, classroom))
        except Exception as err:  # noqa: BLE001 - reported in the page; what was shown stays
            return [gr.skip(), f"⚠ {service.user_message(err)}", *[gr.skip()] * 6]

    def next_token(run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed,
                   progress=gr.Progress()):
        return advance(False, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed,
                       progress)

    def run_to_end(run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed,
                   progress=gr.Progress()):
        return advance(True, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed,
                       progress)

    def start_over():
        return [None, "Press Next token to generate one token, or Run to end.", *[None] * 5,
                gr.Dropdown(choices=[], value=None)]

    def redraw_generation(run, classroom, step):
        """Redraw the generation's figures (no model call)."""
        if run is None:
            return [gr.skip()] * 4
        views = service_steps.generation_views(run, classroom, step)
        return [views.text, views.steps, views.step, views.forced]

    def redraw_step(run, step, classroom):
        return gr.skip() if run is None else service_steps.step_figure(run, step, classroom)

    def open_layers(text, model, bos, value, classroom, progress=gr.Progress()):
        """The logit lens of the text (cached per model, text and BOS)."""
        try:
            lens = service_steps.lens_for(text, settings, model, bos, on_loading=lambda msg: progress(0, desc=msg))
            return [lens, service_steps.lens_summary(lens), service_steps.lens_figure(lens, value, classroom)]
        except Exception as err:  # noqa: BLE001
            return [None, f"⚠ {service.user_message(err)}", None]

    def layers_if_open(open_tab, text, model, bos, value, classroom, progress=gr.Progress()):
        """After a new analysis, the lens too, but only while the Layers tab is the one shown."""
        return open_layers(text, model, bos, value, classroom, progress) if open_tab == "Layers" else [gr.skip()] * 3

    def redraw_layers(lens, value, classroom):
        return gr.skip() if lens is None else service_steps.lens_figure(lens, value, classroom)

    def track_tab(evt: gr.SelectData):
        return evt.value

    def generate_api(prompt: str, model: str = settings.model, max_new_tokens: int = DEFAULT_NEW_TOKENS,
                     temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                     seed: int | None = None, candidates: int = settings.top_k, bos: bool = False) -> dict:
        """API: generate to the end (greedy unless a temperature is given); the JSON of `generate --format json`."""
        try:
            return service_steps.generate(prompt, settings, model, max_new_tokens, temperature, top_k, top_p, seed,
                                          candidates, bos)
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    def lens_api(text: str, model: str = settings.model, bos: bool = False) -> dict:
        """API: the logit lens JSON of the text's first tokens (see service_steps.LENS_MAX_TOKENS)."""
        try:
            return service_steps.lens_for(text, settings, model, bos).to_dict()
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    return SimpleNamespace(**{f.__name__: f for f in (
        next_token, run_to_end, start_over, redraw_generation, redraw_step, open_layers, layers_if_open,
        redraw_layers, track_tab, generate_api, lens_api)})


def _generate_tab() -> SimpleNamespace:
    """The Generate tab's components (inside a `gr.Tab`)."""
    c = SimpleNamespace()
    c.prompt = gr.Textbox(label="Prompt", value=service_steps.PROMPT_EXAMPLE, lines=1, max_lines=6,
                          elem_id="gen-prompt", placeholder="Type a prompt and press Next token")
    with gr.Row():
        c.max_new = gr.Slider(1, MAX_NEW_TOKENS, value=DEFAULT_NEW_TOKENS, step=1, label="New tokens (at most)",
                              elem_id="gen-max-new")
        c.mode = gr.Radio([service_steps.GREEDY, service_steps.SAMPLE], value=service_steps.GREEDY,
                          label="Next token by", elem_id="gen-mode")
        c.temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature (sampling)",
                                  elem_id="gen-temperature")
        c.top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="gen-top-k")
        c.top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.01, label="Top-p (1 = off)", elem_id="gen-top-p")
        c.seed = gr.Number(0, precision=0, label="Seed (empty: random)", elem_id="gen-seed")
    with gr.Row():
        c.next = gr.Button("Next token", variant="primary", elem_id="gen-next")
        c.run = gr.Button("Run to end", elem_id="gen-run")
        c.reset = gr.Button("Start over", elem_id="gen-reset")
    c.summary = gr.Textbox(label="Generation", interactive=False, lines=3, elem_id="gen-summary",
                           elem_classes="summary")
    c.text = gr.Plot(label="Generated text", show_label=False, elem_id="gen-text")
    c.steps = gr.Plot(label="Steps x candidates", show_label=False, elem_id="gen-steps")
    c.step = gr.Dropdown(choices=[], label="Step: its distribution before and after the filters", elem_id="gen-step")
    c.bars = gr.Plot(label="One step before and after", show_label=False, elem_id="gen-bars")
    c.forced = gr.Plot(label="Teacher forcing", show_label=False, elem_id="gen-forced")
    c.table = gr.Dataframe(label="Teacher forcing beside the steps", headers=list(FORCED_COLUMNS), interactive=False,
                           elem_id="gen-forced-table")
    return c


def _layers_tab() -> SimpleNamespace:
    """The Layers tab's components (inside a `gr.Tab`)."""
    c = SimpleNamespace()
    gr.Markdown("What each layer would predict if the model stopped there (the *logit lens*), for the text above.")
    with gr.Row():
        c.value = gr.Radio([("p(true next token)", "p_target"), ("rank of the true token", "rank"),
                            ("entropy", "entropy")], value="p_target", label="Colour by", elem_id="lens-value", scale=4)
        c.button = gr.Button("Show layers", elem_id="lens-button", scale=1)
    c.summary = gr.Textbox(label="Layers", interactive=False, lines=2, elem_id="lens-summary", elem_classes="summary")
    c.plot = gr.Plot(label="Layers x positions", show_label=False, elem_id="lens-heatmap")
    return c


def number_requests_js(inputs: int) -> str:
    """Browser code run as each main analysis is sent: it numbers the request, in its last input (a hidden
    number), in the order the user made them, which the server may begin them out of when they run at once."""
    return ("(...values) => { window.visualizerRequests = (window.visualizerRequests || 0) + 1; "
            f"return [...values.slice(0, {inputs - 1}), window.visualizerRequests]; }}")


def main_analysis(settings: Settings, inputs: list) -> dict:
    """Event options of the page's main analysis (`inputs`: its input components, the request number last):
    up to `batch_size` at once, their forward passes shared; a trigger pressed again while its analysis
    runs is sent once that one is done, and each request is numbered, so the page ends on the latest."""
    return dict(api_visibility="private", concurrency_id="analysis", concurrency_limit=max(1, settings.batch_size),
                trigger_mode="always_last", js=number_requests_js(len(inputs)))


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The whole page."""
    settings = settings or Settings.from_env()
    page = make_handlers(settings)
    analyze_page, redraw, redraw_detail, download = page.analyze_page, page.redraw, page.redraw_detail, page.download
    steps = make_step_handlers(settings)
    # delete_cache: Gradio's copies of the downloads are removed 10-11 minutes after they were handed out.
    with gr.Blocks(title="What does the model predict?", delete_cache=(60, 600)) as demo:
        gr.Markdown("# What does the model predict, and where does its loss come from?\n"
                    "Type a sentence. For every position the model predicts the next token; "
                    "the loss is the average of −ln p(true next token).")
        state = gr.State(None)
        with gr.Row():
            text = gr.Textbox(label="Text", value=service.EXAMPLES[0], lines=1, max_lines=8, scale=5,
                              elem_id="text-input", placeholder="Type a sentence and press Enter")
            run = gr.Button("Analyze", variant="primary", scale=1, elem_id="analyze-button")
        with gr.Row():
            model = gr.Dropdown(list(settings.models), value=settings.model, label="Model", elem_id="model", min_width=320)
            top_k = gr.Slider(1, settings.max_top_k, value=settings.top_k, step=1, label="Top-K", elem_id="top-k")
            color_by = gr.Radio(["probability", "rank"], value="probability", label="Colour tokens by")
            bos = gr.Checkbox(False, label="Prepend BOS (score the first token too)")
            classroom = gr.Checkbox(False, label="Classroom mode", elem_id="classroom")
        mask = _masking_controls()
        summary = gr.Textbox(label="Loss", interactive=False, lines=2, elem_id="summary", elem_classes="summary")
        with gr.Tabs() as tabs:
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
                    downloads = {"positions": gr.Button("⬇ Per-position CSV", elem_id="dl-positions"),
                                 "top_k": gr.Button("⬇ Top-K CSV", elem_id="dl-top-k"),
                                 "analysis": gr.Button("⬇ Analysis JSON", elem_id="dl-json")}
                    download_file = gr.DownloadButton(visible="hidden", elem_id=DOWNLOAD_ID)
            with gr.Tab("Generate", id="generate"):
                gen = _generate_tab()
                # A GenerationRun, kept by reference (Gradio deep-copies only a State's initial value); an
                # idle one is dropped after an hour and the next click starts afresh.
                gen_state = gr.State(None, time_to_live=3600)
            with gr.Tab("Layers", id="layers") as layers_tab:
                lens = _layers_tab()
                lens_state, open_tab = gr.State(None), gr.State(None)
            tabs_l = _labels_tabs(settings)
        mask_inputs = [mask.mode, mask.n, mask.marker, mask.picked]
        request_order = gr.Number(0, precision=0, visible=False, elem_id="request-order")
        inputs = [state, text, model, top_k, bos, color_by, classroom, *mask_inputs, request_order]
        main = main_analysis(settings, inputs)
        outputs = [state, summary, strip, top_plot, vocab_plot, loss_plot, detail_plot, detail_k, labels,
                   positions, mask.picked]
        figures_out = [strip, top_plot, vocab_plot, loss_plot, detail_plot]
        examples = gr.Examples(service.EXAMPLES, inputs=[text], cache_examples=False, api_visibility="private")
        examples.load_input_event.then(analyze_page, inputs, outputs, **main)
        lens_inputs = [text, model, bos, lens.value, classroom]
        lens_outputs = [lens_state, lens.summary, lens.plot]
        for trigger in (text.submit, run.click):
            trigger(analyze_page, inputs, outputs, **main).then(
                steps.layers_if_open, [open_tab, *lens_inputs], lens_outputs, api_visibility="private",
                concurrency_id="views")
        for control in (color_by, classroom):
            control.change(redraw, [state, color_by, classroom, detail_k], figures_out, api_visibility="private", queue=False)
        classroom.change(None, [classroom], None, js=TOGGLE_CLASSROOM_JS)
        for kind, button in downloads.items():  # written on click, then handed to the browser
            button.click(download(kind), [state], download_file, api_visibility="private", concurrency_id="views",
                         show_progress_on=button).success(None, None, None, js=START_DOWNLOAD_JS)
        detail_k.input(redraw_detail, [state, detail_k, classroom], detail_plot, api_visibility="private", queue=False)
        gr.api(page.analyze_api, api_name="analyze", concurrency_id="analysis", concurrency_limit=main["concurrency_limit"])
        _wire_steps(steps, gen, gen_state, lens, lens_state, layers_tab, [model, bos, classroom], lens_inputs,
                    lens_outputs, settings)
        tabs.select(steps.track_tab, None, open_tab, api_visibility="private", queue=False)
        tabs.select(None, None, None, js=RELAYOUT_JS)
        label_handlers = make_label_handlers(settings)
        _wire_labels(label_handlers, tabs_l, mask, [state, text, model, top_k, bos, classroom], inputs, outputs,
                     page, settings)
        demo.unload(label_handlers.release)
        demo.load(page.from_url, None, [text, classroom], api_visibility="private", queue=False).then(
            analyze_page, inputs, outputs, **main)
    return demo


def _wire_steps(steps, gen, gen_state, lens, lens_state, layers_tab, shared, lens_inputs, lens_outputs,
                settings: Settings) -> None:
    """Events of the Generate and Layers tabs, and the /generate and /lens API."""
    model, bos, classroom = shared
    controls = [gen_state, gen.prompt, model, bos, classroom, gen.max_new, gen.mode, gen.temperature, gen.top_k,
                gen.top_p, gen.seed]
    outputs = [gen_state, gen.summary, gen.text, gen.steps, gen.bars, gen.forced, gen.table, gen.step]
    limit = dict(concurrency_id="generation", concurrency_limit=settings.generation_concurrency)
    for trigger in (gen.next.click, gen.prompt.submit):
        trigger(steps.next_token, controls, outputs, api_visibility="private", **limit)
    gen.run.click(steps.run_to_end, controls, outputs, api_visibility="private", **limit)
    gen.reset.click(steps.start_over, None, outputs, api_visibility="private", queue=False)
    classroom.change(steps.redraw_generation, [gen_state, classroom, gen.step],
                     [gen.text, gen.steps, gen.bars, gen.forced], api_visibility="private", queue=False)
    gen.step.input(steps.redraw_step, [gen_state, gen.step, classroom], gen.bars, api_visibility="private", queue=False)
    for trigger in (layers_tab.select, lens.button.click):
        trigger(steps.open_layers, lens_inputs, lens_outputs, api_visibility="private", concurrency_id="views")
    for control in (lens.value, classroom):
        control.change(steps.redraw_layers, [lens_state, lens.value, classroom], lens.plot, api_visibility="private",
                       queue=False)
    gr.api(steps.generate_api, api_name="generate", **limit)
    gr.api(steps.lens_api, api_name="lens", concurrency_id="views")


def _wire_labels(h, c, mask, shared, inputs, outputs, page, settings: Settings) -> None:
    """Events of the masking controls and the Batches, Shift mistakes, Train and Compare tabs."""
    state, text, model, top_k, bos, classroom = shared
    main = main_analysis(settings, inputs)
    mask_inputs = [mask.mode, mask.n, mask.marker, mask.picked]
    # N and the marker re-run the analysis as the user edits them, not only on Enter: a click on a mode
    # right after typing can be sent before the typed value reaches the page's state (seen in Chromium:
    # 'first N tokens' sent with N = 0), and this later request, numbered after it, then shows the truth.
    # Each is skipped when the held analysis already has those labels (N edited in mode 'none', a blur).
    for trigger in (mask.mode.input, mask.n.submit, mask.n.input, mask.marker.submit, mask.marker.blur,
                    mask.picked.input):
        trigger(page.analyze_masking, inputs, outputs, **main)
    mask.chat.click(h.chat, [mask.prompt, mask.answer, model], [text, mask.mode, mask.n, mask.note],
                    api_visibility="private", queue=False).then(
        page.analyze_page, inputs, outputs, **main)
    batch_figures = [c.batch_grid, c.batch_losses]
    for trigger in (c.batch_run.click, c.mask_pads.input):
        trigger(h.batch, [c.batch_texts, model, c.mask_pads, classroom],
                [c.batch_state, c.batch_note, *batch_figures, c.batch_table], api_visibility="private",
                concurrency_id="views")
    c.shift_run.click(h.shift, [text, model, c.mistake, bos, classroom],
                      [c.shift_state, c.shift_note, c.shift_plot, c.shift_table], api_visibility="private",
                      concurrency_id="views")
    menus = [model, c.model_a, c.model_b]
    train_figures = [c.curve, c.heat, c.before, c.after]
    c.train.click(h.train, [text, model, c.steps, c.optimizer, c.lr, bos, classroom, *mask_inputs, state],
                  [c.train_state, c.train_note, *train_figures, *menus], api_visibility="private",
                  concurrency_id="training", concurrency_limit=settings.training_concurrency)
    c.reset.click(h.reset, [model], [c.train_state, c.train_note, *train_figures, *menus],
                  api_visibility="private", queue=False)
    compared = [c.plot_a, c.plot_b, c.table_a, c.table_b, c.diff, c.compare_position]
    c.compare.click(h.compare, [text, c.model_a, c.model_b, c.view, top_k, bos, classroom, *mask_inputs, state, model],
                    [c.compare_state, c.compare_note, *compared], api_visibility="private",
                    concurrency_id="views")
    for trigger in (c.view.input, c.compare_position.input):
        trigger(h.compare_view, [c.compare_state, c.view, classroom, c.compare_position], compared,
                api_visibility="private", queue=False).then(None, None, None, js=RELAYOUT_JS)
    classroom.change(h.restyle, [c.batch_state, c.shift_state, c.train_state, c.compare_state, classroom, c.view,
                                 c.compare_position],
                     [*batch_figures, c.shift_plot, *train_figures, c.plot_a, c.plot_b, c.diff],
                     api_visibility="private", queue=False)


def configure_queue(demo: gr.Blocks, settings: Settings) -> gr.Blocks:
    """A bounded queue: main analyses `batch_size` at once (sharing forward passes), the other model
    views `analysis_concurrency` at once; a full queue answers 'busy' at once."""
    TRAINED.max_copies = settings.max_trained_copies
    return demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.analysis_concurrency)


def launch_options() -> dict:
    """Styling passed to launch() (Gradio 6 takes css/theme there)."""
    return {"css": CSS_PATH.read_text(), "theme": gr.themes.Default()}


if __name__ == "__main__":
    SETTINGS = Settings.from_env()
    service.preload(SETTINGS)
    configure_queue(build_demo(SETTINGS), SETTINGS).launch(**launch_options())
