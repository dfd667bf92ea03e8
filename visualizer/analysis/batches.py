"""Several sentences in one batch: right padding, the attention mask, -100 on pads, and two kinds of mean.

The model's batch loss is one mean over every counted token of the batch, so a long
sentence weighs more than a short one; the mean of the row losses weighs each sentence
the same. Leaving the pad labels unmasked adds pad-prediction terms to the loss.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..model.loading import LoadedModel
from ..model.tokens import Token
from .one_pass import IGNORE_INDEX, encode
from .shifts import target_log_probs

MAX_BATCH = 8
"""Most sentences one batch may hold."""
MAX_ROW_TOKENS = 256
"""Longest sentence of a batch, in tokens (the batch's logits are B x T x vocabulary)."""


@dataclass
class BatchRow:
    """One sentence of the batch, padded on the right to the batch's length T."""

    text: str
    tokens: list[Token]
    """(T,) the row's tokens, pads included."""
    attention_mask: list[int]
    """(T,) 1 on the sentence's tokens, 0 on pads."""
    labels: list[int]
    """(T,) labels as fed to the model: the ids, -100 on pads when they are masked."""
    length: int
    """How many real (non-pad) tokens the row has."""
    p_target: list[float]
    """(T-1,) p the model gives tokens[k] from tokens[:k], k = 1..T-1 (pads included)."""
    losses: list[float | None]
    """(T-1,) -ln p at k = 1..T-1; None where the label is -100."""

    @property
    def counted(self) -> int:
        """How many positions of this row count in the loss."""
        return sum(loss is not None for loss in self.losses)

    @property
    def loss_sum(self) -> float:
        """Sum of this row's counted losses."""
        return sum(loss for loss in self.losses if loss is not None)

    @property
    def loss(self) -> float | None:
        """This row's own mean loss (what the sentence alone would give)."""
        return self.loss_sum / self.counted if self.counted else None

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "attention_mask": self.attention_mask,
            "labels": self.labels,
            "length": self.length,
            "p_target": self.p_target,
            "losses": self.losses,
            "loss_sum": self.loss_sum,
            "counted": self.counted,
            "loss": self.loss,
        }


@dataclass
class BatchResult:
    """A padded batch's rows, the model's batch loss, the mean of row losses, and why they differ."""

    model: str
    rows: list[BatchRow]
    """(B,) one per sentence, in the order given."""
    pad_token: Token
    """The token used for padding."""
    pad_is_eos: bool
    """Whether the tokenizer had no pad token, so EOS pads."""
    pads_masked: bool
    """Whether pad labels were set to -100 (the right way)."""
    batch_loss: float | None
    """The model's own `outputs.loss` for the whole batch: sum of counted terms / their count."""
    pad_terms: int
    """How many counted loss terms predict a pad token (0 when pads are masked)."""
    explanation: str
    """Sentences saying why the batch loss and the mean of row losses differ (and what pads did)."""
    notices: list[str] = field(default_factory=list)

    @property
    def loss_sum(self) -> float:
        """Sum of every counted term of the batch: the batch loss's numerator."""
        return sum(row.loss_sum for row in self.rows)

    @property
    def counted(self) -> int:
        """How many terms count over the batch: the batch loss's denominator."""
        return sum(row.counted for row in self.rows)

    @property
    def mean_of_row_losses(self) -> float | None:
        """The plain mean of the rows' own losses: each sentence weighs the same."""
        losses = [row.loss for row in self.rows if row.loss is not None]
        return sum(losses) / len(losses) if losses else None

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "model": self.model,
            "rows": [row.to_dict() for row in self.rows],
            "pad_token": self.pad_token.to_dict(),
            "pad_is_eos": self.pad_is_eos,
            "pads_masked": self.pads_masked,
            "batch_loss": self.batch_loss,
            "loss_sum": self.loss_sum,
            "counted": self.counted,
            "mean_of_row_losses": self.mean_of_row_losses,
            "pad_terms": self.pad_terms,
            "explanation": self.explanation,
            "notices": self.notices,
        }


def pad_id(lm: LoadedModel) -> tuple[int, bool]:
    """(the id to pad with, whether it is EOS standing in for a missing pad token)."""
    tok = lm.tokenizer
    if tok.pad_token_id is not None:
        return tok.pad_token_id, False
    if tok.eos_token_id is not None:
        return tok.eos_token_id, True
    raise InputError("This tokenizer has neither a pad nor an EOS token to pad with.")


