"""Packing made visible: one packed sequence through the model twice, its examples seeing each other and kept apart.

TRL's `pack_dataset` (bfd) bins whole rows into sequences; its collator (`DataCollatorForLanguageModeling` with
`padding_free`, which SFTTrainer turns on for bfd packing) then gives the model the sequence with position ids
restarted at each row, no attention mask, and the label at each restart set to -100 (an example's first token is
never predicted from the example before it). Transformers (5.x, sdpa and eager alike) reads restarted position ids
without a mask as packed sequences and keeps each one's attention to itself; flash attention does the same with
TRL's `cu_seq_lens`. That is the "apart" pass here: TRL's own input. The "together" pass is the same ids and labels
with continuous position ids and plain causal attention, what a trainer without document-aware attention does: each
example also reads every example before it. The same labels count in both, so the difference is only the context.
Pure: no gradio, no plotly, no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..model.loading import LoadedModel
from .one_pass import IGNORE_INDEX
from .trainer_labels import LabeledRow

CHUNK_ROWS = 256
"""Positions whose (n, V) log-softmax is taken at once (keeps one temporary of at most 256 x V floats)."""


@dataclass
class PackedSequence:
    """One sequence of TRL's packing: its examples' ids and labels back to back, as the collator gives them."""

    pack: int
    """The sequence's number (as `LabeledRow.pack`)."""
    input_ids: list[int]
    """(n,) every example's ids, in TRL's order."""
    labels: list[int]
    """(n,) TRL's labels with the collator's -100 at each example's first token."""
    rows: list[int]
    """The file row of each example, in order."""
    starts: list[int]
    """Where each example starts in the sequence."""
    ends: list[int]
    """Where each example ends (exclusive)."""

    @property
    def position_ids(self) -> list[int]:
        """(n,) the collator's position ids: restarted at 0 at each example. [0, 1, 2, 0, 1] for 3 + 2 tokens."""
        return [t - start for start, end in zip(self.starts, self.ends) for t in range(start, end)]

    @property
    def example_of(self) -> list[int]:
        """(n,) which example (0-based, in the sequence) each token belongs to."""
        return [k for k, (start, end) in enumerate(zip(self.starts, self.ends)) for _ in range(start, end)]


def packed_sequences(rows: Sequence[LabeledRow]) -> list[PackedSequence]:
    """The packed sequences that labelled rows (with `pack` and `pack_offset` set) make, in pack order; each
    example's label at its first token set to -100, as TRL's collator does at every position-id reset."""
    by_pack: dict[int, list[LabeledRow]] = {}
    for row in rows:
        if row.pack is None or row.pack_offset is None:
            raise ValueError(f"Row {row.row} is not packed.")
        by_pack.setdefault(row.pack, []).append(row)
    out = []
    for pack in sorted(by_pack):
        members = sorted(by_pack[pack], key=lambda r: r.pack_offset or 0)
        ids: list[int] = []
        labels: list[int] = []
        starts, ends = [], []
        for row in members:
            assert row.pack_offset == len(ids), "a pack's rows must follow one another"
            starts.append(len(ids))
            ids += row.input_ids
            labels += [IGNORE_INDEX, *row.labels[1:]] if row.labels else []
            ends.append(len(ids))
        out.append(PackedSequence(pack, ids, labels, [r.row for r in members], starts, ends))
    return out


@dataclass
class ExampleLosses:
    """One example of a packed sequence: where it is and its loss with and without the examples before it."""

    row: int
    """The example's row in the file."""
    start: int
    end: int
    """Its tokens: [start, end) in the sequence."""
    counted: int
    """Its positions whose label counts (the first token's never does)."""
    together: float | None
    """Mean −ln p over them when it reads the examples before it (continuous positions, causal attention)."""
    apart: float | None
    """The same kept apart (positions restarted, attention within the example): TRL's packed training."""

    @property
    def difference(self) -> float | None:
        """together − apart: what reading the earlier examples changes (0 for the first example)."""
        return None if self.together is None or self.apart is None else self.together - self.apart

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "row": self.row,
            "start": self.start,
            "end": self.end,
            "counted": self.counted,
            "loss_together": self.together,
            "loss_apart": self.apart,
            "difference": self.difference,
        }


