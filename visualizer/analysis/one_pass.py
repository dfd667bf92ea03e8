"""One forward pass -> every position's prediction, its loss, and the walkthrough's tables.

For a text of n tokens the model sees input_ids[0..n-1] once and returns logits for
every position. The logits at index k-1 are the prediction for token k, given
input_ids[:k] (the walkthrough's k, 1..n-1). The labels are a copy of input_ids with
-100 where a position is masked; label k is scored against the logits at index k-1 (the
shift), by our statistics and, separately, by transformers' own loss function.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model.engine import EngineModel
from ..model.loading import AnyModel, LoadedModel
from ..model.tokens import TokenDecoder
from .engine_pass import BOUNDED_TABLE_NOTICE, ENGINE_NOTICE, EXACT_TABLE_MAX_TOKENS, measure_engine
from .measured import Measured, Request

# The result's types live in result.py; importable from here too, as they always were.
from .result import (  # noqa: F401
    CONTEXT_TOKENS,
    Analysis,
    Candidate,
    Position,
    PositionArrays,
    SentenceVocab,
    contexts,
)

IGNORE_INDEX = -100
"""The label value transformers' loss skips."""
STATS_CHUNK = 512
"""Positions turned from logits into statistics at a time, to bound memory on long texts."""
CACHE_ELEMENTS = 1 << 19
"""On a CPU, logits turned into statistics at a time (2 MB of float32: the chunk stays in cache)."""


# ---------------------------------------------------------------- inputs


def validate_top_k(top_k, limit: int = 50) -> int:
    """A top-K that is a whole number in 1..limit, or an InputError saying what is allowed."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, float)):
        raise InputError(f"Top-K must be a whole number from 1 to {limit}.")
    if isinstance(top_k, float) and not top_k.is_integer():
        raise InputError(f"Top-K must be a whole number from 1 to {limit}, not {top_k}.")
    if not 1 <= top_k <= limit:
        raise InputError(f"Top-K must be from 1 to {limit}, not {int(top_k)}.")
    return int(top_k)


@dataclass(frozen=True)
class Encoded:
    """A text's tokens as the analysis reads them, from one tokenizer call: made once per request, then
    passed to the token budget, the masking and the forward pass instead of encoding the text again."""

    text: str
    ids: list[int]
    """Token ids, the BOS token first when `bos`, cut to the model's limit."""
    truncated: bool
    """Whether the text had more tokens than the limit."""
    bos: bool
    """Whether ids[0] is a prepended BOS (or EOS) token."""
    starts: list[int] | None = None
    """Each of the text's tokens' first character (offsets mapping, no BOS), when asked for and the tokenizer
    gives it; else None."""

    @property
    def text_ids(self) -> list[int]:
        """The ids of the text itself: without the prepended BOS."""
        return self.ids[1:] if self.bos else self.ids


def encode(lm: AnyModel, text: str, bos: bool = False, max_tokens: int | None = None):
    """Text -> (input_ids list, truncated flag); no special tokens unless `bos`."""
    encoded = encode_text(lm, text, bos=bos, max_tokens=max_tokens)
    return encoded.ids, encoded.truncated


def encode_text(
    lm: AnyModel, text: str, bos: bool = False, max_tokens: int | None = None, offsets: bool = False
) -> Encoded:
    """Text -> its Encoded tokens in one tokenizer call; no special tokens unless `bos`. With `offsets`, where each
    token starts too (masking up to a marker needs it), when the tokenizer can say (a slow one cannot)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("Please enter some text: it is empty.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("The text holds characters that are not valid Unicode (lone surrogates).") from None
    ids, starts = _tokenize(lm.tokenizer, text, offsets)
    if bos:
        start = lm.tokenizer.bos_token_id
        start = lm.tokenizer.eos_token_id if start is None else start
        if start is None:
            raise InputError("This tokenizer has neither a BOS nor an EOS token to prepend.")
        ids = [start, *ids]
    limit = token_limit(lm, max_tokens)
    kept = ids[:limit]
    starts = None if starts is None else starts[: len(kept) - bool(bos)]
    return Encoded(text, kept, len(ids) > limit, bos, starts)


def token_limit(lm: AnyModel, max_tokens: int | None = None) -> int:
    """The most tokens of a text that are read: the model's context, or `max_tokens` when smaller."""
    return min(lm.max_context, max_tokens or lm.max_context)


