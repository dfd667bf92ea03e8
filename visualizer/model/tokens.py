"""Token ids -> readable text: what each token is, as bytes and as a visible form.

A byte-level BPE piece can hold half of a multi-byte character, so decoding it
alone gives U+FFFD. Here every token is first turned into its exact bytes, and
only then into text; bytes that are not valid UTF-8 show as `<0xE2>`.
Example: ' dog' -> display '␣dog'; the first half of 'é' -> '<0xC3>'.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import accumulate

from transformers.convert_slow_tokenizer import bytes_to_unicode

VISIBLE_WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
_NO_WHITESPACE = str.maketrans(dict.fromkeys(VISIBLE_WHITESPACE))
_BYTE_LEVEL_DECODER = {ch: byte for byte, ch in bytes_to_unicode().items()}
_SENTENCEPIECE_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@dataclass(frozen=True)
class Token:
    """One token: its id, its decoded text, and a form with whitespace made visible."""

    id: int
    text: str
    """`tokenizer.decode([id])`: may hold U+FFFD for a piece of a character."""
    display: str
    """Readable form: spaces as ␣, newlines as ↵, tabs as ⇥, stray bytes as <0xE2>."""

    def to_dict(self) -> dict:
        """The JSON contract's token object."""
        return {"id": self.id, "text": self.text, "display": self.display}


