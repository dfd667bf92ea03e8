"""A packed sequence drawn: its examples as coloured bands along the tokens, the per-token loss difference between
the examples seeing each other and kept apart as bars, and a table per example.

Same rules as every figure: each token string is escaped, user text never enters a hovertemplate itself, and a
FigureStyle sets the look.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..analysis.packing import PackComparison
from .plotting import HOVER_CUSTOMDATA, NORMAL, FigureStyle, _layout, cut, describe, escape_text

BAND_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
"""Okabe-Ito, colour-blind safe: one per example, in turn."""
UP, DOWN = "#D55E00", "#0072B2"
"""Bars: the loss higher when the examples see each other, lower."""
MAX_TICK_TOKENS = 64
"""Tokens are named under the axis up to this many; beyond, in the hover only."""
EXAMPLE_COLUMNS = ("row", "start", "end", "tokens", "counted", "loss together", "loss apart", "difference")


def pack_figure(result: PackComparison, style: FigureStyle = NORMAL) -> go.Figure:
    """Tokens along x, a band per example (its row named on top), and a bar per counted token: −ln p together
    minus −ln p apart (above 0: the earlier examples made it worse)."""
    seq = result.sequence
    n = len(seq.input_ids)
    diff = result.difference
    example_of = seq.example_of
    hover = [_hover(result, t, example_of[t]) for t in range(n)]
    counted = [t for t in range(n) if diff[t] is not None]
    fig = go.Figure(
        go.Bar(
            x=counted,
            y=[diff[t] for t in counted],
            marker=dict(color=[UP if (diff[t] or 0) > 0 else DOWN for t in counted]),
            customdata=[hover[t] for t in counted],
            hovertemplate=HOVER_CUSTOMDATA,
            name="−ln p together − apart",
        )
    )
    for k, (row, start, end) in enumerate(zip(seq.rows, seq.starts, seq.ends)):
        fig.add_vrect(
            x0=start - 0.5,
            x1=end - 0.5,
            fillcolor=BAND_COLORS[k % len(BAND_COLORS)],
            opacity=0.18,
            line_width=0,
            layer="below",
            annotation=dict(text=f"row {row}", font=dict(size=style.label_size)),
            annotation_position="top left",
        )
    first = list(seq.starts)
    fig.add_trace(
        go.Scatter(
            x=first,
            y=[0] * len(first),
            mode="markers",
            marker=dict(symbol="line-ns-open", size=16, color=style.text_color),
            customdata=[hover[t] for t in first],
            hovertemplate=HOVER_CUSTOMDATA,
            name="an example's first token (label −100)",
        )
    )
    title = f"Packed sequence {seq.pack}: {len(seq.rows)} examples in {n} tokens"
    subtitle = "bars: −ln p when the examples see each other minus when they are kept apart"
    _layout(fig, style, title, 360, subtitle=subtitle, extra_top=style.font_size * 2)
    ticks = {}
    if n <= MAX_TICK_TOKENS:
        ticks = dict(tickvals=list(range(n)), ticktext=[escape_text(cut(tok, 10)) for tok in result.tokens])
    fig.update_xaxes(title=dict(text="token in the packed sequence"), range=[-0.5, n - 0.5], **ticks)
    fig.update_yaxes(title=dict(text="Δ −ln p (nats)"), zeroline=True, zerolinecolor=style.text_color)
    return describe(fig, pack_alt(result))


def _hover(result: PackComparison, t: int, k: int) -> str:
    """One token's hover: the token, its example, both losses and their difference."""
    seq = result.sequence
    head = f"{escape_text(result.tokens[t])}<br>token {t}, row {seq.rows[k]} (its token {t - seq.starts[k]})"
    together, apart = result.together[t], result.apart[t]
    if together is None or apart is None:
        why = "first token of its example: TRL's collator sets its label to −100" if t == seq.starts[k] else "−100"
        return f"{head}<br>label not counted ({why})"
    return f"{head}<br>−ln p together {together:.3f}<br>−ln p apart {apart:.3f}<br>difference {together - apart:+.3f}"


def pack_alt(result: PackComparison) -> str:
    """The figure's text alternative: each example's two losses and the largest per-token difference."""
    parts = []
    for e in result.examples:
        if e.together is None or e.apart is None:
            parts.append(f"row {e.row} (tokens {e.start}–{e.end - 1}): nothing counted")
        else:
            parts.append(
                f"row {e.row} (tokens {e.start}–{e.end - 1}): {e.together:.3f} together, {e.apart:.3f} apart "
                f"({e.together - e.apart:+.3f})"
            )
    diff = [(abs(d), t, d) for t, d in enumerate(result.difference) if d is not None]
    largest = ""
    if diff:
        _, t, d = max(diff)
        largest = f"; largest per-token difference {d:+.3f} at token {t} ({escape_text(result.tokens[t])})"
    return f"packed sequence {result.sequence.pack}, mean −ln p per example: " + "; ".join(parts) + largest


def examples_table(result: PackComparison) -> pd.DataFrame:
    """One line per example: its row, its tokens [start, end), counted labels, its loss together and apart, and
    their difference (NaN where nothing counts)."""
    nan = float("nan")
    return pd.DataFrame(
        [
            {
                "row": e.row,
                "start": e.start,
                "end": e.end,
                "tokens": e.end - e.start,
                "counted": e.counted,
                "loss together": nan if e.together is None else e.together,
                "loss apart": nan if e.apart is None else e.apart,
                "difference": nan if e.difference is None else e.difference,
            }
            for e in result.examples
        ],
        columns=EXAMPLE_COLUMNS,
    )