def _tokenize(tokenizer, text: str, offsets: bool) -> tuple[list[int], list[int] | None]:
    """(ids, each token's first character or None): one call, asking for offsets only when `offsets`."""
    if offsets:
        try:
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [start for start, _ in enc["offset_mapping"]]
        except (NotImplementedError, ValueError, TypeError, KeyError):
            pass  # a slow tokenizer: the ids alone, and the starts from decoding (masking.starts_by_decoding)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]), None


def make_labels(n: int, mask_first: int = 0, masked=()) -> list[int]:
    """Which label indices count: -100 at the first `mask_first` and at each index in `masked`.

    Returns a mask template: IGNORE_INDEX where masked, 0 elsewhere (filled with ids later).
    Example: make_labels(4, mask_first=2) -> [-100, -100, 0, 0].
    """
    if isinstance(mask_first, bool) or not isinstance(mask_first, int) or mask_first < 0:
        raise InputError("mask_first must be a whole number, 0 or more.")
    skip = set(range(min(mask_first, n))) | {i for i in masked if 0 <= i < n}
    return [IGNORE_INDEX if i in skip else 0 for i in range(n)]


# ---------------------------------------------------------------- analysis


def analyze(
    text: str,
    lm: AnyModel,
    top_k: int = 10,
    mask_first: int = 0,
    masked=(),
    bos: bool = False,
    max_tokens: int | None = None,
    max_top_k: int = 50,
    measure: Callable | None = None,
    exact_table: bool = True,
) -> Analysis:
    """Run one forward pass over `text` and collect every position's prediction and loss
    (`measure`, `exact_table`: see `analyze_ids`)."""
    top_k = validate_top_k(top_k, max_top_k)
    encoded = encode_text(lm, text, bos=bos, max_tokens=max_tokens)
    return analyze_encoded(lm, encoded, top_k, mask_first, masked, max_top_k, measure, exact_table)


def analyze_encoded(
    lm: AnyModel,
    encoded: Encoded,
    top_k: int = 10,
    mask_first: int = 0,
    masked=(),
    max_top_k: int = 50,
    measure: Callable | None = None,
    exact_table: bool = True,
) -> Analysis:
    """`analyze` of a text already encoded (`encode_text`): its labels, then the one forward pass (`exact_table`: see
    `analyze_ids`)."""
    top_k = validate_top_k(top_k, max_top_k)
    ids, text, bos, truncated = encoded.ids, encoded.text, encoded.bos, encoded.truncated
    if len(ids) < 2:
        raise InputError(
            "The text is a single token: there is no next token to predict. Add a word, "
            "or tick 'prepend BOS' so the first token is predicted too."
        )
    if isinstance(lm, EngineModel):
        lm.check_ids(text, encoded.text_ids, truncated)
    template = make_labels(len(ids), mask_first, masked)
    labels = [i if m == 0 else IGNORE_INDEX for i, m in zip(ids, template)]
    result = analyze_ids(
        lm, ids, labels, text=text, bos=bos, top_k=top_k, truncated=truncated, measure=measure, exact_table=exact_table
    )
    if not spells_the_text(lm, text, encoded.text_ids, truncated):
        result.notices.append(NOT_SPELLED)
    return result


NOT_SPELLED = (
    "The tokens do not spell the text exactly: this model's tokenizer left out or changed some of it "
    "(such as a character its vocabulary has no token for); the views show what the model read."
)


def spells_the_text(lm: AnyModel, text: str, ids: list[int], truncated: bool = False) -> bool:
    """Whether the tokens' bytes are the text's UTF-8 (its start, when cut): a byte-level vocabulary without a
    token for some byte (the bundled one lacks 0x04 and 0xF1, for two) drops it silently."""
    spelled, typed = b"".join(lm.decoder.bytes_of_tokens(ids)), text.encode("utf-8")
    spelled = spelled[1:] if spelled[:1] == b" " and typed[:1] != b" " else spelled  # SentencePiece's prefix space
    return typed.startswith(spelled) if truncated else spelled == typed


