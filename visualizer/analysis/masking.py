"""Which labels count: mask a prompt up to a marker, or build a chat example whose answer alone counts.

A masked label is -100: the model still predicts that position, but its loss leaves
the mean. Supervised fine-tuning masks the prompt so only the answer's tokens train.
Example: text 'Q: hi A: yo', marker 'A:' -> the tokens of 'Q: hi A:' are masked.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..model.loading import LoadedModel
from .one_pass import encode

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


def mask_until(text: str, marker: str, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None) -> list[int]:
    """Label indices to mask: every token up to and including the first occurrence of `marker`.

    A token counts as part of the prompt when it starts before the marker's last character ends.
    Example: 'the dog likes food', marker 'dog' -> [0, 1] (the, ' dog').
    """
    if not isinstance(marker, str) or not marker:
        raise InputError("The mask marker is empty: type the text that ends the prompt.")
    where = text.find(marker) if isinstance(text, str) else -1
    if where < 0:
        raise InputError(f"The mask marker {marker!r} does not occur in the text.")
    return list(range(tokens_before(text, where + len(marker), lm, bos=bos, max_tokens=max_tokens)))


def tokens_before(text: str, end: int, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None) -> int:
    """How many of the text's tokens (as analyze encodes it) start before character `end`."""
    ids, _ = encode(lm, text, bos=bos, max_tokens=max_tokens)
    body = ids[1:] if bos else ids
    starts = _token_starts(text, body, lm, end)
    return int(bos) + sum(1 for s in starts if s < end)


def _token_starts(text: str, ids: list[int], lm: LoadedModel, end: int) -> list[int]:
    """Each token's first character in `text`: from the offsets mapping, else from decoded prefixes."""
    try:
        enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        offsets = None
    if offsets is not None and list(enc["input_ids"][: len(ids)]) == list(ids):
        return [start for start, _ in offsets[: len(ids)]]
    return starts_by_decoding(ids, lm, end)


def starts_by_decoding(ids: list[int], lm: LoadedModel, end: int) -> list[int]:
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
    prompt: str, answer: str, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None
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
