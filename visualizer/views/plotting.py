"""What every figure shares: sizes, the normal and classroom styles, escaping, layout, axes and colours.

Every token string is escaped (`escape_text`) before it enters a figure, and user text
never goes into a hovertemplate itself (only into text/customdata it references), so
'<b>', '<a href>' and '%{x}' typed by a user show as typed."""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import get_colorscale, sample_colorscale

from ..analysis.alignment import Slots
from ..analysis.result import Analysis
from ..errors import InputError
from ..model.tokens import VISIBLE_WHITESPACE, unique_names

AXIS_CHARS = 24
"""A context on an axis keeps at most this many characters, the first one a '…'."""
NARROW_AXIS_CHARS = 16
"""The same in a figure narrower than PAGE_WIDTH (Compare's halves), where cells need the room."""
MAX_ROWS = 64
"""Heatmaps show at most this many positions by default."""
PAGE_WIDTH = 1200
"""The width, px, a figure that the page sizes is drawn at in a 1280 px window (and on a projector)."""
CHAR_EM = 0.55
"""The average width of a character of the figures' proportional font, in font sizes."""
TICKS_UNCHECKED = "allow"
"""Every axis's `ticklabeloverflow`: Plotly's default ('hide past div') measures each tick label after drawing it,
to hide one that leaves the figure; automargin already makes room for them. About 15% of the top-K heatmap's
drawing time in the page's Plotly (main-thread CPU), for figures that look the same."""
OTHER_COLUMN = "(all other tokens)"
MAX_TEXT_COLUMNS = 24
"""The walkthrough's table writes values in its cells only up to this many columns (hover beyond)."""
RANK_BUCKETS = ((1, "top-1"), (10, "top-10"), (100, "top-100"), (math.inf, "beyond"))
"""(highest rank in the bucket, its label), best first."""
GREY = "#bdbdbd"
HOVER_CUSTOMDATA = "%{customdata}<extra></extra>"
PLOT_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    "toImageButtonOptions": {"format": "png", "filename": "lm-predictions", "scale": 2},
}
"""Plotly's config for the page: a PNG button at twice the on-screen size, no logo."""


@dataclass(frozen=True)
class FigureStyle:
    """How a figure looks: `NORMAL` for a screen, `CLASSROOM` for a 1280x720 projector."""

    font_size: int
    """Body text, legends and hover labels, px."""
    title_size: int
    """Figure titles, px."""
    label_size: int
    """Heatmap cell text and axis tick labels, px."""
    colorscale: str
    """Plotly's name of a colour-blind-safe sequential scale."""
    text_color: str
    """Text, axis lines and bar outlines."""
    outline_width: float
    """Target-cell outline, px: black, with a white core a third as wide."""
    bar_line_width: float
    """Outline of each bar, px (0: none)."""
    width: int | None
    """Figure width, px; None lets the page size it."""
    height: int
    """Smallest figure height, px; heatmaps grow with their rows."""
    row_height: int
    """Height of one heatmap row, px."""


NORMAL = FigureStyle(
    font_size=13,
    title_size=16,
    label_size=12,
    colorscale="Viridis",
    text_color="#222222",
    outline_width=3,
    bar_line_width=0,
    width=None,
    height=420,
    row_height=26,
)
CLASSROOM = FigureStyle(
    font_size=20,
    title_size=24,
    label_size=16,
    colorscale="Cividis",
    text_color="#000000",
    outline_width=6,
    bar_line_width=2,
    width=None,
    height=720,
    row_height=40,
)


# ---------------------------------------------------------------- text


def escape_text(s: str) -> str:
    """Token text made inert for Plotly's markup: '<b>' -> '&lt;b&gt;', '&' -> '&amp;'."""
    return html.escape(s, quote=False)


def shorten(s: str, limit: int = AXIS_CHARS) -> str:
    """The end of a long string behind a '…', `limit` characters in all.

    Example: shorten('the cat likes fish', 8) -> '…es fish'.
    """
    return s if len(s) <= limit else "…" + s[-(limit - 1) :]


def cut(s: str, limit: int) -> str:
    """The start of a long string and a '…', `limit` characters in all: cut('␣computational', 6) -> '␣comp…'."""
    return s if len(s) <= limit else s[: limit - 1] + "…"


def context_label(context: str, limit: int = AXIS_CHARS) -> str:
    """A row label: a position's context on one line, shortened and escaped, then an arrow. 'the dog likes →'."""
    text = context
    for raw in "\n\t\r":
        text = text.replace(raw, VISIBLE_WHITESPACE[raw])
    return escape_text(shorten(text, limit) or "(start)") + " →"


def percent(p: float) -> str:
    """A probability as a short percentage: 0.6 -> '60%', 0.008 -> '0.8%'; '?' for one not known (NaN)."""
    if p != p:
        return "?"
    v = 100 * p
    return f"{v:.0f}%" if v >= 9.95 else f"{v:.2g}%"


def whole_percent(p: float) -> str:
    """A probability in a small cell: 0.604 -> '60%', 0.003 -> '<1%', 0 -> '0%'."""
    return "0%" if p <= 0 else "<1%" if p < 0.005 else f"{100 * p:.0f}%"


