"""Known answers from the real bundled model: the walkthrough's 'the dog likes food'."""

import pytest
import torch

from visualizer.analysis.one_pass import analyze

pytestmark = pytest.mark.slow


def test_walkthrough_shape_and_shift(bundled_lm):
    result = analyze("the dog likes food", bundled_lm)
    assert [t.display for t in result.tokens] == ["the", "␣dog", "␣likes", "␣food"]
    assert result.labels == result.input_ids and not result.bos
    assert [(p.k, p.context, p.target.text) for p in result.positions] == [
        (1, "the", " dog"),
        (2, "the dog", " likes"),
        (3, "the dog likes", " food"),
    ]


def test_walkthrough_numbers_match_the_model(bundled_lm):
    result = analyze("the dog likes food", bundled_lm)
    ids = torch.tensor([result.input_ids])
    with torch.no_grad():
        out = bundled_lm.model(ids, labels=ids)
    assert result.loss == pytest.approx(out.loss.item(), abs=1e-5)
    assert result.mean_token_loss == pytest.approx(out.loss.item(), abs=1e-5)
    # A real model: after "the dog likes", " food" is plausible (well inside the top 100),
    # far likelier than after "the" alone.
    food = result.positions[2]
    assert food.rank <= 100 and food.p_target > result.positions[0].p_target


def test_a_fluent_sentence_is_predicted_well(bundled_lm):
    result = analyze("The capital of France is Paris.", bundled_lm)
    paris = next(p for p in result.positions if p.target.text == " Paris")
    assert paris.rank == 1 and paris.p_target > 0.3
    assert result.loss < 4.0
