"""A data scan's padded forward passes: each row's loss equals the test's own cross-entropy over its counted labels
whatever the batching, and the first pass is kept small when asked (the table's first rows come at once)."""

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis import data_rows
from visualizer.analysis.data_rows import batched_losses

ROWS = [  # (ids, labels): lengths 5 to 14, some labels masked, one row with nothing counted
    (list(range(3, 3 + n)), [-100] * (n // 3) + list(range(3 + n // 3, 3 + n))) for n in (5, 9, 14, 7, 6, 12, 8)
] + [([5, 6, 7], [-100, -100, -100])]


def own_loss(lm, ids, labels):
    """Mean −ln p over the counted labels (None when none counts), from the model alone."""
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0, :-1].float()  # (n-1, V)
    target = torch.tensor(labels[1:])
    return None if bool((target == -100).all()) else F.cross_entropy(logits, target, ignore_index=-100).item()


@pytest.mark.parametrize(("batch_tokens", "first_tokens"), [(10_000, None), (40, None), (40, 14), (10_000, 1)])
def test_each_rows_loss_is_its_own_whatever_the_batches(tiny_lm, monkeypatch, batch_tokens, first_tokens):
    shapes = []
    forward = data_rows.forward_padded
    monkeypatch.setattr(data_rows, "forward_padded", lambda lm, ids: shapes.append(len(ids)) or forward(lm, ids))
    got = list(batched_losses(tiny_lm, ROWS, batch_tokens, first_tokens))
    want = [own_loss(tiny_lm, ids, labels) for ids, labels in ROWS]
    assert [g is None for g in got] == [w is None for w in want]
    assert [g for g in got if g is not None] == pytest.approx([w for w in want if w is not None], abs=1e-5)
    assert sum(shapes) == len(ROWS)
    if first_tokens is not None:
        assert shapes[0] == 1 and shapes[1] > 1  # rows 0 and 1 would pad to 9 tokens each: 18 > 14; then full
    if batch_tokens == 10_000 and first_tokens is None:
        assert shapes == [len(ROWS)]
