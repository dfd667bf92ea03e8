"""What the tests of fine-tuning data share: a ChatML-like template with generation markers, the tiny Llama saved
with it, rows of each format, and a real TRL SFTTrainer's prepared dataset to compare with."""

from __future__ import annotations

import json
from pathlib import Path

CHATML_WITH_GENERATION = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('This template has no role ' + message['role']) }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
"""ChatML, its assistant turns (with their end-of-turn marker) inside {% generation %}; an unknown role raises."""

NO_SYSTEM = (
    "{%- for message in messages if message['role'] != 'system' -%}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}"
    "{%- endfor -%}"
)
"""A template that silently drops the system prompt."""


def save_chat_model(tiny_llama_dir: str, path: Path, template: str = CHATML_WITH_GENERATION) -> str:
    """The tiny Llama and its tokenizer saved into `path` with `template` as the chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tokenizer.chat_template = template
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def chat(*turns: str, system: str | None = None) -> list[dict]:
    """Alternating user / assistant messages, a system prompt first when given."""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]


MESSAGES = [
    {"messages": chat("the dog likes", "food")},
    {"messages": chat("a quick brown fox", "jumps over the lazy dog", system="be brief")},
    {"messages": chat("the cat likes fish and the dog likes bones and the cat likes", "fish")},
    {"messages": chat("hi", "the dog", "and the cat?", "likes fish and the dog likes bones")},
]
"""Conversations (65 to 140 tokens of the tiny tokenizer): rows 1 and 2's answers start past token 60."""
PROMPT_COMPLETION = [
    {"prompt": "the dog likes", "completion": " food"},
    {"prompt": "the cat likes fish and the dog likes bones and", "completion": " a quick brown fox"},
    {"prompt": "a quick", "completion": " brown fox jumps over the lazy dog and the cat likes fish"},
]
PROMPT_COMPLETION_CHAT = [
    {"prompt": chat("the dog likes"), "completion": [{"role": "assistant", "content": "food"}]},
    {"prompt": chat("the cat likes fish and the dog likes bones", system="be"), "completion": chat("", "fish")[1:]},
]
TEXT = [{"text": "the dog likes food"}, {"text": "a quick brown fox jumps over the lazy dog and the cat"}]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    """Rows as JSON Lines into `path`."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def trl_trainer(model_dir: str, rows: list[dict], tmp_path, **config):
    """A real `trl.SFTTrainer` on the tiny model and `rows` (its own freshly loaded tokenizer), built with
    SFTConfig(output_dir=tmp_path, report_to=[], dataset_num_proc=None, **config) on the CPU."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = SFTConfig(output_dir=str(tmp_path), report_to=[], dataset_num_proc=None, bf16=False, use_cpu=True, **config)
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
