"""The analysis core against independent computations and invariants, on tiny random models."""

import math

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis import IGNORE_INDEX, analyze, make_labels
from visualizer.errors import InputError

TEXT = "the cat likes fish and the dog likes bones"


def _reference(lm, ids):
    """Logits and log-probs computed directly, independent of the package: (n, V)."""
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0].double()
    return logits, torch.log_softmax(logits, dim=-1)


def test_per_position_loss_equals_cross_entropy(tiny_lm):
    result = analyze(TEXT, tiny_lm)
    ids = result.input_ids
    logits, _ = _reference(tiny_lm, ids)
    expected = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="none")
    assert [p.loss for p in result.positions] == pytest.approx(expected.tolist(), abs=1e-5)
    assert result.loss == pytest.approx(expected.mean().item(), abs=1e-5)


def test_mean_equals_model_loss(tiny_lm):
    result = analyze(TEXT, tiny_lm)
    assert result.counted == len(result.positions) == len(result.tokens) - 1
    assert result.mean_token_loss == pytest.approx(result.loss, abs=1e-5)
    assert result.loss_sum / result.counted == pytest.approx(result.loss, abs=1e-5)
    assert result.perplexity == pytest.approx(math.exp(result.loss))


def test_masked_positions_leave_the_mean(tiny_lm):
    full = analyze(TEXT, tiny_lm)
    masked = analyze(TEXT, tiny_lm, mask_first=3, masked=[5])
    assert masked.labels[:3] == [IGNORE_INDEX] * 3 and masked.labels[5] == IGNORE_INDEX
    assert masked.labels[3] == full.input_ids[3]
    kept = [p.loss for p in full.positions if p.k not in (1, 2, 5)]
    assert masked.counted == len(kept)
    assert masked.mean_token_loss == pytest.approx(sum(kept) / len(kept), abs=1e-5)
    assert masked.loss == pytest.approx(masked.mean_token_loss, abs=1e-5)
    assert [p.masked for p in masked.positions][:5] == [True, True, False, False, True]
    # Masking changes which positions count, never what the model predicts.
    assert [p.p_target for p in masked.positions] == pytest.approx([p.p_target for p in full.positions])


def test_everything_masked_has_no_loss(tiny_lm):
    result = analyze(TEXT, tiny_lm, mask_first=100)
    assert result.loss is None and result.mean_token_loss is None and result.counted == 0
    assert result.notices


