"""Each main figure carries a text alternative with its key numbers (layout.meta.alt, the page's aria-label),
checked against the test's own forward pass."""

from __future__ import annotations

import torch

from tests.analysis.test_core_edges import own_losses
from visualizer.analysis.one_pass import analyze
from visualizer.service.page import build_views

TEXT = "the dog likes food and the cat likes fish"


def test_the_alternatives_name_the_numbers_a_reader_needs(tiny_lm):
    result = analyze(TEXT, tiny_lm, top_k=5, mask_first=2)
    views = build_views(result)
    ids = result.input_ids
    own = own_losses(tiny_lm, ids, list(ids)).tolist()  # (n-1,) every position
    p = [float(torch.exp(torch.tensor(-x))) for x in own]
    counted = list(range(2, len(ids)))  # k of the counted positions: labels[:2] are -100
    worst = max(counted, key=lambda k: own[k - 1])
    mean = sum(own[k - 1] for k in counted) / len(counted)
    loss_alt = views.loss.layout.meta["alt"]
    assert loss_alt.startswith(f"loss {mean:.2f} nats over {len(counted)} positions; highest at k={worst} (")
    strip_alt = views.token_strip.layout.meta["alt"]
    low, high = min(range(1, len(ids)), key=lambda k: p[k - 1]), max(range(1, len(ids)), key=lambda k: p[k - 1])
    assert strip_alt.startswith(f"{len(ids)} tokens; p(true token) lowest at k={low} (")
    assert f"highest at k={high} (" in strip_alt
    with torch.no_grad():
        logits = tiny_lm.model(torch.tensor([ids])).logits[0, :-1]  # (n-1, V)
    ranks = [int((row > row[t]).sum()) + 1 for row, t in zip(logits, ids[1:])]
    first, within = sum(r == 1 for r in ranks), sum(r <= 5 for r in ranks)
    assert views.top_k.layout.meta["alt"].endswith(f"first choice at {first} and within the top 5 at {within}")
    assert "p(true next token) from " in views.sentence_vocab.layout.meta["alt"]
    assert views.detail.layout.meta["alt"].startswith(f"k={len(ids) - 1}: p(")
