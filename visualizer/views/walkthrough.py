"""The walkthrough's views: predicted vs true over the sentence's tokens, and one position's detail."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import plotly.graph_objects as go

from ..analysis.alignment import Slots
from ..analysis.result import Analysis
from ..errors import InputError
from .plotting import (
    MAX_ROWS,
    MAX_TEXT_COLUMNS,
    NORMAL,
    FigureStyle,
    _colorbar,
    _layout,
    _merged,
    _outlines,
    _placer,
    _row_axis,
    _rows_shown,
    _side_by_side,
    cell_percent,
    context_label,
    describe,
    escape_text,
    packed,
    percent,
    sentence_columns,
    set_layout,
)


def sentence_vocab_heatmap(
    analysis: Analysis, style: FigureStyle = NORMAL, max_rows: int = MAX_ROWS, slots: Slots | None = None
) -> go.Figure:
    """The walkthrough's table: predicted p of each distinct sentence token per position, beside the one-hot truth.

    Only the tokens of the shown part of the text get a column; the rest of the vocabulary,
    later tokens included, is summed in '(all other tokens)'. `slots`: as in `top_k_heatmap`.
    """
    shown, note = _rows_shown(analysis, max_rows)
    vocab = analysis.vocab
    m = len({t.id for t in analysis.tokens[: shown + 1]})  # columns are in order of first appearance
    names = sentence_columns(analysis, m)
    table = vocab.table(shown)  # (R, D+1), 'other' last
    predicted = np.column_stack([table[:, :m], table[:, m:].sum(axis=1)])  # (R, m+1): later tokens join 'other'
    truth = np.zeros_like(predicted, dtype=np.uint8)  # (R, m+1): a shown row's target is among its m columns
    truth[np.arange(shown), vocab.target_column[:shown]] = 1
    fig = _side_by_side("predicted", "true (one-hot)", spacing=0.03)
    show_text = len(names) <= MAX_TEXT_COLUMNS
    common = dict(
        x=names,
        colorscale=style.colorscale,
        zmin=0,
        zmax=1,
        xgap=1,
        ygap=1,
        texttemplate="%{text}" if show_text else None,
        textfont=dict(size=style.label_size),
    )
    bounds = [vocab.bound(r) for r in range(shown)]  # an engine's cells outside its top K: NaN, at most this
    p_text = [[cell_percent(p, b) for p in row] for row, b in zip(predicted.tolist(), bounds)] if show_text else None
    t_text = [[str(t) for t in row] for row in truth.tolist()] if show_text else None
    if slots is not None:  # (count, m+1): empty rows where the other model has a position and this one none
        gap = [None] * len(names)
        predicted, truth = (np.asarray(slots.spread(v.tolist(), gap), dtype="float32") for v in (predicted, truth))
        p_text, t_text = (None if t is None else slots.spread(t, [""] * len(names)) for t in (p_text, t_text))
    fig.add_trace(
        go.Heatmap(
            z=packed(predicted),
            text=p_text,
            name="predicted",
            colorbar=_colorbar(style),
            hovertemplate="%{x}: %{z:.2%}<extra></extra>",
            xaxis="x",
            yaxis="y",
            **common,
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=truth,
            text=t_text,
            name="true (one-hot)",
            showscale=False,
            hovertemplate="%{x}: %{z:.0f}<extra></extra>",
            xaxis="x2",
            yaxis="y2",
            **common,
        )
    )
    title = "p(column token | context) at each position, beside the true next token"
    if not vocab.exact:
        note = " · ".join(filter(None, [note, "blank cells: outside the server's top K (at most the K-th p)"]))
    _layout(
        fig,
        style,
        title,
        len(predicted) * style.row_height + 12 * style.label_size,
        subtitle=note,
        extra_top=2 * style.font_size,
    )  # room for the subplot titles; rotated column names below
    titles = [
        _merged(a, dict(font=dict(size=style.font_size, color=style.text_color)))  # the subplot titles
        for a in fig.layout.to_plotly_json().get("annotations", [])
    ]
    _row_axis(fig, [context_label(c) for c in analysis.contexts[:shown]], slots, row=1, col=1)
    columns = dict(type="category", tickangle=-45)
    boxes = _outlines([(vocab.target_column[r], y) for r, y in enumerate(_placer(slots, shown))], style)
    set_layout(
        fig, dict(shapes=boxes, annotations=titles, yaxis2=dict(autorange="reversed"), xaxis=columns, xaxis2=columns)
    )
    p = analysis.arrays.p_target.tolist()  # (n-1,)
    alt = (
        f"p over the sentence's {len(vocab.columns)} tokens and all others at {len(p)} positions; "
        f"p(true next token) from {percent(min(p))} to {percent(max(p))}"
    )
    return describe(fig, alt)


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
    names = sentence_columns(analysis)
    diff, crude = vocab.abs_diff(row), vocab.crude_loss(row)
    line = dict(color=style.text_color, width=style.bar_line_width)
    series = (
        ("predicted p", vocab.predicted(row), "#0072B2", ""),
        ("true (one-hot)", vocab.one_hot(row), "#E69F00", ""),
        ("|predicted − true|", diff, "#009E73", "x"),
    )
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=packed(y),
                name=name,
                hovertemplate="%{y:.3f}",
                marker=dict(color=color, pattern=dict(shape=shape), line=line),
            )
            for name, y, color, shape in series
        ]
    )
    status = " (masked: not in the loss)" if pos.masked else ""
    title = (
        f"k={k}: {context_label(pos.context)} {escape_text(pos.target.display)}   ·   "
        f"cross-entropy −ln p = {analysis.arrays.would_be_losses()[row]:.3f} nats   ·   "
        f"sum of |predicted − true| = {crude:.3f}{status}"
    )
    _layout(fig, style, title, 0, extra_top=2 * style.font_size)
    set_layout(
        fig,
        dict(
            barmode="group",
            hovermode="x unified",
            xaxis=dict(type="category", tickangle=-45),
            yaxis=dict(range=[0, 1.05], showgrid=True, gridcolor="#e0e0e0", tickformat=".0%"),
        ),
    )
    alt = (
        f"k={k}: p({pos.target.display}) = {percent(pos.p_target)}, −ln p = "
        f"{analysis.arrays.would_be_losses()[row]:.2f} nats, sum of |predicted − true| = {crude:.3f}{status}"
    )
    return describe(fig, alt)
