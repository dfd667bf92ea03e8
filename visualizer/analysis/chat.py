"""A conversation through the model's own chat template: its tokens, and which message each token belongs to.

The template is run by transformers' `apply_chat_template` (its sandboxed Jinja): nothing else is executed.
Each token's role comes from where it sits in the rendered text: inside a message's content it has that message's
role (system, user, assistant, ...), elsewhere it is the template's own text (`<|im_start|>user\\n`, a default
system prompt, ...). A message whose content is nowhere in the rendered text was dropped by the template.
Pure: no gradio, no plotly, no pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from .data_files import check_messages

TEMPLATE_ROLE = "template"
"""The role of a token that no message holds: the template's own text."""
NO_TEMPLATE = (
    "This model's tokenizer has no chat template, so it cannot render a conversation: give the data in the "
    "plain `text` format instead."
)


@dataclass
class ChatRender:
    """A conversation rendered by a chat template and tokenized as a trainer would."""

    messages: list[dict]
    text: str
    """The rendered conversation, as the template wrote it."""
    ids: list[int]
    """(n,) its token ids, as `apply_chat_template(tokenize=True)` gives them."""
    roles: list[str]
    """(n,) each token's message role, or TEMPLATE_ROLE for the template's own text."""
    message_of: list[int | None]
    """(n,) the index of the message each token belongs to; None for template text."""
    missing: list[int] = field(default_factory=list)
    """Messages whose content the rendered text does not hold: the template dropped them."""
    labels: list[int] = field(default_factory=list)
    """(n,) the labels a trainer makes under a preset (`render_chat(..., preset=)`); empty when not asked for."""
    notices: list[str] = field(default_factory=list)

    @property
    def counted(self) -> list[bool]:
        """(n,) whether each token's label counts in the loss (not -100)."""
        return [label != -100 for label in self.labels]

    def to_dict(self) -> dict:
        """The JSON form: the rendered text, and per token its id, role, message and label."""
        return {
            "text": self.text,
            "ids": self.ids,
            "roles": self.roles,
            "message_of": self.message_of,
            "missing": self.missing,
            "labels": self.labels,
            "notices": self.notices,
        }


def render_text(tokenizer, messages: list[dict], chat_template: str | None = None, **kwargs) -> str:
    """The conversation as the template renders it (`chat_template` overrides the tokenizer's); a template that
    raises (a role it rejects, say) gives an InputError carrying its own message."""
    if not getattr(tokenizer, "chat_template", None) and chat_template is None:
        raise InputError(NO_TEMPLATE)
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template, **kwargs)
    except Exception as err:  # noqa: BLE001 - jinja2's TemplateError and whatever the template raises
        raise InputError(f"The chat template refused this conversation: {_one_line(err)}") from None
    assert isinstance(text, str)  # one conversation renders to one string
    return text


def _one_line(err: Exception) -> str:
    """An exception's message as one sentence ending in a full stop."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if text.endswith(".") else text + "."


def tokenize_chat(tokenizer, messages: list[dict], chat_template: str | None = None) -> list[int]:
    """The conversation's token ids exactly as a trainer gets them: `apply_chat_template(tokenize=True)`."""
    render_text(tokenizer, messages, chat_template)  # the template's own refusal, as one sentence
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, chat_template=chat_template)
    return list(out["input_ids"])


def render_chat(lm, messages, preset: str | None = None, chat_template: str | None = None) -> ChatRender:
    """`messages` through the model's chat template: ids, each token's role, the messages the template dropped;
    with `preset` ('all', 'completion-only', 'assistant-only'), the labels TRL's SFTTrainer makes for it too
    (then the ids are TRL's, rendered with the template TRL uses)."""
    messages = check_messages(messages)
    tokenizer = lm.tokenizer
    notices: list[str] = []
    labels: list[int] = []
    if preset is not None:
        from .trainer_labels import LabelOptions, conversation_labels

        labeled = conversation_labels(tokenizer, messages, LabelOptions(preset=preset))
        chat_template, labels, notices = labeled.chat_template, labeled.labels, labeled.notices
        ids = labeled.input_ids
    else:
        ids = tokenize_chat(tokenizer, messages, chat_template)
    text = render_text(tokenizer, messages, chat_template)
    spans = message_spans(text, messages)
    roles, message_of = token_roles(lm, text, ids, spans, messages)
    missing = [i for i, span in enumerate(spans) if span is None]
    return ChatRender(
        messages, text, ids, roles, message_of, missing, labels, notices + dropped_notices(messages, missing)
    )


def message_spans(text: str, messages: list[dict]) -> list[tuple[int, int] | None]:
    """Where each message's content sits in the rendered text, searched in order (a message's content starts at
    or after the end of the one before); None for a message whose content is not there (an empty content sits
    where the search stands). Example: text 'U: hi A: yo', contents 'hi', 'yo' -> [(3, 5), (9, 11)]."""
    spans: list[tuple[int, int] | None] = []
    at = 0
    for message in messages:
        content = message.get("content") or ""
        where = text.find(content, at)
        if where < 0:
            spans.append(None)
            continue
        spans.append((where, where + len(content)))
        at = where + len(content)
    return spans


def token_roles(lm, text: str, ids: list[int], spans, messages) -> tuple[list[str], list[int | None]]:
    """(n,) each token's role and message index: the message whose content span the token's characters overlap,
    else the template. The tokens' characters come from the offsets mapping of the rendered text (when it gives
    these very ids), else from the tokens' bytes (when they spell the text); else every token is template text."""
    bounds = _token_bounds(lm, text, ids)
    roles: list[str] = []
    message_of: list[int | None] = []
    for start, end in bounds:
        hit = next(
            (i for i, span in enumerate(spans) if span and span[0] < span[1] and start < span[1] and end > span[0]),
            None,
        )
        message_of.append(hit)
        roles.append(TEMPLATE_ROLE if hit is None else str(messages[hit]["role"]))
    return roles, message_of


def _token_bounds(lm, text: str, ids: list[int]) -> list[tuple[int, int]]:
    """(n,) each token's [start, end) characters in `text` (`ids` may be the start of its tokens); (0, 0) for every
    token when neither way can tell."""
    try:
        enc = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if list(enc["input_ids"][: len(ids)]) == ids:  # these ids, or their start (a row cut to max_length)
            return [(int(s), int(e)) for s, e in enc["offset_mapping"][: len(ids)]]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        pass  # a slow tokenizer: from the bytes below
    pieces = lm.decoder.bytes_of_tokens(ids)
    data = text.encode("utf-8")
    if not data.startswith(b"".join(pieces)):
        return [(0, 0)] * len(ids)
    bounds, at = [], 0
    for piece in pieces:  # byte offsets -> character offsets (a split character belongs to each of its pieces)
        start = len(data[:at].decode("utf-8", errors="ignore"))
        at += len(piece)
        bounds.append((start, max(start + 1, len(data[:at].decode("utf-8", errors="ignore")))))
    return bounds


def dropped_notices(messages: list[dict], missing: list[int]) -> list[str]:
    """One sentence per message the template dropped (a system prompt named as such)."""
    out = []
    for i in missing:
        role = messages[i]["role"]
        what = "the system prompt" if role == "system" else f"message {i} ({role})"
        out.append(f"The chat template drops {what}: its content is not in the rendered text, so it is never trained.")
    return out


def empty_turns(messages: list[dict]) -> list[int]:
    """The messages whose content is empty or only whitespace."""
    return [i for i, message in enumerate(messages) if not str(message.get("content") or "").strip()]
