"""A table of bad and unusual inputs, each with its expected answer, through the core and the CLI.

Every refusal is an InputError or ModelLoadError with one readable sentence; the CLI prints
that sentence on one line and exits 2. Unusual but valid text (emoji, right-to-left, NUL,
markup) is analysed, never refused. The API's share of the table is in test_app.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.model.test_tokens import bytes_of_display
from visualizer.analysis import training
from visualizer.analysis.generation import Decoding
from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError, ModelLoadError
from visualizer.model.loading import load_model
from visualizer.service.page import run_analysis
from visualizer.settings import Settings

# (row id, text, analyze options, expected message or None for "analysed fine")
ANALYZE_ROWS = [
    ("empty", "", {}, "empty"),
    ("whitespace only", " \n\t  ", {}, "empty"),
    ("one token", "the", {}, "single token"),
    ("lone surrogate", "ab\ud800cd", {}, "not valid Unicode"),
    ("top-k zero", "the dog", {"top_k": 0}, "Top-K"),
    ("top-k negative", "the dog", {"top_k": -3}, "Top-K"),
    ("top-k huge", "the dog", {"top_k": 10**9}, "Top-K"),
    ("top-k float", "the dog", {"top_k": 2.5}, "Top-K"),
    ("top-k string", "the dog", {"top_k": "3"}, "Top-K"),
    ("top-k bool", "the dog", {"top_k": True}, "Top-K"),
    ("mask negative", "the dog", {"mask_first": -1}, "mask_first"),
    ("emoji", "I like 😀🎉 a lot", {}, None),
    ("CJK", "日本語のテキストです", {}, None),
    ("right-to-left", "שלום עולם مرحبا بالعالم", {}, None),
    ("combining marks", "e\u0301 a\u0308 n\u0303", {}, None),
    ("bidi override", "abc \u202edef ghi", {}, None),
    ("NUL and controls", "a\x00b\x07c\x1bd e", {}, None),
    ("markup and script", "<script>alert(1)</script> <img src=x onerror=alert(1)> <b>x</b>", {}, None),
    ("plotly template", "%{x} %{customdata} {{x}}", {}, None),
    ("10,000-character word", "x" * 10_000, {}, None),
    ("over the context", "the dog likes food " * 100, {}, None),
]


@pytest.mark.parametrize("name, text, options, message", ANALYZE_ROWS, ids=[r[0] for r in ANALYZE_ROWS])
def test_core_answers(tiny_gpt2_dir, name, text, options, message):
    lm = load_model(tiny_gpt2_dir)
    if message:
        with pytest.raises(InputError, match=message):
            analyze(text, lm, **options)
        return
    result = analyze(text, lm, **options)
    spelled = b"".join(bytes_of_display(t.display) for t in result.tokens)  # the displays read back as bytes
    assert result.positions and text.encode("utf-8").startswith(spelled)
    assert len(spelled) == len(text.encode("utf-8")) or result.truncated
    assert result.truncated == (len(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) > lm.max_context)
    if result.truncated:
        assert any("cut" in n for n in result.notices)


NOT_FOR_THE_CLI = {"lone surrogate", "top-k string"}  # argv cannot hold a lone surrogate; "3" is a fine CLI value
CLI_ROWS = [r for r in ANALYZE_ROWS if r[0] not in NOT_FOR_THE_CLI]


@pytest.mark.parametrize("name, text, options, message", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_answers(tiny_gpt2_dir, run_cli, name, text, options, message):
    argv = ["analyze", text, "--model", tiny_gpt2_dir, "--format", "json"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    status, out, err = run_cli(argv)
    if message is None:
        assert status == 0 and json.loads(out)["text"] == text
    else:
        assert status == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# (row id, Decoding options, expected message)
DECODING_ROWS = [
    ("temperature zero", {"temperature": 0}, "emperature"),
    ("temperature negative", {"temperature": -1.0}, "emperature"),
    ("temperature NaN", {"temperature": math.nan}, "emperature"),
    ("temperature infinite", {"temperature": math.inf}, "emperature"),
    ("top-p zero", {"temperature": 1.0, "top_p": 0.0}, "op-p"),
    ("top-p above one", {"temperature": 1.0, "top_p": 1.5}, "op-p"),
    ("top-p negative", {"temperature": 1.0, "top_p": -0.1}, "op-p"),
    ("sampling top-k zero", {"temperature": 1.0, "top_k": 0}, "op-k"),
    ("no new tokens", {"max_new_tokens": 0}, "new tokens"),
    ("too many new tokens", {"max_new_tokens": 201}, "new tokens"),
    ("fractional new tokens", {"max_new_tokens": 2.5}, "new tokens"),
]


@pytest.mark.parametrize("name, options, message", DECODING_ROWS, ids=[r[0] for r in DECODING_ROWS])
def test_generation_settings_are_refused(name, options, message):
    with pytest.raises(InputError, match=message):
        Decoding(**options)


# (row id, steps, optimizer, lr, expected message)
TRAINING_ROWS = [
    ("zero steps", 0, "adamw", None, "Steps"),
    ("too many steps", 51, "adamw", None, "Steps"),
    ("fractional steps", 2.5, "adamw", None, "Steps"),
    ("unknown optimizer", 5, "adam-ish", None, "optimizer"),
    ("learning rate zero", 5, "sgd", 0.0, "learning rate"),
    ("learning rate negative", 5, "sgd", -0.1, "learning rate"),
    ("learning rate huge", 5, "adamw", 10.0, "learning rate"),
    ("learning rate NaN", 5, "adamw", math.nan, "learning rate"),
]


@pytest.mark.parametrize("name, steps, optimizer, lr, message", TRAINING_ROWS, ids=[r[0] for r in TRAINING_ROWS])
def test_training_settings_are_refused(name, steps, optimizer, lr, message):
    with pytest.raises(InputError, match=message):
        training.validate_options(steps, optimizer, lr)


# ---------------------------------------------------------------- models


def remote_code_dir(tmp_path: Path, source: str) -> str:
    """A copy of a tiny model whose config asks for custom code (auto_map)."""
    for item in Path(source).iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    config["model_type"] = "evil-custom"
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    return str(tmp_path)


def test_a_model_that_needs_remote_code_is_refused(tmp_path, tiny_gpt2_dir):
    with pytest.raises(ModelLoadError, match="Could not load"):
        load_model(remote_code_dir(tmp_path, tiny_gpt2_dir))


@pytest.mark.parametrize(
    "model, message",
    [
        ("gpt2", "not offered"),
        ("../../etc", "not offered"),
        ("/etc/passwd", "not offered"),
        ("", "not offered"),
    ],
)
def test_the_service_loads_only_configured_models(tiny_gpt2_dir, model, message):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    with pytest.raises(InputError, match=message):
        run_analysis("the dog", settings, model=model or " ")


def test_the_service_refuses_text_over_the_character_limit(tiny_gpt2_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), max_chars=100)
    with pytest.raises(InputError, match="limit is 100"):
        run_analysis("x" * 101, settings)
    assert run_analysis("x" * 100, settings).positions


@pytest.mark.parametrize(
    ("value", "at_least", "answer"),
    [
        (3, None, 3),
        (3.0, 0, 3),
        (0, 0, 0),
        (2.5, None, "N must be a whole number, not 2.5."),
        (True, None, "N must be a whole number, not True."),
        ("3", None, "N must be a whole number, not '3'."),
        (float("nan"), 0, "N must be a whole number, 0 or more, not nan."),
        (-1, 0, "N must be a whole number, 0 or more, not -1."),
    ],
)
def test_a_form_field_is_a_whole_number_or_one_sentence_saying_what_came(value, at_least, answer):
    from visualizer.service.inputs import whole_number

    if isinstance(answer, int):
        assert whole_number(value, "N", at_least) == answer and type(whole_number(value, "N", at_least)) is int
        return
    with pytest.raises(InputError) as refused:
        whole_number(value, "N", at_least)
    assert str(refused.value) == answer
