"""The exported checkpoint (and the weight cache, written the same way): plain transformers reloads it with the
same logits, tied embeddings are stored under the input embedding's name (what vLLM reads), the tokenizer's chat
template and the config survive without GGUF's quantization_config, and a non-empty directory is refused."""

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from visualizer.errors import InputError
from visualizer.model import loading
from visualizer.model.export import WEIGHTS_FILE, check_export_directory, export_checkpoint
from visualizer.model.loading import load_gguf, load_model

TEXTS = ["the dog likes food", "café naïve 日本語 😀 emoji and accents"]  # short enough for the tiny models


def _keys(directory) -> set[str]:
    with safe_open(str(Path(directory) / WEIGHTS_FILE), "pt") as f:
        return set(f.keys())


def _reload(directory):
    """The directory through plain transformers, as any other program would read it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(directory)


def _same_logits(lm, model, tokenizer) -> None:
    for text in TEXTS:
        ids = lm.tokenizer(text, return_tensors="pt").input_ids  # (1, n)
        assert tokenizer(text, return_tensors="pt").input_ids.tolist() == ids.tolist()
        with torch.no_grad():
            ours, theirs = lm.model(ids.to(lm.device)).logits.cpu(), model(ids).logits  # (1, n, V)
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-6), (ours - theirs).abs().max()


@pytest.mark.slow
def test_the_bundled_model_exports_to_a_checkpoint_transformers_reads_with_the_same_logits(bundled_lm, tmp_path):
    files = export_checkpoint(bundled_lm, None, tmp_path / "smollm2")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    keys = _keys(tmp_path / "smollm2")
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" not in keys  # tied: stored once, as vLLM reads
    model, tokenizer = _reload(tmp_path / "smollm2")
    assert model.config.tie_word_embeddings and not hasattr(model.config, "quantization_config")
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    _same_logits(bundled_lm, model, tokenizer)
    assert tokenizer.chat_template and tokenizer.chat_template == bundled_lm.tokenizer.chat_template
    chat = [{"role": "user", "content": "What is 2+2?"}]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == bundled_lm.tokenizer.apply_chat_template(
        chat, tokenize=False
    )


@pytest.mark.slow
def test_the_bundled_models_weight_cache_stores_the_embedding_under_its_own_name(bundled_lm):
    (weights,) = loading.cache_root().glob("SmolLM2-135M-Instruct.Q4_1-*/model.safetensors")
    keys = _keys(weights.parent)
    assert "model.embed_tokens.weight" in keys and "lm_head.weight" not in keys
    assert json.loads((weights.parent / "manifest.json").read_text())["format"] == loading._CACHE_FORMAT >= 2


def test_each_tiny_model_reloads_with_the_same_logits(tiny_lm, tmp_path):
    export_checkpoint(tiny_lm.model, tiny_lm.tokenizer, tmp_path / "out")
    model, tokenizer = _reload(tmp_path / "out")
    _same_logits(tiny_lm, model, tokenizer)
    keys = _keys(tmp_path / "out")
    if tiny_lm.model.config.tie_word_embeddings:  # GPT-2 ties its head to wte; the tiny Llama does not
        assert "transformer.wte.weight" in keys and "lm_head.weight" not in keys
    else:
        assert {"model.embed_tokens.weight", "lm_head.weight"} <= keys
    assert len(keys) == len({p.data_ptr() for p in tiny_lm.model.state_dict().values()})  # every tensor, once


@pytest.fixture
def tied_llama(tmp_path, tiny_tokenizer):
    """A tiny Llama whose output head is its input embedding (as SmolLM2's), with GGUF's quantization_config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).eval()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.config.quantization_config = {"quant_method": "gguf"}  # what a GGUF load leaves in the config
    return model


def test_the_gguf_weight_cache_stores_tied_embeddings_as_the_input_embedding(
    tied_llama, tiny_tokenizer, tmp_path, monkeypatch
):
    """A 'GGUF' whose conversion gives the tied tiny Llama: the cache holds model.embed_tokens.weight, which is
    what vLLM reads (a cache holding only lm_head.weight served an all-zero embedding there)."""
    path = tmp_path / "tied.gguf"
    path.write_bytes(b"GGUF stand-in")
    real = loading._from_pretrained

    def from_pretrained(where, **kwargs):
        return (copy.deepcopy(tied_llama), tiny_tokenizer) if "gguf_file" in kwargs else real(where, **kwargs)

    monkeypatch.setattr(loading, "_from_pretrained", from_pretrained)
    monkeypatch.setenv("VISUALIZER_CACHE", str(tmp_path / "cache"))
    assert load_gguf(path)[2] == "gguf"
    (cache,) = (tmp_path / "cache").iterdir()
    assert _keys(cache) == {n for n in tied_llama.state_dict() if n != "lm_head.weight"}
    assert "quantization_config" not in json.loads((cache / "config.json").read_text())
    cached, _, source = load_gguf(path)
    assert source == "cache"
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(cached(ids).logits, tied_llama(ids).logits)


def test_a_non_empty_directory_or_a_file_is_refused(tiny_gpt2_dir, tmp_path):
    lm = load_model(tiny_gpt2_dir)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="is not empty"):
        export_checkpoint(lm, None, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]  # nothing written, nothing removed
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_export_directory(tmp_path / "a-file")
    (tmp_path / "empty").mkdir()
    assert "model.safetensors" in export_checkpoint(lm, None, tmp_path / "empty")  # an empty one is fine
    assert "model.safetensors" in export_checkpoint(lm, None, tmp_path / "new" / "nested")  # and a new one


def test_the_weights_file_is_as_readable_as_the_config(tiny_gpt2_dir, tmp_path):
    export_checkpoint(load_model(tiny_gpt2_dir), None, tmp_path / "out")
    mode = (tmp_path / "out" / "config.json").stat().st_mode & 0o777
    assert (tmp_path / "out" / WEIGHTS_FILE).stat().st_mode & 0o777 == mode
