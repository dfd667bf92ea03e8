"""pandas tables of an Analysis: per position, top-k candidates, labels, the walkthrough's table.

Cells hold plain strings and numbers; escaping for display is the viewer's job.
"""

from __future__ import annotations

import pandas as pd

from .analysis import IGNORE_INDEX, Analysis
from .tokens import unique_names


def position_table(analysis: Analysis) -> pd.DataFrame:
    """One row per predicted token: context -> target, p, rank, loss, entropy, top-1."""
    rows = [
        {
            "k": pos.k,
            "context": pos.context,
            "target": pos.target.display,
            "target_id": pos.target.id,
            "p_target": pos.p_target,
            "rank": pos.rank,
            "loss": pos.loss,
            "masked": pos.masked,
            "entropy": pos.entropy,
            "top1": pos.top[0].token.display,
            "p_top1": pos.top[0].p,
        }
        for pos in analysis.positions
    ]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else None)


def top_k_table(analysis: Analysis) -> pd.DataFrame:
    """Long form: one row per (position, rank) of the top-K candidates."""
    rows = [
        {
            "k": pos.k,
            "rank": r,
            "token": cand.token.display,
            "token_id": cand.token.id,
            "p": cand.p,
            "is_target": cand.token.id == pos.target.id,
        }
        for pos in analysis.positions
        for r, cand in enumerate(pos.top, start=1)
    ]
    return pd.DataFrame(rows)


def labels_table(analysis: Analysis) -> pd.DataFrame:
    """The shift made visible: for each index, input_id, label, and which context predicts it."""
    rows = []
    for i, (token, label) in enumerate(zip(analysis.tokens, analysis.labels)):
        if i == 0:
            predicted_by = "nothing (first token)"
        else:
            predicted_by = f"input_ids[:{i}] = {analysis.positions[i - 1].context}"
        rows.append(
            {
                "index": i,
                "token": token.display,
                "input_id": token.id,
                "label": label,
                "counts_in_loss": i > 0 and label != IGNORE_INDEX,
                "predicted_from": predicted_by,
            }
        )
    return pd.DataFrame(rows)


def sentence_vocab_table(analysis: Analysis) -> pd.DataFrame:
    """The walkthrough's table: rows are contexts, columns the sentence's tokens plus 'all other'."""
    vocab = analysis.vocab
    columns = [t.display for t in vocab.columns]
    data = [row + [other] for row, other in zip(vocab.probs, vocab.other)]
    index = [f"{pos.context} → {pos.target.display}" for pos in analysis.positions]
    return pd.DataFrame(data, columns=unique_names(columns) + ["(all other tokens)"], index=index)
