"""The lesson's eight steps: each figure's numbers against the test's own softmax and cross-entropy, the
token grids against the tokenizer, at most three sentences, and typed markup kept inert."""

import pytest
import torch
import torch.nn.functional as F

from visualizer.analysis.lesson import after_training, open_questions
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze
from visualizer.views import lesson
from visualizer.views.plotting import CLASSROOM, OTHER_COLUMN

TEXT = "the cat likes fish and the dog likes bones"
MARKUP = "<b>hi</b> %{x} &amp; **bold**"


def _probs(lm, ids) -> torch.Tensor:
    """(n-1, V) float64 next-token probabilities from a plain forward pass."""
    with torch.no_grad():
        return torch.softmax(lm.model(torch.tensor([ids])).logits[0, :-1].double(), dim=-1)


@pytest.fixture
def analysis(tiny_lm):
    return analyze(TEXT, tiny_lm)


def _grid(fig) -> dict[str, list[str]]:
    """A text grid's rows by name."""
    trace = fig.data[0]
    return dict(zip(trace.y, (list(row) for row in trace.text)))


def test_step_1_shows_each_id_above_its_token(analysis, tiny_lm):
    step = lesson.tokens_step(analysis)
    rows = _grid(step.figure)
    ids = tiny_lm.tokenizer(TEXT)["input_ids"]
    assert rows["input_ids"] == [str(i) for i in ids[: lesson.MAX_COLUMNS]]
    assert rows["token"] == [lesson.cut(t.display, lesson.CELL_CHARS) for t in analysis.tokens[: lesson.MAX_COLUMNS]]
    assert rows["attention_mask"] == ["1"] * min(len(ids), lesson.MAX_COLUMNS)
    assert f"{{'input_ids': {ids}, 'attention_mask': {[1] * len(ids)}}}" in step.sentences[0]


def test_step_2_labels_mirror_input_ids_and_show_the_masked_ones(tiny_lm):
    masked = analyze(TEXT, tiny_lm, mask_first=2)
    rows = _grid(lesson.batch_step(masked).figure)
    n = min(len(masked.tokens), lesson.MAX_COLUMNS)
    assert rows["labels"] == [str(IGNORE_INDEX)] * 2 + [str(i) for i in masked.input_ids[2:n]]
    assert rows["input_ids"][2:] == rows["labels"][2:]
    assert list(rows.values())[4][:2] == ["−100", "−100"]
    assert f"1 × {len(masked.tokens)}" in lesson.batch_step(masked).figure.layout.title.text


def test_step_3_lists_the_snapshots(analysis):
    fig = lesson.snapshots_step(analysis).figure
    rows = _grid(fig)
    assert list(rows) == [f"k={k}" for k in range(1, min(len(analysis.tokens), lesson.MAX_SNAPSHOTS + 1))]
    for k, (context, arrow, target) in enumerate(rows.values(), 1):
        assert arrow == "→" and target == lesson.cut(analysis.tokens[k].display, 14)
        assert analysis.decoder.text_of(analysis.input_ids[:k]).endswith(context.lstrip("…"))


@pytest.mark.parametrize("k", [1, 3, None])
def test_step_4_bars_are_the_softmax_over_the_sentence_tokens(analysis, tiny_lm, k):
    step = lesson.prediction_step(analysis, k)
    k = k or len(analysis.positions)
    probs = _probs(tiny_lm, analysis.input_ids)[k - 1]  # (V,)
    columns = list(dict.fromkeys(analysis.input_ids))  # distinct tokens, first appearance first
    expected = [probs[c].item() for c in columns]
    predicted, truth = step.figure.data
    assert list(predicted.x)[-1] == OTHER_COLUMN
    assert list(predicted.y) == pytest.approx([*expected, 1 - sum(expected)], abs=1e-6)
    target = analysis.input_ids[k]
    assert list(truth.y) == [1.0 if c == target else 0.0 for c in columns] + [0.0]
    assert f"k={k}:" in step.figure.layout.title.text


def test_step_5_sums_the_absolute_differences(analysis, tiny_lm):
    k = 2
    probs = _probs(tiny_lm, analysis.input_ids)[k - 1]
    columns = list(dict.fromkeys(analysis.input_ids))
    p = [probs[c].item() for c in columns]
    truth = [1.0 if c == analysis.input_ids[k] else 0.0 for c in columns]
    diff = [abs(a - b) for a, b in zip(p, truth)] + [1 - sum(p)]
    step = lesson.crude_loss_step(analysis, k)
    assert list(step.figure.data[0].y) == pytest.approx(diff, abs=1e-6)
    assert f"{sum(diff):.3f}" in step.figure.layout.title.text
    assert sum(diff) == pytest.approx(2 * (1 - probs[analysis.input_ids[k]].item()), abs=1e-6)