def padded_batch(texts, lm: LoadedModel, mask_pads: bool = True, bos: bool = False, max_tokens: int | None = None):
    """Encode and right-pad: (rows of ids, input_ids (B, T), attention_mask (B, T), labels (B, T))."""
    texts = _checked_texts(texts)
    rows = [encode(lm, text, bos=bos, max_tokens=max_tokens)[0] for text in texts]
    for i, ids in enumerate(rows, start=1):
        if len(ids) < 2:
            raise InputError(f"Sentence {i} is a single token: there is no next token to predict.")
        if len(ids) > MAX_ROW_TOKENS:
            raise InputError(f"Sentence {i} has {len(ids)} tokens; a batch row takes at most {MAX_ROW_TOKENS}.")
    pad, _ = pad_id(lm)
    width = max(len(ids) for ids in rows)
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in rows])  # (B, T)
    attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in rows])  # (B, T)
    labels = input_ids.masked_fill(attention == 0, IGNORE_INDEX) if mask_pads else input_ids.clone()
    return rows, input_ids, attention, labels


def analyze_batch(
    texts, lm: LoadedModel, mask_pads: bool = True, bos: bool = False, max_tokens: int | None = None
) -> BatchResult:
    """Run the padded batch once with labels; every row's per-position losses, the batch loss, the explanation."""
    rows, input_ids, attention, labels = padded_batch(texts, lm, mask_pads, bos, max_tokens)
    device = lm.device
    with torch.no_grad():
        out = lm.model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device))
    width = input_ids.shape[1]
    batch_rows = [  # out.logits: (B, T, V); row b's logits[k-1] predict its token k
        _row(
            lm,
            text,
            ids,
            input_ids[b],
            attention[b],
            labels[b],
            target_log_probs(out.logits[b], range(width - 1), input_ids[b, 1:].tolist()),
        )
        for b, (text, ids) in enumerate(zip(list(texts), rows))
    ]
    batch_loss = out.loss.item() if out.loss is not None and torch.isfinite(out.loss) else None
    pad, pad_is_eos = pad_id(lm)
    pad_terms = int(((labels[:, 1:] != IGNORE_INDEX) & (attention[:, 1:] == 0)).sum())
    result = BatchResult(lm.name, batch_rows, lm.decoder.token(pad), pad_is_eos, mask_pads, batch_loss, pad_terms, "")
    result.explanation = explain(result)
    return result


def _row(lm, text, ids, row_ids, row_attention, row_labels, logp: list[float]) -> BatchRow:
    """One BatchRow from its (T,) tensors and its (T-1,) target log-probs."""
    counted = (row_labels[1:] != IGNORE_INDEX).tolist()
    return BatchRow(
        text=text,
        tokens=lm.decoder.tokens(row_ids.tolist()),
        attention_mask=row_attention.tolist(),
        labels=row_labels.tolist(),
        length=len(ids),
        p_target=[math.exp(v) for v in logp],
        losses=[-v if c else None for v, c in zip(logp, counted)],
    )


def explain(result: BatchResult) -> str:
    """Why the batch loss and the mean of row losses differ, in a few sentences."""
    counts = [row.counted for row in result.rows]
    total, mean_rows = result.counted, result.mean_of_row_losses
    if result.batch_loss is None or mean_rows is None:
        return "No position counts in this batch, so there is no loss."
    lines = [
        f"The batch loss {result.batch_loss:.4f} is one mean over all {total} counted tokens of the batch "
        f"({result.loss_sum:.4f} / {total}), so each token weighs the same and a row with more counted tokens "
        f"weighs more. The mean of the row losses {mean_rows:.4f} weighs each sentence the same."
    ]
    if len(set(counts)) == 1:
        lines.append(f"Here every row counts {counts[0]} tokens, so the two means agree.")
    else:
        lines.append(f"Here the rows count {', '.join(map(str, counts))} tokens, so the two means differ.")
    if not result.pads_masked and result.pad_terms:
        pad = result.pad_token.display
        lines.append(
            f"The pad labels are not masked: {result.pad_terms} of the {total} terms score predicting the pad "
            f"token {pad!r} after a sentence has ended (attention_mask 0 hides the pads from the model, "
            f"but not from the loss), so the loss trains the model to produce pads and no longer measures "
            f"the sentences alone. Set the pad labels to -100."
        )
    return " ".join(lines)


def _checked_texts(texts) -> list[str]:
    """Two to MAX_BATCH texts, or an InputError."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise InputError("Give the sentences as a list, one per row of the batch.")
    texts = list(texts)
    if not 2 <= len(texts) <= MAX_BATCH:
        raise InputError(f"A batch here holds 2 to {MAX_BATCH} sentences, not {len(texts)}.")
    return texts
