"""The labels TRL's SFTTrainer trains on, made by TRL's own code (the pinned trl==1.16.0), row by row.

`SFTTrainer._prepare_dataset` is called on a stand-in holding exactly what it reads of the trainer (`_tokenizer`,
`completion_only_loss`, `chat_template`) with a real `SFTConfig`: the ChatML conversion, the EOS added to plain
text, the chat template, `completion_mask` / `assistant_masks`, the labels (-100 where a mask is 0), the
truncation to `max_length` (keep_start) and the drop of rows it leaves fully masked are all TRL's. A row column
rides along so that each result is traced back to its row, and a row TRL drops is still shown, marked dropped.
Packing is TRL's `pack_dataset` (best-fit decreasing: each row cut to `max_length`, whole rows binned) with a
per-token row column beside the ids and labels. The collator then only pads (labels -100 on pads) or, packed,
masks each row's first label: label 0 of a row, which nothing predicts anyway.
Pure: no gradio, no plotly, no pandas.
"""

from __future__ import annotations

import tempfile
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .chat import NO_TEMPLATE
from .data_files import quiet_datasets

PRESETS = ("all", "completion-only", "assistant-only")
"""all: labels = input_ids; completion-only: TRL's completion_only_loss; assistant-only: its assistant_only_loss."""
IGNORE_INDEX = -100
ROW = "__visualizer_row__"
"""The row column that rides along through TRL's preparation (each row's index in the file)."""
ROW_TOKENS = "__visualizer_row_tokens__"
"""The same per token, for packing (pack_dataset packs every column alike)."""
PACK_ROWS = 1000
"""Rows `pack_dataset` bins together: its `map(batched=True)` batch, so packing chunk by chunk is TRL's packing."""
FIRST_ROWS = 16
"""Without packing, the rows TRL labels before the first forward pass: the table's first rows wait for no more."""
LABEL_ROWS = 250
"""Without packing, the rows TRL labels at a time after the first FIRST_ROWS."""
NO_MASKS = (
    "This chat template has no {% generation %} markers, so it cannot say which tokens are the assistant's, and "
    "TRL has no training template for it"
)
NOT_CONVERSATIONAL = (  # TRL's own message (SFTTrainer.__init__)
    "You set `assistant_only_loss=True`, but the dataset is not conversational. This option is only supported for "
    "conversational datasets."
)
STOP_NOT_TRAINED = (  # the gist of TRL's own warning (SFTTrainer.__init__)
    "The chat template leaves the assistant's end-of-turn token out of the loss, so the model may not learn to "
    "stop (TRL warns of this too)."
)
COMPLETION_ONLY_IDLE = (
    "completion-only changes nothing here: TRL's completion_only_loss needs prompt + completion data, and every "
    "token of {kind} data counts (use assistant-only for conversations)."
)


@dataclass(frozen=True)
class LabelOptions:
    """How the trainer is configured: the preset and the two SFTConfig options that change the labels."""

    preset: str = "all"
    """One of PRESETS."""
    max_length: int | None = None
    """SFTConfig.max_length: rows are cut to this many tokens (keep_start); None keeps them whole."""
    packing: bool = False
    """SFTConfig.packing (strategy 'bfd'): rows cut to max_length and binned into sequences of max_length."""

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise InputError(f"The preset must be one of {', '.join(PRESETS)}, not {self.preset!r}.")
        if self.packing and not self.max_length:
            raise InputError("Packing needs a max_length: TRL packs rows into sequences of that many tokens.")
        if self.max_length is not None and self.max_length < 1:
            raise InputError(f"max_length must be 1 or more, not {self.max_length}.")

    def trl_options(self) -> dict:
        """The SFTConfig fields this preset sets."""
        return {
            "completion_only_loss": self.preset == "completion-only",
            "assistant_only_loss": self.preset == "assistant-only",
        }


@dataclass
class LabeledRow:
    """One row as TRL trains it: its ids and labels after truncation (or its segment of a packed sequence)."""

    row: int
    """The row's index in the file (0-based)."""
    input_ids: list[int]
    """(n,) the ids TRL trains on: the row cut to max_length."""
    labels: list[int]
    """(n,) TRL's labels: the id where the token counts, -100 where not."""
    full_length: int
    """Tokens of the row before truncation."""
    cut_counted: int
    """Counted labels past max_length that truncation cut off."""
    dropped: bool = False
    """TRL drops this row: truncation left every label -100 (it is shown here all the same)."""
    pack: int | None = None
    """With packing: the packed sequence (0-based) that holds this row."""
    pack_offset: int | None = None
    """With packing: where the row's tokens start in that sequence."""


