"""The "Your data" tab: a conversation typed row by row, or a fine-tuning file, with the labels TRL makes.

A conversation is rendered with the model's own chat template; each token shows its role and whether it counts.
A file's (or, on a Space, a Hub dataset's) rows fill a table as they are scanned (progress on the way); choosing a
row shows its tokens the same way. Either one becomes the page's analysis, so Predictions, Loss, the Lesson, Compare
and the other views show it. With packing on, a packed sequence's examples are compared seeing each other and apart.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pandas as pd

from ..errors import InputError
from ..service import page as service
from ..service import training_data as data_service
from ..service.packing import pack_view
from ..settings import Settings
from ..views.data_report import ROW_COLUMNS, role_spans, rows_table
from ..views.packing_figures import EXAMPLE_COLUMNS

CHAT_COLUMNS = ["role", "content"]
EXAMPLE_CHAT = [
    ["system", "You are a helpful assistant."],
    ["user", "What does the dog like?"],
    ["assistant", "The dog likes food."],
]
FILE_TYPES = [".jsonl", ".json", ".csv", ".parquet"]
CHAT_PRESETS = ["all", "assistant-only"]
FILE_PRESETS = ["all", "completion-only", "assistant-only"]


def role_tokens(labeled) -> gr.HighlightedText:
    """Each token with its role and whether it counts, coloured by that (gr.HighlightedText shows text, never
    markup)."""
    spans, colors = role_spans(labeled)
    return gr.HighlightedText(value=[(token, mark) for token, mark in spans], color_map=colors)


def _messages(table) -> list[dict]:
    """The editor's rows as messages (blank rows left out)."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table or [], columns=CHAT_COLUMNS)
    rows = frame.iloc[:, :2].fillna("").astype(str).values.tolist()  # role, content; any further column ignored
    return [{"role": r.strip(), "content": c} for r, c in rows if r.strip() or c.strip()]


def make_data_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the tab and the /chat API, closed over one settings object."""

    def chat(table, model, preset, top_k):
        """(page analysis, tokens by role, note) for the typed conversation."""
        try:
            lm = service.get_model(model or settings.model, settings)
            labeled = data_service.analyze_chat(_messages(table), lm, settings, preset=preset, top_k=int(top_k))
        except Exception as err:  # noqa: BLE001 - one sentence, never a traceback
            return gr.skip(), None, f"⚠ {service.user_message(err)}", gr.skip()
        return labeled.analysis, role_tokens(labeled), _note(labeled), _note(labeled)

    def scan(upload, model, preset, max_length, packing, hub_id="", hub_split="train", progress=gr.Progress()):
        """The file's (or the Hub dataset's) rows table, filled as rows are done (a generator: each yield updates
        the page)."""
        try:
            if upload is None and str(hub_id or "").strip():
                data = data_service.open_hub_data(hub_id, hub_split, settings)
            elif upload is None:
                raise InputError(
                    "Choose a data file first" + (", or name a Hub dataset." if settings.hub_datasets else ".")
                )
            else:
                data = data_service.open_data(upload, settings)
            lm = service.get_model(model or settings.model, settings)
            options = data_service.label_options(preset, max_length, packing)
            started = data_service.scan_file(data, lm, options, settings)
        except Exception as err:  # noqa: BLE001
            yield None, pd.DataFrame(columns=ROW_COLUMNS), f"⚠ {service.user_message(err)}"
            return
        reports = []
        head = " ".join(started.notices)
        try:
            for report in progress.tqdm(started.rows, total=started.total, desc="Scanning rows"):
                reports.append(report)
                if len(reports) % 8 == 0 or len(reports) == started.total:
                    yield data, rows_table(reports), _scan_note(reports, started.total, head)
        except Exception as err:  # noqa: BLE001
            yield data, rows_table(reports), f"⚠ {service.user_message(err)}"
            return
        yield data, rows_table(reports), _scan_note(reports, started.total, head)

    def open_row(data, model, preset, max_length, packing, top_k, evt: gr.SelectData):
        """The chosen row's analysis: the page's views and its tokens by role."""
        try:
            row = int(evt.row_value[0]) if evt.row_value else int(evt.index[0])
            lm = service.get_model(model or settings.model, settings)
            options = data_service.label_options(preset, max_length, packing)
            labeled = data_service.analyze_row(data, row, lm, options, settings, top_k=int(top_k))
        except Exception as err:  # noqa: BLE001
            return gr.skip(), None, f"⚠ {service.user_message(err)}", gr.skip()
        return labeled.analysis, role_tokens(labeled), _note(labeled), _note(labeled)

    def packing(data, model, preset, max_length, packing, pack, classroom):
        """(figure, examples table, note) of one packed sequence of the scanned file: two real forward passes."""
        try:
            if data is None:
                raise InputError("Scan a data file first, with packing on: the packed sequences are its rows.")
            lm = service.get_model(model or settings.model, settings)
            options = data_service.label_options(preset, max_length, packing)
            view = pack_view(data, pack, lm, options, classroom=bool(classroom))
        except Exception as err:  # noqa: BLE001
            return None, pd.DataFrame(columns=EXAMPLE_COLUMNS), f"⚠ {service.user_message(err)}"
        seq = view.comparison.sequence
        head = (
            f"Packed sequence {seq.pack} of {view.packs} (0 to {view.packs - 1}): rows {', '.join(map(str, seq.rows))}."
        )
        return view.figure, view.table.round(4), " ".join([head, *view.notices])

    def chat_api(messages: list, model: str = settings.model, preset: str = "all", top_k: int = settings.top_k):
        """API: one conversation through the model's chat template with TRL's labels: the JSON contract plus each
        token's role."""
        try:
            lm = service.get_model(model or settings.model, settings)
            return data_service.analyze_chat(messages, lm, settings, preset=preset, top_k=top_k).to_dict()
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    return SimpleNamespace(chat=chat, scan=scan, open_row=open_row, packing=packing, chat_api=chat_api)