def analyze_ids(
    lm: AnyModel,
    ids: list[int],
    labels: list[int],
    text: str,
    bos: bool = False,
    top_k: int = 10,
    truncated: bool = False,
    measure: Callable | None = None,
    exact_table: bool = True,
) -> Analysis:
    """The one forward pass over given token ids and labels (-100 = not counted).

    `measure` runs the tensor work (default `measure_one`; the server's `ForwardBatcher.measure`
    shares one padded forward pass between concurrent requests). `exact_table=False` when the sentence-token table
    will not be shown (the API's sentence_vocab=False): an engine is then not asked for its cells outside the top K,
    which costs a second request (in-process, every cell comes with the pass anyway)."""
    if len(ids) < 2 or len(labels) != len(ids):
        raise InputError("Need at least two tokens, and one label per token.")
    request = Request(ids, labels, top_k)
    if isinstance(lm, EngineModel):  # the engine batches concurrent requests itself
        measured = measure_engine(lm, request, EXACT_TABLE_MAX_TOKENS if exact_table else 0)
    else:
        measured = (measure or measure_one)(lm, request)
    columns = list(dict.fromkeys(ids))
    bound = measured.stats.pop("bound", None)
    vocab = _sentence_vocab(lm, ids, columns, measured.stats.pop("columns_p"), bound)
    result = _assemble(lm, text, ids, labels, measured.stats, vocab, measured.loss, truncated, bos, top_k)
    if isinstance(lm, EngineModel):
        result.backend = lm.backend
        result.notices.append(ENGINE_NOTICE)
        if not vocab.exact and exact_table:
            result.notices.append(BOUNDED_TABLE_NOTICE)
    return result


def measure_one(lm: LoadedModel, request: Request) -> Measured:
    """One text's forward pass, reduced to statistics: the direct path (no batching)."""
    return measure_batch(lm, [request])[0]


def measure_batch(lm: LoadedModel, requests: list[Request]) -> list[Measured]:
    """One forward pass over several texts (right-padded, pads masked out of attention), then each
    row's statistics and loss; no (n, V) tensor outlives this call."""
    logits = _forward(lm, [r.ids for r in requests])  # (B, L, V)
    results = []
    for row, r in enumerate(requests):
        row_logits = logits[row, : len(r.ids)]  # (n, V): this text's positions only, pads dropped
        stats = _position_stats(row_logits[:-1], r.ids[1:], r.top_k, list(dict.fromkeys(r.ids)))
        results.append(Measured(stats, model_loss(lm, row_logits, r.labels)))
    del logits
    return results


def _forward(lm: LoadedModel, rows: list[list[int]]) -> torch.Tensor:
    """Logits (B, L, V) float32 for token-id rows right-padded to the longest, L = its length.

    Right padding leaves every real position's prediction as in an unpadded pass: a causal model
    never attends forward, and the attention mask hides the pads."""
    longest = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), longest, dtype=torch.long)  # (B, L); 0 is a valid id in any vocabulary
    mask = torch.zeros(len(rows), longest, dtype=torch.long)  # (B, L)
    for b, r in enumerate(rows):
        input_ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    padded = len(rows) > 1 and not bool(mask.all())
    with torch.no_grad():
        out = lm.model(
            input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device) if padded else None, use_cache=False
        )
    return out.logits.float()


def model_loss(lm: LoadedModel, logits: torch.Tensor, labels: list[int]) -> float | None:
    """The model's own loss for one text's (n, V) logits: transformers' loss function for this model
    (`model.loss_function`, what `outputs.loss` is computed with: shift, skip -100, mean), fed the
    rows in chunks and summed, so it never makes a second (n, V) tensor. None when nothing counts.

    Kept apart from the per-position numbers, so their agreement is a check, not a definition."""
    shifted = torch.tensor(labels[1:] + [IGNORE_INDEX], device=logits.device)  # (n,): label k+1 at row k
    counted = int((shifted != IGNORE_INDEX).sum())
    if counted == 0:
        return None
    step, vocab_size = _chunk_rows(logits), logits.shape[-1]
    with torch.no_grad():
        total = sum(
            lm.model.loss_function(
                logits=logits[s : s + step][None],
                labels=None,
                vocab_size=vocab_size,
                num_items_in_batch=counted,
                shift_labels=shifted[s : s + step][None],
            )
            for s in range(0, logits.shape[0], step)
        )
    return total.item() if torch.isfinite(total) else None


