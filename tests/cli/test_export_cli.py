"""`visualizer export-model DIR`: writes a checkpoint transformers reloads; refuses a non-empty DIR, a model the
settings do not offer, and an unknown model, each with one line and exit status 2."""

import pytest
import torch

from visualizer.model import loading


@pytest.fixture
def any_model(monkeypatch):
    """Settings that allow any model name (as VISUALIZER_ALLOW_ANY_MODEL=1 does for local use)."""
    monkeypatch.setenv("VISUALIZER_ALLOW_ANY_MODEL", "1")


def test_export_writes_a_checkpoint_that_transformers_reloads(any_model, run_cli, tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    status, out, err = run_cli(["export-model", str(tmp_path / "out"), "--model", tiny_llama_dir])
    assert status == 0, err
    (line,) = out.splitlines()
    assert line == (
        f"{tiny_llama_dir}: wrote 5 files, 0.2 MB, to {tmp_path / 'out'} "
        "(config.json, generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json)"
    )
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch.float32).eval()
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, loading.load_model(tiny_llama_dir).model(ids).logits)


def test_a_non_empty_directory_is_refused_before_any_model_loads(any_model, run_cli, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(loading, "load_model", lambda name: pytest.fail("loaded a model for a refused directory"))
    status, out, err = run_cli(["export-model", str(tmp_path), "--model", "any/model"])
    assert status == 2 and not out
    assert err == f"visualizer: error: '{tmp_path}' is not empty: give a new or empty directory to export into.\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_model_the_settings_do_not_offer_is_refused(run_cli, tiny_gpt2_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("VISUALIZER_ALLOW_ANY_MODEL", raising=False)
    monkeypatch.delenv("VISUALIZER_MODELS", raising=False)
    status, out, err = run_cli(["export-model", str(tmp_path / "out"), "--model", tiny_gpt2_dir])
    assert status == 2 and not out and len(err.splitlines()) == 1
    assert f"Model '{tiny_gpt2_dir}' is not one this installation offers" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_model_is_one_line_and_status_2(any_model, run_cli, tmp_path):
    status, out, err = run_cli(["export-model", str(tmp_path / "out"), "--model", "no-such-model"])
    assert status == 2 and not out
    assert err == "visualizer: error: Unknown model 'no-such-model': no such directory, and not a hub id.\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_directory_argument_is_one_line(run_cli):
    status, _, err = run_cli(["export-model"])
    assert status == 2 and len(err.splitlines()) == 1 and "DIR" in err


@pytest.mark.slow
def test_the_default_model_exports_by_default(bundled_lm, run_cli, tmp_path):
    status, out, err = run_cli(["export-model", str(tmp_path / "smollm2")])
    assert status == 0, err
    assert out.startswith("SmolLM2-135M-Instruct: wrote 6 files, 541.6 MB, to ")
    assert (tmp_path / "smollm2" / "chat_template.jinja").is_file()


def test_an_adapter_exports_merged_only_when_its_base_is_offered(
    run_cli, tiny_lora_dir, tiny_llama_dir, tmp_path, monkeypatch
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    monkeypatch.delenv("VISUALIZER_ALLOW_ANY_MODEL", raising=False)
    monkeypatch.setenv("VISUALIZER_MODELS", tiny_lora_dir)  # the adapter alone: its base is not offered
    status, out, err = run_cli(["export-model", str(tmp_path / "refused"), "--model", tiny_lora_dir])
    assert status == 2 and not out and len(err.splitlines()) == 1
    assert f"is a LoRA adapter on '{tiny_llama_dir}', which is not a model offered here" in err
    assert not (tmp_path / "refused").exists()

    monkeypatch.setenv("VISUALIZER_MODELS", f"{tiny_lora_dir},{tiny_llama_dir}")
    status, out, err = run_cli(["export-model", str(tmp_path / "merged"), "--model", tiny_lora_dir])
    assert status == 0, err

    def base():
        return AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()

    merged = PeftModel.from_pretrained(base(), tiny_lora_dir).merge_and_unload().eval()  # PEFT's own merge
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    ids = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, merged(ids).logits, atol=1e-5)
        assert not torch.allclose(reloaded(ids).logits, base()(ids).logits, atol=1e-3)  # the adapter is in it
