"""Fine-tuning data files read by `datasets`: each file kind and format, a malformed JSONL line named by its number,
unknown columns answered with the accepted formats, the limits, and rows TRL could not use."""

import json

import pytest

from tests.training_data import MESSAGES, PROMPT_COMPLETION, PROMPT_COMPLETION_CHAT, TEXT, write_jsonl
from visualizer.analysis.data_files import read_data_file
from visualizer.errors import InputError

MB = 1_000_000


def read(path, max_bytes: int = 50 * MB, max_rows: int = 10_000):
    """The file read within the given limits."""
    return read_data_file(path, max_bytes, max_rows)


@pytest.mark.parametrize(
    ("rows", "kind", "conversational"),
    [
        (MESSAGES, "messages", True),
        (PROMPT_COMPLETION, "prompt-completion", False),
        (PROMPT_COMPLETION_CHAT, "prompt-completion", True),
        (TEXT, "text", False),
    ],
)
def test_jsonl_of_each_format(tmp_path, rows, kind, conversational):
    data = read(write_jsonl(tmp_path / "d.jsonl", rows))
    assert (data.format, data.conversational, len(data)) == (kind, conversational, len(rows))
    assert [data.row(i) for i in range(len(data))] == rows  # messages come back exactly as written


def test_json_array_csv_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.json").write_text(json.dumps(PROMPT_COMPLETION, indent=1))
    (tmp_path / "d.csv").write_text('prompt,completion\n"the dog, the cat",likes\nthe cat," fish"\n')
    pq.write_table(pa.Table.from_pylist(MESSAGES), tmp_path / "d.parquet")
    assert [read(tmp_path / "d.json").row(i) for i in range(3)] == PROMPT_COMPLETION
    csv = read(tmp_path / "d.csv")
    assert csv.format == "prompt-completion" and csv.row(0) == {"prompt": "the dog, the cat", "completion": "likes"}
    parquet = read(tmp_path / "d.parquet")
    assert parquet.format == "messages" and parquet.row(1)["messages"] == MESSAGES[1]["messages"]


def test_a_malformed_jsonl_line_is_named_by_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "the dog"}\n\n{"text": "the cat"\n{"text": "fish"}\n')
    with pytest.raises(InputError, match=r"^bad.jsonl line 3 is not valid JSON: Expecting ',' delimiter"):
        read(path)
    path.write_text('{"text": "the dog"}\n["the cat"]\n')
    with pytest.raises(InputError, match="line 2 is not a JSON object"):
        read(path)
    path.write_bytes(b'{"text": "the dog"}\n{"text": "\xff"}\n')
    with pytest.raises(InputError, match="line 2 is not UTF-8"):
        read(path)


def test_a_broken_json_array_is_named_by_its_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n {"text": "a"},\n {"text": "b" "c"}\n]\n')
    with pytest.raises(InputError, match="bad.json line 3 is not valid JSON"):
        read(path)


def test_unknown_columns_say_which_formats_are_accepted(tmp_path):
    with pytest.raises(InputError) as err:
        read(write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "b"}]))
    message = str(err.value)
    assert message.startswith("Unknown columns (answer, question): accepted formats are `messages`")
    assert "`prompt` + `completion`" in message and "`text`" in message
    with pytest.raises(InputError, match="already tokenized"):
        read(write_jsonl(tmp_path / "t.jsonl", [{"input_ids": [1, 2], "labels": [1, 2]}]))


def test_the_limits(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", TEXT * 3)
    with pytest.raises(InputError, match=r"^d.jsonl has 6 rows; the limit is 5\.$"):
        read(path, max_rows=5)
    assert len(read(path, max_rows=6)) == 6
    with pytest.raises(InputError, match=r"d.jsonl is 0.0 MB; the limit is 0.0001 MB"):
        read(path, max_bytes=100)
    with pytest.raises(InputError, match="give a .jsonl, .json, .csv or .parquet file"):
        read(tmp_path / "d.txt")
    with pytest.raises(InputError, match="There is no file"):
        read(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError):
        read(tmp_path / "empty.jsonl")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"messages": []}, "Row 1: messages is empty: give at least one message."),
        ({"messages": [{"role": "user"}]}, "Row 1: messages, message 0: the content must be a string, not null."),
        ({"messages": [{"content": "hi"}]}, "Row 1: messages, message 0: each message needs a role"),
    ],
)
def test_a_conversation_trl_cannot_use_is_named_by_its_row(tmp_path, row, message):
    with pytest.raises(InputError) as err:
        read(write_jsonl(tmp_path / "d.jsonl", [MESSAGES[0], row]))
    assert str(err.value).startswith(message)


def test_a_string_column_holding_something_else_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "the dog"}\n{"text": null}\n')
    with pytest.raises(InputError, match=r"^Row 1: text must be a string, not null\.$"):
        read(path)


def test_nothing_in_the_data_is_executed(tmp_path):
    rows = [{"text": "{{ 7 * 7 }} {% for x in range(3) %}x{% endfor %} __import__('os')"}]
    data = read(write_jsonl(tmp_path / "d.jsonl", rows))
    assert data.row(0) == rows[0]
