"""The Compare tab: every view of the page for two models (or a model and your trained copy), lined up
side by side, then the per-position loss difference."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..service import compare as service_compare
from ..service import labels
from ..service import page as service
from ..service.compare_tokens import compare_on_tokens
from ..service.models import TRAINED_CHOICE
from ..settings import Settings
from .shared import RELAYOUT_JS, session_id


def make_compare_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Compare tab, closed over one settings object."""

    def compare(
        text,
        model_a,
        model_b,
        view,
        top_k,
        bos,
        classroom,
        mask_mode,
        mask_n,
        marker,
        picked,
        held=None,
        model=None,
        request: gr.Request | None = None,
    ):
        """Two models on the text with the page's masking (picks made on the page's model, carried over by
        their characters), lined up; or, when the page shows a conversation or a data row, on its tokens and
        labels as they are. Then the chosen view of both."""
        try:
            session, page_model = session_id(request), model or model_a
            if getattr(held, "source", "text") != "text":
                compared = compare_on_tokens(held, settings, model_a, model_b, session, top_k)
                return [compared, compared.note, *compared_outputs(compared, view, classroom)]
            mask = labels.page_mask(held, text, settings, page_model, bos, session, mask_mode, mask_n, marker, picked)
            compared = service_compare.compare_analyses(
                text, settings, model_a, model_b, session, top_k, bos, mask, page_model
            )
            return [compared, compared.note, *compared_outputs(compared, view, classroom)]
        except Exception as err:  # noqa: BLE001
            return [None, f"⚠ {service.user_message(err)}", *[None] * 5, gr.Dropdown(choices=[], value=None)]

    def compare_view(compared, view, classroom, row=None):
        """Another view, or another position, of the models last compared (no model call)."""
        return [gr.skip()] * 6 if compared is None else compared_outputs(compared, view, classroom, row)

    return SimpleNamespace(
        **{
            f.__name__: f
            for f in (
                compare,
                compare_view,
            )
        }
    )


def compared_outputs(compared, view: str, classroom: bool, row=None) -> list:
    """[plot A, plot B, table A, table B, difference, position menu] for one view of two compared models."""
    views = service_compare.compare_views(compared, view, classroom, row)
    table = view == "labels table"
    return [
        *(gr.Plot(None if table else fig, visible=not table) for fig in (views.left, views.right)),
        *(gr.Dataframe(fig if table else None, visible=table) for fig in (views.left, views.right)),
        views.difference,
        gr.Dropdown(choices=views.rows, value=views.row, visible=view == "position detail"),
    ]


def compared_figures(compared, view: str, classroom: bool, row=None) -> list:
    """[plot A, plot B, difference] in the chosen style; the tables' view keeps its hidden plots as they are."""
    views = service_compare.compare_views(compared, view, classroom, row)
    halves = [gr.skip()] * 2 if view == "labels table" else [views.left, views.right]
    return [*halves, views.difference]


def build_compare_tab(c: SimpleNamespace, settings: Settings) -> None:
    """The Compare tab's components: two models, a view, and the two halves side by side (stacked below
    1280 px: assets/app.css), then the loss difference."""
    with gr.Row():
        c.model_a = gr.Dropdown(list(settings.models), value=settings.model, label="Model A", elem_id="compare-a")
        c.model_b = gr.Dropdown(list(settings.models), value=settings.models[-1], label="Model B", elem_id="compare-b")
        c.compare = gr.Button("Compare", variant="primary", elem_id="compare-run")
    c.view = gr.Radio(
        list(service_compare.COMPARE_VIEWS), value="loss per position", label="View", elem_id="compare-view"
    )
    c.compare_position = gr.Dropdown(
        choices=[], label="Position (a row of both models)", visible=False, elem_id="compare-position"
    )
    c.compare_note = gr.Markdown(
        f"With only one model installed, train a copy first: it appears as '{TRAINED_CHOICE}'.", elem_id="compare-note"
    )
    with gr.Row(elem_id="compare-pair"):
        for side in "ab":
            with gr.Column(min_width=0, elem_classes="compare-half"):
                setattr(c, f"plot_{side}", gr.Plot(show_label=False, elem_id=f"compare-plot-{side}"))
                setattr(
                    c,
                    f"table_{side}",
                    gr.Dataframe(
                        label=f"{side.upper()}: input_ids vs labels",
                        visible=False,
                        interactive=False,
                        max_height=100_000,
                        elem_id=f"compare-table-{side}",
                    ),
                )
    c.diff = gr.Plot(show_label=False, elem_id="compare-diff")


def wire_compare_tab(h: SimpleNamespace, c: SimpleNamespace, shared: list, mask_inputs: list) -> None:
    """Compare on the text with the page's masking; another view or position redraws without a model call."""
    state, text, model, top_k, bos, classroom = shared
    compared = [c.plot_a, c.plot_b, c.table_a, c.table_b, c.diff, c.compare_position]
    c.compare.click(
        h.compare,
        [text, c.model_a, c.model_b, c.view, top_k, bos, classroom, *mask_inputs, state, model],
        [c.compare_state, c.compare_note, *compared],
        api_visibility="private",
        concurrency_id="views",
    )
    for trigger in (c.view.input, c.compare_position.input):
        trigger(
            h.compare_view,
            [c.compare_state, c.view, classroom, c.compare_position],
            compared,
            api_visibility="private",
            queue=False,
        ).then(None, None, None, js=RELAYOUT_JS)
