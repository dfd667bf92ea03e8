"""A fine-tuning file's rows as TRL trains them: each row's tokens, counted tokens, loss and warnings.

The losses come from padded batches of rows through the in-process model (the forward pass `one_pass.measure_batch`
makes: right padding, pads out of attention), each row's loss the model's own loss over its counted labels.
Pure: no gradio, no plotly, no pandas.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..model.loading import LoadedModel
from .chat import dropped_notices, empty_turns, message_spans, render_text
from .measured import Request
from .one_pass import IGNORE_INDEX, model_loss
from .one_pass import _forward as forward_padded  # right-padded, pads out of attention: measure_batch's pass
from .result import Analysis
from .trainer_labels import LabeledRow, LabelOptions, dropped_notice


@dataclass
class RowReport:
    """One row of the file: what TRL trains on and what the model's loss on it is."""

    row: int
    """The row's index in the file (0-based)."""
    tokens: int
    """Tokens TRL trains on (after truncation; a packed row's segment)."""
    counted: int
    """Positions whose label counts (labels[1:] not -100: nothing predicts label 0)."""
    loss: float | None
    """The model's mean loss over the counted positions (nats); None when none counts."""
    warnings: list[str] = field(default_factory=list)
    dropped: bool = False
    """TRL drops this row (truncation left no label counted)."""
    pack: int | None = None
    """With packing: the packed sequence holding the row."""

    def to_dict(self) -> dict:
        """The JSON form: one object per row."""
        return {
            "row": self.row,
            "tokens": self.tokens,
            "counted": self.counted,
            "loss": self.loss,
            "warnings": self.warnings,
            "dropped": self.dropped,
            "pack": self.pack,
        }


def counted_positions(labels: Sequence[int]) -> int:
    """How many positions count in the loss: labels[1:] that are not -100 (label 0 is never predicted).
    Example: [-100, 5, -100, 7] -> 2."""
    return sum(label != IGNORE_INDEX for label in labels[1:])


def conversation_of(row: dict, kind: str) -> list[dict]:
    """The messages a conversational row renders: `messages`, or prompt + completion."""
    return list(row["messages"]) if kind == "messages" else [*row["prompt"], *row["completion"]]


def template_kwargs(row: dict) -> dict:
    """What TRL passes the chat template from a row besides its messages: `tools` (JSON text parsed) and the
    row's `chat_template_kwargs`, as its tokenize_fn does."""
    tools = row.get("tools")
    tools = json.loads(tools) if isinstance(tools, str) else tools
    return {"tools": tools, **(row.get("chat_template_kwargs") or {})}


def row_warnings(
    labeled: LabeledRow, row: dict, kind: str, conversational: bool, options: LabelOptions, context: int, trainer
) -> list[str]:
    """Everything worth knowing about one row, one sentence each: dropped or nothing counted, the answer cut at
    max_length, longer than the model's context, an empty turn, a turn or system prompt the template drops."""
    out = []
    if labeled.dropped:
        out.append(dropped_notice(options.max_length))
    elif counted_positions(labeled.labels) == 0:
        out.append("No token of this row counts in the loss (every label after the first is -100).")
    if labeled.cut_counted:
        total = labeled.cut_counted + counted_positions(labeled.labels)
        out.append(
            f"max_length {options.max_length} cuts the row at {len(labeled.input_ids)} of its {labeled.full_length} "
            f"tokens: {labeled.cut_counted} of its {total} counted tokens (the answer, or part of it) are never "
            "trained."
        )
    if len(labeled.input_ids) > context:
        out.append(
            f"The row has {len(labeled.input_ids)} tokens, more than the model's context ({context}): its loss here "
            f"is over the first {context}."
        )
    if conversational:
        messages = conversation_of(row, kind)
        out += [f"Message {i} ({messages[i]['role']}) is empty." for i in empty_turns(messages)]
        text = render_text(trainer.tokenizer, messages, trainer.chat_template, **template_kwargs(row))
        missing = [i for i, span in enumerate(message_spans(text, messages)) if span is None]
        out += dropped_notices(messages, missing)
    else:
        columns = ("prompt", "completion") if kind == "prompt-completion" else ("text",)
        out += [f"The {column} is empty." for column in columns if not str(row.get(column) or "").strip()]
    if kind == "prompt-completion":
        out += prompt_boundary_warnings(trainer, row, conversational)
    return out