def cell_percent(p: float, bound: float | None = None) -> str:
    """`whole_percent`, or for a p an engine did not give (NaN) what is known: '≤3%' under its bound, else '?'."""
    if p == p:  # not NaN
        return whole_percent(p)
    return "?" if bound is None else f"≤{whole_percent(bound)}"


def packed(values: list | np.ndarray, dtype: str = "float32"):
    """Numbers as a numpy array, which Plotly sends as a base64 typed array: 4 bytes a value
    instead of about 19 characters of JSON. Ragged rows stay lists. [[0.5, 0.25]] -> array (1, 2)."""
    if isinstance(values, list) and values and isinstance(values[0], list) and len({len(row) for row in values}) > 1:
        return values
    return np.asarray(values, dtype=dtype)


def figure_json(fig: go.Figure, config: dict = PLOT_CONFIG) -> str:
    """The figure's JSON with a top-level 'config', which Gradio 6's Plot front end hands to Plotly."""
    data = fig.to_plotly_json()
    data["config"] = config
    return pio.to_json(data, validate=False)


# ---------------------------------------------------------------- shared layout


def _layout(
    fig: go.Figure,
    style: FigureStyle,
    title: str,
    body: float,
    subtitle: str = "",
    margin_r: int = 30,
    extra_top: float = 0,
    at_least_style_height: bool = True,
) -> go.Figure:
    """Fonts, size, white background and axis lines shared by every figure; a one-line title at the top.

    `body` is the height below the top margin (plot, axis labels, colour bar), px; `extra_top`
    the room a legend or a top axis needs between the title and the plot.
    """
    top = 24 + style.title_size * 1.4 + (style.font_size * 1.5 if subtitle else 0) + extra_top
    changes = dict(
        template="none",
        title=dict(
            text=title,
            font=dict(size=style.title_size, color=style.text_color),
            x=0.01,
            xanchor="left",
            y=1,
            yref="container",
            yanchor="top",
            pad=dict(t=12),
            subtitle=dict(text=subtitle, font=dict(size=style.font_size, color=style.text_color)),
        ),
        font=dict(size=style.font_size, color=style.text_color),
        paper_bgcolor="white",
        plot_bgcolor="white",
        width=style.width,
        height=int(max(style.height, body + top) if at_least_style_height else body + top),
        margin=dict(l=20, r=margin_r, t=int(top), b=40, autoexpand=True),
        hoverlabel=dict(font=dict(size=style.font_size, color=style.text_color), bgcolor="white"),
        legend=dict(font=dict(size=style.font_size), orientation="h", y=1.0, yanchor="bottom", x=0),
    )
    axis = dict(
        tickfont=dict(size=style.label_size, color=style.text_color),
        automargin=True,
        ticklabeloverflow=TICKS_UNCHECKED,
        showgrid=False,
        linecolor=style.text_color,
        linewidth=max(1, style.bar_line_width),
        zeroline=False,
    )
    return set_layout(fig, changes, axes=axis)


def set_layout(fig: go.Figure, changes: dict, axes: dict | None = None) -> go.Figure:
    """Merge `changes` into the layout, and `axes` into every x and y axis, then assign it once.

    What update_layout + update_xaxes + update_yaxes do, about ten times faster: Plotly's
    update_* methods send every property through their widget-batching path.
    """
    layout = _merged(fig.layout.to_plotly_json(), changes)
    if axes:
        for name in {"xaxis", "yaxis"} | {k for k in layout if re.fullmatch(r"[xy]axis\d*", k)}:
            layout[name] = _merged(layout.get(name) or {}, axes)
    fig.layout = layout
    return fig


