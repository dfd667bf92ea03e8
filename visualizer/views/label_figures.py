"""Figures for labels that differ from input_ids: padded batches, shift mistakes, training steps.

Same rules as figures.py: each function returns a go.Figure, every token string is escaped,
user text never enters a hovertemplate itself, and a FigureStyle sets the look.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..analysis.batches import BatchResult
from ..analysis.shifts import ShiftComparison
from ..analysis.training import TrainingRun
from .plotting import (
    HOVER_CUSTOMDATA,
    NORMAL,
    FigureStyle,
    _colorbar,
    _layout,
    _row_axis,
    cut,
    describe,
    escape_text,
    percent,
    shorten,
)
from .predictions import _cell_chars

COUNTED, MASKED_PAD, COUNTED_PAD, NOT_PREDICTED = 0, 1, 2, 3
CELL_COLORS = ["#0072B2", "#d9d9d9", "#D55E00", "#ffffff"]
"""Colour-blind-safe (Okabe-Ito): counted, pad left out, pad counted by mistake, first token."""
CELL_NAMES = ["counts in the loss", "pad, label −100", "pad, counted (wrong)", "first token (nothing predicts it)"]
COLORBAR_PX = 280
"""Room the batch grid's colour bar and its names take right of the cells, px."""


def _cell_state(row, t: int) -> int:
    """Which of the four states token t of a batch row is in."""
    if t == 0:
        return NOT_PREDICTED
    is_pad = row.attention_mask[t] == 0
    counted = row.losses[t - 1] is not None
    if is_pad:
        return COUNTED_PAD if counted else MASKED_PAD
    return COUNTED if counted else MASKED_PAD


def batch_grid(result: BatchResult, style: FigureStyle = NORMAL) -> go.Figure:
    """The padded batch as a grid: a row per sentence, a cell per token, coloured by whether it counts."""
    width = max(len(r.tokens) for r in result.rows)
    z = [[_cell_state(r, t) for t in range(width)] for r in result.rows]
    labels = [f"row {i}: {escape_text(shorten(r.text, 20))}" for i, r in enumerate(result.rows)]
    chars = _cell_chars(style, width, max(map(len, labels)), COLORBAR_PX)
    text = [
        ["pad" if r.attention_mask[t] == 0 else escape_text(cut(tok.display, chars)) for t, tok in enumerate(r.tokens)]
        for r in result.rows
    ]  # the title names the pad token; each cell's hover names its token whole
    hover = [[_batch_hover(r, t) for t in range(width)] for r in result.rows]
    scale = [[edge / 4, color] for k, color in enumerate(CELL_COLORS) for edge in (k, k + 1)]  # discrete
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate=HOVER_CUSTOMDATA,
            zmin=-0.5,
            zmax=3.5,
            colorscale=scale,
            xgap=2,
            ygap=2,
            textfont=dict(size=style.label_size),
            colorbar=dict(tickvals=[0, 1, 2, 3], ticktext=CELL_NAMES, tickfont=dict(size=style.label_size)),
        )
    )
    title = "The batch, padded on the right with " + escape_text(result.pad_token.display)
    _layout(fig, style, title, len(result.rows) * style.row_height * 1.6 + 80)
    _row_axis(fig, labels)
    fig.update_xaxes(title=dict(text="position"), dtick=1)
    pads = sum(int(m == 0) for r in result.rows for m in r.attention_mask)
    counted = sum(loss is not None for r in result.rows for loss in r.losses)
    return describe(fig, f"{len(result.rows)} rows padded to {width} tokens: {pads} pads, {counted} labels counted")


def _batch_hover(row, t: int) -> str:
    """Hover text of one cell: the token, its label and its loss."""
    token = escape_text(row.tokens[t].display)
    if t == 0:
        return f"{token}<br>first token: nothing predicts it"
    loss = row.losses[t - 1]
    kind = "pad" if row.attention_mask[t] == 0 else "token"
    cost = "label −100: not counted" if loss is None else f"−ln p = {loss:.3f}"
    return f"{kind} {token}<br>label {row.labels[t]}<br>p = {percent(row.p_target[t - 1])}<br>{cost}"


def batch_losses(result: BatchResult, style: FigureStyle = NORMAL) -> go.Figure:
    """Each row's own loss as a bar, with the model's batch loss and the mean of the row losses as lines."""
    names = [f"row {i} ({r.counted} counted)" for i, r in enumerate(result.rows)]
    losses = [r.loss if r.loss is not None else 0.0 for r in result.rows]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=losses,
            marker=dict(color=CELL_COLORS[0]),
            name="row loss",
            text=[f"{v:.3f}" for v in losses],
            textposition="outside",
        )
    )
    means = [r.loss for r in result.rows if r.loss is not None]
    lines = [("model's batch loss (all counted terms / their count)", result.batch_loss, "solid")]
    if means:
        lines.append(("mean of the row losses", sum(means) / len(means), "dot"))
    for label, value, dash in lines:
        if value is not None:
            fig.add_hline(
                y=value,
                line=dict(color=style.text_color, dash=dash, width=2),
                annotation=dict(text=f"{label} = {value:.3f}", font=dict(size=style.font_size)),
            )
    _layout(fig, style, "Row losses vs the batch loss", 0)
    fig.update_yaxes(title=dict(text="loss, nats"), rangemode="tozero")
    said = "; ".join(f"{label} {value:.3f} nats" for label, value, _ in lines if value is not None)
    return describe(fig, f"row losses {', '.join(f'{v:.3f}' for v in losses)}; {said}")


