"""The Loss view: −ln p(target) per position as bars, their mean beside the model's own loss."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..analysis.result import Analysis
from .plotting import (
    GREY,
    HOVER_CUSTOMDATA,
    NORMAL,
    FigureStyle,
    _layout,
    character_line,
    context_label,
    describe,
    escape_text,
    packed,
    percent,
    rank_colors,
    set_layout,
)


def _bar_hovers(analysis: Analysis, rows: np.ndarray, would_be: np.ndarray) -> list[str]:
    """'the dog likes → ␣food<br>p = 60%, rank 1<br>−ln p = 0.51 nats' for each of `rows`, text escaped."""
    arrays, contexts, names = analysis.arrays, analysis.contexts, analysis.readable_tokens
    return [
        f"{context_label(contexts[j])} {escape_text(names[j + 1])}"
        f"{'' if arrays.counted[j] else ' (masked: not in the loss)'}<br>"
        f"p = {percent(float(arrays.p_target[j]))}, rank {arrays.rank[j]}<br>−ln p = {would_be[j]:.3f} nats"
        f"{character_line(analysis, j + 1)}"
        for j in rows.tolist()
    ]


def loss_summary(analysis: Analysis) -> str:
    """'loss 10.39 nats over 3 positions; highest at k=1 (␣dog)': the loss figures' text alternative."""
    arrays = analysis.arrays
    counted = [k for k, c in enumerate(arrays.counted.tolist(), 1) if c]
    if not counted or analysis.mean_token_loss is None:
        return "no position counts in the loss"
    losses = arrays.would_be_losses()  # (n-1,)
    worst = max(counted, key=lambda k: losses[k - 1])
    return (
        f"loss {analysis.mean_token_loss:.2f} nats over {len(counted)} positions; "
        f"highest at k={worst} ({analysis.readable_tokens[worst]}, {losses[worst - 1]:.2f} nats)"
    )


def _fmt(x: float | None, digits: int = 3) -> str:
    """A number, or 'n/a' for None."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def _bar_look(masked: bool, count: int, style: FigureStyle) -> dict:
    """Counted bars in one colour; masked bars grey, hatched, faint and labelled 'masked'."""
    line = dict(color=style.text_color, width=style.bar_line_width)
    if not masked:
        return dict(name="counted in the loss", marker=dict(color=rank_colors(style)[2], line=line))
    return dict(
        name="masked (not in the loss)",
        text=["masked"] * count,
        textposition="outside",
        opacity=0.55,
        cliponaxis=False,  # the label above the tallest bar stays whole
        marker=dict(color=GREY, pattern=dict(shape="/"), line=line),
    )


def loss_bars(analysis: Analysis, style: FigureStyle = NORMAL) -> go.Figure:
    """A bar of -ln p(target) per position; masked ones grey and left out of the mean line."""
    arrays = analysis.arrays
    labels = [f"k={k} {escape_text(name)}" for k, name in enumerate(analysis.readable_tokens[1:], 1)]  # unique by k
    would_be = arrays.would_be_losses()  # (n-1,)
    fig = go.Figure()
    for masked in (False, True):
        rows = np.flatnonzero(arrays.counted != masked)  # the positions of this trace
        if len(rows):
            fig.add_trace(
                go.Bar(
                    x=[labels[j] for j in rows.tolist()],
                    y=packed(would_be[rows]),
                    customdata=_bar_hovers(analysis, rows, would_be),
                    hovertemplate=HOVER_CUSTOMDATA,
                    **_bar_look(masked, len(rows), style),
                )
            )
    counted = [loss for loss in arrays.losses() if loss is not None]
    shapes, sums = [], ""
    if counted:
        mean = sum(counted) / len(counted)
        shapes.append(
            dict(  # a short legend entry, not a label over the bars: the last bars may reach it
                type="line",
                xref="x domain",
                x0=0,
                x1=1,
                yref="y",
                y0=mean,
                y1=mean,
                showlegend=True,
                name=f"mean = {mean:.3f} nats",
                line=dict(color=style.text_color, width=max(2, style.bar_line_width), dash="dash"),
            )
        )
        sums = (
            f"{analysis.loss_name} = {_fmt(analysis.shown_loss)} nats = the mean of the {len(counted)} counted bars · "
            f"perplexity = {_fmt(analysis.perplexity, 2)}"
        )
        title = "Where the loss comes from: −ln p(true next token) at each position"
    else:
        title = "Every position is masked: nothing counts, so there is no loss (grey bars: what each would cost)"
    row = 1.6 * style.font_size  # a legend row; two are kept free so that a narrow page can wrap it
    plot = style.height - 24 - 1.4 * style.title_size - 2 * style.font_size  # the bars' room with a one-row legend
    _layout(fig, style, title, plot, subtitle=sums, extra_top=2 * row)
    below_title = fig.layout.margin.t - 2 * row  # px from the top: the legend hangs from here, over no bar
    set_layout(
        fig,
        dict(
            showlegend=True,
            shapes=shapes,
            legend=dict(yref="container", y=1 - below_title / fig.layout.height, yanchor="top"),
            xaxis=dict(type="category", categoryorder="array", categoryarray=labels, tickangle=-45),
            yaxis=dict(title=dict(text="−ln p(target), nats"), rangemode="tozero", showgrid=True, gridcolor="#e0e0e0"),
        ),
    )
    return describe(fig, loss_summary(analysis))
