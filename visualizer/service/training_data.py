"""Check fine-tuning data: a file's rows with the labels TRL trains on, scanned as they are done, one row's or
one conversation's analysis. Validation and limits here; the work in analysis/ (data_files, trainer_labels,
chat, data_rows). What the page and the `visualizer labels` command call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..analysis.chat import message_spans, render_chat, render_text, token_roles
from ..analysis.data_files import DataFile, check_messages, read_data_file
from ..analysis.data_rows import (
    LabeledAnalysis,
    RowReport,
    batched_losses,
    conversation_of,
    prompt_completion_roles,
    row_report,
    row_warnings,
    template_kwargs,
)
from ..analysis.hub_data import read_hub_dataset
from ..analysis.one_pass import analyze_ids, token_limit
from ..analysis.trainer_labels import PACK_ROWS, PRESETS, LabeledRow, LabelOptions, TrainerLabels
from ..errors import InputError
from ..model.loading import AnyModel, with_weights
from ..settings import Settings
from .inputs import whole_number

FIRST_BATCH_TOKENS = 128
"""A scan's first forward pass reads at most this many padded tokens (a row or a few), so the table's first rows
come before a full batch of VISUALIZER_BATCH_TOKENS is done."""
TRL_MAX_LENGTH = 1024
"""SFTConfig's default max_length in trl 1.16: what a trainer left at its defaults cuts rows to."""


def label_options(preset: str = "all", max_length=TRL_MAX_LENGTH, packing: bool = False) -> LabelOptions:
    """The trainer options from form or command-line values: a preset of PRESETS, max_length a whole number from
    1 (None or 0: no truncation), packing a switch (it needs a max_length); else an InputError."""
    if preset not in PRESETS:
        raise InputError(f"The preset must be one of {', '.join(PRESETS)}, not {str(preset)[:40]!r}.")
    if max_length is not None:
        max_length = whole_number(max_length, "max_length", at_least=0) or None
    return LabelOptions(preset=preset, max_length=max_length, packing=bool(packing))


def open_data(path: str | Path, settings: Settings) -> DataFile:
    """The data file read within the settings' limits (VISUALIZER_MAX_DATA_MB, VISUALIZER_MAX_DATA_ROWS)."""
    return read_data_file(path, settings.max_data_mb * 1_000_000, settings.max_data_rows)


def open_hub_data(dataset_id: str, split: str, settings: Settings) -> DataFile:
    """A Hub dataset's split read within the same limits, where the settings offer Hub datasets
    (VISUALIZER_HUB_DATASETS, on by default on a Space)."""
    return read_hub_dataset(
        dataset_id, split, settings.max_data_mb * 1_000_000, settings.max_data_rows, settings.hub_datasets
    )


def trainer_for(data: DataFile, lm: AnyModel, options: LabelOptions) -> TrainerLabels:
    """TRL's preparation for this file's format and this model's tokenizer (TRL's refusals as an InputError)."""
    return TrainerLabels(lm.tokenizer, options, conversational=data.conversational, kind=data.format)


@dataclass
class Scan:
    """A file's scan under way: what is known before the first row (notices, the row count) and its rows."""

    rows: Iterator[RowReport]
    """The rows' reports, in file order, each yielded once its batch's forward pass is done."""
    total: int
    """How many rows the file holds (for progress)."""
    notices: list[str]
    """What holds for the whole file (a preset that changes nothing here, TRL's training template, ...)."""


def scan_file(data: DataFile, lm: AnyModel, options: LabelOptions, settings: Settings) -> Scan:
    """Start scanning every row of `data`: TRL's refusals are raised here, at once; the rows come as they are done
    (TRL labels them chunk by chunk, a few first: `label_chunks`; then padded batches of at most
    VISUALIZER_BATCH_TOKENS go through the model)."""
    weights = with_weights(lm, "Checking a data file's rows")
    trainer = trainer_for(data, lm, options)
    return Scan(_scan_rows(data, weights, options, settings, trainer), len(data), list(trainer.notices))


def _scan_rows(data: DataFile, lm, options: LabelOptions, settings: Settings, trainer) -> Iterator[RowReport]:
    """Each chunk's TRL labels, then its rows' losses in padded batches and their warnings, row by row."""
    for number, chunk in enumerate(trainer.label_chunks(data.dataset)):
        first = FIRST_BATCH_TOKENS if number == 0 else None
        losses = batched_losses(lm, [(r.input_ids, r.labels) for r in chunk], settings.batch_tokens, first)
        for labeled, loss in zip(chunk, losses):
            yield row_report(labeled, loss, _warnings(data, labeled, options, lm, trainer))


def _warnings(data: DataFile, labeled: LabeledRow, options: LabelOptions, lm, trainer) -> list[str]:
    """The row's warnings (see `row_warnings`)."""
    row = data.row(labeled.row)
    return row_warnings(labeled, row, data.format, data.conversational, options, lm.max_context, trainer)


