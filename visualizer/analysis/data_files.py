"""Fine-tuning data read from a JSONL, JSON, CSV or Parquet file with the `datasets` library, and its format.

The formats are TRL's: `messages` (a conversation: a list of {role, content}), `prompt` + `completion`
(two strings, or two lists of messages) and `text` (one string). Nothing in the data is ever executed: JSON is
parsed, CSV and Parquet are read by pyarrow, and a conversation is only rendered by the model's chat template.
Pure: no gradio, no plotly, no pandas.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
"""File suffix -> the `datasets` builder that reads it."""
FORMATS = ("messages", "prompt-completion", "text")
"""The data formats accepted, as TRL names its dataset types (language modeling, prompt-completion)."""
ACCEPTED = (
    "accepted formats are `messages` (a list of {role, content}), `prompt` + `completion` (two strings, or two "
    "lists of messages) and `text` (one string)"
)


@dataclass
class DataFile:
    """A fine-tuning data file as `datasets` read it, with its format."""

    path: str
    dataset: Any
    """The `datasets.Dataset`, held in memory (its temporary cache is gone)."""
    format: str
    """One of FORMATS."""
    conversational: bool
    """Whether the rows are conversations (messages, or prompt + completion as lists of messages)."""

    def __len__(self) -> int:
        return len(self.dataset)

    def row(self, index: int) -> dict:
        """Row `index` (0-based) as a plain dict."""
        return self.dataset[index]


def read_data_file(path: str | Path, max_bytes: int, max_rows: int) -> DataFile:
    """The file at `path` read by `datasets` (offline, in a temporary cache), its format found and each row checked;
    an InputError of one sentence for anything it cannot use."""
    path = Path(path)
    builder = _builder(path)
    if not path.is_file():
        raise InputError(f"There is no file at {path}.")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB.")
    if builder == "json":
        check_json_lines(path) if not _is_json_array(path) else check_json_array(path)
    dataset = _load(builder, path)
    if len(dataset) > max_rows:
        raise InputError(f"{path.name} has {len(dataset):,} rows; the limit is {max_rows:,}.")
    return data_file_of(dataset, str(path), path.name)


def data_file_of(dataset, source: str, name: str) -> DataFile:
    """A `datasets.Dataset` read from `source` (called `name` in messages) as a DataFile: its format found and each
    row checked, else an InputError of one sentence."""
    if len(dataset) == 0:
        raise InputError(f"{name} holds no rows.")
    kind = data_format(dataset.column_names)
    conversational = kind == "messages" or isinstance(dataset[0][_first_column(kind)], list)
    for index in range(len(dataset)):
        check_row(dataset[index], kind, conversational, index)
    return DataFile(source, dataset, kind, conversational)


def _builder(path: Path) -> str:
    """The `datasets` builder for the file's suffix, or an InputError naming the suffixes read."""
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise InputError(f"{path.name}: give a .jsonl, .json, .csv or .parquet file.")
    return builder


def _is_json_array(path: Path) -> bool:
    """Whether a JSON file is one array (else JSON Lines); the first character that is not whitespace decides."""
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                return line.lstrip().startswith(b"[")
    return False


def check_json_lines(path: Path) -> None:
    """Every non-blank line parses as a JSON object, or an InputError naming the first line that does not.
    Example: line 3 is `{"text": "a"` -> 'data.jsonl line 3 is not valid JSON: Expecting ',' delimiter (column 12).'"""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except UnicodeDecodeError:
                raise InputError(f"{path.name} line {number} is not UTF-8 text.") from None
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{path.name} line {number} is not valid JSON: {err.msg} (column {err.colno})."
                ) from None
            if not isinstance(value, dict):
                raise InputError(f"{path.name} line {number} is not a JSON object (one row per line, {{...}}).")


def check_json_array(path: Path) -> None:
    """A JSON file holding one array of objects, or an InputError naming the line where it breaks."""
    try:
        value = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not UTF-8 text.") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path.name} line {err.lineno} is not valid JSON: {err.msg} (column {err.colno}).") from None
    if not all(isinstance(row, dict) for row in value):
        raise InputError(f"{path.name} must be an array of objects, one per row.")


def _load(builder: str, path: Path):
    """`load_dataset(builder, data_files=path)` into memory through a temporary cache; its errors as one sentence."""
    import datasets

    with quiet_datasets(), tempfile.TemporaryDirectory(prefix="visualizer-data-") as cache:
        try:
            return datasets.load_dataset(
                builder, data_files=str(path), split="train", cache_dir=cache, keep_in_memory=True
            )
        except Exception as err:  # noqa: BLE001 - pyarrow and datasets raise many kinds; each becomes one sentence
            raise InputError(f"datasets could not read {path.name}: {error_line(err)}") from None


def error_line(err: BaseException, limit: int = 300) -> str:
    """An exception's first line (or its type's name when it says nothing), cut to `limit` characters."""
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """`datasets` without its progress bars for the block (restored after)."""
    import datasets

    was_off = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


def data_format(columns: list[str]) -> str:
    """The format a file's columns make, or an InputError saying which formats are accepted.
    Example: ['prompt', 'completion', 'id'] -> 'prompt-completion'."""
    names = set(columns)
    if names & {"input_ids", "labels"}:
        raise InputError(
            "This file is already tokenized (an input_ids or labels column), and TRL would train on those as they "
            f"are; this check builds the labels TRL makes from raw data: {ACCEPTED}."
        )
    if "messages" in names:
        return "messages"
    if {"prompt", "completion"} <= names:
        return "prompt-completion"
    if "text" in names:
        return "text"
    shown = ", ".join(sorted(names)[:8])
    raise InputError(f"Unknown columns ({shown}): {ACCEPTED}.")


def _first_column(kind: str) -> str:
    """The column that decides whether a row is a conversation."""
    return {"messages": "messages", "prompt-completion": "prompt", "text": "text"}[kind]


def check_row(row: dict, kind: str, conversational: bool, index: int) -> None:
    """Row `index` holds what its format needs (strings, or non-empty lists of {role, content}), else an InputError
    naming it: TRL would stop there, or train on something else."""
    columns = ["messages"] if kind == "messages" else ["prompt", "completion"] if kind != "text" else ["text"]
    for column in columns:
        value = row.get(column)
        if conversational:
            check_messages(value, f"Row {index}: {column}")
        elif not isinstance(value, str):
            raise InputError(f"Row {index}: {column} must be a string, not {_kind_of(value)}.")


def check_messages(messages, what: str = "The conversation") -> list[dict]:
    """`messages` if it is a non-empty list of {role, content} with string roles and contents, else an InputError.
    Example: [] -> 'The conversation is empty: give at least one message.'"""
    if not isinstance(messages, list):
        raise InputError(f"{what} must be a list of messages ({{role, content}}), not {_kind_of(messages)}.")
    if not messages:
        raise InputError(f"{what} is empty: give at least one message.")
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InputError(f"{what}, message {number}: each message needs a role (a string) and a content.")
        if not isinstance(message.get("content"), str):
            got = _kind_of(message.get("content"))
            raise InputError(f"{what}, message {number}: the content must be a string, not {got}.")
    return messages


def _kind_of(value) -> str:
    """A value's kind in words, for messages: 'null', 'a list', 'a number'."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
