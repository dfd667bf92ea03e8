"""Edges of the loss, shift, mask and rank code that the main tests never reach, each checked against the
test's own float64 softmax / `F.cross_entropy`: logits holding -inf, exact ties, statistics and loss split
into several chunks, exactly one counted label, the would-be loss of masked positions, and odd inputs.

These tests were written to kill the mutants that survived the mutation run described in TESTING.md.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis import one_pass as analysis
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze, make_labels
from visualizer.errors import InputError

TEXT = "the cat likes fish and the dog likes bones"


def reference_stats(logits: torch.Tensor, targets: list[int], top_k: int, columns: list[int]) -> dict:
    """The test's own per-position numbers for (c, V) logits: float64 softmax, entropy with 0 * log 0 = 0,
    rank = 1 + the tokens strictly more probable in float32 (so a tie does not push the target down)."""
    logp = torch.log_softmax(logits.double(), dim=-1)  # (c, V)
    p = logp.exp()
    logp32 = torch.log_softmax(logits.float(), dim=-1)
    rows = torch.arange(len(targets))
    t = torch.tensor(targets)
    k = min(top_k, logits.shape[-1])
    return {
        "logp": logp[rows, t],
        "p": p[rows, t],
        "rank": (logp32 > logp32[rows, t][:, None]).sum(dim=1) + 1,
        "ent": torch.where(p > 0, -p * logp, torch.zeros_like(p)).sum(dim=1),
        "top_p": p.topk(k, dim=1).values,
        "columns_p": p[:, columns],
    }


def assert_stats_equal(stats: dict, expected: dict, logits: torch.Tensor) -> None:
    """Every statistic equals the reference; top-K ids name tokens that have the top-K probabilities."""
    for name in ("logp", "p", "ent", "top_p", "columns_p"):
        assert stats[name].double().numpy() == pytest.approx(expected[name].numpy(), abs=1e-6, rel=1e-5), name
    assert stats["rank"].tolist() == expected["rank"].tolist()
    p = torch.softmax(logits.double(), dim=-1)
    chosen = p.gather(1, stats["top_i"])  # (c, K): the probabilities of the ids the code picked
    assert chosen.numpy() == pytest.approx(expected["top_p"].numpy(), abs=1e-6, rel=1e-5)
    assert all(len(set(row)) == len(row) for row in stats["top_i"].tolist())


@pytest.fixture
def awkward_logits():
    """(6, 40) logits: ordinary rows, a row with -inf (a banned token), a row of equal logits, a row where
    the target ties with two others for the top, and a row where the target is the only finite logit."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 40, generator=gen) * 3
    logits[1, 10:25] = -math.inf
    logits[2] = 0.5
    logits[3, [4, 5, 7]] = logits[3].max().item() + 1
    logits[4] = -math.inf
    logits[4, 9] = 2.0
    targets = [1, 3, 7, 5, 9, 39]
    return logits, targets


@pytest.mark.parametrize("top_k", [1, 6, 50])
def test_statistics_of_logits_with_minus_infinity_and_ties(awkward_logits, top_k):
    logits, targets = awkward_logits
    columns = [0, 3, 5, 9, 12]
    stats = analysis._position_stats(logits, targets, top_k, columns)
    expected = reference_stats(logits, targets, top_k, columns)
    assert stats["top_p"].shape == (6, min(top_k, 40)) and stats["top_i"].shape == (6, min(top_k, 40))
    assert torch.isfinite(stats["ent"]).all()  # 0 * log 0 is 0, not NaN
    assert stats["rank"].dtype == stats["top_i"].dtype == torch.long  # whole numbers, exact at any vocabulary size
    assert {stats[name].dtype for name in ("logp", "p", "ent", "top_p", "columns_p")} == {torch.float32}
    assert stats["rank"][2] == 1 and stats["rank"][3] == 1  # ties: nothing strictly more probable
    assert stats["ent"][4] == pytest.approx(0.0, abs=1e-6) and stats["p"][4] == pytest.approx(1.0)
    assert stats["ent"][2] == pytest.approx(math.log(40), rel=1e-5)  # uniform: ln V
    assert_stats_equal(stats, expected, logits)