@dataclass
class PackComparison:
    """A packed sequence's per-token losses from the two forward passes, and each example's mean."""

    sequence: PackedSequence
    tokens: list[str]
    """(n,) each token's display form (whitespace visible; not escaped)."""
    together: list[float | None]
    """(n,) −ln p of token t's label given tokens 0..t-1 of the whole sequence; None where it does not count."""
    apart: list[float | None]
    """(n,) the same given only the tokens of its own example before it."""
    examples: list[ExampleLosses]
    notices: list[str] = field(default_factory=list)

    @property
    def difference(self) -> list[float | None]:
        """(n,) together − apart per token; None where the label does not count."""
        return [None if a is None or b is None else a - b for a, b in zip(self.together, self.apart)]

    def to_dict(self) -> dict:
        """The JSON form: the pack, its length and its examples (no per-token lists)."""
        return {
            "pack": self.sequence.pack,
            "tokens": len(self.sequence.input_ids),
            "examples": [e.to_dict() for e in self.examples],
        }


def compare_pack(lm: LoadedModel, sequence: PackedSequence) -> PackComparison:
    """Two real forward passes over `sequence`: together (continuous position ids, plain causal attention) and
    apart (TRL's packed input: position ids restarted at each example, no attention mask, so transformers keeps
    each example's attention to itself). A sequence longer than the model's context is cut to it, said in a
    notice. Per-token −ln p of each counted label, each example's mean over its counted labels both ways."""
    notices = []
    context = lm.max_context
    if len(sequence.input_ids) > context:
        notices.append(
            f"The packed sequence has {len(sequence.input_ids)} tokens, more than the model's context ({context}): "
            f"only its first {context} are compared."
        )
        sequence = _cut(sequence, context)
    ids = torch.tensor([sequence.input_ids], device=lm.device)  # (1, n)
    restarted = torch.tensor([sequence.position_ids], device=lm.device)  # (1, n)
    labels = sequence.labels
    with torch.no_grad():
        together = token_losses(lm.model(input_ids=ids, use_cache=False).logits[0], labels)
        apart = token_losses(lm.model(input_ids=ids, position_ids=restarted, use_cache=False).logits[0], labels)
    examples = [
        ExampleLosses(row, start, end, *_example_means(together, apart, start, end))
        for row, start, end in zip(sequence.rows, sequence.starts, sequence.ends)
    ]
    tokens = [t.display for t in lm.decoder.tokens(sequence.input_ids)]
    return PackComparison(sequence, tokens, together, apart, examples, notices)


def token_losses(logits: torch.Tensor, labels: Sequence[int]) -> list[float | None]:
    """(n,) −ln p of label t from the (n, V) logits at t-1, in float32; None at t = 0 and where the label is -100.
    Example: labels [-100, 5, -100, 7] -> [None, −ln p(5 | 0), None, −ln p(7 | 0..2)]."""
    n = logits.shape[0]
    target = torch.tensor(list(labels[1:n]), device=logits.device)  # (n-1,)
    out: list[float | None] = [None]
    for s in range(0, n - 1, CHUNK_ROWS):
        tgt = target[s : s + CHUNK_ROWS]  # (c,)
        chunk = logits[s : s + len(tgt)].float()  # (c, V) predicting labels s+1 .. s+c
        losses = F.cross_entropy(chunk, tgt.clamp(min=0), reduction="none")  # (c,)
        out += [None if int(t) == IGNORE_INDEX else float(v) for t, v in zip(tgt.tolist(), losses.tolist())]
    return out


def _example_means(together, apart, start: int, end: int) -> tuple[int, float | None, float | None]:
    """An example's counted positions and its mean loss both ways."""
    pairs = [(a, b) for a, b in zip(together[start:end], apart[start:end]) if a is not None and b is not None]
    if not pairs:
        return 0, None, None
    return len(pairs), sum(a for a, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs)


def _cut(sequence: PackedSequence, limit: int) -> PackedSequence:
    """The sequence's first `limit` tokens: the examples that start within them, the last one cut short."""
    kept = [k for k, start in enumerate(sequence.starts) if start < limit]
    return PackedSequence(
        sequence.pack,
        sequence.input_ids[:limit],
        sequence.labels[:limit],
        [sequence.rows[k] for k in kept],
        [sequence.starts[k] for k in kept],
        [min(sequence.ends[k], limit) for k in kept],
    )
