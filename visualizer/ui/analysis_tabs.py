"""The page's main analysis and its tabs: Predictions, Predicted vs true, Loss, Table & export (and /analyze)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..service import exports, labels
from ..service import page as service
from ..settings import Settings
from .shared import NEWEST, TOGGLE_CLASSROOM_JS, session_id

DOWNLOAD_ID = "download-file"
START_DOWNLOAD_JS = f"() => document.querySelector('#{DOWNLOAD_ID}')?.click()"


def failure_outputs(message: str):
    """Outputs for a failed request: results cleared, one sentence shown, and the picked tokens cleared too
    (with no analysis held, nothing could tell whether a pick still names the token it was made on)."""
    empty = [None] * 5
    return [None, f"⚠ {message}", *empty, gr.Dropdown(choices=[], value=None), None, None, gr.CheckboxGroup(value=[])]


def _picker(analysis, picked):
    """The 'picked tokens' choices for this text: one per label that could count (1..n-1)."""
    choices = [(f"{i}: {t.display}", i) for i, t in enumerate(analysis.tokens) if i > 0]
    keep = [i for i in (picked or []) if 0 < i < len(analysis.tokens)]
    return gr.CheckboxGroup(choices=choices, value=keep)


def _views_outputs(analysis, views):
    """Outputs for a successful request, in the order of `_outputs`."""
    targets = analysis.tokens[1:]
    choices = [(f"k={k}: {c[-40:]} → {t.display}", k) for k, (c, t) in enumerate(zip(analysis.contexts, targets), 1)]
    return [
        views.token_strip,
        views.top_k,
        views.sentence_vocab,
        views.loss,
        views.detail,
        gr.Dropdown(choices=choices, value=len(targets)),
        views.labels,
    ]


def make_analysis_handlers(settings: Settings) -> SimpleNamespace:
    """The main analysis's handlers and the /analyze API, closed over one settings object."""

    def run_analysis(
        held,
        text,
        model,
        top_k,
        bos,
        color_by,
        classroom,
        mask_mode,
        mask_n,
        marker,
        picked,
        order,
        request,
        progress,
        skip_if_shown=False,
    ):
        """One analysis for the page; errors become a message, never a traceback. `held`: the analysis
        the page shows, which keeps the picked tokens that still mean the same token and, with
        `skip_if_shown`, makes a request that would give the same labels show nothing. Analyses run at
        once, so one that a newer request of the same page overtook shows nothing (`order`: the page's
        own number for this request, see `number_requests_js`)."""
        session = session_id(request)
        ticket = NEWEST.begin(session, int(order) if order else None)
        try:
            shown = labels.page_request(
                held,
                text,
                settings,
                model,
                bos,
                session,
                mask_mode,
                mask_n,
                marker,
                picked,
                top_k=top_k,
                color_by=color_by,
                classroom=classroom,
                on_loading=lambda msg: progress(0, desc=msg),
                skip_if_shown=skip_if_shown,
            )
            if shown is None:  # the page already shows it
                return [gr.skip()] * len(failure_outputs(""))
        except Exception as err:  # noqa: BLE001 - every failure is reported in the page
            outputs = failure_outputs(service.user_message(err))
        else:
            outputs = [
                shown.analysis,
                shown.views.summary,
                *_views_outputs(shown.analysis, shown.views),
                shown.views.positions,
                _picker(shown.analysis, shown.mask.picked),
            ]
        return outputs if NEWEST.is_newest(session, ticket) else [gr.skip()] * len(outputs)

    def analyze_page(
        held,
        text,
        model,
        top_k,
        bos,
        color_by,
        classroom,
        mask_mode,
        mask_n,
        marker,
        picked,
        order=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        """Run one analysis for the page (text, model or options changed, or Analyze pressed)."""
        return run_analysis(
            held,
            text,
            model,
            top_k,
            bos,
            color_by,
            classroom,
            mask_mode,
            mask_n,
            marker,
            picked,
            order,
            request,
            progress,
        )

    def analyze_if_changed(
        held,
        text,
        model,
        top_k,
        bos,
        color_by,
        classroom,
        mask_mode,
        mask_n,
        marker,
        picked,
        order=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        """The analysis, unless the page already shows it: a masking control touched without changing which
        labels count, or a text typed (live or with Enter) that is the one shown."""
        return run_analysis(
            held,
            text,
            model,
            top_k,
            bos,
            color_by,
            classroom,
            mask_mode,
            mask_n,
            marker,
            picked,
            order,
            request,
            progress,
            skip_if_shown=True,
        )

    def redraw(analysis, color_by, classroom, detail_k):
        """Redraw the figures from the held analysis (no forward pass)."""
        if analysis is None:
            return [gr.skip()] * 5
        views = service.build_views(analysis, color_by, classroom, detail_k)
        return [views.token_strip, views.top_k, views.sentence_vocab, views.loss, views.detail]

    def redraw_detail(analysis, detail_k, classroom):
        """The position-detail figure for the chosen k."""
        return gr.skip() if analysis is None else service.detail_figure(analysis, detail_k, classroom)

    def analyze_api(
        text: str,
        model: str = settings.model,
        top_k: int = settings.top_k,
        bos: bool = False,
        mask_first: int = 0,
        sentence_vocab: bool = True,
    ) -> dict:
        """API: the JSON contract for `text` (see README); sentence_vocab=False leaves out its largest part."""
        try:
            return service.analysis_contract(
                text, settings, model=model, top_k=top_k, bos=bos, mask_first=mask_first, sentence_vocab=sentence_vocab
            )
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    def download(kind: str):
        """A handler that writes one download of the held analysis when its button is clicked."""

        def write(analysis):
            if analysis is None:
                gr.Warning("Analyze a text first: there is nothing to download yet.")
                return None
            try:
                return exports.export_file(analysis, kind)
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

    return SimpleNamespace(
        **{
            f.__name__: f
            for f in (analyze_page, analyze_if_changed, redraw, redraw_detail, analyze_api, from_url, download)
        }
    )


def build_analysis_tabs() -> SimpleNamespace:
    """The components of the Predictions, Predicted vs true, Loss and Table & export tabs (inside `gr.Tabs`)."""
    c = SimpleNamespace()
    with gr.Tab("Predictions", id="predictions"):
        c.strip = gr.Plot(label="Tokens, coloured by p(true next token)", show_label=False, elem_id="token-strip")
        c.top_plot = gr.Plot(label="Top-K candidates per position", show_label=False, elem_id="top-k-heatmap")
    with gr.Tab("Predicted vs true", id="vocab"):
        c.vocab_plot = gr.Plot(
            label="The sentence's tokens: predicted vs one-hot truth", show_label=False, elem_id="vocab-heatmap"
        )
        c.detail_k = gr.Dropdown(choices=[], label="Position", elem_id="detail-k")
        c.detail_plot = gr.Plot(label="One position in detail", show_label=False, elem_id="position-detail")
    with gr.Tab("Loss", id="loss"):
        c.loss_plot = gr.Plot(label="Loss per position", show_label=False, elem_id="loss-bars")
        c.labels = gr.Dataframe(label="input_ids vs labels: the shift", interactive=False, elem_id="labels-table")
    with gr.Tab("Table & export", id="export"):
        c.positions = gr.Dataframe(label="Per position", interactive=False, elem_id="positions-table")
        with gr.Row():
            c.downloads = {
                "positions": gr.Button("⬇ Per-position CSV", elem_id="dl-positions"),
                "top_k": gr.Button("⬇ Top-K CSV", elem_id="dl-top-k"),
                "analysis": gr.Button("⬇ Analysis JSON", elem_id="dl-json"),
            }
            c.download_file = gr.DownloadButton(visible="hidden", elem_id=DOWNLOAD_ID)
    c.figures = [c.strip, c.top_plot, c.vocab_plot, c.loss_plot, c.detail_plot]
    return c


def wire_analysis_tabs(h: SimpleNamespace, c: SimpleNamespace, state, color_by, classroom) -> None:
    """Redrawing in another colour or style, the position detail, the downloads and the /analyze API."""
    for control in (color_by, classroom):
        control.change(
            h.redraw, [state, color_by, classroom, c.detail_k], c.figures, api_visibility="private", queue=False
        )
    classroom.change(None, [classroom], None, js=TOGGLE_CLASSROOM_JS)
    for kind, button in c.downloads.items():  # written on click, then handed to the browser
        button.click(
            h.download(kind),
            [state],
            c.download_file,
            api_visibility="private",
            concurrency_id="views",
            show_progress_on=button,
        ).success(None, None, None, js=START_DOWNLOAD_JS)
    c.detail_k.input(
        h.redraw_detail, [state, c.detail_k, classroom], c.detail_plot, api_visibility="private", queue=False
    )
