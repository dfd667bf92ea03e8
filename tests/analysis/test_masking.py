"""Masking a prompt by a marker, and the chat example whose answer alone counts."""

import copy
import io
import json

import pytest

from visualizer.analysis.masking import chat_example, mask_until, starts_by_decoding, tokens_before
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze
from visualizer.cli import main
from visualizer.errors import InputError
from visualizer.model.loading import LoadedModel
from visualizer.model.tokens import TokenDecoder

TEXT = "the cat likes fish and the dog likes bones"


def _prefix_lengths(result, n):
    """Characters covered by the first n-1 and the first n tokens, from the decoded token texts."""
    texts = [t.text for t in result.tokens]
    return len("".join(texts[: n - 1])), len("".join(texts[:n]))


@pytest.mark.parametrize("marker", ["the", "cat", "likes fish", "and the d", TEXT])
def test_mask_until_ends_at_the_marker(tiny_lm, marker):
    masked = mask_until(TEXT, marker, tiny_lm)
    result = analyze(TEXT, tiny_lm, masked=masked)
    end = TEXT.index(marker) + len(marker)
    n = len(masked)
    assert masked == list(range(n))
    before_last, covered = _prefix_lengths(result, n)
    assert before_last < end <= covered  # the last masked token is the one holding the marker's end
    assert result.labels[:n] == [IGNORE_INDEX] * n and result.labels[n:] == result.input_ids[n:]


def test_masked_loss_is_the_mean_of_the_rest(tiny_lm):
    full = analyze(TEXT, tiny_lm)
    n = len(mask_until(TEXT, "fish", tiny_lm))
    masked = analyze(TEXT, tiny_lm, masked=mask_until(TEXT, "fish", tiny_lm))
    kept = [p.loss for p in full.positions if p.k >= n]
    assert masked.counted == len(kept) == len(full.positions) - (n - 1)
    assert masked.loss_sum == pytest.approx(sum(kept), abs=1e-5)
    assert masked.loss == pytest.approx(masked.loss_sum / masked.counted, abs=1e-5)


def test_masking_label_0_changes_nothing_and_label_1_removes_one_term(tiny_lm):
    """What the page's hint for 'first N tokens' says: nothing predicts label 0, so N = 1 is N = 0."""
    none, first, two = (analyze(TEXT, tiny_lm, mask_first=n) for n in (0, 1, 2))
    assert first.labels[0] == IGNORE_INDEX and none.labels[0] != IGNORE_INDEX
    assert (first.loss, first.counted) == (none.loss, none.counted)
    assert two.counted == none.counted - 1
    assert two.loss_sum == pytest.approx(none.loss_sum - none.positions[0].loss)


def test_bos_shifts_the_indices(tiny_lm):
    plain = mask_until(TEXT, "cat", tiny_lm)
    with_bos = mask_until(TEXT, "cat", tiny_lm, bos=True)
    assert with_bos == list(range(len(plain) + 1))


@pytest.mark.parametrize("marker", ["", "zebra", None])
def test_bad_marker_is_refused(tiny_lm, marker):
    with pytest.raises(InputError, match="marker"):
        mask_until(TEXT, marker, tiny_lm)


@pytest.mark.parametrize("text", [TEXT, "café naïve 日本語 😀 über → 🐕", "def f(x):\n\treturn x + 1\n"])
def test_decoded_starts_match_the_offsets(tiny_lm, text):
    ids = tiny_lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    offsets = tiny_lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert starts_by_decoding(ids, tiny_lm, len(text)) == [s for s, _ in offsets]


class _NoOffsets:
    """A tokenizer that, like a slow one, cannot return offsets."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, text, **kwargs):
        if kwargs.get("return_offsets_mapping"):
            raise NotImplementedError("no offsets")
        return self.inner(text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_slow_tokenizer_falls_back_to_decoding(tiny_lm):
    slow = LoadedModel(tiny_lm.name, tiny_lm.model, _NoOffsets(tiny_lm.tokenizer), tiny_lm.decoder, "directory")
    for marker in ("cat", "and the d", "bones"):
        assert mask_until(TEXT, marker, slow) == mask_until(TEXT, marker, tiny_lm)


def test_chat_example_without_template_counts_only_the_answer(tiny_lm):
    assert not getattr(tiny_lm.tokenizer, "chat_template", None)
    ex = chat_example("What does the dog like?", "The dog likes food.", tiny_lm)
    assert not ex.templated and ex.text == "User: What does the dog like?\nAssistant: The dog likes food."
    result = analyze(ex.text, tiny_lm, mask_first=ex.prompt_tokens)
    answer = "".join(t.text for t in result.tokens[ex.prompt_tokens :])
    assert answer == " The dog likes food."
    assert "".join(t.text for t in result.tokens[: ex.prompt_tokens]) == ex.prompt_text
    assert result.counted == len(result.tokens) - ex.prompt_tokens
    assert ex.masked == list(range(ex.prompt_tokens))
    json.dumps(ex.to_dict())


def test_chat_example_uses_the_template(tiny_gpt2_dir):
    from visualizer.model.loading import load_model

    base = load_model(tiny_gpt2_dir)
    tokenizer = copy.deepcopy(base.tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}<|endoftext|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|endoftext|>assistant\n{% endif %}"
    )
    lm = LoadedModel("templated", base.model, tokenizer, TokenDecoder(tokenizer), "directory")
    ex = chat_example("hi", "the dog likes food", lm)
    assert ex.templated
    assert ex.text == "<|endoftext|>user\nhi\n<|endoftext|>assistant\nthe dog likes food\n"
    assert ex.prompt_text == "<|endoftext|>user\nhi\n<|endoftext|>assistant\n"
    result = analyze(ex.text, lm, masked=ex.masked)
    assert "".join(t.text for t in result.tokens[ex.prompt_tokens :]) == "the dog likes food\n"
    assert ex.prompt_tokens == tokens_before(ex.text, len(ex.prompt_text), lm)


@pytest.mark.parametrize("prompt, answer", [("", "x"), ("x", "  ")])
def test_chat_example_needs_both_parts(tiny_lm, prompt, answer):
    with pytest.raises(InputError, match="empty"):
        chat_example(prompt, answer, tiny_lm)


def test_cli_mask_until(tiny_gpt2_dir, capsys):
    out = io.StringIO()
    argv = ["analyze", TEXT, "--model", tiny_gpt2_dir, "--format", "json", "--mask-until", "likes"]
    assert main(argv, out=out) == 0
    data = json.loads(out.getvalue())
    n = data["labels"].index(next(label for label in data["labels"] if label != IGNORE_INDEX))
    assert "".join(t["text"] for t in data["tokens"][:n]) == "the cat likes"
    assert main([*argv[:-1], "zebra"], out=io.StringIO()) == 2
    assert "does not occur" in capsys.readouterr().err


@pytest.mark.slow
def test_bundled_chat_template_masks_the_prompt(bundled_lm):
    ex = chat_example("What does the dog like?", "The dog likes food.", bundled_lm)
    assert ex.templated and ex.prompt_text.endswith("<|im_start|>assistant\n")
    result = analyze(ex.text, bundled_lm, mask_first=ex.prompt_tokens)
    answer = [t.text for t in result.tokens[ex.prompt_tokens :]]
    assert "".join(answer) == "The dog likes food.<|im_end|>\n"
    assert result.counted == len(answer)
    assert mask_until(ex.text, "<|im_start|>assistant\n", bundled_lm) == ex.masked
    assert result.loss == pytest.approx(result.loss_sum / result.counted, abs=1e-4)
