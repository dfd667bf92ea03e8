"""Comparing two models on one text, without Gradio: every view of the main page for both, rows lined up.

app.py wires this to the "Compare" tab. Two tokenizers may cut the text differently, so the two
models' positions are paired by where their target tokens end in the text (`alignment`); a position
one model has and the other lacks is an empty row on the other side, and picked tokens are carried
over to each model by their characters. Each request returns plain results or raises InputError.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

import pandas as pd
import plotly.graph_objects as go

from ..analysis.alignment import (
    Alignment,
    align_positions,
    align_tokens,
    map_picks,
    token_ends,
)
from ..analysis.one_pass import Analysis
from ..errors import InputError
from ..settings import Settings
from ..views import label_figures, plotting, predictions, tables, walkthrough
from ..views.headings import headed, number, short_name, style_for
from ..views.loss import loss_bars
from .inputs import check_text
from .labels import EncodedOnce, MaskChoice, masked_analysis
from .models import resolve_model

COMPARE_VIEWS = ("token strip", "top-K", "predicted vs true", "position detail", "loss per position", "labels table")
HALF_WIDTH = 620
"""The width, px, of one of the two figures side by side on a 1280 px page (cuts the top-K cells' tokens)."""
HALF_TOP_K = 5
"""Candidates per position in the compared top-K view: at half a 1280 px page, more do not fit readably."""
HALF_STRIP_TOKENS = 8
"""Tokens per line of a compared token strip (the main page's has 16)."""
HALF_NAME_CHARS = 28
"""A model name in a compared figure's title keeps its last this many characters (half a page wide)."""
TABLE_COLUMNS = ("index", "token", "input_id", "label", "counts_in_loss")
"""The labels table's columns shown in Compare (its 'predicted_from' would make each row wrap)."""


@dataclass
class Compared:
    """Two analyses of one text and how their tokens and positions line up: what the page keeps to redraw."""

    a: Analysis
    b: Analysis
    tokens: Alignment
    """Rows of token indices (the labels table)."""
    positions: Alignment
    """Rows of position rows j = k - 1 (every other view)."""
    note: str
    """What the page says about the alignment and the picked tokens."""

    @property
    def same_tokens(self) -> bool:
        """Whether both models were fed the same token ids, so that row k is position k in both."""
        return self.a.input_ids == self.b.input_ids and self.positions.gaps == 0


@dataclass
class ComparedViews:
    """One view of two models, side by side, and the loss difference under them."""

    left: go.Figure | pd.DataFrame
    right: go.Figure | pd.DataFrame
    difference: go.Figure
    rows: list[tuple[str, int]]
    """The aligned position rows to choose from in the position-detail view: (label, row)."""
    row: int
    """The row the position-detail view shows."""


def compare_analyses(
    text: str,
    settings: Settings,
    model_a: str,
    model_b: str,
    session_id: str | None,
    top_k=10,
    bos: bool = False,
    mask: MaskChoice = MaskChoice(),
    page_model: str | None = None,
) -> Compared:
    """The text analysed by two models with the page's masking (picked tokens carried over from
    `page_model`, the model they were picked on, by their characters), and how the two line up.
    Each model's text is encoded once: its analysis, and where its tokens end (to carry the picks over and
    to line the two up), read those ids."""
    check_text(text, settings)
    sides = {
        name: EncodedOnce(
            resolve_model(name, settings, session_id), text, bool(bos), settings.max_tokens, mask.needs_offsets
        )
        for name in (model_a, model_b)
    }
    ends = {name: _ends(side) for name, side in sides.items()}
    picked_on = _page_ends(ends, page_model or model_a, sides[model_a], settings, session_id, mask)
    a, b = (
        masked_analysis(sides[name].lm, sides[name].encoded, settings, _carried(mask, picked_on, ends[name]), top_k)
        for name in (model_a, model_b)
    )
    ends_a, ends_b = ends[model_a], ends[model_b]
    compared = Compared(a, b, align_tokens(ends_a, ends_b), align_positions(ends_a, ends_b), "")
    compared.note = alignment_note(compared, mask)
    return compared


def _page_ends(
    ends: dict[str, list[int | None]],
    model: str,
    side: EncodedOnce,
    settings: Settings,
    session_id: str | None,
    mask: MaskChoice,
) -> list[int | None] | None:
    """Token ends of the page's model, whose token indices the picks are (None when nothing is picked): those
    of one of the compared models, or of a third model's encoding of the same text (`side`'s)."""
    if mask.mode != "picked tokens" or not mask.picked:
        return None
    if model in ends:
        return ends[model]
    return _ends(EncodedOnce(resolve_model(model, settings, session_id), side.text, side.bos, side.max_tokens))


def _ends(side: EncodedOnce) -> list[int | None]:
    """Where each token of the model's encoding of the text ends, in bytes (alignment.token_ends); for the
    ids of its analysis, what `analysis_ends` gives."""
    ids, lm = side.encoded.ids, side.lm
    return token_ends(side.text, ids, lm.tokenizer, lm.decoder.bytes_of_tokens(ids), side.bos)


def _carried(mask: MaskChoice, picked_on: list[int | None] | None, ends: list[int | None]) -> MaskChoice:
    """The masking for a model whose tokens end at `ends`: picked token indices become its tokens over the
    same characters."""
    if picked_on is None:
        return mask
    return replace(mask, picked=map_picks(mask.picked, picked_on, ends))


def alignment_note(compared: Compared, mask: MaskChoice = MaskChoice()) -> str:
    """Markdown for the page: how rows pair positions, and how the picks were carried over."""
    a, b = compared.a, compared.b
    if compared.same_tokens:
        lines = [f"Both models read the same {len(a.tokens)} tokens: row k is position k in both."]
    else:
        lines = [
            f"The two tokenizers cut the text differently (A: {len(a.tokens)} tokens, B: {len(b.tokens)}). "
            "**Positions are aligned by character offsets**: a row pairs the positions of A and B whose target "
            "tokens end at the same character of the text (a piece of a character, at the same byte of it); "
            f"an empty row is a position the other model has and this one lacks ({compared.positions.gaps} "
            "rows have one side only)."
        ]
    if mask.mode == "picked tokens" and mask.picked:
        lines.append(
            "Picked tokens are carried over by their characters: each model masks its tokens that "
            f"overlap them (A: labels {_masked(a)}, B: labels {_masked(b)})."
        )
    return "\n\n".join(lines)


def _masked(analysis: Analysis) -> str:
    """'1, 4' : the label indices set to -100, or 'none'."""
    return ", ".join(str(i) for i, label in enumerate(analysis.labels) if label == -100) or "none"


# ---------------------------------------------------------------- views


def compare_views(
    compared: Compared, view: str, classroom: bool = False, row: int | None = None, color_by: str = "probability"
) -> ComparedViews:
    """One view for both models, lined up, in the normal or classroom style (no model call)."""
    if view not in COMPARE_VIEWS:
        raise InputError(f"Unknown view '{view}'; choose one of: {', '.join(COMPARE_VIEWS)}.")
    style = style_for(classroom)
    rows = position_rows(compared)
    row = rows[-1][1] if not isinstance(row, int) or not 0 <= row < len(rows) else row
    left, right = _pair(compared, view, style, row, color_by)
    return ComparedViews(left, right, loss_difference(compared, style), rows, row)


def _pair(compared: Compared, view: str, style: plotting.FigureStyle, row: int, color_by: str) -> tuple:
    """The view's two halves (figures lined up, or two tables)."""
    a, b = compared.a, compared.b
    if view == "labels table":
        return tuple(
            labels_table(x, compared.tokens.slots(side).spread(range(len(x.tokens)), None))
            for side, x in enumerate((a, b))
        )
    if view == "position detail":
        return tuple(
            _lined_up(
                [_detail(x, compared.positions.rows[row][side], side, style) for side, x in enumerate((a, b))],
                view,
                compared,
            )
        )
    if view == "token strip":
        pair = [predictions.token_strip(x, color_by=color_by, style=style, per_line=HALF_STRIP_TOKENS) for x in (a, b)]
    elif view == "loss per position":
        pair = [loss_bars(x, style) for x in (a, b)]
    else:
        pair = _heatmaps(compared, view, style)
    pair = [
        headed(fig, _label(side, x), x, view == "loss per position") for side, (fig, x) in enumerate(zip(pair, (a, b)))
    ]
    return tuple(_lined_up(pair, view, compared))


def _heatmaps(compared: Compared, view: str, style: plotting.FigureStyle) -> list[go.Figure]:
    """The top-K or walkthrough heatmaps of both models, each position at its aligned row (at most MAX_ROWS rows)."""
    out = []
    for side, x in enumerate((compared.a, compared.b)):
        slots = compared.positions.slots(side).first(plotting.MAX_ROWS)
        shown = max(1, len(slots.rows))
        if view == "top-K":
            out.append(predictions.top_k_heatmap(_fewer(x, HALF_TOP_K), style, shown, slots, width=HALF_WIDTH))
        else:
            out.append(walkthrough.sentence_vocab_heatmap(x, style, shown, slots))
    return out


def _fewer(analysis: Analysis, top_k: int) -> Analysis:
    """The analysis with only its first `top_k` candidates per position (a figure's copy; the numbers stay)."""
    if analysis.top_k <= top_k:
        return analysis
    arrays = replace(
        analysis.arrays, top_p=analysis.arrays.top_p[:, :top_k], top_ids=analysis.arrays.top_ids[:, :top_k]
    )
    return replace(analysis, arrays=arrays, top_k=top_k)


def _label(side: int, analysis: Analysis) -> str:
    """'A: SmolLM2-135M-Instruct', the name cut to its end to fit half a page."""
    return f"{'AB'[side]}: {short_name(analysis.model, HALF_NAME_CHARS)}"


def _lined_up(pair: list[go.Figure], view: str, compared: Compared) -> list[go.Figure]:
    """The two figures framed alike, so that a row or a bar of one sits level with its partner: the same
    height and top and bottom margins, the bottom labels kept inside them; bars in aligned slots, one y range."""
    top = max(f.layout.margin.t for f in pair)
    if view in ("predicted vs true", "loss per position", "position detail"):  # rotated names: the same room
        bottom = _bottom_room(pair)
        axes = dict(xaxis=dict(automargin=False), xaxis2=dict(automargin=False))
    else:
        bottom, axes = max(f.layout.margin.b for f in pair), {}
    height = max(f.layout.height - f.layout.margin.t - f.layout.margin.b for f in pair) + top + bottom
    for fig in pair:
        plotting.set_layout(fig, dict(height=height, margin=dict(t=top, b=bottom), **axes))
    if view == "loss per position":
        _bar_slots(pair, compared)
    if view == "token strip":
        lines = max(len(fig.data[0].z) for fig in pair)
        for fig in pair:
            plotting.set_layout(fig, dict(yaxis=dict(autorange=False, range=[lines - 0.5, -0.5])))
    return pair


def _bottom_room(pair: list[go.Figure]) -> int:
    """Px below the plot for the longer of the two figures' column names, written at −45°."""
    names = [
        html.unescape(str(x)) for fig in pair for trace in fig.data for x in (trace.x if trace.x is not None else ())
    ]
    size = pair[0].layout.xaxis.tickfont.size or 12
    return int(max(map(len, names), default=4) * size * plotting.CHAR_EM * 0.72) + 2 * size + 10


def _bar_slots(pair: list[go.Figure], compared: Compared) -> None:
    """Loss bars in the aligned rows' order, an empty slot where one model has no position; one y range."""
    for side, fig in enumerate(pair):
        labels = list(fig.layout.xaxis.categoryarray)
        spread = compared.positions.slots(side).spread(labels, None)
        order = [label if label is not None else "\u200b" * (i + 1) for i, label in enumerate(spread)]  # unique blanks
        plotting.set_layout(fig, dict(xaxis=dict(categoryarray=order)))
    top = max(
        (max((y for t in fig.data for y in (t.y if t.y is not None else ())), default=0) for fig in pair), default=0
    )
    for fig in pair:
        plotting.set_layout(fig, dict(yaxis=dict(range=[0, 1.1 * float(top) or 1], autorange=False)))


def _detail(analysis: Analysis, j: int | None, side: int, style: plotting.FigureStyle) -> go.Figure:
    """One position in detail (row j predicts token j + 1), or an empty frame where this model has none."""
    if j is None:
        fig = go.Figure()
        plotting._layout(
            fig,
            style,
            f"{plotting.escape_text(_label(side, analysis))} · no position ends here",
            0,
            subtitle="this model's tokens end elsewhere in the text: see the rows around it",
        )
        plotting.set_layout(fig, dict(xaxis=dict(visible=False), yaxis=dict(visible=False)))
        return fig
    fig = walkthrough.position_detail(analysis, j + 1, style)
    loss = float(analysis.arrays.would_be_losses()[j])
    crude = analysis.vocab.crude_loss(j)
    target = plotting.escape_text(analysis.tokens[j + 1].display)
    room = int(1.5 * style.font_size)  # the subtitle's line, which position_detail has no room for
    plotting.set_layout(
        fig,
        dict(
            height=fig.layout.height + room,
            margin=dict(t=fig.layout.margin.t + room),
            title=dict(
                text=f"{plotting.escape_text(_label(side, analysis))} · k={j + 1} → {target}",
                subtitle=dict(
                    text=f"−ln p = {loss:.3f} nats · sum of |predicted − true| = {crude:.3f}"
                    + ("" if analysis.arrays.counted[j] else " · masked")
                ),
            ),
        ),
    )
    return fig


def _shown_side(compared: Compared, ja: int | None, jb: int | None) -> tuple[Analysis, int]:
    """(analysis, position) an aligned row is named after: model A's where it has the row, else B's (every aligned
    row has at least one)."""
    if ja is not None:
        return compared.a, ja
    assert jb is not None, "an aligned row with neither model's position"
    return compared.b, jb


def position_rows(compared: Compared) -> list[tuple[str, int]]:
    """Choices for the position-detail view: one per aligned row, 'A k=3 · B k=4: …likes → ␣food'."""
    out = []
    for r, (ja, jb) in enumerate(compared.positions.rows):
        x, j = _shown_side(compared, ja, jb)
        ks = f"A k={'—' if ja is None else ja + 1} · B k={'—' if jb is None else jb + 1}"
        out.append((f"{ks}: {x.contexts[j][-30:]} → {x.tokens[j + 1].display}", r))
    return out


def labels_table(analysis: Analysis, rows: list[int | None]) -> pd.DataFrame:
    """`tables.labels_table` with a row per aligned token row: empty where this model has no token there."""
    table = tables.labels_table(analysis)[list(TABLE_COLUMNS)].astype(str)
    blank = dict.fromkeys(TABLE_COLUMNS, "") | {"token": "—"}  # an empty row would be drawn lower than the others
    return pd.DataFrame([blank if i is None else table.iloc[i].to_dict() for i in rows], columns=TABLE_COLUMNS)


def loss_difference(compared: Compared, style: plotting.FigureStyle = plotting.NORMAL) -> go.Figure:
    """Bars of loss_b − loss_a per aligned row: below zero, model b predicts that stretch of text better.
    A row with one model only, or masked in either, has no bar."""
    a, b = compared.a, compared.b
    x, diff = [], []
    for ja, jb in compared.positions.rows:
        x.append(_diff_label(compared, ja, jb))
        pa = a.positions[ja].loss if ja is not None else None
        pb = b.positions[jb].loss if jb is not None else None
        diff.append(pb - pa if pa is not None and pb is not None else None)
    colors = [label_figures.CELL_COLORS[0] if (d or 0) <= 0 else label_figures.CELL_COLORS[2] for d in diff]
    fig = go.Figure(go.Bar(x=x, y=diff, marker=dict(color=colors), name="difference"))
    title = f"Loss difference per position, B − A (mean {number(b.loss)} − {number(a.loss)} nats)"
    subtitle = "" if compared.same_tokens else "rows paired by where their target tokens end in the text"
    plotting._layout(fig, style, title, 0, subtitle=subtitle)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=x, tickangle=-45)
    fig.update_yaxes(title=dict(text="Δ −ln p, nats (below 0: b is better)"), zeroline=True)
    return fig


def _diff_label(compared: Compared, ja: int | None, jb: int | None) -> str:
    """'k=3 ␣food' when both models have the same position; 'A k=3 · B k=4 ␣food' otherwise."""
    x, j = _shown_side(compared, ja, jb)
    token = plotting.escape_text(x.tokens[j + 1].display)
    if ja is not None and ja == jb:
        return f"k={ja + 1} {token}"
    return f"A k={'—' if ja is None else ja + 1} · B k={'—' if jb is None else jb + 1} {token}"
