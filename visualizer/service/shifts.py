"""The Shift mistakes view's request: the right numbers beside a classic shift mistake."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..analysis.shifts import ShiftComparison, double_shift, off_by_one
from ..errors import InputError
from ..model.loading import with_weights
from ..settings import Settings
from ..views import label_figures, tables
from ..views.headings import style_for
from .inputs import check_text
from .page import get_model

MISTAKES = {"double shift (labels shifted by hand)": double_shift, "off by one (logit k read as token k)": off_by_one}


SHIFT_COLUMNS = ("k", "context", "target", "p", "loss", "mistake scores", "mistake p", "mistake loss")


def run_shift(text: str, settings: Settings, model: str, mistake: str, bos: bool = False, classroom: bool = False):
    """(comparison, figure, table, explanation) for one shift mistake on `text`."""
    if mistake not in MISTAKES:
        raise InputError(f"Unknown mistake '{mistake}'.")
    check_text(text, settings)
    comparison = MISTAKES[mistake](
        text,
        with_weights(get_model(model or settings.model, settings), "The Shift mistakes view"),
        bos=bool(bos),
        max_tokens=settings.max_tokens,
    )
    return (
        comparison,
        shift_figure(comparison, classroom),
        tables.for_display(shift_table(comparison)),
        comparison.explanation,
    )


def shift_figure(comparison: ShiftComparison, classroom: bool = False) -> go.Figure:
    """The right numbers beside the mistaken ones, in the normal or classroom style."""
    return label_figures.shift_comparison(comparison, style_for(classroom))


def shift_table(comparison: ShiftComparison) -> pd.DataFrame:
    """Right and mistaken numbers side by side, one row per position."""
    return pd.DataFrame(
        [
            {
                "k": r.k,
                "context": r.context,
                "target": r.target.display,
                "p": r.p,
                "loss": r.loss,
                "mistake scores": None if r.wrong_target is None else r.wrong_target.display,
                "mistake p": r.wrong_p,
                "mistake loss": r.wrong_loss,
            }
            for r in comparison.rows
        ],
        columns=SHIFT_COLUMNS,
    )
