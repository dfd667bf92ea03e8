"""One analysis through an engine: vLLM's prompt log-probabilities as the same per-position statistics that
one_pass computes from logits in this process.

For ids of n tokens, one completion request (the ids as the prompt, max_tokens 1, prompt_logprobs K) returns,
for every position k = 1..n-1, the true token's log p and rank in the whole vocabulary, and the top K.

The walkthrough's table also needs p(w | input_ids[:k]) for every sentence token w, and a w outside the top K is
not in that answer. For a short text each such cell is asked for exactly, by teacher forcing: the prompt
input_ids[:k] + [w] with prompt_logprobs 0 gives log p(w) at its last position, and all of them go in one more
request (prompts that share a prefix; with the server's prefix caching on, they cost little more than their last
token). Any server answers that, with no full-vocabulary setting. When those prompts would hold more than
EXACT_TABLE_MAX_TOKENS tokens, an unknown cell stays NaN, at most the K-th candidate's p. What the engine cannot
give stays unknown, never guessed: the entropy (NaN) and the model's own loss (None).
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import math

import torch

from ..model.engine import EngineError, EngineModel
from .measured import Measured, Request

ENGINE_NOTICE = (
    "Served by vLLM: the loss shown is the mean of the counted positions' −ln p (the engine gives no loss of its "
    "own) and entropy is not given."
)
BOUNDED_TABLE_NOTICE = (
    "This text is too long to ask the engine for every cell of the sentence-token table: a sentence token outside "
    "the top K shows as at most the K-th candidate's p."
)
EXACT_TABLE_MAX_TOKENS = 512
"""The most tokens the prompts asking for table cells outside the top K may hold together (a cell at position k is a
prompt of k + 1 tokens): 'the dog likes food' needs about 30, a 10-token sentence about 350; on one CPU core without
prefix caching vLLM reads them at ~300 tokens/s (BENCHMARKS.md), on a GPU in milliseconds."""


def measure_engine(lm: EngineModel, request: Request, max_probe_tokens: int = EXACT_TABLE_MAX_TOKENS) -> Measured:
    """The statistics of one text from one completion request with prompt log-probabilities, and for a short
    text a second request that fills the table's cells outside the top K."""
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
    if _fill_unknown_cells(lm, request.ids, columns, stats["columns_p"], max_probe_tokens):
        del stats["bound"]  # every cell known: nothing to bound
    return Measured(stats, loss=None)


def _fill_unknown_cells(lm: EngineModel, ids: list[int], columns: list[int], cells: torch.Tensor, limit: int) -> bool:
    """Ask for each NaN cell of `cells` (n-1, D), p(columns[c] | ids[:r+1]), by teacher forcing, when their prompts
    hold at most `limit` tokens together; fill them in place. Whether every cell is now known."""
    unknown = torch.isnan(cells).nonzero().tolist()  # [[row, column], ...]
    if not unknown:
        return True
    if probe_tokens(unknown) > limit:
        return False
    prompts = [ids[: r + 1] + [columns[c]] for r, c in unknown]
    choices = lm.client.completions(prompts, max_tokens=1, prompt_logprobs=0, temperature=0.0)
    for (r, c), choice in zip(unknown, choices):
        rows = choice.get("prompt_logprobs")
        if not isinstance(rows, list) or len(rows) != r + 2:
            raise _malformed("a probe's prompt log-probabilities do not match its prompt")
        entries = _entries(rows[-1])
        if columns[c] not in entries:
            raise _malformed(f"a probe's last token {columns[c]} is missing from its log-probabilities")
        cells[r, c] = math.exp(entries[columns[c]][0])
    return True


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


def probe_tokens(cells: list[list[int]]) -> int:
    """How many tokens the prompts asking for these [row, column] cells hold: row r's prompt is ids[:r+1] + [w]."""
    return sum(r + 2 for r, _ in cells)


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
