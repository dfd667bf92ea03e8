"""Plotly figures of a Generation: steps x candidates, the coloured continuation, one step's
before/after bars, and teacher forcing beside the step-by-step probabilities.

Each function takes a `Generation` (and, for teacher forcing, the `Analysis` that
`generation.teacher_forcing` returns) and returns a `go.Figure` or a `pandas.DataFrame`;
nothing is displayed. Token text is escaped with `plotting.escape_text` and reaches a figure
only through text, customdata or tick labels, never through a hovertemplate.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from ..analysis.generation import STOP_EOS, STOP_MAX, Candidate, Generation, Step
from ..analysis.one_pass import Analysis, context_text
from ..errors import InputError
from ..model.tokens import VISIBLE_WHITESPACE, unique_names
from . import plotting
from .plotting import (
    GREY,
    HOVER_CUSTOMDATA,
    NORMAL,
    FigureStyle,
    escape_text,
    percent,
    shorten,
)

MAX_STEP_ROWS = 64
"""The steps heatmap shows at most this many steps: the latest ones."""
PROMPT_TOKENS_SHOWN = 48
"""The coloured text shows at most this many prompt tokens (its end) before the new ones."""
DROPPED = "dropped by top-k / top-p"
BEFORE_COLOR, AFTER_COLOR, FORCED_COLOR = "#0072B2", "#E69F00", "#009E73"


# ---------------------------------------------------------------- text helpers


def kept_count(n: int | None) -> str:
    """How many tokens the filters kept: '1,234', or 'an unknown number of' (an engine's step its top K did not
    decide)."""
    return "an unknown number of" if n is None else f"{n:,}"


def decoding_text(generation: Generation) -> str:
    """The settings in words: 'greedy' or 'sampling: temperature 0.8, top-k 5, top-p 0.9, seed 1'."""
    d = generation.decoding
    filters = [f"{name} {v}" for name, v in (("top-k", d.top_k), ("top-p", d.top_p)) if v is not None]
    if d.greedy:
        return "greedy" + (f" (recorded p after {', '.join(filters)})" if filters else "")
    return "sampling: " + ", ".join([f"temperature {d.temperature:g}", *filters, f"seed {generation.seed}"])


def step_context_label(generation: Generation, index: int) -> str:
    """A row label: '3. …the dog likes →' (the text before step `index`, one line, shortened, escaped)."""
    text = context_text(generation.lm.decoder, generation.ids, len(generation.prompt_ids) + index)
    for raw in "\n\t\r":
        text = text.replace(raw, VISIBLE_WHITESPACE[raw])
    return f"{index + 1}. {escape_text(shorten(text) or '(start)')} →"


def _p_change(c: Candidate) -> str:
    """'60%' when the filters left p as it was, else '60%→75%' (model p → final p); dropped: '4%→0%'."""
    if c.kept and abs(c.p - c.p_model) < 5e-4:
        return percent(c.p_model)
    return f"{percent(c.p_model)}→{percent(c.p) if c.kept else '0%'}"


def _candidate_hover(c: Candidate) -> str:
    """'␣food<br>model p = 60%<br>after filters p = 75%' (or 'dropped by top-k / top-p'), escaped."""
    after = f"after filters p = {percent(c.p)}" if c.kept else DROPPED
    return f"{escape_text(c.token.display)}<br>model p = {percent(c.p_model)}<br>{after}"


def _chosen_column(step: Step) -> int | None:
    """1-based column of the chosen token among the step's candidates, or None."""
    return next((i for i, c in enumerate(step.top, 1) if c.token.id == step.token.id), None)


NOTHING_GENERATED = "Nothing has been generated yet: press Next token."


def _check_steps(generation: Generation) -> None:
    """An InputError when nothing has been generated yet."""
    if not generation.steps:
        raise InputError(NOTHING_GENERATED)


# ---------------------------------------------------------------- steps x candidates


def _only_where(text: list[list[str]], z: list[list]) -> list[list[str]]:
    """The text of the cells this trace fills ('' elsewhere): a trace writes text even over its gaps."""
    return [[t if v is not None else "" for t, v in zip(trow, zrow)] for trow, zrow in zip(text, z)]


def _strike_lines(cells: list[tuple[int, int]]) -> go.Scatter:
    """One line trace that crosses out each (column, row) cell from corner to corner."""
    xs, ys = [], []
    for col, row in cells:
        xs += [col - 0.45, col + 0.45, None]
        ys += [row + 0.45, row - 0.45, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color="#555555", width=1.5),
        name=DROPPED,
        hoverinfo="skip",
        showlegend=bool(cells),
    )


