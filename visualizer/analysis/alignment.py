"""Line up two tokenizations of one text by where their tokens end, to compare two models row by row.

Two tokenizers cut a text at different places, so token k of one model is not token k of the other.
Here a token's end is a place in the text's UTF-8 bytes, and a token of A pairs with a token of B when
both end there: at the same character and, for a byte-level piece that ends inside a character (😀 can
be four pieces), at the same byte of it. A token without a partner gets a row of its own with a gap on
the other side, so paired tokens share a row.
Example: A 'the|␣dog|s', B 'the|␣do|gs' -> rows (0, 0), (None, 1), (1, None), (2, 2).
Pure: no gradio, no plotly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from .result import Analysis

Row = tuple[int | None, int | None]
"""(index on side A, index on side B); None is a gap."""


@dataclass(frozen=True)
class Slots:
    """Where one side's items sit among the aligned rows: item r is drawn in row `rows[r]` of `count`."""

    rows: list[int]
    """(items,) the row of each of this side's items, increasing."""
    count: int
    """How many rows both sides have."""

    def spread(self, items: Sequence, fill) -> list:
        """`items` placed in their rows, `fill` in the gaps.

        Example: Slots([0, 2], 3).spread(['a', 'b'], '') -> ['a', '', 'b']."""
        out = [fill] * self.count
        for row, item in zip(self.rows, items):
            out[row] = item
        return out

    def first(self, count: int) -> Slots:
        """The slots of the first `count` rows only (a figure that shows only so many)."""
        return Slots([r for r in self.rows if r < count], min(count, self.count))


@dataclass(frozen=True)
class Alignment:
    """Rows pairing the items of two sides (tokens or positions), in text order."""

    rows: list[Row]

    def slots(self, side: int) -> Slots:
        """Side 0 (A) or 1 (B): the row of each of its items."""
        return Slots([r for r, row in enumerate(self.rows) if row[side] is not None], len(self.rows))

    @property
    def gaps(self) -> int:
        """How many rows have an item on one side only."""
        return sum(1 for a, b in self.rows if a is None or b is None)


def pair_by_end(ends_a: list[int | None], ends_b: list[int | None]) -> list[Row]:
    """Rows for two increasing lists of token ends: equal ends share a row, the others get a row alone.

    None (a BOS token, which covers no text) pairs only with a None, and keeps its place in the order.
    Example: ([3, 7, 8], [None, 3, 5, 8]) -> [(None, 0), (0, 1), (None, 2), (1, None), (2, 3)].
    """
    rows: list[Row] = []
    i = j = 0
    while i < len(ends_a) or j < len(ends_b):
        end_a = ends_a[i] if i < len(ends_a) else None
        end_b = ends_b[j] if j < len(ends_b) else None
        if i < len(ends_a) and j < len(ends_b) and end_a is None and end_b is None:  # BOS beside BOS
            rows.append((i, j))
            i, j = i + 1, j + 1
        elif i < len(ends_a) and (end_a is None or j == len(ends_b) or (end_b is not None and end_a < end_b)):
            rows.append((i, None))
            i += 1
        elif j < len(ends_b) and (end_b is None or i == len(ends_a) or (end_a is not None and end_b < end_a)):
            rows.append((None, j))
            j += 1
        else:  # the same end
            rows.append((i, j))
            i, j = i + 1, j + 1
    return rows


def char_ends(text: str, ids: list[int], tokenizer) -> list[int]:
    """Each token's end in characters of `text`; a piece that ends inside a character ends after it.

    From the tokenizer's offsets mapping when it gives one for these ids, else from the lengths of
    the decoded prefixes (a prefix that ends inside a character decodes it as one U+FFFD).
    """
    offsets = _offset_ends(text, ids, tokenizer)
    if offsets is not None:
        return offsets
    return [
        min(len(text), len(tokenizer.decode(ids[: i + 1], clean_up_tokenization_spaces=False))) for i in range(len(ids))
    ]


