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
PREDICTIONS, VOCAB, LOSS = "Predictions", "Predicted vs true", "Loss"
TAB_FIGURES = {PREDICTIONS: ("token_strip", "top_k"), VOCAB: ("sentence_vocab", "detail"), LOSS: ("loss",)}
"""The figures each tab shows (by their names in `service.page.FIGURES`, the order of the page's figure outputs),
its lead figure first. An analysis draws the lead figure of the tab shown (the tab's name, as the page tracks it;
None: the first tab, the Lesson) and sends it at once; the tab's other figures follow from the held analysis
(`draw_tab`, no forward pass), since the browser takes as long again to draw each (the top-K heatmap's 160 cells:
~0.13 s here). The other tabs' figures are cleared and drawn when their tab opens."""
NOT_DRAWN: tuple = (None, frozenset())
"""What `drawn` holds with no figure drawn: (the analysis the figures were drawn for, their names)."""


def failure_outputs(message: str):
    """Outputs for a failed request: results cleared, one sentence shown, and the picked tokens cleared too
    (with no analysis held, nothing could tell whether a pick still names the token it was made on)."""
    empty = [None] * len(service.FIGURES)
    return [
        None,
        f"⚠ {message}",
        *empty,
        gr.Dropdown(choices=[], value=None),
        None,
        None,
        NOT_DRAWN,
        gr.CheckboxGroup(value=[]),
    ]


def figures_of(tab) -> tuple[str, ...]:
    """The figures of the tab named `tab` (none for a tab without figures of the analysis)."""
    return TAB_FIGURES.get(tab, ()) if isinstance(tab, str) else ()


def figures_drawn(analysis, drawn) -> frozenset:
    """The figures that show `analysis` (`drawn`: the analysis they were drawn for, and their names)."""
    held, names = drawn or NOT_DRAWN
    return names if analysis is not None and held is analysis else frozenset()


def figure_outputs(views, drawn=None, leave=()) -> list:
    """The five figure outputs: those named in `drawn` from `views` (all of them when None), gr.skip() for those in
    `leave` (left as they are, to be drawn next), None (cleared) for the others."""
    names = service.FIGURES if drawn is None else drawn
    return [getattr(views, n) if n in names else gr.skip() if n in leave else None for n in service.FIGURES]


def _picker(analysis, picked):
    """The 'picked tokens' choices for this text: one per label that could count (1..n-1)."""
    choices = [(f"{i}: {t.display}", i) for i, t in enumerate(analysis.tokens) if i > 0]
    keep = [i for i in (picked or []) if 0 < i < len(analysis.tokens)]
    return gr.CheckboxGroup(choices=choices, value=keep)


def _views_outputs(analysis, views, open_tab):
    """Outputs for a successful request, in the order of `_outputs`: the lead figure of the open tab, its other
    figures left for `draw_tab`, the rest cleared."""
    targets = analysis.tokens[1:]
    choices = [(f"k={k}: {c[-40:]} → {t.display}", k) for k, (c, t) in enumerate(zip(analysis.contexts, targets), 1)]
    figures = figure_outputs(views, lead_figures(open_tab), figures_of(open_tab))
    return [*figures, gr.Dropdown(choices=choices, value=len(targets)), views.labels]


