"""LoRA adapters: loaded on a copy of their base through the registry, their numbers PEFT's own merged model's,
the shared base unchanged, and every faulty adapter refused with one sentence."""

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import LORA_TEXT
from visualizer.analysis.lens import logit_lens
from visualizer.analysis.one_pass import analyze
from visualizer.analysis.training import train_on_text
from visualizer.errors import ModelLoadError
from visualizer.model.adapters import adapter_base, check_adapter_base, is_adapter
from visualizer.model.loading import LoadedModel, load_model
from visualizer.settings import BUNDLED_MODEL

TEXTS = [LORA_TEXT, "the cat likes fish and the dog likes bones"]


def ids_of(lm: LoadedModel, text: str) -> torch.Tensor:
    """The text's ids as a batch of one, on the model's device."""
    return torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]], device=lm.device)


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    """Full logits of one forward pass, without gradients."""
    with torch.no_grad():
        return model(ids.to(next(model.parameters()).device)).logits[0].float().cpu()


def peft_models(adapter_dir: str, base_model):
    """The test's own references, straight from PEFT on a copy of `base_model`: merged, and not merged."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(copy.deepcopy(base_model), adapter_dir).merge_and_unload().eval()
    unmerged = PeftModel.from_pretrained(copy.deepcopy(base_model), adapter_dir).eval()
    return merged, unmerged


def fresh_base(which: str, tiny_llama_dir: str, bundled_lm: LoadedModel | None):
    """The base weights loaded independently of the registry (the tiny Llama) or copied (the bundled model)."""
    if which == "tiny":
        from transformers import LlamaForCausalLM

        return LlamaForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return copy.deepcopy(bundled_lm.model).cpu()


@pytest.fixture(params=["tiny", pytest.param("bundled", marks=pytest.mark.slow)])
def adapter(request, tiny_llama_dir, tiny_lora_dir):
    """(which, the adapter directory, the base's registry name, the bundled model or None) for each test adapter."""
    if request.param == "tiny":
        return "tiny", tiny_lora_dir, tiny_llama_dir, None
    return "bundled", request.getfixturevalue("bundled_lora_dir"), BUNDLED_MODEL, request.getfixturevalue("bundled_lm")


def test_an_adapter_directory_is_recognised_by_its_config(tiny_lora_dir, tiny_llama_dir):
    assert is_adapter(tiny_lora_dir) and adapter_base(tiny_lora_dir) == tiny_llama_dir
    assert json.loads((Path(tiny_lora_dir) / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert (Path(tiny_lora_dir) / "adapter_model.safetensors").is_file()
    odd = ("x" * 5000, "a\x00b", "~no-such-user-here/adapter")  # not paths at all: not adapters, no error
    for other in (tiny_llama_dir, BUNDLED_MODEL, "vllm:http://127.0.0.1:9/x", "", "someone/model", *odd):
        assert not is_adapter(other) and adapter_base(other) is None


def test_the_adapter_gives_peft_merged_numbers(adapter, tiny_llama_dir):
    which, adapter_dir, base_name, bundled = adapter
    lm = load_model(adapter_dir)
    assert isinstance(lm, LoadedModel) and lm.name == adapter_dir and lm.source == "adapter" and lm.base == base_name
    assert load_model(adapter_dir) is lm  # one registry entry, loaded once
    assert not lm.model.training and all(not p.requires_grad for p in lm.model.parameters())
    assert not any("lora" in type(m).__name__.lower() for m in lm.model.modules())  # merged: a plain model
    assert lm.tokenizer is load_model(base_name).tokenizer

    base = fresh_base(which, tiny_llama_dir, bundled)
    merged, unmerged = peft_models(adapter_dir, base)
    for text in TEXTS:
        ids = ids_of(lm, text)
        ours, want = logits_of(lm.model, ids), logits_of(merged, ids)
        assert (ours - want).abs().max().item() <= 1e-5
        torch.testing.assert_close(ours, logits_of(unmerged, ids), rtol=1e-5, atol=1e-4)  # merged: rounding only
        losses = F.cross_entropy(want[:-1], ids[0, 1:].cpu(), reduction="none")
        analysis = analyze(text, lm, top_k=5)
        assert [p.loss for p in analysis.positions] == pytest.approx(losses.tolist(), abs=1e-5)
        assert analysis.loss == pytest.approx(losses.mean().item(), abs=1e-5)
        before = F.cross_entropy(logits_of(base, ids)[:-1], ids[0, 1:].cpu(), reduction="none")
        assert (losses - before).abs().max().item() > 1e-3  # training moved the numbers
    trained_on = ids_of(lm, LORA_TEXT)
    assert F.cross_entropy(logits_of(lm.model, trained_on)[:-1], trained_on[0, 1:].cpu()) < F.cross_entropy(
        logits_of(base, trained_on)[:-1], trained_on[0, 1:].cpu()
    )


def test_loading_an_adapter_leaves_the_shared_base_unchanged(adapter, tmp_path):
    _, adapter_dir, base_name, _ = adapter
    base = load_model(base_name)
    ids = ids_of(base, LORA_TEXT)
    before = logits_of(base.model, ids)
    adapted = {n: p.detach().clone() for n, p in base.model.named_parameters() if "q_proj" in n or "v_proj" in n}
    classes = [type(m) for m in base.model.modules()]

    fresh = str(tmp_path / "again")  # another name: a load of its own, whatever earlier tests loaded
    shutil.copytree(adapter_dir, fresh)
    lm = load_model(fresh)
    assert lm.model is not base.model and load_model(base_name) is base
    assert [type(m) for m in base.model.modules()] == classes  # no LoRA layer injected into the shared base
    assert all(torch.equal(p, adapted[n]) for n, p in base.model.named_parameters() if n in adapted)
    assert torch.equal(logits_of(base.model, ids), before)
    assert not torch.equal(logits_of(lm.model, ids), before)
    assert lm.model.get_input_embeddings().weight.data_ptr() != base.model.get_input_embeddings().weight.data_ptr()


def test_every_view_reaching_inside_the_model_reads_the_merged_adapter(tiny_lora_dir):
    lm = load_model(tiny_lora_dir)
    lens = logit_lens(LORA_TEXT, lm)  # the final norm and head are found where a plain Llama keeps them
    assert lens.model == tiny_lora_dir and lens.layers == lm.model.config.num_hidden_layers + 1
    ids = ids_of(lm, TEXTS[1])
    before = logits_of(lm.model, ids)
    run = train_on_text(TEXTS[1], lm, steps=3, seed=0)  # Train: a private copy of the merged weights
    assert run.losses[0] == pytest.approx(analyze(TEXTS[1], lm).loss, abs=1e-6)  # from the adapter's numbers
    assert run.losses[-1] < run.losses[0] and torch.equal(logits_of(lm.model, ids), before)


# ---------------------------------------------------------------- refusals


def broken_copy(tiny_lora_dir: str, tmp_path: Path, **config) -> str:
    """A copy of the tiny adapter with `config` written over its adapter_config.json (None removes a key)."""
    path = tmp_path / "adapter"
    shutil.copytree(tiny_lora_dir, path)
    raw = json.loads((path / "adapter_config.json").read_text())
    for key, value in config.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (path / "adapter_config.json").write_text(json.dumps(raw))
    return str(path)


def test_pickle_adapter_weights_are_refused_with_the_reason(tiny_lora_dir, tmp_path):
    path = broken_copy(tiny_lora_dir, tmp_path)
    (Path(path) / "adapter_model.safetensors").rename(Path(path) / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match=r"only as pickle \(adapter_model.bin\).*not loaded for safety"):
        load_model(path)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"base_model_name_or_path": "vllm:http://127.0.0.1:9/m"}, "a vLLM server runs"),
        ({"base_model_name_or_path": None}, "names no base model"),
        ({"base_model_name_or_path": "  "}, "names no base model"),
        ({"base_model_name_or_path": "/no/such/base"}, "which did not load: Unknown model"),
        ({"peft_type": "PROMPT_TUNING"}, "PROMPT_TUNING adapter; only LoRA adapters load"),
    ],
)
def test_a_faulty_adapter_config_is_one_sentence(tiny_lora_dir, tmp_path, config, message):
    with pytest.raises(ModelLoadError, match=message) as caught:
        load_model(broken_copy(tiny_lora_dir, tmp_path, **config))
    assert "\n" not in str(caught.value)