def _merged(base: dict, changes: dict) -> dict:
    """`base` with `changes` merged in, nested dicts merged key by key.

    Example: ({'a': {'b': 1}}, {'a': {'c': 2}}) -> {'a': {'b': 1, 'c': 2}}."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _rows_shown(analysis: Analysis, max_rows: int) -> tuple[int, str]:
    """How many positions a figure shows (the first `max_rows`), and a subtitle saying what was left out ('' if
    nothing)."""
    if isinstance(max_rows, bool) or not isinstance(max_rows, Integral) or max_rows < 1:
        raise InputError(f"max_rows must be a whole number, 1 or more, not {max_rows!r}.")
    n = len(analysis.tokens) - 1
    note = "" if n <= max_rows else f"First {max_rows} of {n} positions shown; the rest are left out."
    return min(n, max_rows), note


def _row_axis(fig: go.Figure, labels: list[str], slots: Slots | None = None, **where) -> None:
    """Rows as 0..R-1 labelled with their contexts, first at the top (labels may repeat); with `slots`,
    row r at y = slots.rows[r] of slots.count rows, the others left empty (to line up with another figure)."""
    rows: dict[str, Any] = dict(
        tickmode="array", tickvals=list(range(len(labels))), ticktext=labels, autorange="reversed"
    )
    if slots is not None:
        rows.update(tickvals=slots.rows[: len(labels)], autorange=False, range=[slots.count - 0.5, -0.5])
    if where in ({}, {"row": 1, "col": 1}):
        set_layout(fig, {"yaxis": rows})
    else:
        fig.update_yaxes(**rows, **where)


def _outlines(cells: list[tuple[int, int]], style: FigureStyle) -> list[dict]:
    """Rectangles around cells (x, y) of the first axes, black with a thin white core, visible on any colour.

    Two path shapes for all cells, not two rectangles per cell: Plotly validates each shape, and
    with a rectangle per row that was the largest part of drawing a heatmap."""
    if not cells:
        return []
    path = "".join(f"M{x - 0.5:g},{y - 0.5:g}H{x + 0.5:g}V{y + 0.5:g}H{x - 0.5:g}Z" for x, y in cells)
    box = dict(type="path", xref="x", yref="y", path=path)
    return [
        dict(box, name="target", line=dict(color="black", width=style.outline_width)),
        dict(box, name="target-core", line=dict(color="white", width=style.outline_width / 3)),
    ]


def _colorbar(style: FigureStyle, **extra) -> dict:
    """A probability colour bar with percentage ticks."""
    return {
        "title": dict(text="p"),
        "tickformat": ".0%",
        "tickfont": dict(size=style.label_size),
        "ticklabeloverflow": TICKS_UNCHECKED,
        **extra,
    }


def rank_bucket(rank: int) -> int:
    """Index into RANK_BUCKETS: 1 -> 0 (top-1), 7 -> 1 (top-10), 50 -> 2, 500 -> 3 (beyond)."""
    return next(i for i, (top, _) in enumerate(RANK_BUCKETS) if rank <= top)


def rank_colors(style: FigureStyle) -> list[str]:
    """One colour per rank bucket, best first, from the bright end of the style's scale."""
    return sample_colorscale(get_colorscale(style.colorscale), [1.0, 2 / 3, 1 / 3, 0.0])


def _discrete_scale(colors: list[str]) -> list[list]:
    """A colourscale of equal steps, one flat colour per step, for z = 0..len-1."""
    step = 1 / len(colors)
    return [[edge, c] for i, c in enumerate(colors) for edge in (i * step, (i + 1) * step)]


def _placer(slots: Slots | None, shown: int) -> list[int]:
    """The y of each of the `shown` rows: 0..shown-1, or their slots among another figure's rows."""
    return list(range(shown)) if slots is None else slots.rows[:shown]


def _side_by_side(left: str, right: str, spacing: float) -> go.Figure:
    """Two plots side by side sharing the y axis, titled above: what make_subplots(1, 2, shared_yaxes=True,
    subplot_titles=...) builds, without its cost (the right plot's traces take xaxis='x2', yaxis='y2')."""
    width = (1 - spacing) / 2
    domains = ([0.0, width], [1 - width, 1.0])
    titles = [
        dict(
            font=dict(size=16),
            showarrow=False,
            text=text,
            x=(lo + hi) / 2,
            xanchor="center",
            xref="paper",
            y=1.0,
            yanchor="bottom",
            yref="paper",
        )
        for text, (lo, hi) in zip((left, right), domains)
    ]
    return go.Figure(
        layout=dict(
            xaxis=dict(anchor="y", domain=domains[0]),
            yaxis=dict(anchor="x", domain=[0.0, 1.0]),
            xaxis2=dict(anchor="y2", domain=domains[1]),
            yaxis2=dict(anchor="x2", domain=[0.0, 1.0], matches="y", showticklabels=False),
            annotations=titles,
        )
    )


def bytes_note(analysis: Analysis, t: int) -> str:
    """' (bytes E7 8B)' for token t when it is a piece of a character split over tokens, else ''."""
    if analysis.split_characters[t] is None:
        return ""
    return f" (bytes {analysis.decoder.token_bytes(analysis.tokens[t].id).hex(' ').upper()})"


def character_line(analysis: Analysis, t: int) -> str:
    """'<br>狗 = 3 tokens: −ln p together 14.2 nats' for token t when it is a piece of a split character,
    else '': the loss of the whole character is the sum of its pieces' losses."""
    split = analysis.split_characters[t]
    if split is None:
        return ""
    pieces = "piece" if split.predicted == 1 else "pieces"
    over = "" if split.predicted == split.pieces else f" (its {split.predicted} predicted {pieces})"
    return f"<br>{escape_text(split.text)} = {split.pieces} tokens: −ln p together {split.loss:.3f} nats{over}"


def describe(fig: go.Figure, alt: str) -> go.Figure:
    """Attach the figure's text alternative (its key numbers, in words) as `layout.meta.alt`; the page makes it
    the plot's aria-label, so a screen reader reads "loss 10.39 nats over 3 positions; highest at k=1"."""
    fig.update_layout(meta=dict(alt=alt))
    return fig


def sentence_columns(analysis: Analysis, first: int | None = None) -> list[str]:
    """The walkthrough's column names: the sentence's distinct tokens (the first `first` of them), escaped and
    made unique, each as it reads in this text ('狗 1/3'), then all other tokens together."""
    labels = analysis.column_labels[:first] if first is not None else analysis.column_labels
    return unique_names([escape_text(label) for label in labels]) + [OTHER_COLUMN]
