"""The lesson's extra runs (a masked prompt, a padded batch, a few training steps) against the test's own
forward passes and F.cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis.batches import pad_id
from visualizer.analysis.lesson import (
    LESSON_STEPS,
    after_training,
    companion_text,
    open_questions,
    prompt_length,
)
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze

TEXT = "the cat likes fish and the dog likes bones"


def _own_loss(lm, rows: list[list[int]], mask_first: int = 0, mask_pads: bool = True) -> float:
    """The mean cross-entropy of a right-padded batch, shifted by hand: independent of the package."""
    pad, _ = pad_id(lm)
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])  # (B, T)
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])  # (B, T)
    labels = ids.clone()
    labels[:, :mask_first] = IGNORE_INDEX
    if mask_pads:
        labels[attention == 0] = IGNORE_INDEX
    with torch.no_grad():
        logits = lm.model(input_ids=ids, attention_mask=attention).logits.double()  # (B, T, V)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX).item()


@pytest.mark.parametrize(("n", "expected"), [(1, 0), (2, 0), (3, 2), (4, 2), (5, 2), (9, 4), (40, 20)])
def test_the_prompt_is_about_half_and_never_everything(n, expected):
    assert prompt_length(n) == expected
    assert prompt_length(n) < n  # at least one prediction still counts


def test_the_masked_prompt_changes_the_mean_as_cross_entropy_does(tiny_lm):
    full = analyze(TEXT, tiny_lm)
    answers = open_questions(full, tiny_lm)
    m = prompt_length(len(full.tokens))
    assert answers.prompt_tokens == m and answers.masked is not None
    assert answers.masked.labels[:m] == [IGNORE_INDEX] * m and answers.masked.labels[m:] == full.input_ids[m:]
    assert answers.masked.counted == len(full.tokens) - m
    assert answers.masked.mean_token_loss == pytest.approx(_own_loss(tiny_lm, [full.input_ids], m), abs=1e-5)
    assert answers.full.mean_token_loss == pytest.approx(_own_loss(tiny_lm, [full.input_ids]), abs=1e-5)


def test_the_padded_batch_counts_pads_only_when_asked(tiny_lm):
    full = analyze(TEXT, tiny_lm)
    answers = open_questions(full, tiny_lm)
    short = analyze(answers.companion, tiny_lm).input_ids
    assert len(short) < len(full.input_ids)
    rows = [full.input_ids, short]
    assert answers.pads_masked.batch_loss == pytest.approx(_own_loss(tiny_lm, rows), abs=1e-5)
    assert answers.pads_counted.batch_loss == pytest.approx(_own_loss(tiny_lm, rows, mask_pads=False), abs=1e-5)
    assert answers.pads_counted.pad_terms == len(full.input_ids) - len(short) > 0
    assert answers.pads_masked.pad_terms == 0


def test_the_companion_is_the_first_half_of_the_tokens(tiny_lm):
    full = analyze(TEXT, tiny_lm)
    half = max(2, len(full.tokens) // 2)
    assert companion_text(full) == tiny_lm.tokenizer.decode(full.input_ids[:half])
    with_bos = analyze(TEXT, tiny_lm, bos=True)
    assert companion_text(with_bos) == companion_text(full)  # the BOS is not text


def test_a_two_token_text_has_no_prompt_and_no_batch(tiny_lm):
    ids = tiny_lm.tokenizer("ab")["input_ids"]
    text = tiny_lm.tokenizer.decode(ids[:2])
    two = analyze(text, tiny_lm)
    assert len(two.tokens) == 2
    answers = open_questions(two, tiny_lm)
    assert answers.masked is None and answers.companion is None and answers.pads_masked is None


def test_training_changes_a_copy_and_keeps_only_numbers(tiny_lm):
    before_weights = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    full = analyze(TEXT, tiny_lm)
    result = after_training(full, tiny_lm)
    assert result.run.trained is None  # the copy's weights are not kept
    assert len(result.run.history) - 1 == LESSON_STEPS and result.run.optimizer == "adamw"
    assert result.before.mean_token_loss == pytest.approx(full.mean_token_loss, abs=1e-6)
    assert result.after.mean_token_loss < result.before.mean_token_loss
    assert result.after.mean_token_loss == pytest.approx(result.run.history[-1].loss, abs=1e-5)
    for name, value in tiny_lm.model.state_dict().items():
        assert torch.equal(value, before_weights[name]), name
    again = after_training(full, tiny_lm)  # a fixed seed: the class sees the same numbers each time
    assert again.after.mean_token_loss == pytest.approx(result.after.mean_token_loss, abs=1e-6)


def test_training_keeps_the_pages_masked_labels(tiny_lm):
    masked = analyze(TEXT, tiny_lm, mask_first=3)
    result = after_training(masked, tiny_lm)
    assert result.before.labels == masked.labels == result.after.labels
    assert result.before.mean_token_loss == pytest.approx(masked.mean_token_loss, abs=1e-6)