def test_an_adapter_on_an_adapter_is_refused(tiny_lora_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="an adapter on another adapter"):
        load_model(broken_copy(tiny_lora_dir, tmp_path, base_model_name_or_path=tiny_lora_dir))


def test_unreadable_config_and_missing_weights_are_refused(tiny_lora_dir, tmp_path):
    path = Path(broken_copy(tiny_lora_dir, tmp_path))
    (path / "adapter_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="holds no adapter_model.safetensors"):
        load_model(str(path))
    (path / "adapter_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable adapter_config.json"):
        load_model(str(path))


def test_an_adapter_missing_some_of_its_weights_is_refused(tiny_lora_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    path = Path(broken_copy(tiny_lora_dir, tmp_path))
    weights = load_file(path / "adapter_model.safetensors")
    dropped = sorted(weights)[0]
    save_file({k: v for k, v in weights.items() if k != dropped}, path / "adapter_model.safetensors")
    with pytest.raises(ModelLoadError, match=f"lacks 1 of its weights .*first: {dropped}"):
        load_model(str(path))


def test_the_base_must_be_allowed(tiny_lora_dir, tiny_llama_dir):
    check_adapter_base(tiny_lora_dir, lambda name: name == tiny_llama_dir)
    check_adapter_base(tiny_llama_dir, lambda name: False)  # not an adapter: nothing to check here
    with pytest.raises(ModelLoadError, match=f"a LoRA adapter on '{tiny_llama_dir}', which is not a model offered"):
        check_adapter_base(tiny_lora_dir, lambda name: name == tiny_lora_dir)
