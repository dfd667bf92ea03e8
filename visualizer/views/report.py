"""Plain-text rendering of an Analysis: the walkthrough, as a terminal prints it."""

from __future__ import annotations

from ..analysis.result import Analysis

SHOWN_CANDIDATES = 3


def walkthrough_text(analysis: Analysis) -> str:
    """For each k: `input_ids[:k] -> labels[k]`, p, rank, loss and the top few; then the loss line."""
    n = len(analysis.positions)
    lines = [f"{analysis.model}: {len(analysis.tokens)} tokens, {n} prediction{'s' if n != 1 else ''}"]
    lines.append("tokens: " + " | ".join(t.display for t in analysis.tokens))
    lines.extend(f"note: {n}" for n in analysis.notices)
    for pos in analysis.positions:
        top = ", ".join(f"{c.token.display} {c.p:.1%}" for c in pos.top[:SHOWN_CANDIDATES])
        loss = "masked (-100)" if pos.loss is None else f"loss {pos.loss:.3f}"
        lines.append(
            f"k={pos.k}  input_ids[:{pos.k}] = {pos.context!r} -> labels[{pos.k}] = {pos.target.display!r}"
            f"   p {pos.p_target:.2%}  rank {pos.rank}  {loss}   top: {top}"
        )
    lines.append(loss_line(analysis))
    return "\n".join(lines)


def loss_line(analysis: Analysis) -> str:
    """'loss = 12.345 / 3 = 4.115 (model's own: 4.115), perplexity 61.2' or why there is none."""
    if analysis.shown_loss is None:
        return "loss: none (no position counts)"
    if analysis.loss is None:  # an engine: no loss of its own
        return (
            f"loss = {analysis.loss_sum:.4f} / {analysis.counted} = {analysis.mean_token_loss:.4f} nats"
            f" (the {analysis.loss_name}; {analysis.backend} gives no loss of its own), "
            f"perplexity {analysis.perplexity:.2f}"
        )
    return (
        f"loss = {analysis.loss_sum:.4f} / {analysis.counted} = {analysis.mean_token_loss:.4f} nats"
        f" (model's own: {analysis.loss:.4f}), perplexity {analysis.perplexity:.2f}"
    )
