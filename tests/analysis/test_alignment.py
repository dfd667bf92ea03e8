"""Lining up two tokenizations by where their tokens end, checked against the tokens' own bytes."""

from itertools import accumulate

import pytest

from tests.conftest import train_byte_level_tokenizer
from visualizer.analysis.alignment import (
    Slots,
    align_positions,
    align_tokens,
    byte_ends,
    char_ends,
    map_picks,
    pair_by_end,
    spans,
    token_ends,
)
from visualizer.model.tokens import TokenDecoder

TEXTS = ["the dog likes food", "café naïve 日本語 😀 emoji and accents", "a😀b 語", "x  \n\n y\té"]


@pytest.fixture(scope="module")
def tokenizers():
    """The tiny tokenizer and one trained to another vocabulary size: they cut 'café' and 'emoji' differently."""
    return train_byte_level_tokenizer(300), train_byte_level_tokenizer(280)


def own_ends(tokenizer, ids) -> list[int]:
    """The independent computation: cumulative byte lengths of the tokens' byte-level pieces."""
    decoder = TokenDecoder(tokenizer)
    return list(accumulate(len(decoder.token_bytes(i)) for i in ids))


def ends_of(tokenizer, text, bos=False):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if bos:
        ids = [tokenizer.bos_token_id, *ids]
    return ids, token_ends(text, ids, tokenizer, TokenDecoder(tokenizer).bytes_of_tokens(ids), bos)


@pytest.mark.parametrize("text", TEXTS)
def test_token_ends_are_the_bytes_each_token_reaches(tokenizers, text):
    for tokenizer in tokenizers:
        ids, ends = ends_of(tokenizer, text)
        assert ends == own_ends(tokenizer, ids)
        assert ends[-1] == len(text.encode("utf-8"))
        ids, with_bos = ends_of(tokenizer, text, bos=True)
        assert with_bos == [None, *ends]


def test_pieces_of_one_character_end_at_its_bytes(tokenizers):
    text = "a😀b"
    ids, ends = ends_of(tokenizers[0], text)
    assert len(ids) == 6 and ends == [1, 2, 3, 4, 5, 6]  # '😀' is four one-byte pieces
    assert char_ends(text, ids, tokenizers[0]) == [1, 2, 2, 2, 2, 3]  # each ends in (after) the emoji
    assert byte_ends("é", [1, 1], [b"\xc3", b"\xa9"]) == [1, 2]


class NoOffsets:
    """A tokenizer that gives no offsets mapping (a slow tokenizer), so the decoded lengths are used."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text, **kw):
        if kw.get("return_offsets_mapping"):
            raise NotImplementedError
        return self.tokenizer(text, **kw)

    def decode(self, ids, **kw):
        return self.tokenizer.decode(ids, **kw)


@pytest.mark.parametrize("text", TEXTS)
def test_decoded_lengths_give_the_same_character_ends_as_the_offsets(tokenizers, text):
    tokenizer = tokenizers[1]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert char_ends(text, ids, NoOffsets(tokenizer)) == char_ends(text, ids, tokenizer)


def test_pairing_by_end_keeps_text_order_and_gaps():
    assert pair_by_end([3, 7, 8], [3, 6, 8]) == [(0, 0), (None, 1), (1, None), (2, 2)]
    assert pair_by_end([3, 7, 8], [None, 3, 5, 8]) == [(None, 0), (0, 1), (None, 2), (1, None), (2, 3)]
    assert pair_by_end([None, 3], [None, 3]) == [(0, 0), (1, 1)]
    assert pair_by_end([], [1]) == [(None, 0)]
    assert Slots([0, 2], 3).spread(["a", "b"], "") == ["a", "", "b"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("bos", [(False, False), (True, False), (False, True)])
def test_aligned_positions_pair_exactly_the_targets_that_end_at_the_same_byte(tokenizers, text, bos):
    (ids_a, ends_a), (ids_b, ends_b) = (ends_of(t, text, b) for t, b in zip(tokenizers, bos))
    own_a = [None] * bos[0] + own_ends(tokenizers[0], ids_a[bos[0] :])  # ends of the tokens, independently
    own_b = [None] * bos[1] + own_ends(tokenizers[1], ids_b[bos[1] :])
    rows = align_positions(ends_a, ends_b).rows
    assert [a for a, _ in rows if a is not None] == list(range(len(ids_a) - 1))  # every position once, in order
    assert [b for _, b in rows if b is not None] == list(range(len(ids_b) - 1))
    for a, b in rows:
        if a is not None and b is not None:
            assert own_a[a + 1] == own_b[b + 1]
        elif a is not None:
            assert own_a[a + 1] not in own_b[1:]
        else:
            assert own_b[b + 1] not in own_a[1:]
    if bos[0] != bos[1]:  # the first text token is a position only on the side with BOS
        assert rows[0] == ((0, None) if bos[0] else (None, 0))


def test_the_same_tokens_align_one_to_one(tokenizers):
    ids, ends = ends_of(tokenizers[0], TEXTS[1])
    assert align_tokens(ends, ends).rows == [(i, i) for i in range(len(ids))]
    assert align_positions(ends, ends).gaps == 0


def byte_sets(tokenizer, ids, bos):
    """Each token's set of byte offsets in the text, from its own bytes (BOS: none)."""
    ends = own_ends(tokenizer, ids[bos:])
    return [set()] * bos + [
        set(range(e - len(TokenDecoder(tokenizer).token_bytes(i)), e)) for i, e in zip(ids[bos:], ends)
    ]


@pytest.mark.parametrize("text", TEXTS)
def test_picked_tokens_map_to_the_tokens_over_the_same_bytes(tokenizers, text):
    (ids_a, ends_a), (ids_b, ends_b) = ends_of(tokenizers[0], text), ends_of(tokenizers[1], text, bos=True)
    bytes_a, bytes_b = byte_sets(tokenizers[0], ids_a, 0), byte_sets(tokenizers[1], ids_b, 1)
    assert [set(range(s, e)) for s, e in spans(ends_a)] == bytes_a
    for picked in ([1], [2, 3], list(range(1, len(ids_a), 3))):
        chosen = set().union(*(bytes_a[i] for i in picked))
        expected = tuple(j for j, own in enumerate(bytes_b) if own & chosen)
        assert map_picks(picked, ends_a, ends_b) == expected
    assert map_picks([1, 4], ends_a, ends_a) == (1, 4)  # the same tokenizer: the same indices
