"""Titles of figures shown in pairs (A and B, before and after): which one, its model and its loss."""

from __future__ import annotations

import plotly.graph_objects as go

from ..analysis.result import Analysis
from . import plotting

HEADER_NAME_CHARS = 60
"""A model name in a compared figure's title keeps its last this many characters."""


def headed(fig: go.Figure, label: str, analysis: Analysis, loss_bars: bool = False) -> go.Figure:
    """One of two figures to compare (A and B, before and after), titled with which one it is and its loss
    ('A: SmolLM2-135M-Instruct · loss = 6.366 nats') instead of the view's own title (the page names the
    view). Loss bars' subtitle, which repeats the loss, is cut to the rest; any other (rows left out) stays."""
    title = f"{plotting.escape_text(label)} · loss = {number(analysis.shown_loss)} nats"
    subtitle = fig.layout.title.subtitle.text or ""
    if loss_bars and analysis.counted:
        subtitle = f"the mean of the {analysis.counted} counted bars · perplexity = {number(analysis.perplexity, 2)}"
    fig.update_layout(title_text=title, title_subtitle_text=subtitle)
    return fig


def short_name(name: str, chars: int = HEADER_NAME_CHARS) -> str:
    """A model name cut to its last `chars` characters: '/home/me/models/tiny-gpt2' -> '…/models/tiny-gpt2'."""
    return name if len(name) <= chars else "…" + name[-(chars - 1) :]


def style_for(classroom: bool) -> plotting.FigureStyle:
    """The figure style for classroom mode or not."""
    return plotting.CLASSROOM if classroom else plotting.NORMAL


def number(value: float | None, digits: int = 3) -> str:
    """'10.387' or '—'."""
    return "—" if value is None else f"{value:.{digits}f}"
