"""Fine-tuning data from a Hub dataset: offered only where the settings allow it (on a Space by default), only
for an `owner/name` id and a plain split (never a URL, a path or a pattern), read as a stream up to the row limit
and checked like an uploaded file. No test reaches a hub: the stream is read from a local folder, and a hub id
with the hub offline gives its one sentence."""

import json

import pytest

from visualizer.analysis import hub_data
from visualizer.errors import InputError
from visualizer.service import training_data as td
from visualizer.settings import Settings

ROWS = [{"prompt": f"{i} + 1 =", "completion": f" {i + 1}"} for i in range(12)]


@pytest.fixture
def local_dataset(tmp_path):
    """A folder holding a train split as JSON Lines, as a dataset repository lays it out."""
    folder = tmp_path / "owner-data"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return str(folder)


def test_hub_datasets_are_on_on_a_space_and_where_set():
    assert not Settings.from_env({}).hub_datasets
    assert Settings.from_env({"SPACE_ID": "someone/visualizer"}).hub_datasets
    assert not Settings.from_env({"SPACE_ID": "someone/visualizer", "VISUALIZER_HUB_DATASETS": "0"}).hub_datasets
    assert Settings.from_env({"VISUALIZER_HUB_DATASETS": "1"}).hub_datasets


def test_turned_off_it_is_one_sentence_before_anything_is_read(monkeypatch):
    monkeypatch.setattr(hub_data, "stream_rows", lambda *a: pytest.fail("nothing may be read"))
    with pytest.raises(InputError, match=r"turned off here .* upload the file instead"):
        td.open_hub_data("trl-lib/Capybara", "train", Settings())


@pytest.mark.parametrize(
    ("dataset_id", "split", "message"),
    [
        ("https://example.com/data.jsonl", "train", "is not a Hub dataset id"),
        ("http://127.0.0.1:8000/x", "train", "is not a Hub dataset id"),
        ("../etc/passwd", "train", "is not a Hub dataset id"),
        ("owner/../name", "train", "is not a Hub dataset id"),
        ("owner/name/data/*.jsonl", "train", "is not a Hub dataset id"),
        ("hf://datasets/owner/name", "train", "is not a Hub dataset id"),
        ("owner/name", "train[:10]", "is not a split name"),
        ("owner/name", "../train", "is not a split name"),
        ("owner/name", "train; rm -rf /", "is not a split name"),
    ],
)
def test_only_an_owner_name_id_and_a_plain_split_get_through(dataset_id, split, message, monkeypatch):
    monkeypatch.setattr(hub_data, "stream_rows", lambda *a: pytest.fail("nothing may be read"))
    with pytest.raises(InputError, match=message):
        td.open_hub_data(dataset_id, split, Settings(hub_datasets=True))


def test_a_folder_on_the_server_is_not_a_hub_dataset(tmp_path, monkeypatch):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="names a folder on this server"):
        hub_data.check_hub_source("owner/name", "train")


def test_a_hub_id_that_cannot_be_reached_is_one_sentence(monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError) as caught:
        td.open_hub_data("nobody-here/no-such-dataset", "train", Settings(hub_datasets=True))
    message = str(caught.value)
    assert message.startswith("datasets could not read nobody-here/no-such-dataset (train): ") and "\n" not in message


def test_a_split_is_streamed_up_to_the_row_limit_and_checked_as_a_file_is(local_dataset):
    dataset = hub_data.stream_rows(local_dataset, "train", 20, "owner/data (train)")
    data = hub_data.data_file_of(dataset, "hub:owner/data:train", "owner/data (train)")
    assert data.format == "prompt-completion" and not data.conversational
    assert [data.row(i) for i in range(len(data))] == ROWS
    with pytest.raises(InputError, match=r"owner/data \(train\) has more than 10 rows; the limit is 10"):
        hub_data.stream_rows(local_dataset, "train", 10, "owner/data (train)")


def test_the_data_tab_scans_a_hub_dataset_only_where_offered(tmp_path):
    from visualizer.ui.data_tab import make_data_handlers

    off = make_data_handlers(Settings()).scan(None, None, "all", 64, False, "trl-lib/Capybara", "train")
    data, table, note = next(off)
    assert data is None and table.empty and note.startswith("⚠ Reading a Hub dataset is turned off here")
    nothing = make_data_handlers(Settings(hub_datasets=True)).scan(None, None, "all", 64, False, "", "train")
    assert next(nothing)[2] == "⚠ Choose a data file first, or name a Hub dataset."