def unique_names(names: list[str]) -> list[str]:
    """Names made unique where two tokens display alike: ['a', 'a'] -> ['a', 'a (2)']."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _hex(data: bytes) -> str:
    """b'\\xe2\\x80' -> '<0xE2><0x80>'."""
    return "".join(f"<0x{b:02X}>" for b in data)


def readable(data: bytes) -> str:
    """Bytes as text: valid UTF-8 decoded, invalid bytes and control characters as <0x..>."""
    parts: list[str] = []
    while data:
        try:
            parts.append(data.decode("utf-8"))
            break
        except UnicodeDecodeError as err:
            parts.append(data[: err.start].decode("utf-8"))
            parts.append(_hex(data[err.start : err.end]))
            data = data[err.end :]
    text = "".join(parts)
    if not text.isprintable() and not text.translate(_NO_WHITESPACE).isprintable():  # per character only where needed
        text = "".join(ch if ch.isprintable() or ch in VISIBLE_WHITESPACE else _hex(ch.encode("utf-8")) for ch in text)
    return text.replace("\ufffd", "<U+FFFD>")


def visible(data: bytes) -> str:
    """`readable` with whitespace made visible: b' dog\\n' -> '␣dog↵'."""
    text = readable(data)
    for raw, mark in VISIBLE_WHITESPACE.items():
        text = text.replace(raw, mark)
    return text


def character_spans(data: bytes) -> list[tuple[int, int]]:
    """The byte range of each character of UTF-8 `data`, in order; a byte that begins no valid character
    is a range of its own. Example: character_spans('a狗'.encode()) -> [(0, 1), (1, 4)]."""
    spans, start = [], 0
    while start < len(data):
        lead = data[start]
        size = (
            1
            if lead < 0x80
            else 2
            if lead >> 5 == 0b110
            else 3
            if lead >> 4 == 0b1110
            else 4
            if lead >> 3 == 0b11110
            else 1
        )
        try:
            data[start : start + size].decode("utf-8")
        except UnicodeDecodeError:
            size = 1
        spans.append((start, start + size))
        start += size
    return spans


def character_groups(pieces: list[bytes]) -> list[range]:
    """For each token of a sequence (its bytes in `pieces`), the tokens that share a character with it, as a
    range of token indices: range(i, i + 1) when token i holds only whole characters.
    Example: the pieces of '␣狗' [b' ', b'\xe7', b'\x8b\x97'] -> [range(0, 1), range(1, 3), range(1, 3)]."""
    ends = list(accumulate(map(len, pieces), initial=0))  # token i holds bytes ends[i]:ends[i + 1]
    first = list(range(len(pieces)))  # first token of each token's group, merged left to right
    token = 0
    for start, end in character_spans(b"".join(pieces)):
        while ends[token + 1] <= start:
            token += 1
        last = token
        while ends[last + 1] < end:  # this character runs on into the next token
            last += 1
        for t in range(token + 1, last + 1):
            first[t] = first[token]
    groups: dict[int, list[int]] = {}
    for t, f in enumerate(first):
        groups.setdefault(f, []).append(t)
    return [range(groups[f][0], groups[f][-1] + 1) for f in first]


def character_labels(pieces: list[bytes]) -> list[str]:
    """Readable labels for the tokens of a sequence in which a character may span several tokens: each such
    token shows the characters it belongs to and which piece it is, never a lone byte.
    Example: the pieces of '狗' (three one-byte tokens) -> ['狗 1/3', '狗 2/3', '狗 3/3']; ' dog' -> '␣dog'."""
    ends = list(accumulate(map(len, pieces), initial=0))
    data, labels = b"".join(pieces), []
    for i, group in enumerate(character_groups(pieces)):
        if len(group) == 1:
            labels.append(visible(pieces[i]))
        else:
            whole = visible(data[ends[group.start] : ends[group.stop]])
            labels.append(f"{whole} {i - group.start + 1}/{len(group)}")
    return labels


RTL_CLASSES = {"R", "AL"}


def isolated(label: str) -> str:
    """A label holding right-to-left letters wrapped in a first-strong isolate (U+2068 … U+2069), so that it keeps
    its own order beside the numbers and arrows around it; other labels as they are."""
    if any(unicodedata.bidirectional(ch) in RTL_CLASSES for ch in label):
        return f"\u2068{label}\u2069"
    return label


class TokenDecoder:
    """Maps token ids to `Token`s and bytes for one tokenizer, caching each id."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, tuple[Token, bytes]] = {}

    def __deepcopy__(self, memo) -> TokenDecoder:
        """Shared, not copied: a cache over a tokenizer that never changes (so copying a result stays cheap)."""
        return self

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes a token stands for."""
        return self._lookup(token_id)[1]

    def token(self, token_id: int) -> Token:
        """The `Token` for an id."""
        return self._lookup(token_id)[0]

    def tokens(self, ids) -> list[Token]:
        """`Token`s for a sequence of ids (cached ids read straight from the cache: this runs per candidate)."""
        cache, lookup = self._cache, self._lookup
        return [(cache.get(i) or lookup(i))[0] for i in map(int, ids)]

    def bytes_of_tokens(self, ids) -> list[bytes]:
        """The bytes of each token in a sequence of ids."""
        cache, lookup = self._cache, self._lookup
        return [(cache.get(i) or lookup(i))[1] for i in map(int, ids)]

    def labels_in_text(self, ids) -> list[str]:
        """`character_labels` of a sequence of ids: a character split over several tokens shown whole on each."""
        return [isolated(label) for label in character_labels(self.bytes_of_tokens(ids))]

    def text_of(self, ids) -> str:
        """The readable text of several tokens together (whitespace left as is)."""
        return readable(b"".join(self.bytes_of_tokens(ids)))

    def _lookup(self, token_id: int) -> tuple[Token, bytes]:
        """Decode once, then serve from the cache."""
        hit = self._cache.get(token_id)
        if hit is None:
            text = self.tokenizer.decode([token_id])
            data = self._bytes_of(token_id, text)
            hit = (Token(token_id, text, visible(data)), data)
            self._cache[token_id] = hit
        return hit

    def _bytes_of(self, token_id: int, text: str) -> bytes:
        """Bytes from the raw piece when decoding lost information, else from the text."""
        if "\ufffd" not in text:
            return text.encode("utf-8")
        piece = self.tokenizer.convert_ids_to_tokens(token_id) or ""
        if piece and all(ch in _BYTE_LEVEL_DECODER for ch in piece):
            return bytes(_BYTE_LEVEL_DECODER[ch] for ch in piece)
        match = _SENTENCEPIECE_BYTE.fullmatch(piece)
        if match:
            return bytes([int(match.group(1), 16)])
        return text.encode("utf-8")
