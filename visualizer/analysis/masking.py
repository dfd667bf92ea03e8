"""Which labels count: mask a prompt up to a marker, or build a chat example whose answer alone counts.

A masked label is -100: the model still predicts that position, but its loss leaves
the mean. Supervised fine-tuning masks the prompt so only the answer's tokens train.
Example: text 'Q: hi A: yo', marker 'A:' -> the tokens of 'Q: hi A:' are masked.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..model.loading import AnyModel
from .one_pass import Encoded, encode_text

PLAIN_PROMPT = "User: {prompt}\nAssistant:"
"""The prompt format when the tokenizer has no chat template; the answer follows after a space."""


@dataclass
class ChatExample:
    """A prompt + answer as one text, and which of its tokens are the prompt."""

    text: str
    """The whole text fed to the model: prompt, then answer."""
    prompt_text: str
    """The text's first part, the prompt (ends where the answer begins)."""
    prompt_tokens: int
    """How many leading tokens belong to the prompt: pass as analyze(mask_first=...)."""
    masked: list[int]
    """The label indices to mask, 0..prompt_tokens-1."""
    templated: bool
    """Whether the tokenizer's chat template built the text (else PLAIN_PROMPT)."""
    bos: bool
    """Whether the indices count a prepended BOS token."""

    def to_dict(self) -> dict:
        """The JSON form."""
        return {
            "text": self.text,
            "prompt_text": self.prompt_text,
            "prompt_tokens": self.prompt_tokens,
            "masked": self.masked,
            "templated": self.templated,
            "bos": self.bos,
        }


def mask_until(text: str, marker: str, lm: AnyModel, bos: bool = False, max_tokens: int | None = None) -> list[int]:
    """Label indices to mask: every token up to and including the first occurrence of `marker`.

    A token counts as part of the prompt when it starts before the marker's last character ends.
    Example: 'the dog likes food', marker 'dog' -> [0, 1] (the, ' dog').
    """
    marker_end(text, marker)  # a marker that is empty or not in the text is refused before the text is encoded
    return mask_until_encoded(encode_text(lm, text, bos=bos, max_tokens=max_tokens, offsets=True), marker, lm)


def mask_until_encoded(encoded: Encoded, marker: str, lm: AnyModel) -> list[int]:
    """`mask_until` for a text already encoded (best with `offsets`): no second tokenizer call."""
    return list(range(count_before(encoded, marker_end(encoded.text, marker), lm)))


def marker_end(text: str, marker: str) -> int:
    """Where the first `marker` in `text` ends (a character index), or an InputError saying why there is none."""
    if not isinstance(marker, str) or not marker:
        raise InputError("The mask marker is empty: type the text that ends the prompt.")
    where = text.find(marker) if isinstance(text, str) else -1
    if where < 0:
        raise InputError(f"The mask marker {marker!r} does not occur in the text.")
    return where + len(marker)


def tokens_before(text: str, end: int, lm: AnyModel, bos: bool = False, max_tokens: int | None = None) -> int:
    """How many of the text's tokens (as analyze encodes it) start before character `end`."""
    return count_before(encode_text(lm, text, bos=bos, max_tokens=max_tokens, offsets=True), end, lm)


def count_before(encoded: Encoded, end: int, lm: AnyModel) -> int:
    """How many of the encoded tokens (a BOS among them) start before character `end` of its text: from the
    offsets mapping, else (a slow tokenizer) from decoded prefixes."""
    starts = encoded.starts
    if starts is None:
        starts = starts_by_decoding(encoded.text_ids, lm, end)
    return int(bool(encoded.bos)) + sum(1 for s in starts if s < end)


def starts_by_decoding(ids: list[int], lm: AnyModel, end: int) -> list[int]:
    """Token starts as cumulative decoded lengths, stopping once past `end` (for slow tokenizers).

    Token i starts at len(decode(ids[:i])), less a trailing U+FFFD: a prefix that ends inside a
    character decodes it as U+FFFD, and a token that completes it starts where it began.
    """
    starts = []
    for i in range(len(ids)):
        prefix = lm.tokenizer.decode(ids[:i]) if i else ""
        assert isinstance(prefix, str)  # one sequence of ids decodes to one string
        start = len(prefix.rstrip("\ufffd"))
        if start >= end:
            break
        starts.append(start)
    return starts


def chat_example(
    prompt: str, answer: str, lm: AnyModel, bos: bool = False, max_tokens: int | None = None
) -> ChatExample:
    """Prompt + answer through the chat template (or PLAIN_PROMPT), so that only the answer counts."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("The prompt is empty.")
    if not isinstance(answer, str) or not answer.strip():
        raise InputError("The answer is empty.")
    prompt_text, text, templated = _chat_texts(prompt, answer, lm.tokenizer)
    n = tokens_before(text, len(prompt_text), lm, bos=bos, max_tokens=max_tokens)
    return ChatExample(text, prompt_text, n, list(range(n)), templated, bos)


def _chat_texts(prompt: str, answer: str, tokenizer) -> tuple[str, str, bool]:
    """(prompt text, whole text, templated): the template's text when it has one that extends the prompt."""
    if getattr(tokenizer, "chat_template", None):
        user = [{"role": "user", "content": prompt}]
        head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        whole = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": answer}], tokenize=False)
        if isinstance(head, str) and isinstance(whole, str) and whole.startswith(head) and len(whole) > len(head):
            return head, whole, True
    head = PLAIN_PROMPT.format(prompt=prompt)
    return head, f"{head} {answer}", False
