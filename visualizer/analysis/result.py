"""What one analysis gives: every position's numbers as arrays, and the views built from them.

The arrays are the result's own form: tables, figures and the JSON contract read them directly,
so a long text costs no Python object per position and candidate unless one is asked for.
`Analysis.positions` builds a `Position` (with its `Candidate`s) when it is first read.
Pure: no torch, no gradio, no plotly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate

import numpy as np

from ..model.tokens import Token, TokenDecoder, character_groups, readable, visible

CONTEXT_TOKENS = 48
"""A position's context shows at most this many preceding tokens (after a '…')."""


@dataclass(slots=True)
class Candidate:
    """One of the most likely next tokens at a position."""

    token: Token
    p: float

    def to_dict(self) -> dict:
        """The JSON contract's candidate object: the token's fields plus `p`."""
        return {**self.token.to_dict(), "p": self.p}


@dataclass(slots=True)
class Position:
    """The prediction of labels[k] from input_ids[:k]."""

    k: int
    """Index of the predicted token (1..n-1)."""
    context: str
    """The readable text of input_ids[:k] (its last CONTEXT_TOKENS tokens at most)."""
    target: Token
    """The true next token, input_ids[k]."""
    p_target: float
    """Probability the model gives the target."""
    rank: int
    """1 when the target is the model's top choice."""
    loss: float | None
    """-ln p_target in nats; None where the label is masked (-100)."""
    entropy: float
    """Entropy of the predicted distribution, nats."""
    top: list[Candidate]
    """The top-K candidates, most likely first."""

    @property
    def masked(self) -> bool:
        """Whether this position is left out of the loss."""
        return self.loss is None

    def to_dict(self) -> dict:
        """The JSON contract's position object."""
        return {
            "k": self.k,
            "context": self.context,
            "target": self.target.to_dict(),
            "p_target": self.p_target,
            "rank": self.rank,
            "loss": self.loss,
            "masked": self.masked,
            "entropy": self.entropy,
            "top": [c.to_dict() for c in self.top],
        }


def _same_fields(a, b) -> bool:
    """Dataclass equality for fields that hold arrays (`==` on arrays gives an array, not a bool)."""
    return type(a) is type(b) and all(np.array_equal(x, y) for x, y in zip(vars(a).values(), vars(b).values()))


def _read_only(*arrays: np.ndarray) -> None:
    """Freeze a result's arrays: the Positions and tables built from them must stay true to them."""
    for array in arrays:
        array.setflags(write=False)


@dataclass(eq=False)
class PositionArrays:
    """Every position's numbers, row j for the prediction of token k = j + 1."""

    p_target: np.ndarray
    """(n-1,) float32: p of the true next token."""
    logp: np.ndarray
    """(n-1,) float32: ln p_target."""
    rank: np.ndarray
    """(n-1,) int64: 1 when the true next token is the top choice."""
    entropy: np.ndarray
    """(n-1,) float32, nats."""
    top_p: np.ndarray
    """(n-1, K) float32: the top-K probabilities, most likely first."""
    top_ids: np.ndarray
    """(n-1, K) int64: their token ids."""
    counted: np.ndarray
    """(n-1,) bool: label k is not -100, so the position counts in the loss."""

    __eq__ = _same_fields

    def __post_init__(self):
        _read_only(*vars(self).values())

    def losses(self) -> list[float | None]:
        """(n-1,) -ln p_target per position, None where masked: the same floats `Position.loss` holds."""
        return [-lp if c else None for lp, c in zip(self.logp.tolist(), self.counted.tolist())]

    def would_be_losses(self) -> np.ndarray:
        """(n-1,) float64: -ln p_target, counted or not (a p that underflowed to 0 gives a large finite value)."""
        return -np.log(np.maximum(self.p_target.astype(np.float64), 1e-45))


