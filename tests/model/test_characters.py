"""Characters split over several tokens: each piece is labelled with the whole character and its number,
checked against Python's own UTF-8 decoding of the joined bytes, for every way of cutting a text."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

from visualizer.model.tokens import (
    TokenDecoder,
    character_groups,
    character_labels,
    character_spans,
    isolated,
    visible,
)

TEXTS = ["狗", "a狗b", "😀!", "e\u0301", "日本語", "👍🏽", "café", "שלום"]


def cuts(data: bytes, most: int = 3):
    """Every way to cut `data` into at most `most` + 1 non-empty pieces (the tokens a tokenizer might make)."""
    for n in range(most + 1):
        for points in itertools.combinations(range(1, len(data)), n):
            bounds = (0, *points, len(data))
            yield [data[a:b] for a, b in itertools.pairwise(bounds)]


def whole_characters(pieces: list[bytes]) -> list[tuple[int, int, str]]:
    """(first token, last token, character) for each character of the joined text, found with str.encode:
    the test's own way, independent of the code's lead-byte arithmetic."""
    out, start = [], 0
    ends = list(itertools.accumulate(map(len, pieces)))
    for ch in b"".join(pieces).decode("utf-8"):
        end = start + len(ch.encode("utf-8"))
        first = next(i for i, e in enumerate(ends) if e > start)
        last = next(i for i, e in enumerate(ends) if e >= end)
        out.append((first, last, ch))
        start = end
    return out


@pytest.mark.parametrize("text", TEXTS)
def test_every_cut_labels_each_piece_with_its_whole_character(text):
    for pieces in cuts(text.encode("utf-8")):
        groups, labels = character_groups(pieces), character_labels(pieces)
        assert len(groups) == len(labels) == len(pieces)
        for first, last, ch in whole_characters(pieces):
            for t in range(first, last + 1):
                assert first in groups[t] and last in groups[t], (pieces, t, ch)
                assert ch in labels[t] or visible(ch.encode()) in labels[t], (pieces, labels)
                if first != last:  # a piece of a split character: its number among the group's pieces
                    assert labels[t].endswith(f" {t - groups[t].start + 1}/{len(groups[t])}"), labels
        for label in labels:
            assert "<0x" not in label and "\ufffd" not in label, (pieces, labels)


def test_the_example_from_the_issue():
    assert character_labels([b"\xe7", b"\x8b", b"\x97"]) == ["狗 1/3", "狗 2/3", "狗 3/3"]
    assert character_labels([b"the", b" dog"]) == ["the", "␣dog"]
    assert character_groups([b" ", b"\xe7", b"\x8b\x97"]) == [range(0, 1), range(1, 3), range(1, 3)]


def test_bytes_that_begin_no_character_stay_bytes():
    assert character_spans(b"\xffa\xe7") == [(0, 1), (1, 2), (2, 3)]
    assert character_labels([b"\xff", b"x"]) == ["<0xFF>", "x"]


def test_right_to_left_labels_keep_their_order_in_an_isolate():
    label = isolated("שלום")
    assert label == "\u2068שלום\u2069"  # the letters in the order typed, isolated from what is around them
    assert unicodedata.bidirectional(label[0]) == "FSI" and unicodedata.bidirectional(label[-1]) == "PDI"
    assert isolated("␣dog") == "␣dog" and isolated("狗 1/3") == "狗 1/3"


def test_a_real_tokenizer_splits_emoji_and_the_labels_name_them(tiny_tokenizer):
    decoder = TokenDecoder(tiny_tokenizer)
    ids = tiny_tokenizer("🐕🦴 ok", add_special_tokens=False)["input_ids"]
    labels = decoder.labels_in_text(ids)
    pieces = decoder.bytes_of_tokens(ids)
    assert b"".join(pieces) == "🐕🦴 ok".encode()
    assert any(p.decode("utf-8", "replace") != p.decode("utf-8", "ignore") for p in pieces)  # really split
    assert all("<0x" not in label for label in labels)
    assert any(label.startswith("🐕") and "/" in label for label in labels)