def _note(labeled) -> str:
    """The analysis's loss line and notices under the tokens."""
    return service.summary_text(labeled.analysis)


def _scan_note(reports, total: int, head: str) -> str:
    """'120 of 1000 rows · 3 with warnings · mean loss 2.13 over 4,410 counted tokens'."""
    sums = data_service.totals(reports)
    loss = (
        "no counted token" if sums.loss is None else f"mean loss {sums.loss:.3f} over {sums.counted:,} counted tokens"
    )
    parts = [f"{len(reports)} of {total} rows", f"{sums.warned} with warnings", f"{sums.dropped} dropped by TRL", loss]
    return " · ".join(parts) + (f"\n{head}" if head else "")


def build_data_tab(settings: Settings) -> SimpleNamespace:
    """The tab's components (inside a gr.Tab)."""
    c = SimpleNamespace()
    with gr.Row(elem_classes="controls-beside"):
        with gr.Column(scale=1, min_width=320):
            gr.Markdown("**A conversation**: one message a row, rendered with the model's chat template.")
            c.chat_table = gr.Dataframe(
                value=EXAMPLE_CHAT,
                headers=CHAT_COLUMNS,
                column_count=(2, "fixed"),  # type: ignore[arg-type]  # Gradio 6 reads the tuple; its hint says int
                datatype=["str", "str"],
                interactive=True,
                wrap=True,
                elem_id="chat-editor",
            )
            c.chat_preset = gr.Dropdown(CHAT_PRESETS, value="all", label="Train on", elem_id="chat-preset")
            c.chat_button = gr.Button("Analyze conversation", variant="primary", elem_id="chat-button")
            gr.Markdown(
                "**A fine-tuning file**: JSONL, JSON, CSV or Parquet; `messages`, `prompt` + `completion` or `text`."
            )
            c.upload = gr.File(label="Data file", file_types=FILE_TYPES, type="filepath", elem_id="data-file")
            with gr.Row(visible=settings.hub_datasets):  # a Space: a Hub dataset instead of a file
                c.hub_id = gr.Textbox(label="or a Hub dataset (owner/name)", scale=3, elem_id="hub-dataset")
                c.hub_split = gr.Textbox("train", label="split", scale=1, elem_id="hub-split")
            c.preset = gr.Dropdown(FILE_PRESETS, value="all", label="Preset (TRL)", elem_id="data-preset")
            with gr.Row():  # the preset alone on its line: at 1280 px a third of the page cannot hold all three
                c.max_length = gr.Number(
                    1024, precision=0, label="max_length (0: none)", min_width=140, elem_id="data-max-length"
                )
                c.packing = gr.Checkbox(False, label="packing", min_width=110, elem_id="data-packing")
            c.scan_button = gr.Button("Scan rows", variant="primary", elem_id="scan-button")
        with gr.Column(scale=2):
            c.tokens = gr.HighlightedText(
                label="Tokens by role: counted or masked", combine_adjacent=False, elem_id="role-tokens"
            )
            c.note = gr.Textbox(label="What counts", interactive=False, lines=3, elem_id="data-note")
            c.rows = gr.Dataframe(
                headers=list(ROW_COLUMNS), interactive=False, wrap=True, label="Rows (choose one)", elem_id="data-rows"
            )
    with gr.Accordion("Packing: each example's loss seeing the others and kept apart", open=False):
        with gr.Row():
            c.pack = gr.Number(0, precision=0, minimum=0, label="Packed sequence", elem_id="pack-index")
            c.pack_button = gr.Button("Compare packed examples", variant="primary", elem_id="pack-button")
        c.pack_note = gr.Textbox(label="Packed sequence", interactive=False, lines=1, elem_id="pack-note")
        c.pack_plot = gr.Plot(show_label=False, elem_id="pack-plot")
        c.pack_table = gr.Dataframe(headers=list(EXAMPLE_COLUMNS), interactive=False, elem_id="pack-table")
    c.data_state = gr.State(None)
    return c


def wire_data_tab(h: SimpleNamespace, c: SimpleNamespace, state, summary, model, top_k, classroom) -> None:
    """Events: a conversation or a chosen row becomes the page's analysis (its views draw from it as they open, and
    its loss line goes to the page's loss box); a scan streams the rows table; a packed sequence draws on request."""
    c.chat_button.click(
        h.chat,
        [c.chat_table, model, c.chat_preset, top_k],
        [state, c.tokens, c.note, summary],
        api_visibility="private",
        concurrency_id="views",
    )
    c.scan_button.click(
        h.scan,
        [c.upload, model, c.preset, c.max_length, c.packing, c.hub_id, c.hub_split],
        [c.data_state, c.rows, c.note],
        api_visibility="private",
        concurrency_id="views",
    )
    c.rows.select(
        h.open_row,
        [c.data_state, model, c.preset, c.max_length, c.packing, top_k],
        [state, c.tokens, c.note, summary],
        api_visibility="private",
        concurrency_id="views",
    )
    c.pack_button.click(
        h.packing,
        [c.data_state, model, c.preset, c.max_length, c.packing, c.pack, classroom],
        [c.pack_plot, c.pack_table, c.pack_note],
        api_visibility="private",
        concurrency_id="views",
    )
    gr.api(h.chat_api, api_name="chat", concurrency_id="views")