def shift_comparison(comparison: ShiftComparison, style: FigureStyle = NORMAL) -> go.Figure:
    """Per position: the right −ln p beside the mistake's, with both means in the title."""
    rows = comparison.rows
    x = [f"k={r.k} {escape_text(r.target.display)}" for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                x=x,
                y=[r.loss for r in rows],
                name="right",
                marker=dict(color=CELL_COLORS[0]),
                customdata=[_shift_hover(r, right=True) for r in rows],
                hovertemplate=HOVER_CUSTOMDATA,
            ),
            go.Bar(
                x=x,
                y=[r.wrong_loss for r in rows],
                name="mistake",
                marker=dict(color=CELL_COLORS[2]),
                customdata=[_shift_hover(r, right=False) for r in rows],
                hovertemplate=HOVER_CUSTOMDATA,
            ),
        ]
    )
    wrong = "—" if comparison.wrong_loss is None else f"{comparison.wrong_loss:.3f}"
    name = "double shift" if comparison.mistake == "double_shift" else "off by one"
    _layout(
        fig, style, f"{name}: right loss {comparison.loss:.3f} vs mistaken {wrong}", 0, extra_top=style.font_size * 2
    )
    fig.update_layout(barmode="group", showlegend=True)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=x, tickangle=-45)
    fig.update_yaxes(title=dict(text="−ln p, nats"), rangemode="tozero")
    return describe(fig, f"{name}: right loss {comparison.loss:.3f} vs mistaken {wrong} over {len(rows)} positions")


def _shift_hover(row, right: bool) -> str:
    """Hover: which token is scored at this position, its p and loss."""
    if right:
        return f"right: p({escape_text(row.target.display)}) = {percent(row.p)}<br>−ln p = {row.loss:.3f}"
    if row.wrong_target is None:
        return "the mistake scores nothing here"
    return (
        f"mistake: p({escape_text(row.wrong_target.display)}) = {percent(row.wrong_p)}<br>−ln p = {row.wrong_loss:.3f}"
    )


def training_curve(run: TrainingRun, style: FigureStyle = NORMAL) -> go.Figure:
    """The loss before training (step 0) and after each step."""
    steps = [h.step for h in run.history]
    fig = go.Figure(
        go.Scatter(
            x=steps, y=run.losses, mode="lines+markers", name="loss", line=dict(width=max(2, style.bar_line_width + 1))
        )
    )
    first, last = run.losses[0], run.losses[-1]
    title = f"Loss per step ({run.optimizer}, lr {run.lr:g})"
    if first is not None and last is not None:
        title += f": {first:.3f} → {last:.3f}"
    _layout(fig, style, title, 0)
    fig.update_xaxes(title=dict(text="optimizer step"), dtick=1 if len(steps) <= 20 else None)
    fig.update_yaxes(title=dict(text="loss, nats"), rangemode="tozero", showgrid=True, gridcolor="#e0e0e0")
    before, after = ("—" if x is None else f"{x:.3f}" for x in (first, last))
    return describe(fig, f"loss {before} before training, {after} after {len(steps) - 1} {run.optimizer} steps")


def training_heatmap(run: TrainingRun, style: FigureStyle = NORMAL) -> go.Figure:
    """Positions x steps, coloured by p(target): watch each true next token become likely."""
    grid = run.p_target_grid()  # (n-1, S+1)
    labels = []
    for k in range(1, len(run.tokens)):
        context = "".join(t.text for t in run.tokens[max(0, k - 3) : k])
        mark = " (masked)" if run.labels[k] == -100 else ""
        labels.append(f"{escape_text(shorten(context, 18))} → {escape_text(run.tokens[k].display)}{mark}")
    text = [[percent(p) if p is not None else "" for p in row] for row in grid]
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            text=text,
            texttemplate="%{text}" if len(grid[0]) <= 16 else None,
            zmin=0,
            zmax=1,
            colorscale=style.colorscale,
            colorbar=_colorbar(style),
            hovertemplate="step %{x}<br>p = %{z:.2%}<extra></extra>",
            xgap=1,
            ygap=1,
            textfont=dict(size=style.label_size),
        )
    )
    _layout(fig, style, "p(true next token) at each position, step by step", len(grid) * style.row_height + 90)
    _row_axis(fig, labels)
    fig.update_xaxes(title=dict(text="optimizer step (0 = before training)"), dtick=1 if len(grid[0]) <= 20 else None)
    start, end = (_mean_percent([row[i] for row in grid if row[i] is not None]) for i in (0, -1))
    return describe(
        fig, f"p(true next token) at {len(grid)} positions: on average {start} before training, {end} after"
    )


def _mean_percent(ps: list[float]) -> str:
    """The mean of some probabilities as a percentage, '—' for none."""
    return percent(sum(ps) / len(ps)) if ps else "—"
