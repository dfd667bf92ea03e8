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


def test_the_batch_shift_and_training_figures_say_their_numbers(tiny_lm):
    import torch.nn.functional as F

    from visualizer.analysis.batches import analyze_batch
    from visualizer.analysis.shifts import double_shift
    from visualizer.analysis.training import train_on_text
    from visualizer.views.label_figures import (
        batch_grid,
        batch_losses,
        shift_comparison,
        training_curve,
        training_heatmap,
    )

    batch = analyze_batch(["the dog likes food", "the cat"], tiny_lm, mask_pads=True)
    pads = sum(int(m == 0) for r in batch.rows for m in r.attention_mask)
    assert pads > 0 and f"{pads} pads" in batch_grid(batch).layout.meta["alt"]
    ids = tiny_lm.tokenizer("the dog likes food", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = tiny_lm.model(torch.tensor([ids])).logits[0, :-1]
    own_row_loss = F.cross_entropy(logits, torch.tensor(ids[1:])).item()
    assert f"row losses {own_row_loss:.3f}" in batch_losses(batch).layout.meta["alt"]
    shift = double_shift("the dog likes food", tiny_lm)
    assert f"right loss {own_row_loss:.3f}" in shift_comparison(shift).layout.meta["alt"]
    run = train_on_text("the dog likes food", tiny_lm, steps=2, seed=0)
    assert training_curve(run).layout.meta["alt"] == (
        f"loss {run.losses[0]:.3f} before training, {run.losses[-1]:.3f} after 2 adamw steps"
    )
    assert "positions: on average" in training_heatmap(run).layout.meta["alt"]
