"""The analysis core against independent computations and invariants, on tiny random models."""

import math

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis.one_pass import IGNORE_INDEX, analyze, make_labels
from visualizer.errors import InputError

TEXT = "the cat likes fish and the dog likes bones"


P_TOL = {"abs": 1e-6, "rel": 5e-5}
LOSS_TOL = {"abs": 3e-5, "rel": 5e-5}
"""float32 softmax against the test's float64 one: 8e-6 apart at p = 0.45 over a 49,152-token vocabulary; and the
test's own forward pass is a second float32 pass, whose sums may run in another order (threads): 2.0e-5 apart
relative at p = 0.18 in one CI run on 2 busy cores. A wrong row or token is off by far more."""
SUM_TOL = {"abs": 5e-5}
"""'all other tokens' is 1 minus the sentence's probabilities, so it carries their absolute errors, at most P_TOL's
rel times their sum (<= 1): the bundled model's float32 log-softmax is 3.4e-5 off float64 in log p at a logit of
32, which left 'other' 2.35e-5 off at position 18 of a mixed-script text (the same in every run). The entropy
too: a shift d of every log p moves -sum p log p by about d (1 - H), 1.1e-5 at H = 0.46 there."""


def check_against_own_forward_pass(result, lm, top_k):
    """Every per-position number of `result` equals the test's own forward pass, softmax and cross-entropy.

    The rank counts the strictly more probable tokens in the test's own float32 log-softmax, so a tie with the
    target does not push it down; `other` is the probability of every token not in the sentence, summed directly."""
    ids, labels = result.input_ids, result.labels
    inputs = torch.tensor([ids])
    with torch.no_grad():
        logits32 = lm.model(inputs).logits[0].float()  # (n, V)
        own_loss = lm.model(inputs, labels=torch.tensor([labels])).loss if result.counted else None
    logits = logits32.double()
    p = torch.softmax(logits, dim=-1)  # (n, V)
    logp32 = torch.log_softmax(logits32, dim=-1)
    targets = torch.tensor(ids[1:])
    ce = F.cross_entropy(logits[:-1], torch.tensor(labels[1:]), ignore_index=IGNORE_INDEX, reduction="none")
    in_sentence = torch.zeros(p.shape[-1], dtype=torch.bool)
    in_sentence[torch.tensor(sorted(set(ids)))] = True
    columns = list(dict.fromkeys(ids))
    assert [t.id for t in result.vocab.columns] == columns
    assert len(result.positions) == len(ids) - 1
    for j, pos in enumerate(result.positions):
        row, t = p[j], targets[j]
        assert pos.k == j + 1 and pos.target.id == ids[j + 1]
        assert pos.p_target == pytest.approx(row[t].item(), **P_TOL)
        assert pos.rank == int((logp32[j] > logp32[j, t]).sum()) + 1
        assert pos.entropy == pytest.approx(-(row * torch.log(row)).nansum().item(), **SUM_TOL, rel=2e-5)
        top_p, top_ids = row.topk(min(top_k, len(row)))
        assert [c.p for c in pos.top] == pytest.approx(top_p.tolist(), **P_TOL)
        assert [row[c.token.id].item() for c in pos.top] == pytest.approx(top_p.tolist(), **P_TOL)  # ids with those p
        assert len({c.token.id for c in pos.top}) == len(pos.top)
        if len(set(top_p.float().tolist())) == len(top_p):  # no tie inside the top-K: the ids are fixed
            assert [c.token.id for c in pos.top] == top_ids.tolist()
        assert result.vocab.probs[j] == pytest.approx(row[columns].tolist(), **P_TOL)
        assert result.vocab.other[j] == pytest.approx(row[~in_sentence].sum().item(), **SUM_TOL)
        assert result.vocab.target_column[j] == columns.index(ids[j + 1])
        one_hot = torch.tensor([float(c == ids[j + 1]) for c in columns])
        expected_diff = [*(row[columns] - one_hot).abs().tolist(), row[~in_sentence].sum().item()]
        assert result.vocab.abs_diff(j) == pytest.approx(expected_diff, **SUM_TOL)
        if labels[j + 1] == IGNORE_INDEX:
            assert pos.loss is None and pos.masked
        else:
            assert pos.loss == pytest.approx(ce[j].item(), **LOSS_TOL) and not pos.masked
    counted = [j for j in range(len(ids) - 1) if labels[j + 1] != IGNORE_INDEX]
    assert result.counted == len(counted)
    if counted:
        assert result.loss == pytest.approx(own_loss.item(), abs=1e-5, rel=1e-5)
        assert result.mean_token_loss == pytest.approx(ce[counted].mean().item(), **LOSS_TOL)
        assert result.loss_sum == pytest.approx(ce[counted].sum().item(), abs=3e-5 * len(counted), rel=1e-5)
    else:
        assert result.loss is None and result.mean_token_loss is None


OPTION_CASES = {
    "plain": {},
    "masked": {"mask_first": 3, "masked": [5]},
    "bos": {"bos": True},
    "bos and masked": {"bos": True, "mask_first": 2, "masked": [4, 6]},
    "top-1": {"top_k": 1},
    "top-50": {"top_k": 50},
}