@pytest.mark.parametrize("cache_elements, stats_chunk", [(80, 512), (10, 512), (1 << 19, 4)])
def test_statistics_split_into_chunks_equal_one_pass(awkward_logits, monkeypatch, cache_elements, stats_chunk):
    """Chunks of 2 rows (CACHE_ELEMENTS / V), of 1 row (fewer elements than one row) and of STATS_CHUNK rows
    give the same numbers as the reference, the last chunk shorter than the others."""
    logits, targets = awkward_logits
    monkeypatch.setattr(analysis, "CACHE_ELEMENTS", cache_elements)
    monkeypatch.setattr(analysis, "STATS_CHUNK", stats_chunk)
    step = analysis._chunk_rows(logits)
    assert step == {80: 2, 10: 1}.get(cache_elements, 4) and step < len(targets)
    stats = analysis._position_stats(logits, targets, 5, [1, 2])
    assert_stats_equal(stats, reference_stats(logits, targets, 5, [1, 2]), logits)


def test_chunk_rows_off_the_cpu_is_stats_chunk():
    """On an accelerator the chunk is STATS_CHUNK rows whatever the vocabulary (a meta tensor stands in for it)."""
    assert analysis._chunk_rows(torch.empty(3, 7, device="meta")) == analysis.STATS_CHUNK
    assert analysis._chunk_rows(torch.empty(3, 1 << 20)) == 1
    assert analysis._chunk_rows(torch.empty(3, 7)) == analysis.STATS_CHUNK


def own_losses(lm, ids: list[int], labels: list[int]) -> torch.Tensor:
    """(n-1,) float64 cross-entropy of each label k against the test's own logits at k-1; 0 where -100."""
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0, :-1].double()  # (n-1, V)
    return F.cross_entropy(logits, torch.tensor(labels[1:]), ignore_index=IGNORE_INDEX, reduction="none")


def test_one_counted_label_has_its_own_loss(tiny_lm):
    n = len(analyze(TEXT, tiny_lm).tokens)
    result = analyze(TEXT, tiny_lm, mask_first=n - 1)
    ce = own_losses(tiny_lm, result.input_ids, result.labels)
    assert result.counted == 1 and result.positions[-1].loss is not None
    assert result.loss == pytest.approx(ce[-1].item(), abs=3e-5, rel=1e-5)
    assert result.mean_token_loss == pytest.approx(ce[-1].item(), abs=3e-5, rel=1e-5)
    assert result.loss_sum == pytest.approx(ce[-1].item(), abs=3e-5, rel=1e-5)


@pytest.mark.parametrize("masked", [(), (2, 3, 4, 9), (1, 2, 3, 4, 5, 6, 7, 8)])
def test_the_loss_split_into_chunks_is_the_mean_over_all_counted_labels(tiny_lm, monkeypatch, masked):
    """With 3 rows per chunk, some chunks fully masked and others partly, the model's loss is still one
    mean over every counted label (not a sum or mean of per-chunk means)."""
    vocab = tiny_lm.model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(analysis, "CACHE_ELEMENTS", 3 * vocab)
    result = analyze(TEXT, tiny_lm, top_k=3, masked=masked)
    ce = own_losses(tiny_lm, result.input_ids, result.labels)
    counted = torch.tensor(result.labels[1:]) != IGNORE_INDEX
    assert len(result.positions) > 6 and result.counted == int(counted.sum())
    assert result.loss == pytest.approx(ce[counted].mean().item(), abs=3e-5, rel=1e-5)
    assert [p.loss for p in result.positions] == [
        pytest.approx(c, abs=3e-5, rel=1e-5) if keep else None for c, keep in zip(ce.tolist(), counted.tolist())
    ]
    p = torch.softmax(own_logits(tiny_lm, result.input_ids), dim=-1)
    assert [pos.p_target for pos in result.positions] == pytest.approx(
        p[torch.arange(len(result.positions)), torch.tensor(result.input_ids[1:])].tolist(), abs=1e-6, rel=2e-5
    )


def own_logits(lm, ids: list[int]) -> torch.Tensor:
    """(n-1, V) float64 logits of the test's own forward pass, the last position's dropped."""
    with torch.no_grad():
        return lm.model(torch.tensor([ids])).logits[0, :-1].double()