def prompt_split(trainer, row: dict, conversational: bool) -> tuple[list[int], list[int]]:
    """(the prompt's ids alone, prompt + completion's ids) as TRL's tokenize_fn makes them for a prompt-completion
    row (its own `_tokenize`, with the generation prompt for a conversation): where they part is where TRL's
    completion starts."""
    from trl.data_utils import _tokenize

    tokenizer, template = trainer.tokenizer, trainer.chat_template
    if conversational:
        kwargs = {"chat_template": template, **template_kwargs(row)}
        prompt = _tokenize(tokenizer, row["prompt"], add_generation_prompt=True, **kwargs)["input_ids"]
        whole = _tokenize(tokenizer, row["prompt"] + row["completion"], **kwargs)["input_ids"]
    else:
        prompt = _tokenize(tokenizer, row["prompt"], chat_template=template)["input_ids"]
        whole = _tokenize(tokenizer, row["prompt"] + row["completion"], chat_template=template)["input_ids"]
    return list(prompt), list(whole)


def prompt_completion_roles(trainer, row: dict, length: int) -> list[str]:
    """(length,) 'prompt' or 'completion' per token of a plain prompt-completion row, split where TRL's
    `common_prefix_length` of the prompt alone and the whole row says the completion starts."""
    from trl.data_utils import common_prefix_length

    start = common_prefix_length(*prompt_split(trainer, row, conversational=False))
    return ["prompt"] * min(start, length) + ["completion"] * max(length - start, 0)


def prompt_boundary_warnings(trainer, row: dict, conversational: bool) -> list[str]:
    """A sentence when the prompt tokenized alone is not the start of prompt + completion tokenized together (tokens
    merging across the boundary, or a template rendering the prompt otherwise): TRL's own tokenization and
    `common_prefix_length`, as its tokenize_fn measures where the completion starts."""
    from trl.data_utils import common_prefix_length

    prompt, whole = prompt_split(trainer, row, conversational)
    lost = len(prompt) - common_prefix_length(prompt, whole)
    if not lost:
        return []
    return [
        f"The prompt alone ends in {lost} token{'s' if lost > 1 else ''} that prompt + completion tokenizes "
        f"otherwise ({trainer.tokenizer.decode(prompt[-lost:])!r}): the completion counts from where they part, and "
        "the model trains on a context it will not see when given the prompt alone."
    ]


def batched_losses(
    lm: LoadedModel, rows: Sequence[tuple[list[int], list[int]]], batch_tokens: int, first_tokens: int | None = None
) -> Iterator[float | None]:
    """Each (ids, labels) row's mean loss over its counted positions, in order, from padded forward passes of
    at most `batch_tokens` padded tokens (a longer row runs alone), the first of at most `first_tokens` when given
    (so that a table's first rows need not wait for a full batch); a row is cut to the model's context."""
    context = lm.max_context
    group: list[Request] = []
    budget = min(first_tokens or batch_tokens, batch_tokens)
    for ids, labels in rows:
        request = Request(list(ids[:context]), list(labels[:context]), 1)
        longest = max([len(request.ids), *(len(r.ids) for r in group)])
        if group and longest * (len(group) + 1) > budget:
            yield from _group_losses(lm, group)
            group, budget = [], batch_tokens
        group.append(request)
    yield from _group_losses(lm, group)


def _group_losses(lm: LoadedModel, group: list[Request]) -> Iterator[float | None]:
    """One padded forward pass over `group`, then each row's own loss from its (n, V) logits (the model's loss
    function, as `measure_batch` gives it, without the per-position statistics a table of rows does not show);
    None for a row under two tokens or with nothing counted."""
    runnable = [r for r in group if len(r.ids) >= 2]
    logits = forward_padded(lm, [r.ids for r in runnable]) if runnable else None  # (B, L, V)
    row = 0
    for request in group:
        if len(request.ids) < 2:
            yield None
            continue
        assert logits is not None
        yield model_loss(lm, logits[row, : len(request.ids)], request.labels)
        row += 1


def row_report(labeled: LabeledRow, loss: float | None, warnings: list[str]) -> RowReport:
    """The table's row from TRL's labels, the model's loss and the warnings."""
    counted = counted_positions(labeled.labels)
    return RowReport(
        labeled.row,
        len(labeled.input_ids),
        counted,
        loss if counted else None,
        warnings,
        labeled.dropped,
        labeled.pack,
    )


@dataclass
class LabeledAnalysis:
    """One row's (or one conversation's) analysis with TRL's labels, each token's role, and the warnings."""

    analysis: Analysis
    preset: str
    roles: list[str] | None = None
    """(n,) each token's message role or 'template' (conversations), 'prompt' or 'completion' (plain
    prompt-completion rows); None for plain text."""
    row: int | None = None
    """The row's index in the file; None for a conversation given alone."""
    dropped: bool = False
    pack: int | None = None

    def to_dict(self, sentence_vocab: bool = True) -> dict:
        """The JSON contract (`Analysis.to_dict`), with `row`, `preset`, `roles`, `dropped` and `pack` added."""
        return {
            **self.analysis.to_dict(sentence_vocab=sentence_vocab),
            "row": self.row,
            "preset": self.preset,
            "roles": self.roles,
            "dropped": self.dropped,
            "pack": self.pack,
        }
