"""The loss of a character split over several tokens is the sum of its pieces' −ln p: checked against the
test's own forward pass and its own grouping of the bytes by Python's UTF-8 decoder."""

from __future__ import annotations

import pytest

from tests.analysis.test_core_edges import own_losses
from visualizer.analysis.one_pass import analyze

TEXT = "my 🐕 likes 🦴 a lot"  # the tiny tokenizer never saw these emoji: each is cut into byte pieces


def own_groups(pieces: list[bytes]) -> list[tuple[int, int]]:
    """(first, last) token of each emoji of TEXT, from where its bytes lie among the pieces."""
    data, ends, out = b"".join(pieces), [], []
    total = 0
    for p in pieces:
        total += len(p)
        ends.append(total)
    for emoji in ("🐕", "🦴"):
        start = data.index(emoji.encode())
        end = start + len(emoji.encode())
        out.append((next(i for i, e in enumerate(ends) if e > start), next(i for i, e in enumerate(ends) if e >= end)))
    return out


def test_a_split_character_costs_the_sum_of_its_pieces(tiny_lm):
    result = analyze(TEXT, tiny_lm, masked=[2])
    pieces = result.decoder.bytes_of_tokens(result.input_ids)
    own = own_losses(tiny_lm, result.input_ids, list(result.input_ids))  # (n-1,) every label counted
    groups = own_groups(pieces)
    assert all(last > first for first, last in groups)  # really split
    for first, last in groups:
        expected = sum(own[t - 1].item() for t in range(first, last + 1))
        for t in range(first, last + 1):
            split = result.split_characters[t]
            assert split is not None and split.pieces == last - first + 1
            assert split.loss == pytest.approx(expected, abs=1e-4, rel=1e-5)
            assert result.readable_tokens[t].endswith(f"{t - first + 1}/{last - first + 1}")
            assert split.text in result.readable_tokens[t]
    whole = [t for t, s in enumerate(result.split_characters) if s is None]
    assert all(result.readable_tokens[t] == result.tokens[t].display for t in whole)
