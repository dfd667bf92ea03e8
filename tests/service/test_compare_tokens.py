"""Compare on the page's own tokens: a conversation (chat template ids, TRL's assistant-only labels) read by a base
model and its LoRA adapter as they are, each position's loss the test's own cross-entropy under each model; a model
with another vocabulary is one sentence; the page's Compare button takes this path when the page shows a
conversation."""

import pytest
import torch
import torch.nn.functional as F

from tests.training_data import chat, save_chat_model
from visualizer.errors import InputError
from visualizer.model.loading import load_model
from visualizer.service import training_data as td
from visualizer.service.compare import compare_views
from visualizer.service.compare_tokens import compare_on_tokens
from visualizer.settings import Settings
from visualizer.ui.compare_tab import make_compare_handlers


@pytest.fixture(scope="module")
def held(tiny_llama_dir, tmp_path_factory):
    """A two-turn conversation rendered by the tiny Llama's ChatML-like template, assistant turns counted only."""
    lm = load_model(save_chat_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-chat")))
    messages = chat("the dog likes", "food")  # its answer inside the tiny context of 64 tokens
    return td.analyze_chat(messages, lm, Settings(), preset="assistant-only", top_k=3).analysis


def own_losses(name: str, ids: list[int], labels: list[int]) -> list[float | None]:
    """The test's own −ln p of each counted next token under model `name` (None where the label is -100)."""
    lm = load_model(name)
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0, :-1].float()  # (n-1, V)
    losses = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none").tolist()
    return [loss if label != -100 else None for loss, label in zip(losses, labels[1:])]


def test_base_and_adapter_read_the_conversations_tokens_and_labels_as_they_are(held, tiny_llama_dir, tiny_lora_dir):
    settings = Settings(models=(tiny_llama_dir, tiny_lora_dir))
    assert held.source == "a conversation" and -100 in held.labels and set(held.labels) != {-100}
    compared = compare_on_tokens(held, settings, tiny_llama_dir, tiny_lora_dir, None, top_k=3)
    assert compared.same_tokens and compared.positions.gaps == 0
    for side, name in ((compared.a, tiny_llama_dir), (compared.b, tiny_lora_dir)):
        assert side.input_ids == held.input_ids and side.labels == held.labels and side.model == name
        want = own_losses(name, held.input_ids, held.labels)
        got = [p.loss for p in side.positions]
        assert [g is None for g in got] == [w is None for w in want]
        assert [g for g in got if g is not None] == pytest.approx([w for w in want if w is not None], abs=1e-5)
    assert compared.a.loss != pytest.approx(compared.b.loss, abs=1e-4)  # the adapter changes the numbers
    assert "a conversation" in compared.note
    bars = compare_views(compared, "loss per position").difference.data[0]
    counted = [j for j, label in enumerate(held.labels[1:]) if label != -100]
    a, b = compared.a.positions, compared.b.positions
    assert [y for y in bars.y if y is not None] == pytest.approx([b[j].loss - a[j].loss for j in counted], abs=1e-6)


def test_a_model_with_another_vocabulary_is_one_sentence(held, tiny_llama_dir, other_tokenizer_dir):
    settings = Settings(models=(tiny_llama_dir, other_tokenizer_dir))
    with pytest.raises(InputError, match="has another vocabulary .* compare it on a text"):
        compare_on_tokens(held, settings, tiny_llama_dir, other_tokenizer_dir, None)


def test_the_compare_button_reads_the_conversation_the_page_shows(held, tiny_llama_dir, tiny_lora_dir):
    handlers = make_compare_handlers(Settings(model=tiny_llama_dir, models=(tiny_llama_dir, tiny_lora_dir)))
    args = ("a typed text", tiny_llama_dir, tiny_lora_dir, "loss per position", 3, False, False, "none", 0, "", [])
    compared, note, *_ = handlers.compare(*args, held=held, model=tiny_llama_dir)
    assert compared.a.input_ids == held.input_ids and "a conversation" in note
    typed, note, *_ = handlers.compare(*args, held=None, model=tiny_llama_dir)
    assert typed.a.text == "a typed text" and "conversation" not in note
