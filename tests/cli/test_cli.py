"""The CLI: formats, the walkthrough from the real model, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_json_one_object_per_text(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(
        ["analyze", "the dog likes food", "a quick fox", "--model", tiny_gpt2_dir, "--format", "json", "--top-k", "3"]
    )
    assert status == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["text"] for o in objects] == ["the dog likes food", "a quick fox"]
    first = objects[0]
    assert first["labels"] == [t["id"] for t in first["tokens"]]
    assert len(first["positions"]) == len(first["tokens"]) - 1 and len(first["positions"][0]["top"]) == 3
    assert first["mean_token_loss"] == pytest.approx(first["loss"], abs=1e-5)


def test_csv_has_a_row_per_position(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(["analyze", "the dog likes food", "--model", tiny_gpt2_dir, "--format", "csv"])
    lines = out.strip().splitlines()
    assert status == 0 and lines[0].startswith("k,context,target")
    assert len(lines) - 1 == json.loads(_json_of(tiny_gpt2_dir, run_cli))["positions"][-1]["k"]


def _json_of(model_dir, run_cli):
    return run_cli(["analyze", "the dog likes food", "--model", model_dir, "--format", "json"])[1]


def test_mask_first_masks_labels(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(
        ["analyze", "the dog likes food", "--model", tiny_gpt2_dir, "--format", "json", "--mask-first", "2"]
    )
    data = json.loads(out)
    assert data["labels"][:2] == [-100, -100] and data["positions"][0]["loss"] is None
    assert data["counted"] == len(data["positions"]) - 1


def test_table_prints_the_walkthrough(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(["analyze", "the dog likes food", "--model", tiny_gpt2_dir])
    assert status == 0
    assert "k=1  input_ids[:1] = 'the' -> labels[1]" in out
    assert "model's own" in out and "perplexity" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", ""], "empty"),
        (["analyze", "   "], "empty"),
        (["analyze", "the"], "single token"),
        (["analyze", "a b", "--top-k", "0"], "Top-K"),
        (["analyze", "a b", "--top-k", "x"], "--top-k"),
        (["analyze", "a b", "--model", "no-such-model"], "Unknown model"),
        (["analyze", "a b", "--format", "xml"], "--format"),
        (["analyze"], "TEXT"),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, message, tiny_gpt2_dir, run_cli):
    if "--model" not in argv:
        argv = [*argv, "--model", tiny_gpt2_dir]
    status, out, err = run_cli(argv)
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_module_entry_point(tiny_gpt2_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "visualizer", "analyze", "", "--model", tiny_gpt2_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == "visualizer: error: Please enter some text: it is empty."


@pytest.mark.slow
def test_walkthrough_from_the_bundled_model(bundled_lm, run_cli):
    status, out, _ = run_cli(["analyze", "the dog likes food"])
    assert status == 0
    assert "input_ids[:3] = 'the dog likes' -> labels[3] = '␣food'" in out
    assert out.count("k=") == 3


def test_json_without_the_walkthrough_table(tiny_gpt2_dir, run_cli):
    args = ["analyze", "the dog likes food", "--model", tiny_gpt2_dir, "--format", "json"]
    full, small = (json.loads(run_cli(a)[1]) for a in (args, [*args, "--no-sentence-vocab"]))
    assert small["sentence_vocab"] is None and full["sentence_vocab"]["probs"]
    assert small["positions"] == full["positions"] and small["loss"] == full["loss"]


def test_json_is_the_same_contract_as_the_pages_download(tiny_gpt2_dir, run_cli, tmp_path):
    """One contract, one encoding: the CLI's line is the app's analysis.json, byte for byte, and it
    holds what json.dumps writes for the result (non-ASCII kept as UTF-8)."""
    from visualizer.analysis.one_pass import analyze
    from visualizer.model.loading import load_model
    from visualizer.service import exports

    text = 'le chien aime 🐕 "vraiment"'
    out = run_cli(["analyze", text, "--model", tiny_gpt2_dir, "--format", "json", "--top-k", "4"])[1]
    result = analyze(text, load_model(tiny_gpt2_dir), top_k=4)
    download = exports.export_file(result, "analysis")
    assert out.encode() == Path(download).read_bytes() + b"\n"
    assert "🐕" in out and json.loads(out) == json.loads(json.dumps(result.to_dict()))
