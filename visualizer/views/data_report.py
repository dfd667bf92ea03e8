"""A fine-tuning file's rows as a table and as text lines, and a conversation's tokens by role."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..analysis.data_rows import LabeledAnalysis, RowReport

ROW_COLUMNS = ("row", "tokens", "counted", "loss", "dropped", "pack", "warnings")
COUNTED_COLOR, MASKED_COLOR = "#0072B2", "#6e6e6e"
"""A token's mark: blue where it counts, grey where it is masked (both hold white text at 5:1 contrast)."""


def rows_table(reports: Sequence[RowReport]) -> pd.DataFrame:
    """One line per row: tokens, counted, loss (NaN where none), dropped, pack, the warnings joined by ' | '."""
    return pd.DataFrame(
        [
            {
                "row": r.row,
                "tokens": r.tokens,
                "counted": r.counted,
                "loss": float("nan") if r.loss is None else round(r.loss, 4),
                "dropped": r.dropped,
                "pack": r.pack,
                "warnings": " | ".join(r.warnings),
            }
            for r in reports
        ],
        columns=ROW_COLUMNS,
    )


ROW_HEADER = f"{'row':>5}  {'tokens':>6}  {'counted':>7}  {'loss':>7}"


def row_line(report: RowReport) -> str:
    """The text table's line for one row, its warnings on the lines below it ('  ! ...').
    Example: '    3      42       17   2.1043  (pack 0)'."""
    loss = "-" if report.loss is None else f"{report.loss:.4f}"
    line = f"{report.row:>5}  {report.tokens:>6}  {report.counted:>7}  {loss:>7}"
    if report.pack is not None:
        line += f"  (pack {report.pack})"
    return "\n".join([line, *(f"       ! {w}" for w in report.warnings)])


def counted_flags(labeled: LabeledAnalysis) -> list[bool]:
    """(n,) whether each token counts in the loss: a label other than -100, and not token 0 (nothing predicts it)."""
    return [k > 0 and label != -100 for k, label in enumerate(labeled.analysis.labels)]


def role_spans(labeled: LabeledAnalysis) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(token's display form, 'role · counted' or 'role · masked') per token ('text' as the role of plain text), and
    each of those marks' colour: the counted ones blue, the masked ones grey, whatever their role."""
    roles = labeled.roles or ["text"] * len(labeled.analysis.tokens)
    spans = [
        (token, f"{role} · {'counted' if counts else 'masked'}")
        for token, role, counts in zip(labeled.analysis.readable_tokens, roles, counted_flags(labeled))
    ]
    colors = {mark: COUNTED_COLOR if mark.endswith("counted") else MASKED_COLOR for _, mark in spans}
    return spans, colors


def roles_text(labeled: LabeledAnalysis) -> str:
    """The tokens in runs of one role, one run a line, counted tokens [in brackets]; '' for plain text.
    Example: 'template   <|im_start|>user↵' / 'user       hi' / 'assistant  [hello<|im_end|>]'."""
    if labeled.roles is None:
        return ""
    analysis = labeled.analysis
    counted = counted_flags(labeled)
    width = max(len(role) for role in labeled.roles)
    lines: list[str] = []
    current, pieces, was_counted = None, [], False
    for token, role, counts in zip(analysis.tokens, labeled.roles, counted):
        if role != current and current is not None:
            lines.append(f"{current:<{width}}  {''.join(pieces)}{']' if was_counted else ''}")
            pieces, was_counted = [], False
        if counts != was_counted:
            pieces.append("[" if counts else "]")
            was_counted = counts
        pieces.append(token.display)
        current = role
    lines.append(f"{current:<{width}}  {''.join(pieces)}{']' if was_counted else ''}")
    return "tokens by role ([counted]):\n" + "\n".join(lines)
