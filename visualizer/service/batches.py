"""The Batches & padding view's request: sentences padded into one batch, each row's loss and the batch's."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..analysis.batches import BatchResult, analyze_batch
from ..errors import InputError
from ..model.loading import with_weights
from ..settings import Settings
from ..views import label_figures, tables
from ..views.headings import style_for
from .page import get_model


def run_batch(texts: str, settings: Settings, model: str, mask_pads: bool, classroom: bool = False):
    """One sentence per line -> (result, grid figure, losses figure, row table, explanation)."""
    lines = [line for line in (texts or "").splitlines() if line.strip()]
    if len(lines) < 2:
        raise InputError("Give at least two sentences, one per line, to make a batch.")
    lm = with_weights(get_model(model or settings.model, settings), "The Batches & padding view")
    result = analyze_batch(lines, lm, mask_pads=bool(mask_pads))
    return (result, *batch_figures(result, classroom), tables.for_display(batch_table(result)), result.explanation)


def batch_figures(result: BatchResult, classroom: bool = False) -> tuple[go.Figure, go.Figure]:
    """The batch's grid and its losses, in the normal or classroom style (redrawn when that changes)."""
    style = style_for(classroom)
    return label_figures.batch_grid(result, style), label_figures.batch_losses(result, style)


BATCH_COLUMNS = ("row", "text", "tokens", "counted", "loss_sum", "loss")


def batch_table(result: BatchResult) -> pd.DataFrame:
    """One row per sentence: its length, counted terms, loss sum and own loss; then the batch totals."""
    rows = [
        {"row": i, "text": r.text, "tokens": r.length, "counted": r.counted, "loss_sum": r.loss_sum, "loss": r.loss}
        for i, r in enumerate(result.rows)
    ]
    rows.append(
        {
            "row": "batch",
            "text": "(the model's batch loss)",
            "tokens": sum(r.length for r in result.rows),
            "counted": sum(r.counted for r in result.rows),
            "loss_sum": result.loss_sum,
            "loss": result.batch_loss,
        }
    )
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)