def steps_heatmap(generation: Generation, style: FigureStyle = NORMAL, max_rows: int = MAX_STEP_ROWS) -> go.Figure:
    """A row per step, a column per candidate (most likely first, by the model's own p).

    Colour: the model's p. Candidates that top-k / top-p dropped are grey and crossed out;
    the chosen token is outlined, or written right of its row when it is not a column.
    """
    _check_steps(generation)
    first = max(0, len(generation.steps) - max_rows)
    rows = generation.steps[first:]
    cols = max(len(s.top) for s in rows)
    pad = [None] * cols
    kept_z = [([c.p_model if c.kept else None for c in s.top] + pad)[:cols] for s in rows]  # (R, C)
    drop_z = [([None if c.kept else 0 for c in s.top] + pad)[:cols] for s in rows]  # (R, C)
    text = [([f"{escape_text(c.token.display)}<br>{_p_change(c)}" for c in s.top] + [""] * cols)[:cols] for s in rows]
    hover = [([_candidate_hover(c) for c in s.top] + [""] * cols)[:cols] for s in rows]
    x = list(range(1, cols + 1))
    cells = dict(
        x=x,
        customdata=hover,
        texttemplate="%{text}",
        hovertemplate=HOVER_CUSTOMDATA,
        textfont=dict(size=style.label_size),
        xgap=1,
        ygap=1,
        hoverongaps=False,
    )
    fig = go.Figure(
        go.Heatmap(
            z=kept_z,
            text=_only_where(text, kept_z),
            name="kept",
            colorscale=style.colorscale,
            zmin=0,
            zmax=1,
            **cells,
            colorbar=plotting._colorbar(
                style,
                orientation="h",
                y=-0.02,
                yanchor="top",
                len=0.5,
                thickness=14,
                title=dict(text="model p", side="top"),
            ),
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=drop_z,
            text=_only_where(text, drop_z),
            name=DROPPED,
            colorscale=[[0, GREY], [1, GREY]],
            showscale=False,
            **cells,
        )
    )
    fig.add_trace(_strike_lines([(c, r) for r, row in enumerate(drop_z) for c, v in enumerate(row, 1) if v == 0]))
    beyond = _mark_chosen(fig, rows, cols, style)
    note = f"Last {len(rows)} of {len(generation.steps)} steps shown." if first else ""
    title = f"Each step's top-{cols} candidates by the model's p (outlined: chosen; grey, crossed out: {DROPPED})"
    plotting._layout(
        fig,
        style,
        title,
        len(rows) * style.row_height * 1.8 + 110,
        subtitle=note,
        margin_r=30 + int(beyond * style.label_size * 0.6),
        extra_top=2 * style.label_size,
    )
    plotting._row_axis(fig, [step_context_label(generation, s.index) for s in rows])
    fig.update_yaxes(range=[len(rows) - 0.5, -0.5], autorange=False)  # reversed, without the strike lines' padding
    fig.update_xaxes(
        tickmode="array", tickvals=x, ticktext=[f"rank {r}" for r in x], side="top", range=[0.5, cols + 0.5]
    )
    fig.update_layout(showlegend=False)
    return fig


def _outline(x: float, y: float, style: FigureStyle) -> list[dict]:
    """A thick white frame with a thin black core around cell (x, y): visible on dark and on bright cells."""
    box = dict(type="rect", xref="x", yref="y", x0=x - 0.5, x1=x + 0.5, y0=y - 0.5, y1=y + 0.5)
    return [
        dict(box, name="chosen", line=dict(color="white", width=style.outline_width)),
        dict(box, name="chosen-core", line=dict(color="black", width=max(1, style.outline_width / 3))),
    ]


def _mark_chosen(fig: go.Figure, rows: list[Step], cols: int, style: FigureStyle) -> int:
    """Outline each chosen cell; note a choice outside the columns right of its row. Returns the longest note."""
    longest = 0
    for r, step in enumerate(rows):
        col = _chosen_column(step)
        if col is not None:
            for shape in _outline(col, r, style):
                fig.add_shape(shape)
            continue
        label = f"chose {escape_text(step.token.display)}: model p {percent(step.p_model)}, p {percent(step.p)}"
        longest = max(longest, len(label))
        fig.add_annotation(
            x=cols + 0.5,
            y=r,
            xref="x",
            yref="y",
            text=label,
            showarrow=False,
            xanchor="left",
            xshift=6,
            font=dict(size=style.label_size),
            name="chosen outside the columns",
        )
    return longest


# ---------------------------------------------------------------- the coloured continuation


def _text_hover(step: Step) -> str:
    """'step 3: ␣France<br>chosen with p = 14%<br>model p = 11%<br>4 tokens to choose from', escaped."""
    return (
        f"step {step.index + 1}: {escape_text(step.token.display)}<br>chosen with p = {percent(step.p)}"
        f"<br>model p = {percent(step.p_model)}<br>{kept_count(step.n_kept)} tokens to choose from"
    )


