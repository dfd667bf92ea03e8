"""What the tensor work of one analysis takes and gives, whoever runs the forward pass (this process or an engine)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One text's share of a forward pass: its token ids, labels (-100 = not counted) and top-K."""

    ids: list[int]
    labels: list[int]
    top_k: int


@dataclass
class Measured:
    """What the tensor work gives one text: per-position statistics (small CPU tensors) and the model's loss."""

    stats: dict
    """'logp', 'p', 'rank', 'ent' (n-1,); 'top_p', 'top_i' (n-1, K); 'columns_p' (n-1, D); an engine adds
    'bound' (n-1,): the K-th candidate's p, above every column p it could not give (NaN in 'columns_p')."""
    loss: float | None
    """The model's own loss; None when nothing counts, or when an engine ran the pass (it gives none)."""