@pytest.mark.parametrize("options", OPTION_CASES.values(), ids=OPTION_CASES.keys())
@pytest.mark.parametrize("text", [TEXT, "the dog likes the food"])
def test_every_number_equals_the_tests_own_forward_pass(tiny_lm, text, options):
    result = analyze(text, tiny_lm, **{"top_k": 7, **options})
    if options.get("bos"):
        assert result.input_ids[0] == tiny_lm.tokenizer.bos_token_id
    masked = [i for i, label in enumerate(result.labels) if label == IGNORE_INDEX]
    assert len(masked) == min(len(result.labels), options.get("mask_first", 0) + len(options.get("masked", [])))
    check_against_own_forward_pass(result, tiny_lm, result.top_k)


@pytest.mark.slow
@pytest.mark.parametrize("text", ["the dog likes food", "Q: 2+2? A: 4. The capital of France is Paris. 😀 日本語"])
def test_the_bundled_model_equals_its_own_forward_pass(bundled_lm, text):
    for options in ({}, {"bos": True, "mask_first": 3}):
        result = analyze(text, bundled_lm, top_k=10, **options)
        check_against_own_forward_pass(result, bundled_lm, 10)


@pytest.fixture
def tied_lm(tiny_lm):
    """A copy of a tiny model whose output head gives the sentence's tokens one shared row: at every position
    they tie exactly, so the rank of a target counts only the tokens that are strictly more probable."""
    import copy

    from visualizer.model.loading import LoadedModel

    model = copy.deepcopy(tiny_lm.model)
    ids = tiny_lm.tokenizer(TIED_TEXT, add_special_tokens=False)["input_ids"]
    head = model.get_output_embeddings().weight  # (V, d)
    with torch.no_grad():
        head[torch.tensor(sorted(set(ids)))] = head[ids[0]].clone()
    return LoadedModel("tied", model, tiny_lm.tokenizer, tiny_lm.decoder, "directory")


TIED_TEXT = "the dog likes the food and the cat"


def test_a_target_tied_with_other_tokens_counts_only_the_strictly_more_probable(tied_lm):
    result = analyze(TIED_TEXT, tied_lm, top_k=50)
    with torch.no_grad():
        logits = tied_lm.model(torch.tensor([result.input_ids])).logits[0, :-1]  # (n-1, V)
    distinct = sorted(set(result.input_ids))
    for j, pos in enumerate(result.positions):
        tied = logits[j, distinct]
        assert bool((tied == tied[0]).all()) and len(distinct) > 3  # the construction took: a real tie
        assert pos.rank == int((logits[j] > logits[j, pos.target.id]).sum()) + 1
    check_against_own_forward_pass(result, tied_lm, 50)


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


@pytest.mark.slow
def test_bytes_the_tokenizer_drops_are_noticed(bundled_lm):
    """The bundled vocabulary has no token for the byte 0x04: the tokenizer leaves it out without a word."""
    from visualizer.analysis.one_pass import NOT_SPELLED

    dropped = analyze("a\x04b c", bundled_lm)
    assert b"".join(bundled_lm.decoder.token_bytes(i) for i in dropped.input_ids) == b"ab c"
    assert NOT_SPELLED in dropped.notices
    for text, options in (
        ("the dog likes food", {}),
        ("日本語 😀 e\u0301", {"bos": True}),
        ("the dog likes food " * 5, {"max_tokens": 6}),
    ):
        assert NOT_SPELLED not in analyze(text, bundled_lm, **options).notices


@pytest.mark.parametrize(
    "pieces, text, truncated, spelled",
    [
        ([b"the", b" dog"], "the dog", False, True),
        ([b" the", b" dog"], "the dog", False, True),  # a SentencePiece tokenizer's prefix space is not a change
        ([b" the", b" dog"], " the dog", False, True),
        ([b"the", b"dog"], "the dog", False, False),  # a dropped space is
        ([b"the", b" d"], "the dog", True, True),  # a cut text: the tokens spell its start
        ([b"the", b" do", b"x"], "the dog", True, False),
    ],
)
def test_spells_the_text_compares_bytes(pieces, text, truncated, spelled):
    from types import SimpleNamespace

    from visualizer.analysis.one_pass import spells_the_text

    lm = SimpleNamespace(decoder=SimpleNamespace(bytes_of_tokens=lambda ids: [pieces[i] for i in ids]))
    assert spells_the_text(lm, text, list(range(len(pieces))), truncated) is spelled


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

    from visualizer.analysis.one_pass import Candidate, Position, contexts  # the result's types, importable as before

    result = analyze(TEXT, tiny_lm, top_k=3)
    twin = copy.deepcopy(result)
    assert twin == result and twin.decoder is result.decoder and twin.arrays is not result.arrays
    assert isinstance(twin.positions[0], Position) and isinstance(twin.positions[0].top[0], Candidate)
    assert contexts(tiny_lm.decoder, result.input_ids) == result.contexts