def continuation_strip(
    generation: Generation,
    style: FigureStyle = NORMAL,
    per_line: int = 16,
    prompt_tokens: int = PROMPT_TOKENS_SHOWN,
) -> go.Figure:
    """The prompt (grey, its last `prompt_tokens` tokens) then each new token coloured by the p it was chosen with."""
    shown_prompt = generation.prompt_ids[-prompt_tokens:] if prompt_tokens > 0 else []
    prompt = generation.lm.decoder.tokens(shown_prompt)
    cells = len(prompt) + len(generation.steps)
    width = max(1, min(per_line, cells))
    lines = math.ceil(cells / width)
    grid = lambda fill: [[fill] * width for _ in range(lines)]  # noqa: E731 - (lines, width)
    z, grey, text, hover = grid(None), grid(None), grid(""), grid("")
    for i, token in enumerate(prompt):
        r, c = divmod(i, width)
        grey[r][c], text[r][c], hover[r][c] = 0, escape_text(token.display), "prompt"
    for i, step in enumerate(generation.steps, start=len(prompt)):
        r, c = divmod(i, width)
        z[r][c], text[r][c], hover[r][c] = step.p, escape_text(step.token.display), _text_hover(step)
    common = dict(
        customdata=hover,
        texttemplate="%{text}",
        hovertemplate=HOVER_CUSTOMDATA,
        xgap=3,
        ygap=3,
        hoverongaps=False,
        textfont=dict(size=style.label_size),
    )
    below = dict(orientation="h", y=0, yanchor="top", ypad=2 * style.label_size, len=0.5, thickness=14)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=_only_where(text, z),
            name="generated",
            colorscale=style.colorscale,
            zmin=0,
            zmax=1,
            **common,
            colorbar=plotting._colorbar(style, title=dict(text="p chosen with", side="top"), **below),
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=grey,
            text=_only_where(text, grey),
            name="prompt",
            colorscale=[[0, GREY], [1, GREY]],
            showscale=False,
            **common,
        )
    )
    cut = len(generation.prompt_ids) - len(prompt)
    note = f"The prompt's first {cut} tokens are left out." if cut else ""
    title = _strip_title(generation)
    body = lines * style.row_height * 1.6 + 5 * style.label_size + 60
    plotting._layout(fig, style, title, body, subtitle=note, at_least_style_height=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    return fig


def _strip_title(generation: Generation) -> str:
    """What the strip shows, and why generation stopped."""
    if not generation.steps:
        return "The prompt (grey): nothing generated yet"
    stop: dict[str | None, str] = {STOP_EOS: " · stopped: the model chose EOS", STOP_MAX: " · stopped: the token limit"}
    n = len(generation.steps)
    return (
        f"The prompt (grey), then {n} new token{'s' if n > 1 else ''}, each coloured by the p it was chosen with"
        + stop.get(generation.stop_reason, "")
    )


# ---------------------------------------------------------------- one step, before and after


def _step_candidates(step: Step) -> list[Candidate]:
    """The step's candidates, plus the chosen token at the end when it is not among them."""
    if _chosen_column(step) is not None:
        return list(step.top)
    return [*step.top, Candidate(step.token, step.p_model, step.p, True)]


def step_distribution(generation: Generation, index: int | None = None, style: FigureStyle = NORMAL) -> go.Figure:
    """One step's candidates: the model's p beside the p after temperature / top-k / top-p.

    Dropped candidates: a grey hatched model bar and 'dropped' where their final bar would be.
    The chosen token's bars get a thick outline and an arrow. `index`: 0-based, None = the latest.
    """
    _check_steps(generation)
    index = len(generation.steps) - 1 if index is None else index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(generation.steps):
        raise InputError(f"The step must be from 1 to {len(generation.steps)}, not {index!r}.")
    step = generation.steps[index]
    cands = _step_candidates(step)
    names = unique_names([escape_text(c.token.display) for c in cands])
    chosen = [c.token.id == step.token.id for c in cands]
    edge = [style.text_color if hit else "rgba(0,0,0,0)" for hit in chosen]
    width = [max(3, 2 * style.bar_line_width) if hit else 0 for hit in chosen]
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=[c.p_model for c in cands],
                name="model p (before)",
                text=[percent(c.p_model) for c in cands],
                textposition="outside",
                customdata=[_candidate_hover(c) for c in cands],
                hovertemplate=HOVER_CUSTOMDATA,
                marker=dict(
                    color=[BEFORE_COLOR if c.kept else GREY for c in cands],
                    pattern=dict(shape=["" if c.kept else "/" for c in cands]),
                    line=dict(color=edge, width=width),
                ),
            ),
            go.Bar(
                x=names,
                y=[c.p for c in cands],
                name="after temperature, top-k, top-p",
                text=[percent(c.p) if c.kept else "dropped" for c in cands],
                textposition="outside",
                customdata=[_candidate_hover(c) for c in cands],
                hovertemplate=HOVER_CUSTOMDATA,
                marker=dict(color=AFTER_COLOR, line=dict(color=edge, width=width)),
            ),
        ]
    )
    peak = max(max(c.p, c.p_model) for c, hit in zip(cands, chosen) if hit)
    at = chosen.index(True)  # the category's index: a name like '2' would be read as the index 2
    fig.add_annotation(
        x=at,
        y=peak,
        text="chosen",
        showarrow=True,
        arrowhead=2,
        ay=-36,
        yshift=style.label_size + 4,
        font=dict(size=style.font_size),
        name="chosen",
    )
    vocab = len(generation.lm.tokenizer)
    title = (
        f"Step {index + 1}: chose {escape_text(step.token.display)} with p = {percent(step.p)} "
        f"(model p {percent(step.p_model)}) · {kept_count(step.n_kept)} of {vocab:,} tokens left to choose from"
    )
    plotting._layout(
        fig, style, title, 0, subtitle=escape_text(decoding_text(generation)), extra_top=2 * style.font_size
    )
    fig.update_layout(barmode="group", showlegend=True, uniformtext=dict(minsize=8, mode="hide"))
    fig.update_xaxes(type="category", tickangle=-45)
    top = max(max(c.p, c.p_model) for c in cands)
    fig.update_yaxes(range=[0, min(1.15, 1.3 * top + 0.03)], showgrid=True, gridcolor="#e0e0e0", tickformat=".0%")
    return fig