def test_probabilities_ranks_and_entropy(tiny_lm):
    result = analyze(TEXT, tiny_lm, top_k=7)
    _, logp = _reference(tiny_lm, result.input_ids)
    for pos in result.positions:
        row = logp[pos.k - 1]
        assert row.exp().sum().item() == pytest.approx(1.0, abs=1e-6)
        assert pos.p_target == pytest.approx(row[pos.target.id].exp().item(), abs=1e-6)
        order = torch.argsort(row, descending=True).tolist()
        assert pos.rank == order.index(pos.target.id) + 1
        assert [c.token.id for c in pos.top] == order[:7]
        probs = [c.p for c in pos.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert pos.entropy == pytest.approx(-(row.exp() * row).sum().item(), abs=1e-5)


def test_sentence_vocab_table_sums_to_one(tiny_lm):
    result = analyze("the dog likes the food", tiny_lm)
    vocab = result.vocab
    assert [t.display for t in vocab.columns] == [t.display for t in dict((t.id, t) for t in result.tokens).values()]
    for row, pos in enumerate(result.positions):
        assert sum(vocab.probs[row]) + vocab.other[row] == pytest.approx(1.0, abs=1e-5)
        assert vocab.columns[vocab.target_column[row]].id == pos.target.id
        assert vocab.probs[row][vocab.target_column[row]] == pytest.approx(pos.p_target, abs=1e-6)
        diff = vocab.abs_diff(row)
        assert diff[vocab.target_column[row]] == pytest.approx(1 - pos.p_target, abs=1e-6)
        assert diff[-1] == pytest.approx(vocab.other[row])


def test_contexts_follow_the_shift(tiny_lm):
    result = analyze("the dog likes food", tiny_lm)
    text = "".join(t.text for t in result.tokens)
    assert text == "the dog likes food"
    for pos in result.positions:
        assert pos.context == "".join(t.text for t in result.tokens[: pos.k])
        assert pos.target == result.tokens[pos.k]


def test_bos_scores_the_first_token(tiny_lm):
    plain = analyze("the dog", tiny_lm)
    with_bos = analyze("the dog", tiny_lm, bos=True)
    assert with_bos.bos and with_bos.input_ids[0] == tiny_lm.tokenizer.bos_token_id
    assert with_bos.input_ids[1:] == plain.input_ids
    assert len(with_bos.positions) == len(plain.positions) + 1
    assert with_bos.positions[0].target.id == plain.input_ids[0]


def test_long_text_is_truncated_to_context(tiny_lm):
    result = analyze("the dog likes food " * 40, tiny_lm)
    assert result.truncated and len(result.tokens) == tiny_lm.max_context == 64
    assert any("cut" in n for n in result.notices)
    assert not analyze(TEXT, tiny_lm).truncated


def test_max_tokens_setting_truncates(tiny_lm):
    assert len(analyze(TEXT, tiny_lm, max_tokens=5).tokens) == 5


def test_json_contract_keys(tiny_lm):
    data = analyze(TEXT, tiny_lm, top_k=3).to_dict()
    for key in ("model", "text", "tokens", "labels", "loss", "mean_token_loss", "perplexity", "truncated", "positions"):
        assert key in data
    pos = data["positions"][0]
    assert set(pos) >= {"k", "context", "target", "p_target", "rank", "loss", "entropy", "top"}
    assert set(pos["target"]) == {"id", "text", "display"}
    assert set(pos["top"][0]) == {"id", "text", "display", "p"} and len(pos["top"]) == 3


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(tiny_lm, text):
    with pytest.raises(InputError, match="empty"):
        analyze(text, tiny_lm)


def test_one_token_is_refused(tiny_lm):
    with pytest.raises(InputError, match="single token"):
        analyze("the", tiny_lm)


@pytest.mark.parametrize("top_k", [0, -1, 51, 2.5, "3", None, True])
def test_bad_top_k_is_refused(tiny_lm, top_k):
    with pytest.raises(InputError, match="Top-K"):
        analyze(TEXT, tiny_lm, top_k=top_k)


def test_make_labels_example():
    assert make_labels(4, mask_first=2) == [-100, -100, 0, 0]
    assert make_labels(3, masked=[1, 7]) == [0, -100, 0]
    with pytest.raises(InputError):
        make_labels(3, mask_first=-1)


# ---------------------------------------------------------------- the arrays and the views built from them


def test_positions_are_built_from_the_arrays_on_demand(tiny_lm):
    result = analyze(TEXT, tiny_lm, top_k=4, masked=(3,))
    arrays, positions = result.arrays, result.positions
    n = len(result.tokens) - 1
    assert len(positions) == n == len(arrays.rank) == arrays.top_ids.shape[0]
    assert positions[-1] is positions[n - 1] and positions[1:3] == [positions[1], positions[2]]
    assert positions == list(positions) and positions[::-1] == list(positions)[::-1]
    with pytest.raises(IndexError):
        positions[n]
    with pytest.raises(ValueError):  # read-only: a Position once built cannot disagree with the arrays
        arrays.p_target[0] = 0.5
    for j, pos in enumerate(positions):
        assert (pos.k, pos.context, pos.target) == (j + 1, result.contexts[j], result.tokens[j + 1])
        assert (pos.p_target, pos.rank, pos.entropy) == (arrays.p_target[j], arrays.rank[j], arrays.entropy[j])
        assert pos.loss == (None if j == 2 else -float(arrays.logp[j]))
        assert [c.token.id for c in pos.top] == arrays.top_ids[j].tolist()
        assert [c.p for c in pos.top] == arrays.top_p[j].tolist()
        assert [c.token for c in pos.top] == tiny_lm.decoder.tokens(arrays.top_ids[j].tolist())


def test_json_contract_from_the_arrays_equals_each_position_object(tiny_lm):
    result = analyze(TEXT + " 🐕\n", tiny_lm, top_k=3, mask_first=2)
    contract = result.to_dict()
    assert contract["positions"] == [pos.to_dict() for pos in result.positions]
    vocab, table = result.vocab, contract["sentence_vocab"]
    assert table["abs_diff"] == [vocab.abs_diff(r) for r in range(len(result.positions))]
    assert table["probs"] == [vocab.predicted(r)[:-1] for r in range(len(result.positions))]
    assert table["other"] == [vocab.predicted(r)[-1] for r in range(len(result.positions))]


def test_analyses_compare_by_their_numbers(tiny_lm):
    first, again = analyze(TEXT, tiny_lm, top_k=3), analyze(TEXT, tiny_lm, top_k=3)
    assert first == again and first.arrays == again.arrays and first.vocab == again.vocab
    assert first != analyze(TEXT, tiny_lm, top_k=3, mask_first=2) and first != analyze(TEXT, tiny_lm, top_k=4)


def test_a_copied_result_shares_its_decoder_and_keeps_its_numbers(tiny_lm):
    import copy

    from visualizer.analysis import Candidate, Position, contexts  # the result's types, importable as before

    result = analyze(TEXT, tiny_lm, top_k=3)
    twin = copy.deepcopy(result)
    assert twin == result and twin.decoder is result.decoder and twin.arrays is not result.arrays
    assert isinstance(twin.positions[0], Position) and isinstance(twin.positions[0].top[0], Candidate)
    assert contexts(tiny_lm.decoder, result.input_ids) == result.contexts