@dataclass(eq=False)
class SentenceVocab:
    """The walkthrough's table: each position's probability for each distinct sentence token."""

    columns: list[Token]
    """The sentence's distinct tokens, in order of first appearance."""
    p_columns: np.ndarray
    """(n-1, D) float32: p of each column token at each position."""
    p_other: np.ndarray
    """(n-1,) float64: the probability left for every other token of the vocabulary."""
    target_column: list[int]
    """(n-1,): which column is the true next token at each position."""
    p_bound: np.ndarray | None = None
    """(n-1,) float32, from an engine only: the K-th candidate's p at each position. A column token outside the
    top K has NaN in `p_columns` (the engine does not say its p), and its p is at most this; None in-process."""

    __eq__ = _same_fields

    def __post_init__(self):
        _read_only(self.p_columns, self.p_other, *([] if self.p_bound is None else [self.p_bound]))

    @property
    def exact(self) -> bool:
        """Whether every cell is known (always in-process; from an engine when the top K held every column)."""
        return not bool(np.isnan(self.p_columns).any())

    @property
    def probs(self) -> list[list[float]]:
        """(n-1, D) `p_columns` as lists, as in the JSON contract."""
        return self.p_columns.tolist()

    @property
    def other(self) -> list[float]:
        """(n-1,) `p_other` as a list, as in the JSON contract."""
        return self.p_other.tolist()

    def predicted(self, row: int) -> list[float]:
        """A row of the table: p of each column token, then of every other token."""
        return [*self.p_columns[row].tolist(), float(self.p_other[row])]

    def one_hot(self, row: int) -> list[float]:
        """The true label of a row as a one-hot vector over the columns (plus 0 for 'other')."""
        return [1.0 if c == self.target_column[row] else 0.0 for c in range(len(self.columns))] + [0.0]

    def abs_diff(self, row: int) -> list[float]:
        """|predicted - true| per column and for 'other': the walkthrough's crude loss (NaN where p is unknown)."""
        return [abs(p - t) for p, t in zip(self.predicted(row), self.one_hot(row))]

    def crude_loss(self, row: int) -> float:
        """The sum of `abs_diff(row)`. Known even where cells are not: every token but the target is off by its p,
        and those p sum to 1 - p(target), so the sum is 2 (1 - p(target))."""
        total = sum(self.abs_diff(row))
        return total if math.isfinite(total) else 2.0 * (1.0 - float(self.p_columns[row, self.target_column[row]]))

    def bound(self, row: int) -> float | None:
        """The most an unknown cell of this row can be (the engine's K-th candidate's p); None in-process."""
        return None if self.p_bound is None else float(self.p_bound[row])

    def table(self, rows: int | None = None) -> np.ndarray:
        """(rows, D+1) float64: the table's first `rows` rows (all by default), 'other' last."""
        return np.column_stack([self.p_columns[:rows].astype(np.float64), self.p_other[:rows]])

    def to_dict(self) -> dict:
        """The JSON form, with the one-hot rows and absolute differences spelled out."""
        predicted = self.table()  # (n-1, D+1)
        truth = np.zeros_like(predicted)
        truth[np.arange(len(truth)), self.target_column] = 1.0
        return {
            "columns": [t.to_dict() for t in self.columns],
            "probs": self.probs,
            "other": self.other,
            "target_column": list(self.target_column),
            "abs_diff": np.abs(predicted - truth).tolist(),
            **({} if self.p_bound is None else {"p_bound": self.p_bound.tolist()}),
        }


def contexts(decoder: TokenDecoder, ids: list[int]) -> list[str]:
    """The readable text of input_ids[:k] for every k in 1..n-1, its start cut to CONTEXT_TOKENS
    tokens, each a slice of the text's bytes joined once. 'the dog likes food' -> ['the', 'the dog', ...]."""
    pieces = decoder.bytes_of_tokens(ids)
    ends = list(accumulate(map(len, pieces), initial=0))  # ends[k]: bytes of input_ids[:k]
    data = b"".join(pieces)
    return [
        ("…" if k > CONTEXT_TOKENS else "") + readable(data[ends[max(0, k - CONTEXT_TOKENS)] : ends[k]])
        for k in range(1, len(ids))
    ]


