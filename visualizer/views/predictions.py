"""The Predictions view: the token strip coloured by p or rank, and the top-K heatmap."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from ..analysis.alignment import Slots
from ..analysis.result import Analysis
from ..errors import InputError
from .plotting import (
    AXIS_CHARS,
    CHAR_EM,
    GREY,
    HOVER_CUSTOMDATA,
    MAX_ROWS,
    NARROW_AXIS_CHARS,
    NORMAL,
    PAGE_WIDTH,
    RANK_BUCKETS,
    TICKS_UNCHECKED,
    FigureStyle,
    _colorbar,
    _discrete_scale,
    _layout,
    _outlines,
    _placer,
    _row_axis,
    _rows_shown,
    bytes_note,
    character_line,
    context_label,
    cut,
    describe,
    escape_text,
    packed,
    percent,
    rank_bucket,
    rank_colors,
    set_layout,
)


def _token_hovers(analysis: Analysis, rows: int, shown: int = 5) -> list[str]:
    """'␣food<br>p = 60%, rank 1<br>1. ␣food 60%<br>...' for the first `rows` positions, every token escaped."""
    arrays, decoder = analysis.arrays, analysis.decoder
    p, rank, counted = arrays.p_target[:rows].tolist(), arrays.rank[:rows].tolist(), arrays.counted[:rows].tolist()
    top_p = arrays.top_p[:rows, :shown].tolist()  # (rows, shown)
    top = [decoder.tokens(ids) for ids in arrays.top_ids[:rows, :shown].tolist()]  # (rows, shown)
    names = analysis.readable_tokens
    return [
        "<br>".join(
            [
                escape_text(names[j + 1]) + bytes_note(analysis, j + 1),
                f"p = {percent(p[j])}, rank {rank[j]}"
                + ("" if counted[j] else " (masked)")
                + character_line(analysis, j + 1),
                *(f"{i}. {escape_text(t.display)} {percent(q)}" for i, (t, q) in enumerate(zip(top[j], top_p[j]), 1)),
            ]
        )
        for j in range(rows)
    ]


def _strip_scale(color_by: str, style: FigureStyle) -> dict:
    """Colour settings for the strip: a continuous p scale, or four flat rank-bucket colours."""
    below = dict(orientation="h", y=0, yanchor="top", ypad=2 * style.label_size, len=0.5, thickness=14)
    if color_by == "probability":
        return dict(
            colorscale=style.colorscale,
            zmin=0,
            zmax=1,
            colorbar=_colorbar(style, title=dict(text="p", side="top"), **below),
        )
    ticks = dict(tickvals=[0, 1, 2, 3], ticktext=[label for _, label in RANK_BUCKETS])
    return dict(
        colorscale=_discrete_scale(rank_colors(style)),
        zmin=-0.5,
        zmax=3.5,
        colorbar=dict(
            title=dict(text="rank", side="top"),
            tickfont=dict(size=style.label_size),
            ticklabeloverflow=TICKS_UNCHECKED,
            **ticks,
            **below,
        ),
    )


def token_strip(
    analysis: Analysis,
    color_by: str = "probability",
    style: FigureStyle = NORMAL,
    per_line: int = 16,
    max_tokens: int = 512,
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
    colour = (
        analysis.arrays.p_target[:shown].tolist()
        if color_by == "probability"
        else [rank_bucket(r) for r in analysis.arrays.rank[:shown].tolist()]
    )
    names = analysis.readable_tokens
    for i, (value, tip) in enumerate(zip(colour, _token_hovers(analysis, shown)), start=1):
        r, c = divmod(i, width)
        z[r][c], text[r][c], hover[r][c] = value, escape_text(names[i]), tip
    cells = dict(
        xgap=3,
        ygap=3,
        texttemplate="%{text}",
        textfont=dict(size=style.label_size),
        hoverongaps=False,
        hovertemplate=HOVER_CUSTOMDATA,
    )
    fig = go.Figure(
        go.Heatmap(z=z, text=text, customdata=hover, name="tokens", **cells, **_strip_scale(color_by, style))
    )
    fig.add_trace(
        go.Heatmap(
            z=[[0]],
            x=[0],
            y=[0],
            text=[[escape_text(names[0])]],
            customdata=[["first token: nothing before it predicts it"]],
            colorscale=[[0, GREY], [1, GREY]],
            showscale=False,
            name="first token",
            **cells,
        )
    )
    what = "p(token | the tokens before it)" if color_by == "probability" else "the rank the model gave it"
    left_out = len(analysis.tokens) - len(tokens)
    note = f"First {len(tokens)} of {len(analysis.tokens)} tokens shown; the rest are left out." if left_out else ""
    body = lines * style.row_height * 1.6 + 5 * style.label_size + 60  # the lines, then the colour bar
    _layout(fig, style, f"Each token coloured by {what}", body, subtitle=note, at_least_style_height=False)
    set_layout(fig, dict(xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed")))
    return describe(fig, strip_summary(analysis))


def strip_summary(analysis: Analysis) -> str:
    """'4 tokens; p(true token) lowest at k=1 (␣dog, 0.00012%), highest at k=3 (␣food, 0.8%)': the alternative."""
    p, names = analysis.arrays.p_target.tolist(), analysis.readable_tokens  # (n-1,), (n,)
    low, high = min(range(len(p)), key=p.__getitem__) + 1, max(range(len(p)), key=p.__getitem__) + 1
    return (
        f"{len(names)} tokens; p(true token) lowest at k={low} ({names[low]}, {percent(p[low - 1])}), "
        f"highest at k={high} ({names[high]}, {percent(p[high - 1])})"
    )


def top_k_summary(analysis: Analysis) -> str:
    """'top-10 candidates at 3 positions; the true token is the first choice at 0 and in the top 10 at 1'."""
    rank, k = analysis.arrays.rank.tolist(), analysis.top_k
    first, within = sum(r == 1 for r in rank), sum(r <= k for r in rank)
    return (
        f"top-{k} candidates at {len(rank)} positions; the true next token is the model's first choice at "
        f"{first} and within the top {k} at {within}"
    )


# ---------------------------------------------------------------- top-K heatmap


def top_k_heatmap(
    analysis: Analysis,
    style: FigureStyle = NORMAL,
    max_rows: int = MAX_ROWS,
    slots: Slots | None = None,
    width: int | None = None,
) -> go.Figure:
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
        z, whole, text = (
            slots.spread(cells_, [fill] * k_cols) for cells_, fill in ((z, None), (whole, ""), (text, ""))
        )
    fig = go.Figure(
        go.Heatmap(
            z=packed(z),
            x=list(range(1, k_cols + 1)),
            text=text,
            texttemplate="%{text}",
            customdata=whole,
            hovertemplate="%{customdata}<br>p = %{z:.2p}<br>%{x}<extra></extra>",  # x hovers as its tick, 'rank 3'
            textfont=dict(size=style.label_size),
            colorscale=style.colorscale,
            zmin=0,
            zmax=1,
            xgap=1,
            ygap=1,
            colorbar=_colorbar(
                style, orientation="h", y=-0.02, yanchor="top", len=0.5, thickness=14, title=dict(text="p", side="top")
            ),
        )
    )
    title = f"Top-{k_cols} next-token candidates at each position (outlined: the true next token)"
    _layout(
        fig,
        style,
        title,
        len(z) * style.row_height * 1.8 + 110,
        subtitle=note,
        margin_r=margin_r,
        extra_top=2 * style.label_size,
    )  # the rank ticks above the rows
    _row_axis(fig, row_labels, slots)
    set_layout(
        fig,
        dict(
            shapes=_outlines(cells, style),
            annotations=notes,
            xaxis=dict(
                tickmode="array",
                tickvals=list(range(1, k_cols + 1)),
                side="top",
                range=[0.5, k_cols + 0.5],  # else Plotly widens it to fit the notes' text
                ticktext=[f"rank {r}" for r in range(1, k_cols + 1)],
            ),
        ),
    )
    return describe(fig, top_k_summary(analysis))


def _outside_top_k(
    rows, k_cols: int, style: FigureStyle, place: list[int], narrow: bool = False
) -> tuple[list[dict], int, list[tuple[int, int]]]:
    """(notes right of the rows whose target is outside the top K, the right margin they need, the
    (column, y) cells to outline where it is inside; row r is at y = place[r]); all set at once:
    add_shape in a loop is quadratic. A `narrow` figure's notes leave out the token: 'rank 12: 0.8%'."""
    beyond, cells, notes = 0, [], []
    for pos, r in zip(rows, place):
        col = next((i for i, c in enumerate(pos.top, 1) if c.token.id == pos.target.id), None)
        if col is not None:
            cells.append((col, r))
            continue
        label = (
            f"rank {pos.rank}: {percent(pos.p_target)}"
            if narrow
            else f"target {escape_text(pos.target.display)}: {percent(pos.p_target)}, rank {pos.rank}"
        )
        beyond = max(beyond, len(label))
        notes.append(
            dict(
                x=k_cols + 0.5,
                y=r,
                xref="x",
                yref="y",
                text=label,
                showarrow=False,
                xanchor="left",
                xshift=6,
                font=dict(size=style.label_size),
                name="target outside top-K",
            )
        )
    return notes, 30 + int(beyond * style.label_size * 0.6), cells


def _cell_chars(style: FigureStyle, columns: int, left_chars: int, margin_r: int, width: int | None = None) -> int:
    """How many characters of a token fit in one of `columns` cells of a figure `width` px wide (the style's,
    else PAGE_WIDTH; at least 4; the hover shows the whole token), so that a long token does not run into
    its neighbours."""
    char_px = style.label_size * CHAR_EM
    plot_px = (width or style.width or PAGE_WIDTH) - left_chars * char_px - 20 - margin_r
    return max(4, int(plot_px / columns / char_px) - 1)  # a character of room: widths vary