def _chunk_rows(logits: torch.Tensor) -> int:
    """Positions per chunk: about CACHE_ELEMENTS logits on a CPU (fresh (n, V) temporaries cost
    page faults and memory traffic that outweigh the arithmetic), STATS_CHUNK rows on a GPU."""
    if logits.device.type != "cpu":
        return STATS_CHUNK
    return max(1, min(STATS_CHUNK, CACHE_ELEMENTS // max(1, logits.shape[-1])))


def _position_stats(logits: torch.Tensor, targets: list[int], top_k: int, columns: list[int]) -> dict:
    """Per-position numbers from (n-1, V) logits in one pass of small chunks, so only one chunk
    is ever at full vocabulary size: log p(target), rank, entropy, top-K, and p of each `columns` token."""
    rows, device = logits.shape[0], logits.device
    k = min(top_k, logits.shape[-1])
    tgt = torch.tensor(targets, device=device)[:, None]  # (n-1, 1)
    index = torch.tensor(columns, device=device)  # (D,)
    out = {
        "logp": torch.empty(rows, device=device),
        "rank": torch.empty(rows, dtype=torch.long, device=device),
        "ent": torch.empty(rows, device=device),
        "top_p": torch.empty(rows, k, device=device),
        "top_i": torch.empty(rows, k, dtype=torch.long, device=device),
        "columns_p": torch.empty(rows, len(columns), device=device),
    }
    step = _chunk_rows(logits)
    for s in range(0, rows, step):
        _chunk_stats(logits[s : s + step], tgt[s : s + step], k, index, {n: t[s : s + step] for n, t in out.items()})
    out = {name: t.cpu() for name, t in out.items()}
    out["p"] = out["logp"].exp()
    return out


def _chunk_stats(logits, tgt, k: int, index, out: dict) -> None:
    """Fill `out`'s rows from one chunk of logits (c, V); `tgt` (c, 1) are the true next tokens."""
    logp = torch.log_softmax(logits, dim=-1)  # (c, V)
    logp_t = logp.gather(1, tgt)  # (c, 1)
    out["logp"].copy_(logp_t[:, 0])
    out["rank"].copy_((logp > logp_t).sum(dim=1) + 1)
    p = logp.exp()  # (c, V)
    ent = -torch.linalg.vecdot(p, logp)
    if ent.isnan().any():  # a -inf logit: 0 * -inf; entr() takes 0 * log 0 as 0
        ent = torch.special.entr(p).sum(dim=1)
    out["ent"].copy_(ent)
    top_logp, top_ids = logp.topk(k, dim=1)  # (c, K)
    out["top_p"].copy_(top_logp.exp())
    out["top_i"].copy_(top_ids)
    out["columns_p"].copy_(p[:, index])  # (c, D)


def _sentence_vocab(
    lm: AnyModel, ids: list[int], columns: list[int], probs: torch.Tensor, bound: torch.Tensor | None = None
) -> SentenceVocab:
    """The walkthrough's table over the sentence's distinct tokens `columns`, from their (n-1, D) probabilities
    (NaN where an engine could not give one: then 'other' is unknown too, and `bound` caps the cell)."""
    column = {tid: c for c, tid in enumerate(columns)}
    other = (1.0 - probs.double().sum(dim=1)).clamp(min=0.0)  # (n-1,); NaN in a row with an unknown cell
    return SentenceVocab(
        columns=lm.decoder.tokens(columns),
        p_columns=probs.numpy(),
        p_other=other.numpy(),
        target_column=[column[t] for t in ids[1:]],
        p_bound=None if bound is None else bound.numpy(),
    )


def context_text(decoder: TokenDecoder, ids: list[int], k: int) -> str:
    """The readable text of input_ids[:k], its start cut to CONTEXT_TOKENS tokens.

    Example: ids of 'the dog likes food', k=3 -> 'the dog likes'.
    """
    start = max(0, k - CONTEXT_TOKENS)
    return ("…" if start else "") + decoder.text_of(ids[start:k])


def _assemble(lm, text, ids, labels, stats, vocab, model_loss, truncated, bos, top_k) -> Analysis:
    """The statistics' tensors as the result's arrays, with the loss's sum and count beside the model's own loss."""
    arrays = PositionArrays(
        p_target=stats["p"].numpy(),
        logp=stats["logp"].numpy(),
        rank=stats["rank"].numpy(),
        entropy=stats["ent"].numpy(),
        top_p=stats["top_p"].numpy(),
        top_ids=stats["top_i"].numpy(),
        counted=(torch.tensor(labels[1:]) != IGNORE_INDEX).numpy(),  # (n-1,)
    )
    counted = [loss for loss in arrays.losses() if loss is not None]
    notices = []
    if truncated:
        notices.append(f"The text was cut to the first {len(ids)} tokens, the most this model reads at once.")
    if not counted:
        notices.append("Every label is masked (-100), so no position counts and there is no loss.")
    return Analysis(
        model=lm.name,
        text=text,
        tokens=lm.decoder.tokens(ids),
        labels=labels,
        arrays=arrays,
        vocab=vocab,
        loss=model_loss,
        mean_token_loss=sum(counted) / len(counted) if counted else None,
        loss_sum=sum(counted),
        counted=len(counted),
        truncated=truncated,
        bos=bos,
        decoder=lm.decoder,
        top_k=top_k,
        notices=notices,
    )
