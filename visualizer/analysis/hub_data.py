"""Fine-tuning data from a Hugging Face Hub dataset: an id and a split, read by `datasets` as a stream so that no
more than the row limit is fetched. Offered where a hub is reachable (a Space) and the settings allow it.

Only a hub id of the form `owner/name` and a plain split name get through: never a URL, a path or a file pattern,
so a visitor cannot make the server fetch an address of their choosing or read its disk. `datasets` 4 and later
run no loading scripts; the rows are parsed data, checked like an uploaded file's.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from ..errors import InputError
from .data_files import DataFile, data_file_of, error_line, quiet_datasets

HUB_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
"""`owner/name` as the hub spells repository ids (no '..', no slash beyond the one, no scheme)."""
SPLIT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
"""A split's name ('train', 'test', 'train_sft'); no slicing syntax, no pattern."""
HUB_OFF = (
    "Reading a Hub dataset is turned off here (it is on on a Hugging Face Space, or with "
    "VISUALIZER_HUB_DATASETS=1); upload the file instead."
)


def check_hub_source(dataset_id: str, split: str) -> tuple[str, str]:
    """The id and split, trimmed, when they are a hub id `owner/name` and a plain split name, else an InputError."""
    dataset_id, split = str(dataset_id or "").strip(), str(split or "").strip() or "train"
    if not HUB_ID.fullmatch(dataset_id) or ".." in dataset_id:
        raise InputError(f"{dataset_id[:80]!r} is not a Hub dataset id: write it as owner/name.")
    if not SPLIT.fullmatch(split):
        raise InputError(f"{split[:40]!r} is not a split name: write one such as train or test.")
    if Path(dataset_id).exists():  # `datasets` would read a local folder of that name before asking the hub
        raise InputError(f"{dataset_id!r} names a folder on this server, not a Hub dataset.")
    return dataset_id, split


def read_hub_dataset(dataset_id: str, split: str, max_bytes: int, max_rows: int, allowed: bool) -> DataFile:
    """Split `split` of the hub dataset `dataset_id` as a DataFile, at most `max_rows` rows and `max_bytes` of data,
    when `allowed`; every refusal or failure one sentence."""
    if not allowed:
        raise InputError(HUB_OFF)
    dataset_id, split = check_hub_source(dataset_id, split)
    name = f"{dataset_id} ({split})"
    dataset = stream_rows(dataset_id, split, max_rows, name)
    if dataset.data.nbytes > max_bytes:
        raise InputError(
            f"{name} holds {dataset.data.nbytes / 1e6:.1f} MB of rows; the limit is {max_bytes / 1e6:g} MB."
        )
    return data_file_of(dataset, f"hub:{dataset_id}:{split}", name)


def stream_rows(source: str, split: str, max_rows: int, name: str):
    """The first rows of `source`'s split, streamed (`load_dataset(..., streaming=True)`), as an in-memory
    `datasets.Dataset`; an InputError past `max_rows` rows, or when `datasets` cannot read it."""
    import datasets

    with quiet_datasets():
        try:
            stream = datasets.load_dataset(source, split=split, streaming=True)
            rows = list(itertools.islice(stream, max_rows + 1))
        except Exception as err:  # noqa: BLE001 - the hub, the network and the readers raise many kinds
            raise InputError(f"datasets could not read {name}: {error_line(err)}") from None
    if len(rows) > max_rows:
        raise InputError(f"{name} has more than {max_rows:,} rows; the limit is {max_rows:,}.")
    return datasets.Dataset.from_list(rows)