class Positions(Sequence):
    """`Analysis.positions`: one `Position` per predicted token, each built from the arrays when first read."""

    def __init__(self, arrays: PositionArrays, tokens: list[Token], contexts: list[str], decoder: TokenDecoder):
        self._arrays, self._tokens, self._contexts, self._decoder = arrays, tokens, contexts, decoder
        self._built: list[Position | None] = [None] * len(arrays.rank)

    def __len__(self) -> int:
        return len(self._built)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[j] for j in range(*index.indices(len(self)))]
        j = range(len(self))[index]  # IndexError out of range; negative indices count from the end
        if self._built[j] is None:
            self._built[j] = self._build(j)
        return self._built[j]

    def __eq__(self, other) -> bool:
        return isinstance(other, (list, tuple, Positions)) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Positions({list(self)!r})"

    def _build(self, j: int) -> Position:
        """The Position for row j (token k = j + 1)."""
        arrays = self._arrays
        counted = bool(arrays.counted[j])
        top = [Candidate(t, p) for t, p in zip(self._decoder.tokens(arrays.top_ids[j]), arrays.top_p[j].tolist())]
        return Position(
            k=j + 1,
            context=self._contexts[j],
            target=self._tokens[j + 1],
            p_target=float(arrays.p_target[j]),
            rank=int(arrays.rank[j]),
            loss=-float(arrays.logp[j]) if counted else None,
            entropy=float(arrays.entropy[j]),
            top=top,
        )


@dataclass(frozen=True)
class SplitCharacter:
    """Characters spread over several tokens (a CJK character, an emoji): the loss of the whole is the sum of
    its pieces' losses, since p(character) = the product of p(each piece | the pieces before)."""

    text: str
    """The whole characters, whitespace visible: '狗'."""
    pieces: int
    """How many tokens they span."""
    loss: float
    """Σ −ln p over the pieces that are predicted (all but a piece that is the text's first token)."""
    predicted: int
    """How many of the pieces are predicted."""