def test_would_be_losses_are_the_cross_entropy_of_every_position_masked_or_not(tiny_lm):
    result = analyze(TEXT, tiny_lm, mask_first=4)
    ids = result.input_ids
    ce = F.cross_entropy(own_logits(tiny_lm, ids), torch.tensor(ids[1:]), reduction="none")
    would_be = result.arrays.would_be_losses()
    assert would_be.dtype == np.float64 and would_be.shape == (len(ids) - 1,)
    assert would_be == pytest.approx(ce.numpy(), abs=3e-5, rel=1e-5)
    assert result.arrays.losses()[:3] == [None] * 3
    assert result.arrays.losses()[3:] == pytest.approx(ce[3:].tolist(), abs=3e-5, rel=1e-5)


def test_a_probability_that_underflowed_to_zero_gives_a_large_finite_would_be_loss(tiny_lm):
    result = analyze(TEXT, tiny_lm, top_k=2)
    arrays = result.arrays
    zero = type(arrays)(**{**vars(arrays), "p_target": np.zeros_like(arrays.p_target)})
    assert zero.would_be_losses().tolist() == pytest.approx([-math.log(1e-45)] * len(arrays.p_target))


@pytest.mark.parametrize("mask_first", [True, False, "2", 1.0, -1, None])
def test_make_labels_refuses_a_mask_first_that_is_not_a_whole_number(mask_first):
    with pytest.raises(InputError, match="^mask_first must be a whole number, 0 or more.$"):
        make_labels(3, mask_first=mask_first)


def test_make_labels_masks_only_indices_inside_the_text():
    assert make_labels(4, mask_first=9) == [IGNORE_INDEX] * 4
    assert make_labels(4, masked=[0]) == [IGNORE_INDEX, 0, 0, 0]
    assert make_labels(4, masked=[-1, 4, 2, 2]) == [0, 0, IGNORE_INDEX, 0]
    assert make_labels(0) == []


def test_model_loss_over_more_positions_than_vocabulary_entries(tiny_lm, monkeypatch):
    """(10, 4) logits in chunks of 3 rows: every row is scored (the loop runs over positions, not the
    vocabulary), and the result is one mean over the counted labels, as F.cross_entropy gives it."""
    monkeypatch.setattr(analysis, "CACHE_ELEMENTS", 12)
    logits = torch.randn(10, 4, generator=torch.Generator().manual_seed(5))
    labels = [0, 1, 2, 3, IGNORE_INDEX, 0, 1, IGNORE_INDEX, 2, 3]  # label k is scored at row k-1
    expected = F.cross_entropy(logits[:-1].double(), torch.tensor(labels[1:]), ignore_index=IGNORE_INDEX)
    assert analysis.model_loss(tiny_lm, logits, labels) == pytest.approx(expected.item(), rel=1e-6)


def test_model_loss_is_none_when_a_counted_target_is_impossible(tiny_lm):
    """A counted label whose logit is -inf makes the loss infinite: no number is given rather than inf."""
    logits = torch.zeros(3, 4)
    logits[1, 2] = -math.inf
    assert analysis.model_loss(tiny_lm, logits, [0, 1, 2]) is None
    assert analysis.model_loss(tiny_lm, logits, [0, 1, IGNORE_INDEX]) == pytest.approx(math.log(4))


def test_ranks_and_token_ids_are_whole_numbers_in_the_arrays_and_the_json(tiny_lm):
    result = analyze(TEXT, tiny_lm, top_k=3)
    assert result.arrays.rank.dtype == result.arrays.top_ids.dtype == np.int64
    for position in result.to_dict()["positions"]:
        assert type(position["rank"]) is int and all(type(c["id"]) is int for c in position["top"])


@pytest.mark.parametrize("marker", ["the", "cat", "likes fish", "dog", "and the d"])
def test_a_bos_token_moves_the_masked_prompt_by_exactly_one(tiny_lm, marker):
    """With BOS the same text tokens are masked, each one index later, plus the BOS itself."""
    from visualizer.analysis.masking import mask_until

    plain = mask_until(TEXT, marker, tiny_lm)
    assert mask_until(TEXT, marker, tiny_lm, bos=True) == list(range(len(plain) + 1))


@pytest.mark.parametrize(
    "text, marker, message",
    [
        (TEXT, "", "^The mask marker is empty: type the text that ends the prompt.$"),
        (None, "dog", "^The mask marker 'dog' does not occur in the text.$"),
        (TEXT, "cow", "^The mask marker 'cow' does not occur in the text.$"),
    ],
)
def test_mask_until_refuses_with_one_exact_message(tiny_lm, text, marker, message):
    from visualizer.analysis.masking import mask_until

    with pytest.raises(InputError, match=message):
        mask_until(text, marker, tiny_lm)