# ---------------------------------------------------------------- teacher forcing


def teacher_p(generation: Generation, forced: Analysis) -> list[float]:
    """(s,) p(new token i) from the one teacher-forced pass: position P-1+i predicts ids[P+i]."""
    start = len(generation.prompt_ids) - 1
    return [pos.p_target for pos in forced.positions[start : start + len(generation.steps)]]


def forced_lines(generation: Generation, forced: Analysis, style: FigureStyle = NORMAL) -> go.Figure:
    """Per step: the p it was chosen with, the model's p step by step, and the teacher-forced p of one pass."""
    _check_steps(generation)
    labels = [f"{s.index + 1}. {escape_text(s.token.display)}" for s in generation.steps]  # unique by step
    width = max(2, style.bar_line_width)
    series = (  # drawn in this order: the dashed line stays visible where it equals the model's p
        (
            "model p, one token at a time",
            [s.p_model for s in generation.steps],
            BEFORE_COLOR,
            "lines+markers",
            "circle",
            8,
            "solid",
        ),
        (
            "teacher forcing: one pass over prompt + continuation",
            teacher_p(generation, forced),
            FORCED_COLOR,
            "markers",
            "circle-open",
            16,
            "solid",
        ),
        (
            "p chosen with (after filters)",
            [s.p for s in generation.steps],
            AFTER_COLOR,
            "lines+markers",
            "diamond",
            7,
            "dash",
        ),
    )
    fig = go.Figure(
        [
            go.Scatter(
                x=labels,
                y=y,
                name=name,
                mode=mode,
                line=dict(color=color, width=width, dash=dash),
                marker=dict(color=color, symbol=symbol, size=size, line=dict(width=2, color=color)),
                hovertemplate="%{y:.2%}<extra></extra>",
            )
            for name, y, color, mode, symbol, size, dash in series
        ]
    )
    loss = forced.shown_loss
    title = "Teacher forcing: one forward pass gives each new token the p the model gave it step by step" + (
        f" · loss of the continuation = {loss:.3f} nats" if loss is not None else ""
    )
    plotting._layout(fig, style, title, 0, extra_top=2 * style.font_size)
    fig.update_layout(showlegend=True, hovermode="x unified")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels, tickangle=-45)
    fig.update_yaxes(range=[0, 1.05], showgrid=True, gridcolor="#e0e0e0", tickformat=".0%")
    return fig


FORCED_COLUMNS = (
    "step",
    "token",
    "p chosen with",
    "model p (step by step)",
    "p (teacher forcing)",
    "−ln p (teacher forcing)",
)


def forced_table(generation: Generation, forced: Analysis) -> pd.DataFrame:
    """One row per new token: sampled p, the model's p step by step, the teacher-forced p and −ln of it."""
    tf = teacher_p(generation, forced)
    return pd.DataFrame(
        dict(
            zip(
                FORCED_COLUMNS,
                [
                    [s.index + 1 for s in generation.steps],
                    [s.token.display for s in generation.steps],
                    [round(s.p, 4) for s in generation.steps],
                    [round(s.p_model, 4) for s in generation.steps],
                    [round(p, 4) for p in tf],
                    [round(-math.log(max(p, 1e-45)), 4) for p in tf],
                ],
            )
        )
    )