def scan_rows(data: DataFile, lm: AnyModel, options: LabelOptions, settings: Settings) -> Iterator[RowReport]:
    """`scan_file(...).rows`: every row's report, in file order, as each is done."""
    return scan_file(data, lm, options, settings).rows


@dataclass
class ScanTotals:
    """The whole file at a glance, from its rows' reports."""

    rows: int
    counted: int
    """Counted positions over every row TRL trains on."""
    loss: float | None
    """The mean loss over those positions: each token weighed the same, as a trainer's loss weighs them."""
    dropped: int
    warned: int
    """Rows with at least one warning."""

    def to_dict(self) -> dict:
        """The JSON form."""
        return dict(vars(self))


def totals(reports: list[RowReport]) -> ScanTotals:
    """The file's totals: counted positions and their mean loss over the rows TRL keeps."""
    kept = [r for r in reports if not r.dropped and r.loss is not None]
    counted = sum(r.counted for r in kept)
    loss = sum(r.loss * r.counted for r in kept if r.loss is not None) / counted if counted else None
    return ScanTotals(
        len(reports), counted, loss, sum(r.dropped for r in reports), sum(bool(r.warnings) for r in reports)
    )


def analyze_row(
    data: DataFile, index: int, lm: AnyModel, options: LabelOptions, settings: Settings, top_k: int = 10
) -> LabeledAnalysis:
    """Row `index`'s full analysis (the JSON contract) with TRL's labels, each token's role (a conversation's
    roles, or prompt / completion) and the row's warnings among its notices."""
    index = whole_number(index, "The row", at_least=0)
    if index >= len(data):
        raise InputError(f"Row {index} is past the end: the file has rows 0 to {len(data) - 1}.")
    trainer = trainer_for(data, lm, options)
    first = index - index % PACK_ROWS if options.packing else index  # packing bins PACK_ROWS rows together
    chunk = data.dataset.select(range(first, min(first + PACK_ROWS, len(data)) if options.packing else index + 1))
    labeled = next(r for r in trainer.label_rows(chunk, first) if r.row == index)
    row = data.row(index)
    text = str(lm.tokenizer.decode(labeled.input_ids))
    ids, labels, cut = _within_limit(lm, labeled, settings)
    result = analyze_ids(lm, ids, labels, text=text, top_k=top_k, truncated=cut)
    if cut:
        result.notices.append(f"The row was cut to its first {len(ids)} tokens for this analysis.")
    result.notices += trainer.notices + _warnings(data, labeled, options, lm, trainer)
    result.source = f"data row {index}"
    roles = None
    if data.conversational:
        messages = conversation_of(row, data.format)
        rendered = render_text(lm.tokenizer, messages, trainer.chat_template, **template_kwargs(row))
        roles, _ = token_roles(lm, rendered, ids, message_spans(rendered, messages), messages)
    elif data.format == "prompt-completion":
        roles = prompt_completion_roles(trainer, row, len(ids))
    return LabeledAnalysis(result, options.preset, roles, index, labeled.dropped, labeled.pack)


def _within_limit(lm: AnyModel, labeled: LabeledRow, settings: Settings) -> tuple[list[int], list[int], bool]:
    """The row's ids and labels cut to what one analysis reads (the model's context, VISUALIZER_MAX_TOKENS)."""
    limit = token_limit(lm, settings.max_tokens)
    ids, labels = labeled.input_ids[:limit], labeled.labels[:limit]
    if len(ids) < 2:
        raise InputError("This row is a single token: there is no next token to predict.")
    return ids, labels, len(labeled.input_ids) > limit


def analyze_chat(messages, lm: AnyModel, settings: Settings, preset: str = "all", top_k: int = 10) -> LabeledAnalysis:
    """One conversation through the model's chat template, with the labels TRL makes under `preset`, analysed:
    the JSON contract plus each token's role."""
    messages = check_messages(messages)
    options = label_options(preset, max_length=None)
    chat = render_chat(lm, messages, preset=options.preset)
    labeled = LabeledRow(0, chat.ids, chat.labels, len(chat.ids), 0)
    ids, labels, cut = _within_limit(lm, labeled, settings)
    result = analyze_ids(lm, ids, labels, text=chat.text, top_k=top_k, truncated=cut)
    result.notices += chat.notices
    result.source = "a conversation"
    return LabeledAnalysis(result, options.preset, chat.roles[: len(ids)])


def read_chat(text: str) -> list[dict]:
    """A conversation from JSON text: a list of {role, content}, or an object with a `messages` list."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"The conversation is not valid JSON: {err.msg} (line {err.lineno}).") from None
    if isinstance(value, dict):
        if "messages" not in value:
            raise InputError("Give the conversation as a list of {role, content}, or an object with a messages list.")
        value = value["messages"]
    return check_messages(value)
