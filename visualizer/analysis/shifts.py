"""Two shift mistakes, each beside the right numbers, from one forward pass.

The model already shifts: logits[k-1] (having seen input_ids[:k]) is scored against labels[k].
  * double shift: labels shifted by hand (labels = input_ids[1:] + [-100]) are shifted again
    inside the model, so logits[k-1] is trained toward input_ids[k+1], the token after next;
  * off by one: reading logits[k] as the prediction of token k, although logits[k] has
    already seen token k and predicts token k+1.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..model.loading import LoadedModel
from ..model.tokens import Token
from .one_pass import IGNORE_INDEX, STATS_CHUNK, context_text, encode

DOUBLE_SHIFT = "double_shift"
OFF_BY_ONE = "off_by_one"


@dataclass
class ShiftRow:
    """Position k: the right prediction of token k beside what the mistake computes there."""

    k: int
    """Index of the token the right reading predicts (1..n-1)."""
    context: str
    """The readable text of input_ids[:k]."""
    target: Token
    """The right target, input_ids[k]."""
    p: float
    """Right: p of input_ids[k] from logits[k-1]."""
    loss: float
    """Right: -ln p."""
    wrong_target: Token | None
    """The token the mistake scores here (input_ids[k+1] for the double shift); None if nothing is scored."""
    wrong_p: float | None
    """The mistake's p of wrong_target: from logits[k-1] (double shift) or logits[k] (off by one)."""
    wrong_loss: float | None
    """-ln wrong_p; None where the mistake scores nothing."""

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "k": self.k,
            "context": self.context,
            "target": self.target.to_dict(),
            "p": self.p,
            "loss": self.loss,
            "wrong_target": None if self.wrong_target is None else self.wrong_target.to_dict(),
            "wrong_p": self.wrong_p,
            "wrong_loss": self.wrong_loss,
        }


@dataclass
class ShiftComparison:
    """Right vs wrong numbers for one text under one shift mistake."""

    mistake: str
    """DOUBLE_SHIFT or OFF_BY_ONE."""
    model: str
    text: str
    tokens: list[Token]
    """(n,) the tokens fed to the model."""
    labels: list[int]
    """(n,) the right labels: a copy of input_ids (the model shifts them)."""
    wrong_labels: list[int]
    """(n,) the labels the mistake gives the model (hand-shifted for DOUBLE_SHIFT; as `labels` for OFF_BY_ONE)."""
    rows: list[ShiftRow]
    """(n-1,) one per k = 1..n-1."""
    loss: float
    """The model's own loss with the right labels."""
    wrong_loss: float | None
    """DOUBLE_SHIFT: the model's loss for the hand-shifted labels; OFF_BY_ONE: the mean of the misread losses."""
    wrong_counted: int
    """How many terms the wrong loss averages."""
    explanation: str
    """One or two sentences on what went wrong."""
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "mistake": self.mistake,
            "model": self.model,
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "labels": self.labels,
            "wrong_labels": self.wrong_labels,
            "rows": [row.to_dict() for row in self.rows],
            "loss": self.loss,
            "counted": len(self.rows),
            "wrong_loss": self.wrong_loss,
            "wrong_counted": self.wrong_counted,
            "explanation": self.explanation,
            "notices": self.notices,
        }


def target_log_probs(logits: torch.Tensor, rows, targets) -> list[float]:
    """ln p(targets[i]) under the distribution of logits[rows[i]], from (n, V) logits, chunked.

    Only the (n,) normalisers are kept, never a full (n, V) log-softmax.
    Example: rows [0, 1], targets [ids[1], ids[2]] -> each token's log-prob given its prefix.
    """
    norm = torch.cat(
        [torch.logsumexp(logits[s : s + STATS_CHUNK].float(), dim=-1) for s in range(0, logits.shape[0], STATS_CHUNK)]
    )  # (n,)
    r = torch.as_tensor(list(rows), dtype=torch.long, device=logits.device)
    t = torch.as_tensor(list(targets), dtype=torch.long, device=logits.device)
    return (logits[r, t].float() - norm[r]).tolist()


