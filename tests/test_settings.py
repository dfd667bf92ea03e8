"""Settings from the environment: every VISUALIZER_* variable read by Settings.from_env, and used by the CLI."""

import json
from dataclasses import fields

import pytest

from visualizer.settings import BUNDLED_MODEL, Settings

NUMBERS = [f for f in fields(Settings) if type(f.default) is int]
SWITCHES = [f for f in fields(Settings) if type(f.default) is bool]


def env_name(field_name: str) -> str:
    """The variable a field is read from: top_k -> VISUALIZER_TOP_K."""
    return f"VISUALIZER_{field_name.upper()}"


def test_every_field_has_a_variable_of_a_kind_the_environment_can_give():
    assert {f.name for f in fields(Settings)} == {"model", "models"} | {f.name for f in NUMBERS + SWITCHES}


@pytest.mark.parametrize("field", NUMBERS, ids=[f.name for f in NUMBERS])
def test_each_number_is_read_from_its_variable(field):
    value = field.default + 3
    settings = Settings.from_env({env_name(field.name): f" {value} "})
    assert getattr(settings, field.name) == value
    assert {f.name: getattr(settings, f.name) for f in fields(Settings) if f.name != field.name} == {
        f.name: getattr(Settings(), f.name) for f in fields(Settings) if f.name != field.name
    }
    for bad in ("ten", "2.5", "-1"):
        with pytest.raises(ValueError, match=env_name(field.name)):
            Settings.from_env({env_name(field.name): bad})


@pytest.mark.parametrize("field", SWITCHES, ids=[f.name for f in SWITCHES])
def test_each_switch_is_read_from_its_variable(field):
    for raw, on in (("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("no", False), ("", False)):
        assert getattr(Settings.from_env({env_name(field.name): raw}), field.name) is on, raw


def test_the_model_and_the_model_list():
    assert Settings.from_env({}) == Settings() and Settings().model == BUNDLED_MODEL
    one = Settings.from_env({"VISUALIZER_MODEL": " /models/mine "})
    assert one.model == "/models/mine" and one.models == ("/models/mine", BUNDLED_MODEL)  # the default joins the list
    listed = Settings.from_env({"VISUALIZER_MODELS": "a, b,,c ", "VISUALIZER_MODEL": "b"})
    assert listed.model == "b" and listed.models == ("a", "b", "c")
    assert Settings.from_env({"VISUALIZER_MODELS": "a,b"}).models == (BUNDLED_MODEL, "a", "b")
    assert not listed.allows("d") and listed.allows("c")


# ---------------------------------------------------------------- the CLI reads the same variables


@pytest.fixture
def tiny_env(monkeypatch, tiny_gpt2_dir):
    """VISUALIZER_MODEL set to the tiny GPT-2, so the CLI needs no --model."""
    monkeypatch.setenv("VISUALIZER_MODEL", tiny_gpt2_dir)
    return monkeypatch


def test_the_cli_uses_visualizer_model_and_top_k(tiny_env, run_cli, tiny_gpt2_dir):
    tiny_env.setenv("VISUALIZER_TOP_K", "3")
    status, out, _ = run_cli(["analyze", "the dog likes food", "--format", "json"])
    result = json.loads(out)
    assert status == 0 and result["model"] == tiny_gpt2_dir and result["top_k"] == 3
    assert {len(p["top"]) for p in result["positions"]} == {3}
    assert json.loads(run_cli(["analyze", "the dog", "--format", "json", "--top-k", "2"])[1])["top_k"] == 2


def test_the_cli_refuses_what_the_limits_refuse(tiny_env, run_cli):
    tiny_env.setenv("VISUALIZER_MAX_CHARS", "12")
    status, out, err = run_cli(["analyze", "the dog likes food", "--format", "json"])
    assert status == 2 and out == "" and "limit is 12" in err
    assert run_cli(["analyze", "the dog like", "--format", "json"])[0] == 0  # 12 characters: accepted
    tiny_env.setenv("VISUALIZER_MAX_TOP_K", "4")
    assert run_cli(["analyze", "the dog", "--top-k", "4"])[0] == 0
    status, _, err = run_cli(["analyze", "the dog", "--top-k", "5"])
    assert status == 2 and "from 1 to 4" in err


def test_the_cli_cuts_texts_at_max_tokens(tiny_env, run_cli):
    tiny_env.setenv("VISUALIZER_MAX_TOKENS", "5")
    result = json.loads(run_cli(["analyze", "the cat likes fish and the dog likes bones", "--format", "json"])[1])
    assert len(result["tokens"]) == 5 and result["truncated"] and any("cut" in n for n in result["notices"])


def test_engine_entries_come_from_the_environment_and_only_they_open_a_url():
    entry = "vllm:http://10.0.0.5:8000/meta-llama/Llama-3.1-70B-Instruct"
    settings = Settings.from_env(
        {"VISUALIZER_MODELS": f"SmolLM2-135M-Instruct, {entry}", "VISUALIZER_ENGINE_TIMEOUT_S": "5"}
    )
    assert settings.models == ("SmolLM2-135M-Instruct", entry) and settings.engine_timeout_s == 5
    assert settings.allows(entry)
    opened = Settings.from_env({"VISUALIZER_ALLOW_ANY_MODEL": "1"})
    assert opened.allows("someone/any-model") and not opened.allows("vllm:http://169.254.169.254:80/x")
    assert Settings.from_env({"VISUALIZER_MODEL": entry}).models[0] == entry