def lead_figures(tab) -> tuple[str, ...]:
    """The figure an analysis draws at once for the tab shown: its first (none for a tab without figures)."""
    return figures_of(tab)[:1]


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
        open_tab,
        order,
        request,
        progress,
        skip_if_shown=False,
    ):
        """One analysis for the page; errors become a message, never a traceback. `held`: the analysis
        the page shows, which keeps the picked tokens that still mean the same token and, with
        `skip_if_shown`, makes a request that would give the same labels show nothing. Analyses run at
        once, so one that a newer request of the same page overtook shows nothing (`order`: the page's
        own number for this request, see `number_requests_js`). Only the lead figure of `open_tab`, the tab shown,
        is drawn: its other figures right after, the other tabs' when they open (`draw_tab`)."""
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
                figures=lead_figures(open_tab),
            )
            if shown is None:  # the page already shows it
                return [gr.skip()] * len(failure_outputs(""))
        except Exception as err:  # noqa: BLE001 - every failure is reported in the page
            outputs = failure_outputs(service.user_message(err))
        else:
            outputs = [
                shown.analysis,
                shown.views.summary,
                *_views_outputs(shown.analysis, shown.views, open_tab),
                shown.views.positions,
                (shown.analysis, frozenset(lead_figures(open_tab))),
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
        open_tab=None,
        order=None,
        request: gr.Request | None = None,
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
            open_tab,
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
        open_tab=None,
        order=None,
        request: gr.Request | None = None,
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
            open_tab,
            order,
            request,
            progress,
            skip_if_shown=True,
        )

    def redraw(analysis, open_tab, color_by, classroom, detail_k):
        """Redraw the shown tab's figures from the held analysis in another colour or style (no forward pass);
        the other figures are cleared, and drawn when their tab opens."""
        if analysis is None:
            return [gr.skip()] * (len(service.FIGURES) + 1)
        views = service.build_views(analysis, color_by, classroom, detail_k, figures=figures_of(open_tab))
        return [*figure_outputs(views, figures_of(open_tab)), (analysis, frozenset(figures_of(open_tab)))]

    def draw_tab(analysis, tab, color_by, classroom, detail_k, drawn):
        """The figures of `tab` that do not show the held analysis yet (no forward pass): as the tab opens, and after
        each analysis for the tab then shown (the figures after its lead one, or a tab opened while it ran)."""
        done = figures_drawn(analysis, drawn)
        missing = tuple(name for name in figures_of(tab) if name not in done)
        if analysis is None or not missing:
            return [gr.skip()] * (len(service.FIGURES) + 1)
        views = service.build_views(analysis, color_by, classroom, detail_k, figures=missing)
        return [*figure_outputs(views, missing, service.FIGURES), (analysis, done | set(missing))]

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
            for f in (
                analyze_page,
                analyze_if_changed,
                redraw,
                draw_tab,
                redraw_detail,
                analyze_api,
                from_url,
                download,
            )
        }
    )


def build_analysis_tabs() -> SimpleNamespace:
    """The components of the Predictions, Predicted vs true, Loss and Table & export tabs (inside `gr.Tabs`)."""
    c = SimpleNamespace(tabs={})
    with gr.Tab(PREDICTIONS, id="predictions") as c.tabs[PREDICTIONS]:
        c.strip = gr.Plot(label="Tokens, coloured by p(true next token)", show_label=False, elem_id="token-strip")
        c.top_plot = gr.Plot(label="Top-K candidates per position", show_label=False, elem_id="top-k-heatmap")
        # (the analysis the figures were drawn for, their tabs): see `draw_tab`. Inside a tab: a block
        # placed in gr.Tabs beside its tabs shifts the tab names by one in the page.
        c.drawn = gr.State(NOT_DRAWN)
    with gr.Tab(VOCAB, id="vocab") as c.tabs[VOCAB]:
        c.vocab_plot = gr.Plot(
            label="The sentence's tokens: predicted vs one-hot truth", show_label=False, elem_id="vocab-heatmap"
        )
        c.detail_k = gr.Dropdown(choices=[], label="Position", elem_id="detail-k")
        c.detail_plot = gr.Plot(label="One position in detail", show_label=False, elem_id="position-detail")
    with gr.Tab(LOSS, id="loss") as c.tabs[LOSS]:
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
    c.figures = [c.strip, c.top_plot, c.vocab_plot, c.loss_plot, c.detail_plot]  # service.FIGURES' order
    return c


def _drawing(h: SimpleNamespace, tab: str):
    """`h.draw_tab` for one tab, as it opens."""

    def draw_opened(analysis, color_by, classroom, detail_k, drawn):
        return h.draw_tab(analysis, tab, color_by, classroom, detail_k, drawn)

    return draw_opened


def wire_analysis_tabs(h: SimpleNamespace, c: SimpleNamespace, state, open_tab, color_by, classroom) -> None:
    """A tab's figures drawn as it opens and after each analysis, redrawing in another colour or style, the
    position detail and the downloads. `open_tab`: the name of the tab shown (None: the first)."""
    quick = dict(api_visibility="private", queue=False)
    style = [color_by, classroom, c.detail_k, c.drawn]
    for name, tab in c.tabs.items():
        tab.select(_drawing(h, name), [state, *style], [*c.figures, c.drawn], **quick)
    # After each analysis (it drew the tab shown as it began), the tab shown now, should another have opened.
    state.change(h.draw_tab, [state, open_tab, *style], [*c.figures, c.drawn], **quick)
    for control in (color_by, classroom):
        control.change(h.redraw, [state, open_tab, color_by, classroom, c.detail_k], [*c.figures, c.drawn], **quick)
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