@dataclass
class Analysis:
    """Everything one forward pass says about one text."""

    model: str
    text: str
    tokens: list[Token]
    """(n,) the tokens fed to the model, BOS included when asked for."""
    labels: list[int]
    """(n,) labels as fed to the model: input_ids with -100 where masked."""
    arrays: PositionArrays
    """(n-1,) rows: every position's numbers."""
    vocab: SentenceVocab
    loss: float | None
    """The model's own `outputs.loss` for these labels; None when nothing is counted."""
    mean_token_loss: float | None
    """Mean of the counted positions' losses (equals `loss`)."""
    loss_sum: float
    """Sum of the counted positions' losses: the numerator of the mean."""
    counted: int
    """How many positions count in the loss: the denominator."""
    truncated: bool
    """Whether the text was cut to the model's context length."""
    bos: bool
    """Whether a BOS token was prepended."""
    decoder: TokenDecoder = field(repr=False, compare=False)
    """Turns the candidates' ids into tokens when they are read."""
    top_k: int = 10
    notices: list[str] = field(default_factory=list)
    """Things the user should know (truncation, nothing counted)."""
    source: str = "text"
    """Where the tokens came from: 'text' (a text, tokenized), or from the Your data tab 'a conversation' or
    'data row N' (a chat template's tokens and a trainer's labels, which Compare reads as they are)."""
    backend: str = "transformers"
    """Who ran the forward pass: 'transformers' in this process, or 'vllm' (an engine: no loss of its own, no
    entropy, and the walkthrough's table exact only where the top K held the sentence's tokens)."""

    @property
    def shown_loss(self) -> float | None:
        """The loss to show: the model's own, or from an engine (which gives none) the mean over counted positions."""
        return self.loss if self.backend == "transformers" else self.mean_token_loss

    @property
    def loss_name(self) -> str:
        """What `shown_loss` is, in a few words."""
        return "model loss" if self.backend == "transformers" else "mean loss over counted positions"

    @cached_property
    def positions(self) -> Positions:
        """(n-1,) one `Position` per predicted token, k = 1..n-1 (a sequence; each built when first read)."""
        return Positions(self.arrays, self.tokens, self.contexts, self.decoder)

    @cached_property
    def contexts(self) -> list[str]:
        """(n-1,) the readable text before each predicted token (`Position.context`)."""
        return contexts(self.decoder, self.input_ids)

    @cached_property
    def readable_tokens(self) -> list[str]:
        """(n,) each token's label in this text: its display form, or for a piece of a character split over
        several tokens that character and the piece's number ('狗 2/3'); right-to-left labels isolated."""
        return self.decoder.labels_in_text(self.input_ids)

    @cached_property
    def column_labels(self) -> list[str]:
        """One label per column of the walkthrough's table (the sentence's distinct tokens): the token's label in
        this text, or its display form where the same id stands for pieces of different characters."""
        seen: dict[int, set[str]] = {}
        for token, label in zip(self.tokens, self.readable_tokens):
            seen.setdefault(token.id, set()).add(label)
        return [next(iter(seen[t.id])) if len(seen[t.id]) == 1 else t.display for t in self.vocab.columns]

    @cached_property
    def split_characters(self) -> list[SplitCharacter | None]:
        """(n,) for each token that shares a character with its neighbours, the whole character(s) and the
        summed −ln p of the group's predicted pieces (the loss of the character); None for whole tokens."""
        pieces = self.decoder.bytes_of_tokens(self.input_ids)
        would_be = self.arrays.would_be_losses()  # (n-1,): token t is predicted at row t-1
        out: list[SplitCharacter | None] = []
        for group in character_groups(pieces):
            if len(group) == 1:
                out.append(None)
                continue
            predicted = [t for t in group if t >= 1]
            text = visible(b"".join(pieces[group.start : group.stop]))
            loss = float(sum(would_be[t - 1] for t in predicted))
            out.append(SplitCharacter(text, len(group), loss, len(predicted)))
        return out

    @property
    def perplexity(self) -> float | None:
        """exp(loss): the effective number of choices the model hesitates between (of `shown_loss`)."""
        return None if self.shown_loss is None else math.exp(self.shown_loss)

    @property
    def input_ids(self) -> list[int]:
        """(n,) token ids as fed to the model."""
        return [t.id for t in self.tokens]

    def to_dict(self, sentence_vocab: bool = True) -> dict:
        """The JSON contract (see README); `sentence_vocab=False` leaves out the walkthrough's table
        (null), which grows with positions × distinct tokens (17 MB of the 18 MB at 1024 tokens)."""
        return {
            "model": self.model,
            "backend": self.backend,
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "labels": self.labels,
            "loss": self.loss,
            "mean_token_loss": self.mean_token_loss,
            "perplexity": self.perplexity,
            "loss_sum": self.loss_sum,
            "counted": self.counted,
            "truncated": self.truncated,
            "bos": self.bos,
            "top_k": self.top_k,
            "notices": self.notices,
            "positions": self._position_dicts(),
            "sentence_vocab": self.vocab.to_dict() if sentence_vocab else None,
        }

    def to_json(self, sentence_vocab: bool = True) -> bytes:
        """The JSON contract as compact UTF-8 bytes, the same from the CLI and the page's download
        (orjson: 25-40x faster than json.dumps, 0.85 s at 1024 tokens; a non-finite number is null).
        Imported here: the analysis itself needs only torch, numpy and transformers (a GPU machine's check)."""
        import orjson

        return orjson.dumps(self.to_dict(sentence_vocab=sentence_vocab))

    def _position_dicts(self) -> list[dict]:
        """Every `Position.to_dict()`, read straight from the arrays (each token's dict made once)."""
        arrays = self.arrays
        made: dict[int, dict] = {}

        def token_dict(token_id: int) -> dict:
            hit = made.get(token_id)
            if hit is None:
                hit = made[token_id] = self.decoder.token(token_id).to_dict()
            return hit

        rows = zip(
            self.contexts,
            self.input_ids[1:],
            arrays.p_target.tolist(),
            arrays.rank.tolist(),
            arrays.losses(),
            arrays.entropy.tolist(),
            arrays.top_ids.tolist(),
            arrays.top_p.tolist(),
        )
        return [
            {
                "k": k,
                "context": context,
                "target": dict(token_dict(target)),
                "p_target": p,
                "rank": rank,
                "loss": loss,
                "masked": loss is None,
                "entropy": entropy,
                "top": [{**token_dict(i), "p": q} for i, q in zip(top_ids, top_p)],
            }
            for k, (context, target, p, rank, loss, entropy, top_ids, top_p) in enumerate(rows, start=1)
        ]
