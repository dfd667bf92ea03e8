"""Plotly figures of an Analysis: the token strip, top-K and walkthrough heatmaps, loss bars.

Each function takes an `Analysis` and returns a `go.Figure`; nothing is displayed.
Every token string is escaped (`escape_text`) before it enters a figure, and user text
never goes into a hovertemplate itself (only into text/customdata it references), so
'<b>', '<a href>' and '%{x}' typed by a user show as typed.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from numbers import Integral

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
PAGE_WIDTH = 1200
"""The width, px, a figure that the page sizes is drawn at in a 1280 px window (and on a projector)."""
CHAR_EM = 0.55
"""The average width of a character of the figures' proportional font, in font sizes."""
"""Heatmaps show at most this many positions by default."""
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
    font_size=13, title_size=16, label_size=12, colorscale="Viridis", text_color="#222222",
    outline_width=3, bar_line_width=0, width=None, height=420, row_height=26,
)
CLASSROOM = FigureStyle(
    font_size=20, title_size=24, label_size=16, colorscale="Cividis", text_color="#000000",
    outline_width=6, bar_line_width=2, width=None, height=720, row_height=40,
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
    """A probability as a short percentage: 0.6 -> '60%', 0.008 -> '0.8%'."""
    v = 100 * p
    return f"{v:.0f}%" if v >= 9.95 else f"{v:.2g}%"


def whole_percent(p: float) -> str:
    """A probability in a small cell: 0.604 -> '60%', 0.003 -> '<1%', 0 -> '0%'."""
    return "0%" if p <= 0 else "<1%" if p < 0.005 else f"{100 * p:.0f}%"


def packed(values: list, dtype: str = "float32"):
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


def _layout(fig: go.Figure, style: FigureStyle, title: str, body: float, subtitle: str = "", margin_r: int = 30,
            extra_top: float = 0, at_least_style_height: bool = True) -> go.Figure:
    """Fonts, size, white background and axis lines shared by every figure; a one-line title at the top.

    `body` is the height below the top margin (plot, axis labels, colour bar), px; `extra_top`
    the room a legend or a top axis needs between the title and the plot.
    """
    top = 24 + style.title_size * 1.4 + (style.font_size * 1.5 if subtitle else 0) + extra_top
    changes = dict(
        template="none",
        title=dict(text=title, font=dict(size=style.title_size, color=style.text_color), x=0.01, xanchor="left",
                   y=1, yref="container", yanchor="top", pad=dict(t=12),
                   subtitle=dict(text=subtitle, font=dict(size=style.font_size, color=style.text_color))),
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
        tickfont=dict(size=style.label_size, color=style.text_color), automargin=True, showgrid=False,
        linecolor=style.text_color, linewidth=max(1, style.bar_line_width), zeroline=False,
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
    """`base` with `changes` merged in, nested dicts merged key by key: ({'a': {'b': 1}}, {'a': {'c': 2}}) -> {'a': {'b': 1, 'c': 2}}."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _rows_shown(analysis: Analysis, max_rows: int) -> tuple[int, str]:
    """How many positions a figure shows (the first `max_rows`) and a subtitle saying what was left out ('' if nothing)."""
    if isinstance(max_rows, bool) or not isinstance(max_rows, Integral) or max_rows < 1:
        raise InputError(f"max_rows must be a whole number, 1 or more, not {max_rows!r}.")
    n = len(analysis.tokens) - 1
    note = "" if n <= max_rows else f"First {max_rows} of {n} positions shown; the rest are left out."
    return min(n, max_rows), note


def _row_axis(fig: go.Figure, labels: list[str], slots: Slots | None = None, **where) -> None:
    """Rows as 0..R-1 labelled with their contexts, first at the top (labels may repeat); with `slots`,
    row r at y = slots.rows[r] of slots.count rows, the others left empty (to line up with another figure)."""
    rows = dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels, autorange="reversed")
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
    return {"title": dict(text="p"), "tickformat": ".0%", "tickfont": dict(size=style.label_size), **extra}


# ---------------------------------------------------------------- token strip


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


def _token_hovers(analysis: Analysis, rows: int, shown: int = 5) -> list[str]:
    """'␣food<br>p = 60%, rank 1<br>1. ␣food 60%<br>...' for the first `rows` positions, every token escaped."""
    arrays, decoder = analysis.arrays, analysis.decoder
    p, rank, counted = arrays.p_target[:rows].tolist(), arrays.rank[:rows].tolist(), arrays.counted[:rows].tolist()
    top_p = arrays.top_p[:rows, :shown].tolist()  # (rows, shown)
    top = [decoder.tokens(ids) for ids in arrays.top_ids[:rows, :shown].tolist()]  # (rows, shown)
    return ["<br>".join([escape_text(analysis.tokens[j + 1].display),
                         f"p = {percent(p[j])}, rank {rank[j]}" + ("" if counted[j] else " (masked)"),
                         *(f"{i}. {escape_text(t.display)} {percent(q)}" for i, (t, q) in enumerate(zip(top[j], top_p[j]), 1))])
            for j in range(rows)]


def _strip_scale(color_by: str, style: FigureStyle) -> dict:
    """Colour settings for the strip: a continuous p scale, or four flat rank-bucket colours."""
    below = dict(orientation="h", y=0, yanchor="top", ypad=2 * style.label_size, len=0.5, thickness=14)
    if color_by == "probability":
        return dict(colorscale=style.colorscale, zmin=0, zmax=1,
                    colorbar=_colorbar(style, title=dict(text="p", side="top"), **below))
    ticks = dict(tickvals=[0, 1, 2, 3], ticktext=[label for _, label in RANK_BUCKETS])
    return dict(colorscale=_discrete_scale(rank_colors(style)), zmin=-0.5, zmax=3.5,
                colorbar=dict(title=dict(text="rank", side="top"), tickfont=dict(size=style.label_size),
                              **ticks, **below))


def token_strip(
    analysis: Analysis, color_by: str = "probability", style: FigureStyle = NORMAL,
    per_line: int = 16, max_tokens: int = 512,
) -> go.Figure:
    """The text as lines of `per_line` tokens, each coloured by p(token | the tokens before) or by rank bucket.

    Token k's colour comes from positions[k-1]; the first token has nothing before it and is grey.
    """
    if color_by not in ("probability", "rank"):
        raise InputError(f"color_by must be 'probability' or 'rank', not {color_by!r}.")
    tokens = analysis.tokens[: max(1, max_tokens)]
    width = max(1, min(per_line, len(tokens)))
    lines = math.ceil(len(tokens) / width)
    z = [[None] * width for _ in range(lines)]  # (lines, width); None: the first token and padding
    text = [[""] * width for _ in range(lines)]
    hover = [[""] * width for _ in range(lines)]
    shown = len(tokens) - 1  # positions drawn: token k's colour is position k's
    colour = (analysis.arrays.p_target[:shown].tolist() if color_by == "probability"
              else [rank_bucket(r) for r in analysis.arrays.rank[:shown].tolist()])
    for i, (token, value, tip) in enumerate(zip(tokens[1:], colour, _token_hovers(analysis, shown)), start=1):
        r, c = divmod(i, width)
        z[r][c], text[r][c], hover[r][c] = value, escape_text(token.display), tip
    cells = dict(xgap=3, ygap=3, texttemplate="%{text}", textfont=dict(size=style.label_size),
                 hoverongaps=False, hovertemplate=HOVER_CUSTOMDATA)
    fig = go.Figure(go.Heatmap(z=z, text=text, customdata=hover, name="tokens", **cells,
                               **_strip_scale(color_by, style)))
    fig.add_trace(go.Heatmap(z=[[0]], x=[0], y=[0], text=[[escape_text(tokens[0].display)]],
                             customdata=[["first token: nothing before it predicts it"]],
                             colorscale=[[0, GREY], [1, GREY]], showscale=False, name="first token", **cells))
    what = "p(token | the tokens before it)" if color_by == "probability" else "the rank the model gave it"
    left_out = len(analysis.tokens) - len(tokens)
    note = f"First {len(tokens)} of {len(analysis.tokens)} tokens shown; the rest are left out." if left_out else ""
    body = lines * style.row_height * 1.6 + 5 * style.label_size + 60  # the lines, then the colour bar
    _layout(fig, style, f"Each token coloured by {what}", body, subtitle=note, at_least_style_height=False)
    set_layout(fig, dict(xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed")))
    return fig


# ---------------------------------------------------------------- top-K heatmap


def top_k_heatmap(analysis: Analysis, style: FigureStyle = NORMAL, max_rows: int = MAX_ROWS,
                  slots: Slots | None = None, width: int | None = None) -> go.Figure:
    """A row per position (its context →), a column per rank 1..K: each candidate and its p.

    The true next token's cell is outlined; where it is outside the top K, its p and rank
    are written right of the row. `slots` spreads the rows out with empty ones between them
    (Compare lines up two models' positions); `width`, px, is what the page draws it at (the style's, else
    PAGE_WIDTH), which decides how much of a long token fits in a cell.
    """
    shown, note = _rows_shown(analysis, max_rows)
    rows = analysis.positions[:shown]
    k_cols = max(len(pos.top) for pos in rows)
    narrow = width is not None and width < PAGE_WIDTH
    row_labels = [context_label(pos.context, NARROW_AXIS_CHARS if narrow else AXIS_CHARS) for pos in rows]
    place = _placer(slots, shown)
    notes, margin_r, cells = _outside_top_k(rows, k_cols, style, place, narrow)
    chars = _cell_chars(style, k_cols, max(map(len, row_labels)), margin_r, width)
    z = [[c.p for c in pos.top] for pos in rows]  # (R, K)
    whole = [[escape_text(c.token.display) for c in pos.top] for pos in rows]  # for the hover
    text = [[f"{escape_text(cut(c.token.display, chars))}<br>{percent(c.p)}" for c in pos.top] for pos in rows]
    if slots is not None:  # (count, K): empty rows where the other model has a position and this one none
        z, whole, text = (slots.spread(cells_, [fill] * k_cols) for cells_, fill in ((z, None), (whole, ""), (text, "")))
    fig = go.Figure(go.Heatmap(
        z=packed(z), x=list(range(1, k_cols + 1)), text=text, texttemplate="%{text}", customdata=whole,
        hovertemplate="%{customdata}<br>p = %{z:.2p}<br>%{x}<extra></extra>",  # x hovers as its tick, 'rank 3'
        textfont=dict(size=style.label_size),
        colorscale=style.colorscale, zmin=0, zmax=1, xgap=1, ygap=1,
        colorbar=_colorbar(style, orientation="h", y=-0.02, yanchor="top", len=0.5, thickness=14,
                           title=dict(text="p", side="top")),
    ))
    title = f"Top-{k_cols} next-token candidates at each position (outlined: the true next token)"
    _layout(fig, style, title, len(z) * style.row_height * 1.8 + 110, subtitle=note, margin_r=margin_r,
            extra_top=2 * style.label_size)  # the rank ticks above the rows
    _row_axis(fig, row_labels, slots)
    set_layout(fig, dict(shapes=_outlines(cells, style), annotations=notes,
                         xaxis=dict(tickmode="array", tickvals=list(range(1, k_cols + 1)), side="top",
                                    range=[0.5, k_cols + 0.5],  # else Plotly widens it to fit the notes' text
                                    ticktext=[f"rank {r}" for r in range(1, k_cols + 1)])))
    return fig


def _placer(slots: Slots | None, shown: int) -> list[int]:
    """The y of each of the `shown` rows: 0..shown-1, or their slots among another figure's rows."""
    return list(range(shown)) if slots is None else slots.rows[:shown]


def _outside_top_k(rows, k_cols: int, style: FigureStyle, place: list[int],
                   narrow: bool = False) -> tuple[list[dict], int, list[tuple[int, int]]]:
    """(notes right of the rows whose target is outside the top K, the right margin they need, the
    (column, y) cells to outline where it is inside; row r is at y = place[r]); all set at once:
    add_shape in a loop is quadratic. A `narrow` figure's notes leave out the token: 'rank 12: 0.8%'."""
    beyond, cells, notes = 0, [], []
    for pos, r in zip(rows, place):
        col = next((i for i, c in enumerate(pos.top, 1) if c.token.id == pos.target.id), None)
        if col is not None:
            cells.append((col, r))
            continue
        label = (f"rank {pos.rank}: {percent(pos.p_target)}" if narrow else
                 f"target {escape_text(pos.target.display)}: {percent(pos.p_target)}, rank {pos.rank}")
        beyond = max(beyond, len(label))
        notes.append(dict(x=k_cols + 0.5, y=r, xref="x", yref="y", text=label, showarrow=False, xanchor="left",
                          xshift=6, font=dict(size=style.label_size), name="target outside top-K"))
    return notes, 30 + int(beyond * style.label_size * 0.6), cells


def _cell_chars(style: FigureStyle, columns: int, left_chars: int, margin_r: int, width: int | None = None) -> int:
    """How many characters of a token fit in one of `columns` cells of a figure `width` px wide (the style's,
    else PAGE_WIDTH; at least 4; the hover shows the whole token), so that a long token does not run into
    its neighbours."""
    char_px = style.label_size * CHAR_EM
    plot_px = (width or style.width or PAGE_WIDTH) - left_chars * char_px - 20 - margin_r
    return max(4, int(plot_px / columns / char_px) - 1)  # a character of room: widths vary


# ---------------------------------------------------------------- the walkthrough's table


def _side_by_side(left: str, right: str, spacing: float) -> go.Figure:
    """Two plots side by side sharing the y axis, titled above: what make_subplots(1, 2, shared_yaxes=True,
    subplot_titles=...) builds, without its cost (the right plot's traces take xaxis='x2', yaxis='y2')."""
    width = (1 - spacing) / 2
    domains = ([0.0, width], [1 - width, 1.0])
    titles = [dict(font=dict(size=16), showarrow=False, text=text, x=(lo + hi) / 2, xanchor="center", xref="paper",
                   y=1.0, yanchor="bottom", yref="paper") for text, (lo, hi) in zip((left, right), domains)]
    return go.Figure(layout=dict(
        xaxis=dict(anchor="y", domain=domains[0]), yaxis=dict(anchor="x", domain=[0.0, 1.0]),
        xaxis2=dict(anchor="y2", domain=domains[1]),
        yaxis2=dict(anchor="x2", domain=[0.0, 1.0], matches="y", showticklabels=False), annotations=titles,
    ))


def sentence_vocab_heatmap(analysis: Analysis, style: FigureStyle = NORMAL, max_rows: int = MAX_ROWS,
                           slots: Slots | None = None) -> go.Figure:
    """The walkthrough's table: predicted p of each distinct sentence token per position, beside the one-hot truth.

    Only the tokens of the shown part of the text get a column; the rest of the vocabulary,
    later tokens included, is summed in '(all other tokens)'. `slots`: as in `top_k_heatmap`.
    """
    shown, note = _rows_shown(analysis, max_rows)
    vocab = analysis.vocab
    m = len({t.id for t in analysis.tokens[: shown + 1]})  # columns are in order of first appearance
    names = unique_names([escape_text(t.display) for t in vocab.columns[:m]]) + [OTHER_COLUMN]
    table = vocab.table(shown)  # (R, D+1), 'other' last
    predicted = np.column_stack([table[:, :m], table[:, m:].sum(axis=1)])  # (R, m+1): later tokens join 'other'
    truth = np.zeros_like(predicted, dtype=np.uint8)  # (R, m+1): a shown row's target is among its m columns
    truth[np.arange(shown), vocab.target_column[:shown]] = 1
    fig = _side_by_side("predicted", "true (one-hot)", spacing=0.03)
    show_text = len(names) <= MAX_TEXT_COLUMNS
    common = dict(x=names, colorscale=style.colorscale, zmin=0, zmax=1, xgap=1, ygap=1,
                  texttemplate="%{text}" if show_text else None, textfont=dict(size=style.label_size))
    p_text = [[whole_percent(p) for p in row] for row in predicted.tolist()] if show_text else None
    t_text = [[str(t) for t in row] for row in truth.tolist()] if show_text else None
    if slots is not None:  # (count, m+1): empty rows where the other model has a position and this one none
        gap = [None] * len(names)
        predicted, truth = (np.asarray(slots.spread(v.tolist(), gap), dtype="float32") for v in (predicted, truth))
        p_text, t_text = (None if t is None else slots.spread(t, [""] * len(names)) for t in (p_text, t_text))
    fig.add_trace(go.Heatmap(
        z=packed(predicted), text=p_text,
        name="predicted", colorbar=_colorbar(style), hovertemplate="%{x}: %{z:.2%}<extra></extra>", xaxis="x", yaxis="y",
        **common,
    ))
    fig.add_trace(go.Heatmap(
        z=truth, text=t_text,
        name="true (one-hot)", showscale=False, hovertemplate="%{x}: %{z:.0f}<extra></extra>", xaxis="x2", yaxis="y2",
        **common,
    ))
    title = "p(column token | context) at each position, beside the true next token"
    _layout(fig, style, title, len(predicted) * style.row_height + 12 * style.label_size, subtitle=note,
            extra_top=2 * style.font_size)  # room for the subplot titles; rotated column names below
    titles = [_merged(a, dict(font=dict(size=style.font_size, color=style.text_color)))  # the subplot titles
              for a in fig.layout.to_plotly_json().get("annotations", [])]
    _row_axis(fig, [context_label(c) for c in analysis.contexts[:shown]], slots, row=1, col=1)
    columns = dict(type="category", tickangle=-45)
    boxes = _outlines([(vocab.target_column[r], y) for r, y in enumerate(_placer(slots, shown))], style)
    set_layout(fig, dict(shapes=boxes, annotations=titles, yaxis2=dict(autorange="reversed"), xaxis=columns,
                         xaxis2=columns))
    return fig


# ---------------------------------------------------------------- loss


def _bar_hovers(analysis: Analysis, rows: np.ndarray, would_be: np.ndarray) -> list[str]:
    """'the dog likes → ␣food<br>p = 60%, rank 1<br>−ln p = 0.51 nats' for each of `rows`, text escaped."""
    arrays, contexts, tokens = analysis.arrays, analysis.contexts, analysis.tokens
    return [f"{context_label(contexts[j])} {escape_text(tokens[j + 1].display)}"
            f"{'' if arrays.counted[j] else ' (masked: not in the loss)'}<br>"
            f"p = {percent(float(arrays.p_target[j]))}, rank {arrays.rank[j]}<br>−ln p = {would_be[j]:.3f} nats"
            for j in rows.tolist()]


def _fmt(x: float | None, digits: int = 3) -> str:
    """A number, or 'n/a' for None."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def _bar_look(masked: bool, count: int, style: FigureStyle) -> dict:
    """Counted bars in one colour; masked bars grey, hatched, faint and labelled 'masked'."""
    line = dict(color=style.text_color, width=style.bar_line_width)
    if not masked:
        return dict(name="counted in the loss", marker=dict(color=rank_colors(style)[2], line=line))
    return dict(name="masked (not in the loss)", text=["masked"] * count, textposition="outside", opacity=0.55,
                cliponaxis=False,  # the label above the tallest bar stays whole
                marker=dict(color=GREY, pattern=dict(shape="/"), line=line))


def loss_bars(analysis: Analysis, style: FigureStyle = NORMAL) -> go.Figure:
    """A bar of -ln p(target) per position; masked ones grey and left out of the mean line."""
    arrays = analysis.arrays
    labels = [f"k={k} {escape_text(t.display)}" for k, t in enumerate(analysis.tokens[1:], 1)]  # unique by k
    would_be = arrays.would_be_losses()  # (n-1,)
    fig = go.Figure()
    for masked in (False, True):
        rows = np.flatnonzero(arrays.counted != masked)  # the positions of this trace
        if len(rows):
            fig.add_trace(go.Bar(x=[labels[j] for j in rows.tolist()], y=packed(would_be[rows]),
                                 customdata=_bar_hovers(analysis, rows, would_be), hovertemplate=HOVER_CUSTOMDATA,
                                 **_bar_look(masked, len(rows), style)))
    counted = [loss for loss in arrays.losses() if loss is not None]
    shapes, sums = [], ""
    if counted:
        mean = sum(counted) / len(counted)
        shapes.append(dict(  # a short legend entry, not a label over the bars: the last bars may reach it
            type="line", xref="x domain", x0=0, x1=1, yref="y", y0=mean, y1=mean, showlegend=True,
            name=f"mean = {mean:.3f} nats",
            line=dict(color=style.text_color, width=max(2, style.bar_line_width), dash="dash")))
        sums = (f"model loss = {_fmt(analysis.loss)} nats = the mean of the {len(counted)} counted bars · "
                f"perplexity = {_fmt(analysis.perplexity, 2)}")
        title = "Where the loss comes from: −ln p(true next token) at each position"
    else:
        title = "Every position is masked: nothing counts, so there is no loss (grey bars: what each would cost)"
    row = 1.6 * style.font_size  # a legend row; two are kept free so that a narrow page can wrap it
    plot = style.height - 24 - 1.4 * style.title_size - 2 * style.font_size  # the bars' room with a one-row legend
    _layout(fig, style, title, plot, subtitle=sums, extra_top=2 * row)
    below_title = fig.layout.margin.t - 2 * row  # px from the top: the legend hangs from here, over no bar
    set_layout(fig, dict(
        showlegend=True, shapes=shapes,
        legend=dict(yref="container", y=1 - below_title / fig.layout.height, yanchor="top"),
        xaxis=dict(type="category", categoryorder="array", categoryarray=labels, tickangle=-45),
        yaxis=dict(title=dict(text="−ln p(target), nats"), rangemode="tozero", showgrid=True, gridcolor="#e0e0e0"),
    ))
    return fig


def _check_position(analysis: Analysis, k) -> int:
    """k as an int in 1..n-1, or an InputError naming the allowed range."""
    n = len(analysis.tokens) - 1
    ok = not isinstance(k, bool) and (isinstance(k, Integral) or (isinstance(k, float) and k.is_integer()))
    if not ok or not 1 <= k <= n:
        raise InputError(f"Position k must be a whole number from 1 to {n} (the predicted tokens), not {k!r}.")
    return int(k)


def position_detail(analysis: Analysis, k: int, style: FigureStyle = NORMAL) -> go.Figure:
    """One position: predicted p vs the one-hot truth over the sentence's tokens, and |difference|.

    The title compares the cross-entropy -ln p(target) with the walkthrough's crude loss,
    the sum of absolute differences.
    """
    k = _check_position(analysis, k)
    pos, vocab, row = analysis.positions[k - 1], analysis.vocab, k - 1
    names = unique_names([escape_text(t.display) for t in vocab.columns]) + [OTHER_COLUMN]
    diff = vocab.abs_diff(row)
    line = dict(color=style.text_color, width=style.bar_line_width)
    series = (("predicted p", vocab.predicted(row), "#0072B2", ""),
              ("true (one-hot)", vocab.one_hot(row), "#E69F00", ""),
              ("|predicted − true|", diff, "#009E73", "x"))
    fig = go.Figure([go.Bar(x=names, y=packed(y), name=name, hovertemplate="%{y:.3f}",
                            marker=dict(color=color, pattern=dict(shape=shape), line=line))
                     for name, y, color, shape in series])
    status = " (masked: not in the loss)" if pos.masked else ""
    title = (f"k={k}: {context_label(pos.context)} {escape_text(pos.target.display)}   ·   "
             f"cross-entropy −ln p = {analysis.arrays.would_be_losses()[row]:.3f} nats   ·   "
             f"sum of |predicted − true| = {sum(diff):.3f}{status}")
    _layout(fig, style, title, 0, extra_top=2 * style.font_size)
    set_layout(fig, dict(barmode="group", hovermode="x unified", xaxis=dict(type="category", tickangle=-45),
                         yaxis=dict(range=[0, 1.05], showgrid=True, gridcolor="#e0e0e0", tickformat=".0%")))
    return fig
