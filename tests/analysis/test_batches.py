"""Padding and batches, and the two shift mistakes, against single-sentence analyses and direct computations."""

import json

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis import batches, shifts
from visualizer.analysis.batches import MAX_BATCH, analyze_batch, pad_id, padded_batch
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze
from visualizer.analysis.shifts import DOUBLE_SHIFT, OFF_BY_ONE, double_shift, off_by_one, target_log_probs
from visualizer.errors import InputError

TEXTS = ["the dog likes food", "the cat likes fish and the dog likes bones", "a quick brown fox"]
TEXT = "the cat likes fish and the dog likes bones"


def _logits(lm, ids):
    """(n, V) float64 logits from a plain forward pass, independent of the package."""
    with torch.no_grad():
        return lm.model(torch.tensor([ids])).logits[0].double()


# ---------------------------------------------------------------- padding


def test_rows_are_right_padded_and_masked(tiny_lm):
    rows, input_ids, attention, labels = padded_batch(TEXTS, tiny_lm)
    pad, is_eos = pad_id(tiny_lm)
    assert is_eos and pad == tiny_lm.tokenizer.eos_token_id  # the tiny tokenizer has no pad token
    width = max(len(r) for r in rows)
    assert input_ids.shape == attention.shape == labels.shape == (3, width)
    for b, ids in enumerate(rows):
        n = len(ids)
        assert input_ids[b, :n].tolist() == ids and input_ids[b, n:].eq(pad).all()
        assert attention[b].tolist() == [1] * n + [0] * (width - n)
        assert labels[b].tolist() == ids + [IGNORE_INDEX] * (width - n)


def test_padded_rows_equal_the_single_sentences(tiny_lm):
    result = analyze_batch(TEXTS, tiny_lm)
    for row, text in zip(result.rows, TEXTS):
        alone = analyze(text, tiny_lm)
        n = len(alone.tokens)
        assert row.length == n and [t.id for t in row.tokens[:n]] == alone.input_ids
        assert row.losses[: n - 1] == pytest.approx([p.loss for p in alone.positions], abs=1e-5)
        assert row.p_target[: n - 1] == pytest.approx([p.p_target for p in alone.positions], abs=1e-6)
        assert all(loss is None for loss in row.losses[n - 1 :])
        assert row.counted == alone.counted and row.loss == pytest.approx(alone.loss, abs=1e-5)


def test_batch_loss_weighs_tokens_and_row_mean_weighs_sentences(tiny_lm):
    result = analyze_batch(TEXTS, tiny_lm)
    alone = [analyze(text, tiny_lm) for text in TEXTS]
    total = sum(a.counted for a in alone)
    assert result.counted == total
    assert result.batch_loss == pytest.approx(sum(a.loss_sum for a in alone) / total, abs=1e-5)
    assert result.mean_of_row_losses == pytest.approx(sum(a.loss for a in alone) / len(alone), abs=1e-5)
    assert abs(result.batch_loss - result.mean_of_row_losses) > 1e-4
    assert result.pad_terms == 0 and result.pads_masked
    counts = ", ".join(str(a.counted) for a in alone)
    assert f"rows count {counts} tokens" in result.explanation and "differ" in result.explanation


def test_equal_lengths_make_the_means_agree(tiny_lm):
    result = analyze_batch(["the dog likes food", "the dog likes food"], tiny_lm)
    assert result.batch_loss == pytest.approx(result.mean_of_row_losses, abs=1e-5)
    assert "agree" in result.explanation


def test_unmasked_pads_add_pad_prediction_terms(tiny_lm):
    right = analyze_batch(TEXTS, tiny_lm)
    wrong = analyze_batch(TEXTS, tiny_lm, mask_pads=False)
    rows, input_ids, attention, _ = padded_batch(TEXTS, tiny_lm)
    width = input_ids.shape[1]
    assert wrong.pad_terms == sum(width - len(r) for r in rows) > 0
    assert wrong.counted == right.counted + wrong.pad_terms
    with torch.no_grad():
        logits = tiny_lm.model(input_ids=input_ids, attention_mask=attention).logits.double()  # (B, T, V)
    every_term = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1))
    assert wrong.batch_loss == pytest.approx(every_term.item(), abs=1e-5)
    assert wrong.batch_loss != pytest.approx(right.batch_loss, abs=1e-3)
    assert "not masked" in wrong.explanation and str(wrong.pad_terms) in wrong.explanation
    # The real tokens' terms are the same either way; only the pad terms were added.
    for r, w in zip(right.rows, wrong.rows):
        assert w.losses[: r.length - 1] == pytest.approx(r.losses[: r.length - 1], abs=1e-6)