def _forward(text: str, lm: LoadedModel, bos: bool, max_tokens: int | None):
    """(ids, logits (n, V) float32, the model's own loss with labels = input_ids) from one pass."""
    ids, _ = encode(lm, text, bos=bos, max_tokens=max_tokens)
    if len(ids) < 2:
        raise InputError("The text is a single token: there is no next token to predict.")
    input_ids = torch.tensor([ids], device=lm.device)  # (1, n)
    with torch.no_grad():
        out = lm.model(input_ids=input_ids, labels=input_ids)
    return ids, out.logits[0], out.loss.item()


def double_shift(text: str, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None) -> ShiftComparison:
    """Right labels vs labels shifted by hand before the model shifts them again (one forward pass)."""
    ids, logits, loss = _forward(text, lm, bos, max_tokens)  # logits: (n, V)
    wrong_labels = ids[1:] + [IGNORE_INDEX]
    wrong_tensor = torch.tensor([wrong_labels], device=logits.device)  # (1, n)
    wrong = lm.model.loss_function(logits=logits[None], labels=wrong_tensor, vocab_size=logits.shape[-1])
    wrong_loss = wrong.item() if torch.isfinite(wrong) else None
    tokens, n = lm.decoder.tokens(ids), len(ids)
    right = target_log_probs(logits, range(n - 1), ids[1:])  # logits[k-1] vs input_ids[k]
    after_next = target_log_probs(logits, range(n - 2), ids[2:]) + [None]  # logits[k-1] vs input_ids[k+1]
    rows = [
        _shift_row(lm, ids, tokens, k, right[k - 1], k + 1 if k + 1 < n else None, after_next[k - 1])
        for k in range(1, n)
    ]
    explanation = (
        "The labels were shifted by hand and then shifted again inside the model, so the prediction made "
        "from input_ids[:k] is scored against input_ids[k+1], the token after next, and the last position "
        "scores nothing. Pass labels = input_ids unshifted: the model shifts them itself."
    )
    notices = [] if wrong_loss is not None else ["Two tokens leave nothing for the double shift to score."]
    return ShiftComparison(
        DOUBLE_SHIFT,
        lm.name,
        text,
        tokens,
        list(ids),
        wrong_labels,
        rows,
        loss,
        wrong_loss,
        n - 2,
        explanation,
        notices,
    )


def off_by_one(text: str, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None) -> ShiftComparison:
    """p of token k read from logits[k-1] (right) vs from logits[k] (the off-by-one), from one forward pass."""
    ids, logits, loss = _forward(text, lm, bos, max_tokens)  # logits: (n, V)
    tokens, n = lm.decoder.tokens(ids), len(ids)
    right = target_log_probs(logits, range(n - 1), ids[1:])  # logits[k-1] vs input_ids[k]
    misread = target_log_probs(logits, range(1, n), ids[1:])  # logits[k] (has seen token k) vs input_ids[k]
    rows = [_shift_row(lm, ids, tokens, k, right[k - 1], k, misread[k - 1]) for k in range(1, n)]
    wrong = [row.wrong_loss for row in rows if row.wrong_loss is not None]  # every row here scores one
    explanation = (
        "logits[k] was read as the prediction of token k, but position k has already seen token k and "
        "predicts token k+1, so each p is the chance of the same token coming again. The prediction of "
        "token k is logits[k-1]."
    )
    return ShiftComparison(
        OFF_BY_ONE,
        lm.name,
        text,
        tokens,
        list(ids),
        list(ids),
        rows,
        loss,
        sum(wrong) / len(wrong),
        len(wrong),
        explanation,
    )


def _shift_row(lm, ids, tokens, k, right_logp, wrong_index, wrong_logp) -> ShiftRow:
    """A ShiftRow from log-probs; wrong_index is the token the mistake scores (None: nothing)."""
    return ShiftRow(
        k=k,
        context=context_text(lm.decoder, ids, k),
        target=tokens[k],
        p=math.exp(right_logp),
        loss=-right_logp,
        wrong_target=None if wrong_index is None else tokens[wrong_index],
        wrong_p=None if wrong_logp is None else math.exp(wrong_logp),
        wrong_loss=None if wrong_logp is None else -wrong_logp,
    )
