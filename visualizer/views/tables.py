"""pandas tables of an Analysis: per position, top-k candidates, labels, the walkthrough's table.

Built from the analysis's arrays, column by column. Cells hold plain strings and numbers;
escaping for display is the viewer's job.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.one_pass import IGNORE_INDEX
from ..analysis.result import Analysis
from ..model.tokens import unique_names


def position_table(analysis: Analysis) -> pd.DataFrame:
    """One row per predicted token: context -> target, p, rank, loss, entropy, top-1."""
    arrays, targets = analysis.arrays, analysis.tokens[1:]
    return pd.DataFrame(
        {
            "k": np.arange(1, len(analysis.tokens)),
            "context": analysis.contexts,
            "target": [t.display for t in targets],
            "target_id": [t.id for t in targets],
            "p_target": arrays.p_target.astype(np.float64),
            "rank": arrays.rank,
            "loss": np.where(arrays.counted, -arrays.logp.astype(np.float64), np.nan),  # NaN where masked
            "masked": ~arrays.counted,
            "entropy": arrays.entropy.astype(np.float64),
            "top1": [t.display for t in analysis.decoder.tokens(arrays.top_ids[:, 0])],
            "p_top1": arrays.top_p[:, 0].astype(np.float64),
        }
    )


def top_k_table(analysis: Analysis) -> pd.DataFrame:
    """Long form: one row per (position, rank) of the top-K candidates."""
    arrays = analysis.arrays
    rows, k = arrays.top_ids.shape  # (n-1, K)
    ids = arrays.top_ids.ravel()  # (n-1 * K,), row by row
    targets = np.asarray(analysis.input_ids[1:])[:, None]  # (n-1, 1)
    return pd.DataFrame(
        {
            "k": np.repeat(np.arange(1, rows + 1), k),
            "rank": np.tile(np.arange(1, k + 1), rows),
            "token": [t.display for t in analysis.decoder.tokens(ids)],
            "token_id": ids,
            "p": arrays.top_p.ravel().astype(np.float64),
            "is_target": (arrays.top_ids == targets).ravel(),
        }
    )


def labels_table(analysis: Analysis) -> pd.DataFrame:
    """The shift made visible: for each index, input_id, label, and which context predicts it."""
    predicted_from = ["nothing (first token)"] + [f"input_ids[:{i}] = {c}" for i, c in enumerate(analysis.contexts, 1)]
    labels = analysis.labels
    return pd.DataFrame(
        {
            "index": range(len(labels)),
            "token": [t.display for t in analysis.tokens],
            "input_id": [t.id for t in analysis.tokens],
            "label": labels,
            "counts_in_loss": [i > 0 and label != IGNORE_INDEX for i, label in enumerate(labels)],
            "predicted_from": predicted_from,
        }
    )


def sentence_vocab_table(analysis: Analysis) -> pd.DataFrame:
    """The walkthrough's table: rows are contexts, columns the sentence's tokens plus 'all other'."""
    vocab, targets = analysis.vocab, analysis.tokens[1:]
    columns = unique_names([t.display for t in vocab.columns]) + ["(all other tokens)"]
    index = [f"{context} → {target.display}" for context, target in zip(analysis.contexts, targets)]
    return pd.DataFrame(vocab.table(), columns=columns, index=index)


def for_display(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A copy for the page, every float cut to `digits` significant digits (1.1985415e-06 -> 1.199e-06,
    13.634405136 -> 13.63), so columns stay narrow on a projector; downloads keep every digit."""
    shown = table.copy()
    for name in shown.columns[[pd.api.types.is_float_dtype(t) for t in shown.dtypes]]:
        shown[name] = [float(f"{x:.{digits}g}") for x in shown[name]]
    return shown