def test_batch_json(tiny_lm):
    data = json.loads(json.dumps(analyze_batch(TEXTS[:2], tiny_lm).to_dict()))
    assert set(data) >= {"rows", "batch_loss", "mean_of_row_losses", "loss_sum", "counted", "explanation", "pad_token"}
    assert set(data["rows"][0]) >= {"tokens", "attention_mask", "labels", "losses", "loss", "counted", "length"}


@pytest.mark.parametrize(
    "texts, match",
    [
        ("the dog", "list"),
        (["the dog"], "2 to"),
        (["the dog"] * (MAX_BATCH + 1), "2 to"),
        (["the dog", "the"], "Sentence 2"),
        (["the dog", ""], "empty"),
    ],
)
def test_bad_batches_are_refused(tiny_lm, texts, match):
    with pytest.raises(InputError, match=match):
        analyze_batch(texts, tiny_lm)


def test_long_rows_are_refused(tiny_lm, monkeypatch):
    monkeypatch.setattr(batches, "MAX_ROW_TOKENS", 5)
    with pytest.raises(InputError, match="at most 5"):
        analyze_batch(TEXTS, tiny_lm)


# ---------------------------------------------------------------- shift mistakes


def test_target_log_probs_in_chunks_equal_log_softmax(tiny_lm, monkeypatch):
    monkeypatch.setattr(shifts, "STATS_CHUNK", 3)
    ids = tiny_lm.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    logits = _logits(tiny_lm, ids).float()
    expected = torch.log_softmax(logits, dim=-1)[torch.arange(len(ids) - 1), ids[1:]]
    assert target_log_probs(logits, range(len(ids) - 1), ids[1:]) == pytest.approx(expected.tolist(), abs=1e-5)


def test_double_shift_scores_the_token_after_next(tiny_lm):
    result = double_shift(TEXT, tiny_lm)
    ids = [t.id for t in result.tokens]
    logits = _logits(tiny_lm, ids)
    assert result.mistake == DOUBLE_SHIFT and result.wrong_labels == ids[1:] + [IGNORE_INDEX]
    right = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    wrong = F.cross_entropy(logits[:-2], torch.tensor(ids[2:]), reduction="none")  # logits[k-1] vs ids[k+1]
    assert result.loss == pytest.approx(right.item(), abs=1e-5)
    assert result.wrong_loss == pytest.approx(wrong.mean().item(), abs=1e-5)
    assert result.wrong_counted == len(ids) - 2
    with torch.no_grad():
        reported = tiny_lm.model(torch.tensor([ids]), labels=torch.tensor([result.wrong_labels])).loss
    assert result.wrong_loss == pytest.approx(reported.item(), abs=1e-5)  # what the model would report
    assert [r.wrong_loss for r in result.rows[:-1]] == pytest.approx(wrong.tolist(), abs=1e-5)
    assert [r.wrong_target.id for r in result.rows[:-1]] == ids[2:]
    last = result.rows[-1]
    assert last.wrong_target is None and last.wrong_p is None and last.wrong_loss is None


def test_off_by_one_reads_the_next_row(tiny_lm):
    result = off_by_one(TEXT, tiny_lm)
    alone = analyze(TEXT, tiny_lm)
    ids = alone.input_ids
    logp = torch.log_softmax(_logits(tiny_lm, ids), dim=-1)
    assert result.mistake == OFF_BY_ONE and result.loss == pytest.approx(alone.loss, abs=1e-5)
    assert [r.p for r in result.rows] == pytest.approx([p.p_target for p in alone.positions], abs=1e-6)
    misread = [logp[k, ids[k]].item() for k in range(1, len(ids))]  # logits[k] read as p(token k)
    assert [r.wrong_loss for r in result.rows] == pytest.approx([-v for v in misread], abs=1e-5)
    assert [r.wrong_target.id for r in result.rows] == ids[1:]
    assert result.wrong_loss == pytest.approx(-sum(misread) / len(misread), abs=1e-5)
    assert result.wrong_loss != pytest.approx(result.loss, abs=1e-3)


def test_shift_context_and_json(tiny_lm):
    for result in (double_shift("the dog likes food", tiny_lm), off_by_one("the dog likes food", tiny_lm)):
        assert [r.context for r in result.rows] == ["".join(t.text for t in result.tokens[: r.k]) for r in result.rows]
        data = json.loads(json.dumps(result.to_dict()))
        assert data["counted"] == len(result.tokens) - 1 and data["explanation"]


def test_double_shift_of_two_tokens_scores_nothing(tiny_lm):
    ids = tiny_lm.tokenizer("the dog", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2
    result = double_shift("the dog", tiny_lm)
    assert result.wrong_loss is None and result.wrong_counted == 0 and result.notices


def test_shifts_refuse_a_single_token(tiny_lm):
    with pytest.raises(InputError, match="single token"):
        off_by_one("the", tiny_lm)
