"""Token display forms: whitespace visible, split multi-byte characters as bytes, never U+FFFD."""

import pytest

from visualizer.tokens import TokenDecoder, readable, visible


@pytest.mark.parametrize(
    "data, expected",
    [
        (b" dog", "␣dog"),
        (b"\n\n", "↵↵"),
        (b"\tx", "⇥x"),
        (b"a\r\n", "a␍↵"),
        ("日本".encode(), "日本"),
        ("😀".encode()[:2], "<0xF0><0x9F>"),
        ("é".encode()[1:], "<0xA9>"),
        (b"\x00nul", "<0x00>nul"),
        (b"<b>", "<b>"),
        ("\ufffd".encode(), "<U+FFFD>"),
    ],
)
def test_visible_forms(data, expected):
    assert visible(data) == expected


def test_readable_keeps_whitespace():
    assert readable(b"the dog\nlikes") == "the dog\nlikes"


def _check_round_trip(tokenizer, text):
    """Every token's bytes, joined, give back the text's UTF-8; no display shows U+FFFD."""
    decoder = TokenDecoder(tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert b"".join(decoder.token_bytes(i) for i in ids) == text.encode("utf-8")
    displays = [decoder.token(i).display for i in ids]
    assert all("\ufffd" not in d for d in displays)
    return displays


@pytest.mark.parametrize("text", ["the dog likes food", "café 😀 日本語", "line\n\tindented  two", "עברית مرحبا e\u0301"])
def test_tiny_tokenizer_round_trip(tiny_tokenizer, text):
    _check_round_trip(tiny_tokenizer, text)


@pytest.mark.slow
def test_bundled_tokenizer_display_forms(bundled_lm):
    tok = bundled_lm.tokenizer
    assert _check_round_trip(tok, "the dog likes food") == ["the", "␣dog", "␣likes", "␣food"]
    emoji = _check_round_trip(tok, "hi 😀")
    assert any(d.startswith("␣<0xF0>") or d == "<0xF0>" or "<0x" in d for d in emoji)  # split bytes shown as bytes
    assert "".join(_check_round_trip(tok, "a\nb\tc")).count("↵") == 1
    assert "".join(_check_round_trip(tok, "日本語")) == "<0xE6><0x97><0xA5>本<0xE8><0xAA><0x9E>"  # 日 and 語 split
