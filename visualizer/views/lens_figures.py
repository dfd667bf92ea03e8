"""The logit lens as a heatmap: a row per layer (the output at the top), a column per position.

Colour: p(true next token), the rank of the true token, or the entropy, chosen by `value`;
cell text: the layer's top token. Token text is escaped and reaches the figure only through
text, customdata and tick labels.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from ..analysis.lens import LogitLens
from ..errors import InputError
from . import plotting
from .plotting import (
    HOVER_CUSTOMDATA,
    NORMAL,
    FigureStyle,
    escape_text,
    percent,
    shorten,
)

LENS_VALUES = {
    "p_target": "p(true next token)",
    "rank": "rank of the true next token",
    "entropy": "entropy of the layer's prediction",
}
"""What the colour can show: LensCell field -> words for the title."""
MAX_TEXT_COLUMNS = 32
"""Cells carry their top token as text only up to this many positions (hover beyond)."""
MAX_TICKS = 48
"""At most this many labelled positions on the x axis."""
HEAD_TOKENS = 3
"""The hover's context shows this many tokens before the prediction."""
CELL_CHARS = 8
"""A cell's top token keeps at most this many characters (the hover has it whole)."""


def _clip(s: str, limit: int = CELL_CHARS) -> str:
    """The start of a long token behind which a '…' stands: '<0xC2><0xA0>' -> '<0xC2><…'."""
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _position_label(lens: LogitLens, k: int) -> str:
    """An x tick: the last token read and the true next one, '␣likes → ␣food' (escaped, shortened)."""
    last, target = (escape_text(shorten(lens.tokens[i].display, 12)) for i in (k - 1, k))
    return f"{last} → {target}"


def _cell_hover(lens: LogitLens, layer: int, k: int) -> str:
    """'layer 12 · after ␣dog␣likes<br>top: ␣food 60%<br>p(␣food) = 60%, rank 1<br>entropy 2.10 nats'."""
    cell = lens.rows[layer][k - 1]
    before = "".join(t.display for t in lens.tokens[max(0, k - HEAD_TOKENS) : k])
    target = escape_text(lens.tokens[k].display)
    return (
        f"{LogitLens.layer_name(layer)} · k={k}, after {escape_text(before)}<br>"
        f"top: {escape_text(cell.top.display)} {percent(cell.p_top)}<br>"
        f"p({target}) = {percent(cell.p_target)}, rank {cell.rank:,}<br>entropy {cell.entropy:.2f} nats"
    )


def _colour(lens: LogitLens, value: str, vocab_size: int, style: FigureStyle) -> tuple[list[list], dict]:
    """(z rows in layer order, colour settings): bright is always 'the layer has it right / is sure'."""
    bar = dict(tickfont=dict(size=style.label_size), thickness=14, orientation="h", y=-0.02, yanchor="top", len=0.5)
    if value == "p_target":
        return lens.grid("p_target"), dict(
            zmin=0, zmax=1, colorbar=dict(bar, title=dict(text="p", side="top"), tickformat=".0%")
        )
    if value == "rank":
        top = max(1.0, math.log10(vocab_size))
        ticks = list(range(int(top) + 1))
        return (
            [[math.log10(r) for r in row] for row in lens.grid("rank")],
            dict(
                zmin=0,
                zmax=top,
                reversescale=True,
                colorbar=dict(
                    bar, title=dict(text="rank", side="top"), tickvals=ticks, ticktext=[f"{10**t:,}" for t in ticks]
                ),
            ),
        )
    return lens.grid("entropy"), dict(
        zmin=0,
        zmax=math.log(max(vocab_size, 2)),
        reversescale=True,
        colorbar=dict(bar, title=dict(text="entropy, nats", side="top")),
    )


def lens_heatmap(
    lens: LogitLens,
    value: str = "p_target",
    style: FigureStyle = NORMAL,
    vocab_size: int | None = None,
    max_text_columns: int = MAX_TEXT_COLUMNS,
) -> go.Figure:
    """Layers x positions: colour = `value` (p_target, rank or entropy), cell text = the layer's top token.

    `vocab_size` fixes the top of the rank and entropy scales (default: the largest rank seen).
    """
    if value not in LENS_VALUES:
        raise InputError(f"The lens colour must be one of {', '.join(LENS_VALUES)}, not {value!r}.")
    if not lens.rows or not lens.rows[0]:
        raise InputError("The lens has no positions to show.")
    n = len(lens.rows[0])
    vocab_size = vocab_size or max(max(row) for row in lens.grid("rank"))
    z, colour = _colour(lens, value, vocab_size, style)  # (L+1, n-1)
    ks = list(range(1, n + 1))
    text = [[escape_text(_clip(c.top.display)) for c in row] for row in lens.rows]
    hover = [[_cell_hover(lens, layer, k) for k in ks] for layer in range(lens.layers)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=ks,
            y=list(range(lens.layers)),
            text=text,
            customdata=hover,
            hovertemplate=HOVER_CUSTOMDATA,
            texttemplate="%{text}" if n <= max_text_columns else None,
            textfont=dict(size=style.label_size),
            colorscale=style.colorscale,
            xgap=1,
            ygap=1,
            name="logit lens",
            **colour,
        )
    )
    every = math.ceil(n / MAX_TICKS)
    shown = ks[::every]
    cap = f" (the text's first {len(lens.tokens)} tokens)" if lens.truncated else ""
    title = f"The logit lens{cap}: {LENS_VALUES[value]} at each layer (rows) and position (columns)"
    cell = "cell text: the layer's top token" if n <= max_text_columns else "hover a cell for the layer's top token"
    subtitle = f"{escape_text(lens.model)} · {cell} · the top row is the model's own output"
    plotting._layout(
        fig,
        style,
        title,
        lens.layers * style.row_height + 6 * style.label_size + 60,
        subtitle=subtitle,
        extra_top=8 * style.label_size,
    )  # the slanted position labels above the rows; the colour bar below
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(lens.layers)),
        ticktext=[LogitLens.layer_name(i) for i in range(lens.layers)],
    )
    fig.update_xaxes(
        tickmode="array",
        tickvals=shown,
        ticktext=[_position_label(lens, k) for k in shown],
        tickangle=-45,
        side="top",
        range=[0.5, n + 0.5],
    )
    return fig