def test_step_6_bars_are_minus_log_p_and_the_mean_is_cross_entropy(tiny_lm):
    masked = analyze(TEXT, tiny_lm, mask_first=3)
    step = lesson.real_loss_step(masked)
    ids = torch.tensor(masked.input_ids)
    logp = torch.log(_probs(tiny_lm, masked.input_ids))
    expected = [-logp[j, ids[j + 1]].item() for j in range(len(ids) - 1)]
    assert list(step.figure.data[0].y) == pytest.approx(expected, abs=1e-5)
    labels = torch.tensor(masked.labels)
    with torch.no_grad():
        logits = tiny_lm.model(ids[None]).logits[0].double()
    mean = F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX).item()
    assert f"{mean:.4f}" in step.figure.layout.title.text
    assert step.figure.layout.shapes[0].y0 == pytest.approx(mean, abs=1e-5)  # the dashed mean line
    worst = max(range(3, len(ids)), key=lambda k: expected[k - 1])
    assert step.alt.startswith(f"loss {mean:.2f} nats over {len(ids) - 3} positions; highest at k={worst} (")
    assert step.alt.endswith(f", {expected[worst - 1]:.2f} nats)")


def test_step_7_shows_the_row_before_and_after_training(analysis, tiny_lm):
    result = after_training(analysis, tiny_lm)
    step = lesson.training_step(result, 2)
    before, after, truth = step.figure.data
    assert list(before.y) == pytest.approx(result.before.vocab.predicted(1), abs=1e-7)
    assert list(after.y) == pytest.approx(result.after.vocab.predicted(1), abs=1e-7)
    assert list(before.y) != pytest.approx(list(after.y), abs=1e-9)
    assert sum(truth.y) == 1.0
    assert "fell" in step.sentences[1]


def test_step_8_bars_are_the_four_losses(analysis, tiny_lm):
    answers = open_questions(analysis, tiny_lm)
    step = lesson.open_questions_step(answers)
    expected = [
        answers.full.mean_token_loss,
        answers.masked.mean_token_loss,
        answers.pads_masked.batch_loss,
        answers.pads_counted.batch_loss,
    ]
    assert list(step.figure.data[0].y) == pytest.approx(expected)
    assert len(step.sentences) == 3


def test_every_step_has_a_title_at_most_three_sentences_and_a_text_alternative(analysis, tiny_lm):
    steps = [
        lesson.tokens_step(analysis, CLASSROOM),
        lesson.batch_step(analysis, CLASSROOM),
        lesson.snapshots_step(analysis, CLASSROOM),
        lesson.prediction_step(analysis, None, CLASSROOM),
        lesson.crude_loss_step(analysis, None, CLASSROOM),
        lesson.real_loss_step(analysis, CLASSROOM),
        lesson.training_step(after_training(analysis, tiny_lm), None, CLASSROOM),
        lesson.open_questions_step(open_questions(analysis, tiny_lm), CLASSROOM),
    ]
    assert [s.number for s in steps] == list(range(1, lesson.STEPS + 1))
    for s in steps:
        assert s.title == lesson.TITLES[s.number - 1] and 1 <= len(s.sentences) <= 3 and s.alt
        assert s.figure.layout.height <= 400  # with the text box, tab bar and step title: one 1280x720 screen
        assert s.figure.layout.font.size >= 16


def test_typed_markup_stays_inert_in_every_figure(tiny_lm):
    marked = analyze(MARKUP, tiny_lm)
    figures = [
        lesson.tokens_step(marked).figure,
        lesson.batch_step(marked).figure,
        lesson.snapshots_step(marked).figure,
        lesson.prediction_step(marked).figure,
        lesson.real_loss_step(marked).figure,
    ]
    for fig in figures:
        shown = fig.to_json()
        assert "<b>" not in shown and "</b>" not in shown and "&lt;" in shown
        for trace in fig.data:
            assert "%{x}" not in (trace.hovertemplate or "")


def test_k_out_of_range_falls_back_to_the_last_position(analysis):
    last = len(analysis.positions)
    for k in (0, last + 1, None, True, 2.5):
        assert lesson.check_k(analysis, k) == last
    assert lesson.check_k(analysis, 1) == 1


def test_a_classroom_lesson_keeps_projector_type(analysis):
    style = lesson.lesson_style(CLASSROOM)
    assert (style.font_size, style.label_size) == (CLASSROOM.font_size, CLASSROOM.label_size)
    fig = lesson.prediction_step(analysis, None, style).figure
    assert fig.layout.xaxis.tickfont.size >= 16 and fig.data[0].textfont.size >= 16
