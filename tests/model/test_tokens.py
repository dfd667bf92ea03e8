"""Token display forms: whitespace visible, split multi-byte characters as bytes, and back to the exact bytes."""

import re

import pytest
from transformers.convert_slow_tokenizer import bytes_to_unicode

from visualizer.model.tokens import TokenDecoder, readable, visible


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


# ---------------------------------------------------------------- the display form's inverse, written out here

DISPLAY_MARKS = {"␣": b" ", "↵": b"\n", "⇥": b"\t", "␍": b"\r"}
"""README: spaces as ␣, newlines as ↵, tabs as ⇥ (and carriage returns as ␍)."""
_DISPLAY_PIECE = re.compile(r"<0x([0-9A-F]{2})>|<U\+FFFD>|.", re.DOTALL)
LOOK_ALIKES = re.compile(r"[␣↵⇥␍]|<0x[0-9A-Fa-f]{2}>|<U\+FFFD>")
"""Typed text that reads like a display form; such text has no unique inverse (see `test_typed_look_alikes...`)."""
BYTE_LEVEL = {ch: byte for byte, ch in bytes_to_unicode().items()}  # the GPT-2 byte-to-character table


def bytes_of_display(display: str) -> bytes:
    """The bytes a display form stands for: '␣dog<0xE2>' -> b' dog\\xe2'. The test's own inverse of the
    documented rules, not the package's code."""
    out = bytearray()
    for match in _DISPLAY_PIECE.finditer(display):
        piece = match.group(0)
        if match.group(1):
            out.append(int(match.group(1), 16))
        elif piece == "<U+FFFD>":
            out += "\ufffd".encode()
        else:
            out += DISPLAY_MARKS.get(piece) or piece.encode("utf-8")
    return bytes(out)


def piece_bytes(tokenizer, token_id: int) -> bytes:
    """A byte-level BPE token's bytes read from its vocabulary piece ('Ġdog' -> b' dog'), apart from decode()."""
    piece = tokenizer.convert_ids_to_tokens(token_id)
    return bytes(BYTE_LEVEL[ch] for ch in piece)


def check_display_round_trip(tokens, text: str, tokenizer=None) -> None:
    """The display forms of a text's tokens give back its exact UTF-8, and each token's display its own bytes."""
    assert not LOOK_ALIKES.search(text), "a look-alike text has no unique inverse; test it apart"
    assert b"".join(bytes_of_display(t.display) for t in tokens) == text.encode("utf-8")
    if tokenizer is not None:
        assert all(bytes_of_display(t.display) == piece_bytes(tokenizer, t.id) for t in tokens)


ROUND_TRIP_TEXTS = {
    "words": "the dog likes food",
    "emoji": "I like 😀🎉 a lot 👩‍👩‍👧",
    "CJK": "日本語のテキストです 中文",
    "combining marks": "e\u0301 a\u0308 n\u0303 ñ",
    "right-to-left": "עברית مرحبا",
    "whitespace": "line\n\tindented  two\r\n end",
    "controls": "a\x00b\x07c\x1bd \x0b\x0c \u202edef \u2028",
    "markup": "<b>hi</b> <0x> <0xZZ> <U+> & %{x}",
    "replacement character": "a \ufffd b",
}


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS.values(), ids=ROUND_TRIP_TEXTS.keys())
def test_display_forms_give_back_the_exact_bytes(tiny_tokenizer, text):
    decoder = TokenDecoder(tiny_tokenizer)
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    check_display_round_trip(decoder.tokens(ids), text, tiny_tokenizer)


def test_split_characters_show_as_their_bytes(tiny_tokenizer):
    decoder = TokenDecoder(tiny_tokenizer)
    for text in ("😀", "日本語", "e\u0301"):
        for cut in range(1, len(text.encode())):  # every prefix of a character's bytes, as its own token
            data = text.encode()[:cut]
            assert bytes_of_display(visible(data)) == data
    ids = tiny_tokenizer("🐕🦴", add_special_tokens=False)["input_ids"]  # not in the tiny corpus: split into bytes
    assert len(ids) > 2
    check_display_round_trip(decoder.tokens(ids), "🐕🦴", tiny_tokenizer)


LOOK_ALIKE_TEXTS = ["a␣b", "x↵y⇥z␍", "typed <0xE2> here", "<U+FFFD> typed"]


@pytest.mark.parametrize("text", LOOK_ALIKE_TEXTS)
def test_typed_look_alikes_keep_their_exact_bytes(tiny_tokenizer, text):
    """A typed '␣' or '<0xE2>' displays like a space or a byte: the display form alone cannot tell them
    apart (README promises visible whitespace and bytes, not an inverse for such text). What is kept: the
    token bytes and the text read from them are exact (and the JSON `text` is the text as typed)."""
    decoder = TokenDecoder(tiny_tokenizer)
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert b"".join(decoder.token_bytes(i) for i in ids) == text.encode("utf-8")
    assert decoder.text_of(ids) == text


def _check_round_trip(tokenizer, text):
    """Every token's bytes, joined, give back the text's UTF-8, and so do its display forms."""
    decoder = TokenDecoder(tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert b"".join(decoder.token_bytes(i) for i in ids) == text.encode("utf-8")
    check_display_round_trip(decoder.tokens(ids), text, tokenizer)
    return [decoder.token(i).display for i in ids]


@pytest.mark.parametrize(
    "text", ["the dog likes food", "café 😀 日本語", "line\n\tindented  two", "עברית مرحبا e\u0301"]
)
def test_tiny_tokenizer_round_trip(tiny_tokenizer, text):
    _check_round_trip(tiny_tokenizer, text)


@pytest.mark.slow
def test_bundled_tokenizer_display_forms(bundled_lm):
    tok = bundled_lm.tokenizer
    assert _check_round_trip(tok, "the dog likes food") == ["the", "␣dog", "␣likes", "␣food"]
    emoji = _check_round_trip(tok, "hi 😀")
    assert any("<0x" in d for d in emoji)  # split bytes shown as bytes
    assert "".join(_check_round_trip(tok, "a\nb\tc")).count("↵") == 1
    assert "".join(_check_round_trip(tok, "日本語")) == "<0xE6><0x97><0xA5>本<0xE8><0xAA><0x9E>"  # 日 and 語 split
    for text in ROUND_TRIP_TEXTS.values():
        _check_round_trip(tok, text)
