"""`visualizer labels FILE` and `visualizer analyze --chat FILE.json`: the rows' table in each format (the same
numbers as the service's scan), one row's analysis in the JSON contract, and one-line errors with exit 2."""

import csv
import io
import json

import pytest

from tests.training_data import MESSAGES, PROMPT_COMPLETION, chat, save_chat_model, write_jsonl
from visualizer.service import training_data as td
from visualizer.settings import Settings


@pytest.fixture(scope="module")
def chat_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama with a ChatML-like template with generation markers, saved for --model."""
    return save_chat_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture
def messages_file(tmp_path):
    return write_jsonl(tmp_path / "chat.jsonl", MESSAGES)


def labels_cli(run_cli, *argv):
    """Run `visualizer labels ...`, which must succeed: its stdout and stderr."""
    status, out, err = run_cli(["labels", *argv])
    assert status == 0, err
    return out, err


def test_json_is_one_object_per_row_with_the_scans_numbers(run_cli, chat_dir, messages_file):
    out, _ = labels_cli(
        run_cli,
        messages_file,
        "--model",
        chat_dir,
        "--preset",
        "assistant-only",
        "--max-length",
        "60",
        "--format",
        "json",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    from visualizer.model.loading import load_model

    settings = Settings()
    data, options = td.open_data(messages_file, settings), td.label_options("assistant-only", 60)
    expected = [r.to_dict() for r in td.scan_rows(data, load_model(chat_dir), options, settings)]
    assert rows == expected and [r["row"] for r in rows] == [0, 1, 2, 3]
    assert {"row", "tokens", "counted", "loss", "warnings"} <= set(rows[0])
    assert [r["dropped"] for r in rows] == [False, True, True, False]


def test_the_table_shows_rows_warnings_and_totals(run_cli, chat_dir, messages_file):
    out, _ = labels_cli(run_cli, messages_file, "--model", chat_dir, "--preset", "assistant-only", "--max-length", "60")
    lines = out.splitlines()
    assert lines[0] == f"{chat_dir}: {messages_file}, 4 rows (messages), preset assistant-only, max_length 60"
    assert any(line.startswith("note: The chat template leaves the assistant's end-of-turn token") for line in lines)
    assert lines[lines.index("  row  tokens  counted     loss") + 1].startswith("    0      60        9 ")
    assert "       ! TRL drops this row: cut to max_length 60" in out
    assert lines[-1].startswith("4 rows: ") and "2 dropped by TRL, 4 with warnings" in lines[-1]


def test_csv_and_packing(run_cli, chat_dir, messages_file):
    out, _ = labels_cli(
        run_cli, messages_file, "--model", chat_dir, "--packing", "--max-length", "30", "--format", "csv"
    )
    table = list(csv.DictReader(io.StringIO(out)))
    assert [row["row"] for row in table] == ["0", "1", "2", "3"] and all(row["tokens"] == "30" for row in table)
    assert sorted({row["pack"] for row in table}) == ["0", "1", "2", "3"] and {row["dropped"] for row in table} == {
        "False"
    }


def test_one_row_is_the_json_contract_with_trls_labels(run_cli, chat_dir, messages_file):
    out, _ = labels_cli(
        run_cli, messages_file, "--model", chat_dir, "--preset", "assistant-only", "--row", "3", "--format", "json"
    )
    (line,) = out.splitlines()
    result = json.loads(line)
    from datasets import Dataset
    from transformers import AutoTokenizer

    from visualizer.analysis.trainer_labels import LabelOptions, TrainerLabels

    tokenizer = AutoTokenizer.from_pretrained(chat_dir)
    trl_row = TrainerLabels(tokenizer, LabelOptions("assistant-only", 1024), True).label_rows(
        Dataset.from_list(MESSAGES)
    )[3]
    assert len(trl_row.labels) == 140  # TRL's default max_length 1024 keeps the row; the model reads 64 of it
    assert result["labels"] == trl_row.labels[:64] and [t["id"] for t in result["tokens"]] == trl_row.input_ids[:64]
    assert "The row was cut to its first 64 tokens for this analysis." in result["notices"]
    assert {"model", "tokens", "labels", "loss", "positions", "notices", "row", "roles", "preset"} <= set(result)
    assert result["row"] == 3 and len(result["roles"]) == len(result["tokens"]) and result["counted"] > 0


def test_one_row_as_a_table_shows_the_tokens_by_role(run_cli, chat_dir, messages_file):
    out, _ = labels_cli(
        run_cli, messages_file, "--model", chat_dir, "--preset", "assistant-only", "--row", "0", "--max-length", "0"
    )
    roles = out.split("tokens by role ([counted]):\n")[1].splitlines()
    assert roles[:2] == ["template   <|im_start|>user↵", "user       the␣dog␣likes"]
    assert roles[-2:] == ["assistant  [food]", "template   [<|im_end|>]"]  # the end-of-turn marker: template text


def test_analyze_chat_uses_the_models_template(run_cli, bundled_lm, tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(chat("What is 2+2?", "4", system="Be brief.")))
    status, out, err = run_cli(["analyze", "--chat", str(path), "--format", "json", "--no-sentence-vocab"])
    assert status == 0, err
    result = json.loads(out)
    assert result["text"].startswith("<|im_start|>system\nBe brief.<|im_end|>") and result["preset"] == "all"
    assert result["labels"] == [t["id"] for t in result["tokens"]] and result["sentence_vocab"] is None
    assert result["roles"].count("assistant") == 1 and "system" in result["roles"]
    path.write_text(json.dumps({"messages": chat("hi", "hello")}))
    status, out, _ = run_cli(["analyze", "--chat", str(path)])
    assert status == 0 and "assistant  [hello]" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["labels", "{missing}"], "There is no file at"),
        (["labels", "{bad}"], "bad.jsonl line 2 is not valid JSON"),
        (["labels", "{unknown}"], "Unknown columns (question): accepted formats are"),
        (["labels", "{chat}", "--preset", "assistant-only"], "no {% generation %} markers"),
        (["labels", "{plain}", "--preset", "assistant-only"], "TRL refuses assistant-only here"),
        (["labels", "{chat}", "--packing", "--max-length", "0"], "Packing needs a max_length"),
        (["labels", "{chat}", "--row", "9"], "Row 9 is past the end"),
        (["labels", "{chat}", "--preset", "nothing"], "invalid choice"),
        (["analyze", "--chat", "{bad}"], "The conversation is not valid JSON"),
        (["analyze", "--chat", "{empty}"], "The conversation is empty"),
        (["analyze", "--chat", "{empty}", "the dog"], "not both"),
        (["analyze"], "Give a TEXT to analyse, or --chat FILE.json."),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, bundled_lm, tmp_path, argv, message):
    files = {
        "missing": tmp_path / "missing.jsonl",
        "bad": tmp_path / "bad.jsonl",
        "unknown": write_jsonl(tmp_path / "unknown.jsonl", [{"question": "a"}]),
        "chat": write_jsonl(tmp_path / "chat.jsonl", MESSAGES[:2]),
        "plain": write_jsonl(tmp_path / "plain.jsonl", PROMPT_COMPLETION),
        "empty": tmp_path / "empty.json",
    }
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{"text": \n')
    (tmp_path / "empty.json").write_text("[]")
    status, out, err = run_cli([a.format(**files) if a.startswith("{") else a for a in argv])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