def chunk_bounds(rows: int, packing: bool) -> list[tuple[int, int]]:
    """[start, end) of each chunk `label_chunks` labels at once: PACK_ROWS each with packing, else FIRST_ROWS, then
    LABEL_ROWS each. Example: (600, False) -> [(0, 16), (16, 266), (266, 516), (516, 600)]."""
    bounds, start = [], 0
    while start < rows:
        size = PACK_ROWS if packing else FIRST_ROWS if start == 0 else LABEL_ROWS
        bounds.append((start, min(start + size, rows)))
        start += size
    return bounds


@dataclass
class TrainerLabels:
    """TRL's dataset preparation for one tokenizer and options, ready to label rows."""

    tokenizer: Any
    options: LabelOptions
    conversational: bool
    kind: str = "messages"
    """The data format ('messages', 'prompt-completion' or 'text'), for notices."""
    chat_template: str | None = None
    """The template TRL renders with when not the tokenizer's own (its training template, for assistant-only)."""
    notices: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.chat_template = trainer_chat_template(self.tokenizer, self.options, self.conversational)
        self.notices = trainer_notices(self.tokenizer, self.options, self.kind, self.chat_template)

    def label_rows(self, dataset, first_row: int = 0) -> list[LabeledRow]:
        """TRL's rows for `dataset` (a `datasets.Dataset`), numbered from `first_row`; packing is done over these
        rows alone, so give at most PACK_ROWS at a time (as TRL's own batches) to pack as TRL does."""
        rows = list(range(first_row, first_row + len(dataset)))
        dataset = dataset.add_column(ROW, rows)
        full = self.prepare(dataset, max_length=None)
        ids, labels = full["input_ids"], full["labels"]
        assert full[ROW] == rows  # no row dropped or moved without truncation
        if self.options.packing:
            return self._packed(rows, ids, labels)
        if self.options.max_length is None:
            return [LabeledRow(r, i, lab, len(i), 0) for r, i, lab in zip(rows, ids, labels)]
        cut = self.prepare(dataset, max_length=self.options.max_length)
        kept = dict(zip(cut[ROW], zip(cut["input_ids"], cut["labels"])))
        return [self._cut_row(r, i, lab, kept.get(r)) for r, i, lab in zip(rows, ids, labels)]

    def label_chunks(self, dataset, chunk: int | None = None) -> Iterator[list[LabeledRow]]:
        """`label_rows` over a whole dataset, chunk by chunk (pack numbers running on): `chunk` rows at a time, or by
        default PACK_ROWS when packing (TRL bins that many together), else FIRST_ROWS first, so that a table's first
        rows come at once, then LABEL_ROWS at a time (without packing, TRL labels each row on its own)."""
        n, packs = len(dataset), 0
        bounds = (
            chunk_bounds(n, self.options.packing)
            if chunk is None
            else [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
        )
        for start, end in bounds:
            rows = self.label_rows(dataset.select(range(start, end)), start)
            for row in rows:
                row.pack = None if row.pack is None else row.pack + packs
            packs = max((r.pack + 1 for r in rows if r.pack is not None), default=packs)
            yield rows

    def prepare(self, dataset, max_length: int | None):
        """`SFTTrainer._prepare_dataset` itself on `dataset`, without packing; TRL's refusal of a row (no assistant
        token under assistant-only) as an InputError naming the first such row."""
        stand_in = types.SimpleNamespace(
            _tokenizer=self.tokenizer,
            completion_only_loss=self.options.trl_options()["completion_only_loss"],
            chat_template=self.chat_template,
        )
        config = sft_config(self.options, max_length=max_length, packing=False)
        with quiet_datasets():
            try:
                return _trl_prepare(stand_in, dataset, config)
            except RuntimeError as err:
                row = self._first_refused(stand_in, dataset, config)
                raise InputError(f"TRL refuses row {row}: {' '.join(str(err).split())}") from None

    def _first_refused(self, stand_in, dataset, config) -> int:
        """The first row TRL's preparation refuses, found by halving (TRL's own code on each half)."""
        lo, hi = 0, len(dataset)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                _trl_prepare(stand_in, dataset.select(range(lo, mid)), config)
                lo = mid
            except RuntimeError:
                hi = mid
        return dataset[lo][ROW]

    def _cut_row(self, row: int, ids: list[int], labels: list[int], kept) -> LabeledRow:
        """A row after TRL's truncation: TRL's own ids and labels, or, for a row TRL dropped, its first max_length
        tokens (every label -100) marked dropped."""
        limit = self.options.max_length
        assert limit is not None
        lost = sum(label != IGNORE_INDEX for label in labels[limit:])
        if kept is None:
            return LabeledRow(row, ids[:limit], labels[:limit], len(ids), lost, dropped=True)
        return LabeledRow(row, list(kept[0]), list(kept[1]), len(ids), lost)

    def _packed(self, rows: list[int], ids, labels) -> list[LabeledRow]:
        """TRL's `pack_dataset` over these rows with a per-token row column: each row's segment and its sequence."""
        import datasets
        from trl.data_utils import pack_dataset

        limit = self.options.max_length
        assert limit is not None
        table = datasets.Dataset.from_dict(
            {"input_ids": ids, "labels": labels, ROW_TOKENS: [[r] * len(i) for r, i in zip(rows, ids)]}
        )
        config = sft_config(self.options, max_length=limit, packing=True)
        with quiet_datasets():
            packed = pack_dataset(table, limit, config.packing_strategy, {})
        full = dict(zip(rows, zip(ids, labels)))
        out = {}
        for pack, seq in enumerate(packed):
            at = 0
            for length in seq["seq_lengths"]:
                row = seq[ROW_TOKENS][at]
                seg_ids, seg_labels = seq["input_ids"][at : at + length], seq["labels"][at : at + length]
                lost = sum(label != IGNORE_INDEX for label in full[row][1][limit:])
                out[row] = LabeledRow(row, seg_ids, seg_labels, len(full[row][0]), lost, pack=pack, pack_offset=at)
                at += length
        return [out[r] for r in rows]


def _trl_prepare(stand_in, dataset, config):
    """`SFTTrainer._prepare_dataset(stand_in, dataset, tokenizer, config, packing=False, formatting_func=None)`."""
    from trl.trainer.sft_trainer import SFTTrainer

    prepare: Any = SFTTrainer._prepare_dataset  # called on the stand-in, not on a trainer
    return prepare(stand_in, dataset, stand_in._tokenizer, config, False, None, "train")


def sft_config(options: LabelOptions, max_length: int | None, packing: bool):
    """A real `trl.SFTConfig` with these options (nothing written: no trainer is made from it)."""
    from trl import SFTConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' deprecation notes about TRL's own defaults
        return SFTConfig(
            output_dir=tempfile.gettempdir(),
            report_to=[],
            bf16=False,
            dataset_num_proc=None,
            max_length=max_length,
            packing=packing,
            **options.trl_options(),
        )


def trainer_chat_template(tokenizer, options: LabelOptions, conversational: bool) -> str | None:
    """The template TRL's SFTTrainer renders with (None: the tokenizer's own), decided as its `__init__` does; its
    refusals as an InputError: assistant-only on data that is not a conversation, a template without
    generation markers that TRL cannot patch."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if conversational and not getattr(tokenizer, "chat_template", None):
        raise InputError(NO_TEMPLATE)
    if not options.trl_options()["assistant_only_loss"]:
        return None
    if not conversational:
        raise InputError(f"TRL refuses assistant-only here: {NOT_CONVERSATIONAL}")
    if has_generation_markers(tokenizer.chat_template):
        return None
    try:
        return get_training_chat_template(tokenizer)
    except ValueError as err:
        raise InputError(f"{NO_MASKS}: SFTTrainer raises “{' '.join(str(err).split())}”") from None


def trainer_notices(tokenizer, options: LabelOptions, kind: str, chat_template: str | None) -> list[str]:
    """What the user should know of these options on this data, in sentences."""
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    notices = []
    if options.preset == "completion-only" and kind != "prompt-completion":
        notices.append(COMPLETION_ONLY_IDLE.format(kind=kind))
    if options.preset == "assistant-only":
        if not is_chat_template_stop_token_trained(tokenizer, chat_template=chat_template):
            notices.append(STOP_NOT_TRAINED)
        if chat_template is not None:
            notices.append("TRL renders these conversations with its training version of this chat template.")
    return notices


@dataclass
class LabeledChat:
    """One conversation as TRL trains it."""

    input_ids: list[int]
    labels: list[int]
    chat_template: str | None
    notices: list[str]
    dropped: bool


def conversation_labels(tokenizer, messages: list[dict], options: LabelOptions) -> LabeledChat:
    """TRL's ids and labels for one conversation (`messages` data of one row)."""
    import datasets

    features = datasets.Features({"messages": datasets.List(datasets.Json())})  # each message's keys kept as given
    dataset = datasets.Dataset.from_list([{"messages": messages}], features=features)
    trainer = TrainerLabels(tokenizer, options, conversational=True, kind="messages")
    (row,) = trainer.label_rows(dataset)
    notices = list(trainer.notices)
    if row.dropped:
        notices.append(dropped_notice(options.max_length))
    return LabeledChat(row.input_ids, row.labels, trainer.chat_template, notices, row.dropped)


def dropped_notice(max_length: int | None) -> str:
    """Why TRL drops a row."""
    return (
        f"TRL drops this row: cut to max_length {max_length}, none of its labels counts, so it never reaches "
        "training (shown here all the same)."
    )