def _offset_ends(text: str, ids: list[int], tokenizer) -> list[int] | None:
    """The ends of the offsets mapping, or None when there is none, it is for other ids, or it goes backwards."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ends = [int(end) for _, end in enc["offset_mapping"][: len(ids)]]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        return None
    if list(enc["input_ids"][: len(ids)]) != list(ids) or any(e < d for d, e in zip(ends, ends[1:])):
        return None
    return [min(end, len(text)) for end in ends]


def byte_ends(text: str, ends: list[int], pieces: list[bytes]) -> list[int]:
    """Character ends (`char_ends`) made exact in bytes of the text's UTF-8: a token that shares its end
    character with the tokens after it ends that many of their bytes earlier.

    Example: 'é' (2 bytes) cut into two one-byte pieces: char ends [1, 1] -> byte ends [1, 2].
    """
    prefix = list(accumulate((len(ch.encode("utf-8")) for ch in text), initial=0))  # prefix[c]: bytes of text[:c]
    out = [0] * len(ends)
    later = 0  # bytes of the following tokens that end at the same character
    for i in range(len(ends) - 1, -1, -1):
        later = later + len(pieces[i + 1]) if i + 1 < len(ends) and ends[i + 1] == ends[i] else 0
        floor = prefix[ends[i] - 1] if ends[i] > 0 else 0  # a piece ending inside a character ends after its start
        out[i] = max(floor, prefix[ends[i]] - later)
    return out


def token_ends(text: str, ids: list[int], tokenizer, pieces: list[bytes], bos: bool) -> list[int | None]:
    """(n,) each token's end in bytes of the text's UTF-8; None for a prepended BOS."""
    body = ids[1:] if bos else ids
    ends = byte_ends(text, char_ends(text, body, tokenizer), pieces[1:] if bos else pieces)
    return [None, *ends] if bos else [*ends]


def analysis_ends(analysis: Analysis) -> list[int | None]:
    """`token_ends` of the tokens an analysis fed to its model."""
    ids = analysis.input_ids
    return token_ends(
        analysis.text, ids, analysis.decoder.tokenizer, analysis.decoder.bytes_of_tokens(ids), analysis.bos
    )


def align_tokens(ends_a: list[int | None], ends_b: list[int | None]) -> Alignment:
    """Rows of tokens: index i of A beside index j of B where they end at the same place."""
    return Alignment(pair_by_end(ends_a, ends_b))


def align_positions(ends_a: list[int | None], ends_b: list[int | None]) -> Alignment:
    """Rows of positions (row j predicts token j + 1): the token rows without token 0, which no position
    predicts. A BOS on one side makes its first text token a position that the other side lacks."""
    rows = [
        (None if a in (None, 0) else a - 1, None if b in (None, 0) else b - 1) for a, b in pair_by_end(ends_a, ends_b)
    ]
    return Alignment([row for row in rows if row != (None, None)])


def spans(ends: list[int | None]) -> list[tuple[int, int]]:
    """(n,) each token's bytes (start, end): from the previous token's end to its own; (0, 0) for BOS."""
    out, start = [], 0
    for end in ends:
        out.append((start, start) if end is None else (start, end))
        start = start if end is None else end
    return out


def map_picks(picked, ends_from: list[int | None], ends_to: list[int | None]) -> tuple[int, ...]:
    """Picked token indices of one tokenization as the indices of another whose bytes overlap theirs.

    Example: '␣food' picked in 'the|␣dog|␣food' -> both '␣fo' and 'od' of 'the|␣dog|␣fo|od'.
    """
    from_spans, to_spans = spans(ends_from), spans(ends_to)
    chosen = [from_spans[i] for i in picked if 0 <= i < len(from_spans)]
    return tuple(j for j, (start, end) in enumerate(to_spans) if any(max(start, s) < min(end, e) for s, e in chosen))
