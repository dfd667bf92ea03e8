"""`visualizer analyze TEXT --model ADAPTER_DIR`: a LoRA adapter's numbers; a faulty adapter is one line, exit 2."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import LORA_TEXT


def peft_merged_losses(base_dir: str, adapter_dir: str, text: str) -> list[float]:
    """−ln p of each next token under PEFT's own merged model, loaded here from the two directories."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().eval()
    ids = torch.tensor([AutoTokenizer.from_pretrained(base_dir)(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = merged(ids).logits[0]
    return F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none").tolist()


def test_analyze_an_adapter(tiny_lora_dir, tiny_llama_dir, run_cli):
    status, out, err = run_cli(["analyze", LORA_TEXT, "--model", tiny_lora_dir, "--format", "json"])
    assert status == 0, err
    result = json.loads(out)
    assert result["model"] == tiny_lora_dir and result["backend"] == "transformers"
    want = peft_merged_losses(tiny_llama_dir, tiny_lora_dir, LORA_TEXT)
    assert [p["loss"] for p in result["positions"]] == pytest.approx(want, abs=1e-5)
    assert result["loss"] == pytest.approx(sum(want) / len(want), abs=1e-5)


@pytest.mark.parametrize(
    "fault, message",
    [
        ("pickle", "holds its adapter weights only as pickle (adapter_model.bin)"),
        ("no base", "which did not load: Unknown model"),
        ("engine base", "which a vLLM server runs"),
    ],
)
def test_a_faulty_adapter_is_one_line_and_status_2(tiny_lora_dir, tiny_llama_dir, tmp_path, run_cli, fault, message):
    path = tmp_path / "adapter"
    shutil.copytree(tiny_lora_dir, path)
    config = path / "adapter_config.json"
    if fault == "pickle":
        (path / "adapter_model.safetensors").rename(path / "adapter_model.bin")
    else:
        base = str(tmp_path / "missing") if fault == "no base" else "vllm:http://127.0.0.1:9/m"
        config.write_text(config.read_text().replace(json.dumps(tiny_llama_dir), json.dumps(base)))
    status, out, err = run_cli(["analyze", LORA_TEXT, "--model", str(path)])
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
