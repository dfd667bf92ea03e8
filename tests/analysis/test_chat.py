"""A conversation through the model's own chat template: its ids, each token's role, the labels under a preset,
and the refusals (an empty conversation, a role the template rejects, no template at all)."""

import pytest

from tests.training_data import NO_SYSTEM, chat, save_chat_model
from visualizer.analysis.chat import NO_TEMPLATE, TEMPLATE_ROLE, render_chat
from visualizer.errors import InputError
from visualizer.model.loading import load_model


@pytest.fixture(scope="module")
def chat_lm(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama with a ChatML-like template with generation markers, through the project's loader."""
    return load_model(save_chat_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-chat")))


def test_the_bundled_chatml_template_by_role(bundled_lm):
    messages = chat("What is 2+2?", "4", system="Be brief.")
    render = render_chat(bundled_lm, messages)
    assert render.ids == bundled_lm.tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"]
    pieces = [(role, bundled_lm.decoder.text_of([i])) for i, role in zip(render.ids, render.roles)]
    merged: list[list[str]] = []
    for role, text in pieces:
        if merged and merged[-1][0] == role:
            merged[-1][1] += text
        else:
            merged.append([role, text])
    assert [tuple(m) for m in merged] == [
        (TEMPLATE_ROLE, "<|im_start|>system\n"),
        ("system", "Be brief."),
        (TEMPLATE_ROLE, "<|im_end|>\n<|im_start|>user\n"),
        ("user", "What is 2+2?"),
        (TEMPLATE_ROLE, "<|im_end|>\n<|im_start|>assistant\n"),
        ("assistant", "4"),
        (TEMPLATE_ROLE, "<|im_end|>\n"),
    ]
    assert render.message_of[3] == 0 and render.message_of[0] is None and render.missing == []


def test_the_default_system_prompt_is_template_text(bundled_lm):
    render = render_chat(bundled_lm, chat("hi", "hello"))
    assert render.text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert render.roles[:8] == [TEMPLATE_ROLE] * 8 and "user" in render.roles and "assistant" in render.roles


def test_all_counts_every_token(bundled_lm):
    render = render_chat(bundled_lm, chat("hi", "hello"), preset="all")
    assert render.labels == render.ids and all(render.counted)


def test_assistant_only_counts_what_the_generation_markers_hold(chat_lm):
    messages = chat("the dog likes", "food", "and the cat?", "fish")
    render = render_chat(chat_lm, messages, preset="assistant-only")
    counted_text = "".join(chat_lm.decoder.text_of([i]) for i, c in zip(render.ids, render.counted) if c)
    assert counted_text == "food<|im_end|>fish<|im_end|>"
    assert all(c for c, role in zip(render.counted, render.roles) if role == "assistant")
    assert not any(c for c, role in zip(render.counted, render.roles) if role == "user")


def test_completion_only_on_a_conversation_changes_nothing_and_says_so(chat_lm):
    render = render_chat(chat_lm, chat("the dog likes", "food"), preset="completion-only")
    assert render.labels == render.ids
    assert any("completion-only changes nothing here" in n for n in render.notices)


def test_a_role_the_template_rejects_gives_its_own_message(chat_lm):
    messages = [*chat("the dog likes"), {"role": "tool", "content": "food"}]
    with pytest.raises(InputError) as err:
        render_chat(chat_lm, messages)
    assert str(err.value) == "The chat template refused this conversation: This template has no role tool."


def test_no_chat_template_says_so_and_offers_plain_text(tiny_lm):
    with pytest.raises(InputError) as err:
        render_chat(tiny_lm, chat("hi", "hello"))
    assert str(err.value) == NO_TEMPLATE and "`text` format" in NO_TEMPLATE


@pytest.mark.parametrize("messages", [[], "hi", [{"role": "user"}], [{"role": "user", "content": 3}]])
def test_an_empty_or_malformed_conversation_is_refused(bundled_lm, messages):
    with pytest.raises(InputError):
        render_chat(bundled_lm, messages)


def test_a_template_that_drops_the_system_prompt_is_named(tiny_llama_dir, tmp_path):
    lm = load_model(save_chat_model(tiny_llama_dir, tmp_path / "no-system", template=NO_SYSTEM))
    render = render_chat(lm, chat("the dog likes", "food", system="be brief"))
    assert render.missing == [0] and "system" not in render.roles
    assert any(n.startswith("The chat template drops the system prompt") for n in render.notices)


def test_template_syntax_in_a_message_is_text_not_code(bundled_lm):
    content = "{{ 7 * 7 }} {% for x in range(3) %}x{% endfor %}"
    render = render_chat(bundled_lm, chat(content, "ok"))
    assert content in render.text and "49" not in render.text and "xxx" not in render.text
    assert "user" in render.roles and render.missing == []
