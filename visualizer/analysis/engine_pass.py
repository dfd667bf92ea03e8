"""One analysis through an engine: vLLM's prompt log-probabilities as the same per-position statistics that
one_pass computes from logits in this process.

For ids of n tokens, one completion request (the ids as the prompt, max_tokens 1, prompt_logprobs K) returns,
for every position k = 1..n-1, the true token's log p and rank in the whole vocabulary, and the top K. What it
cannot give stays unknown, never guessed: the entropy (NaN), the model's own loss (None), and the p of a
sentence token outside the top K (NaN, at most the K-th candidate's p).
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import math

import torch

from ..model.engine import EngineError, EngineModel
from .measured import Measured, Request

ENGINE_NOTICE = (
    "Served by vLLM: the loss shown is the mean of the counted positions' −ln p (the engine gives no loss of its "
    "own), entropy is not given, and a sentence token outside the top K shows as at most the K-th candidate's p."
)


def measure_engine(lm: EngineModel, request: Request) -> Measured:
    """The statistics of one text from one completion request with prompt log-probabilities."""
    choice = lm.client.completion(request.ids, max_tokens=1, prompt_logprobs=request.top_k, temperature=0.0)
    rows = choice.get("prompt_logprobs")
    if not isinstance(rows, list) or len(rows) != len(request.ids):
        raise _malformed(f"{len(request.ids)} prompt positions sent, {len(rows) if isinstance(rows, list) else 0} back")
    columns = list(dict.fromkeys(request.ids))
    parsed = [_row(rows[k], request.ids[k], request.top_k, columns) for k in range(1, len(request.ids))]
    logp = torch.tensor([r[0] for r in parsed], dtype=torch.float32)  # (n-1,)
    stats = {
        "logp": logp,
        "p": logp.exp(),
        "rank": torch.tensor([r[1] for r in parsed], dtype=torch.long),  # (n-1,)
        "ent": torch.full((len(parsed),), math.nan),  # (n-1,): not given
        "top_p": torch.tensor([r[2] for r in parsed], dtype=torch.float32),  # (n-1, K)
        "top_i": torch.tensor([r[3] for r in parsed], dtype=torch.long),  # (n-1, K)
        "columns_p": torch.tensor([r[4] for r in parsed], dtype=torch.float32),  # (n-1, D), NaN where unknown
        "bound": torch.tensor([r[2][-1] for r in parsed], dtype=torch.float32),  # (n-1,): the K-th candidate's p
    }
    return Measured(stats, loss=None)


def _row(row: object, target: int, top_k: int, columns: list[int]):
    """One position's (log p(target), rank, top-K p, top-K ids, each column's p or NaN) from the engine's entry
    {token id: {logprob, rank, ...}}, which holds the top K and the target."""
    entries = _entries(row)
    if target not in entries:
        raise _malformed(f"the true token {target} is missing from a position's log-probabilities")
    target_logp, target_rank = entries[target]
    candidates = [(lp, tid) for tid, (lp, rank) in entries.items() if rank <= top_k or tid != target]
    candidates.sort(key=lambda c: (-c[0], c[1]))
    top = candidates[:top_k]
    if len(top) < top_k:
        raise _malformed(f"{len(top)} candidates back where {top_k} were asked for")
    top_p = [math.exp(lp) for lp, _ in top]
    by_id = {tid: math.exp(lp) for tid, (lp, _) in entries.items()}
    return target_logp, target_rank, top_p, [tid for _, tid in top], [by_id.get(c, math.nan) for c in columns]


def _entries(row: object) -> dict[int, tuple[float, int]]:
    """{token id: (log p, rank)} from one position's JSON object."""
    if not isinstance(row, dict):
        raise _malformed("a position has no log-probabilities")
    out = {}
    try:
        for key, value in row.items():
            out[int(key)] = (float(value["logprob"]), int(value["rank"]))
    except (KeyError, TypeError, ValueError):
        raise _malformed("a log-probability entry lacks its logprob or rank") from None
    return out


def _malformed(what: str) -> EngineError:
    return EngineError(f"The vLLM server's log-probabilities cannot be read: {what}.")
