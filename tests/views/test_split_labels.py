"""The figures label a character split over tokens once, as a whole, name the bytes in the hover and give
the loss of the whole character; never a lone byte or U+FFFD."""

from __future__ import annotations

import pytest

from tests.analysis.test_split_characters import TEXT
from visualizer.analysis.one_pass import analyze
from visualizer.views.loss import loss_bars
from visualizer.views.plotting import escape_text
from visualizer.views.predictions import token_strip


@pytest.fixture
def split(tiny_lm):
    return analyze(TEXT, tiny_lm)


def cells(fig) -> list[str]:
    return [c for row in fig.data[0].text for c in row if c]


def test_the_token_strip_shows_whole_characters_and_names_their_bytes(split):
    fig = token_strip(split)
    text, hovers = cells(fig), " ".join(h for row in fig.data[0].customdata for h in row)
    dog = [c for c in text if c.startswith("🐕")]
    assert len(dog) >= 2 and dog[-1].endswith(f"{len(dog)}/{len(dog)}")
    assert not any("<0x" in c or "\ufffd" in c for c in text)
    first_piece = next(t for t, s in enumerate(split.split_characters) if s is not None and s.text.strip() == "🐕")
    assert f"(bytes {split.decoder.token_bytes(split.input_ids[first_piece]).hex(' ').upper()})" in hovers
    loss = split.split_characters[first_piece].loss
    assert f"−ln p together {loss:.3f} nats" in hovers


def test_the_loss_bars_label_each_piece_with_its_character(split):
    fig = loss_bars(split)
    names = list(fig.data[0].x)
    assert any(name.startswith("k=") and "🐕" in name and "/" in name for name in names)
    assert "together" in " ".join(fig.data[0].customdata)
    assert not any("<0x" in name for name in names)


def test_the_walkthrough_columns_read_as_in_the_text_unless_a_piece_is_shared(split):
    from visualizer.views.walkthrough import sentence_vocab_heatmap

    names = list(sentence_vocab_heatmap(split).data[0].x)
    for column, token in enumerate(split.vocab.columns):
        where = [t for t, tok in enumerate(split.tokens) if tok.id == token.id]
        labels = {split.readable_tokens[t] for t in where}
        expected = labels.pop() if len(labels) == 1 else token.display  # one id, pieces of two characters
        assert names[column].startswith(escape_text(expected)), (column, names[column], expected)
    assert any("🐕" in name and "/" in name for name in names)
