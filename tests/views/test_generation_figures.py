"""Figures of a generation: trace types, shapes, values against the Generation, dropped and chosen
candidates marked, token labels escaped, classroom sizes; not pixels."""

import math

import pytest

from visualizer.analysis.generation import Decoding, Generation, teacher_forcing
from visualizer.errors import InputError
from visualizer.model.tokens import unique_names
from visualizer.views import plotting
from visualizer.views.generation_figures import (
    DROPPED,
    continuation_strip,
    forced_lines,
    forced_table,
    step_context_label,
    step_distribution,
    steps_heatmap,
    teacher_p,
)
from visualizer.views.plotting import CLASSROOM, HOVER_CUSTOMDATA
from visualizer.views.plotting import escape_text as esc

PROMPT = "<b>bold</b> & the dog"
"""Markup in the prompt: every label built from it must come out escaped."""


@pytest.fixture
def sampled(tiny_lm):
    """Six sampled steps with top-k 2 out of 5 recorded candidates: columns 3..5 are always dropped."""
    gen = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=6, temperature=1.5, top_k=2, seed=3), candidates=5)
    gen.run()
    return gen


@pytest.fixture
def greedy(tiny_lm):
    gen = Generation(tiny_lm, "the cat likes", Decoding(max_new_tokens=4), candidates=4)
    gen.run()
    return gen


def _shape_names(fig):
    return [s.name for s in fig.layout.shapes]


# ---------------------------------------------------------------- steps x candidates


def test_steps_heatmap_rows_columns_values(sampled):
    fig = steps_heatmap(sampled)
    kept, dropped, strikes = fig.data
    assert (kept.type, dropped.type, strikes.type) == ("heatmap", "heatmap", "scatter")
    assert len(kept.z) == len(sampled.steps) == 6 and all(len(row) == 5 for row in kept.z)  # (steps, candidates)
    for row, step in zip(kept.z, sampled.steps):
        assert list(row) == pytest.approx([c.p_model if c.kept else None for c in step.top])
    assert all(list(row[2:]) == [None] * 3 for row in kept.z)  # top-k 2: only two kept
    assert all(list(row[2:]) == [0] * 3 and list(row[:2]) == [None] * 2 for row in dropped.z)
    assert dropped.name == DROPPED and dropped.showscale is False
    assert (kept.zmin, kept.zmax) == (0, 1)
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 3, 4, 5]
    assert list(fig.layout.yaxis.ticktext) == [step_context_label(sampled, i) for i in range(6)]
    assert tuple(fig.layout.yaxis.range) == (5.5, -0.5)  # reversed: the first step at the top


def test_dropped_cells_are_crossed_out_and_greyed(sampled):
    kept, dropped, strikes = steps_heatmap(sampled).data
    assert dropped.colorscale[0][1] == plotting.GREY
    assert all(list(row[:2]) == ["", ""] and "" not in row[2:] for row in dropped.text)  # no text over kept cells
    assert all("" not in row[:2] and list(row[2:]) == [""] * 3 for row in kept.text)
    assert len(strikes.x) == 3 * 3 * len(sampled.steps)  # one segment and a gap per dropped cell
    assert strikes.x[:3] == (3 - 0.45, 3 + 0.45, None)


def test_the_chosen_cell_is_outlined(sampled):
    fig = steps_heatmap(sampled)
    boxes = [s for s in fig.layout.shapes if s.name == "chosen"]
    assert [s.line.color for s in fig.layout.shapes[:2]] == ["white", "black"]
    assert len(boxes) == len(sampled.steps)  # sampling with top-k 2 always chooses a kept, shown candidate
    for r, (box, step) in enumerate(zip(boxes, sampled.steps)):
        col = [c.token.id for c in step.top].index(step.token.id) + 1
        assert (box.x0, box.x1, box.y0, box.y1) == (col - 0.5, col + 0.5, r - 0.5, r + 0.5)
        assert step.top[col - 1].kept


def test_a_choice_outside_the_columns_is_written_beside_its_row(greedy):
    step = greedy.steps[1]
    step.top = [c for c in step.top if c.token.id != step.token.id][:3]
    fig = steps_heatmap(greedy)
    notes = [a for a in fig.layout.annotations if a.name == "chosen outside the columns"]
    assert len(notes) == 1 and notes[0].y == 1 and notes[0].text.startswith(f"chose {esc(step.token.display)}")
    assert _shape_names(fig).count("chosen") == len(greedy.steps) - 1


def test_steps_heatmap_text_is_escaped_and_only_in_text_and_customdata(sampled):
    fig = steps_heatmap(sampled)
    kept = fig.data[0]
    c = sampled.steps[0].top[0]
    assert kept.text[0][0].startswith(esc(c.token.display) + "<br>")
    assert all(t.hovertemplate == HOVER_CUSTOMDATA for t in fig.data[:2])
    assert fig.layout.yaxis.ticktext[0] == "1. &lt;b&gt;bold&lt;/b&gt; &amp; the dog →"
    assert all("<b>" not in label for label in fig.layout.yaxis.ticktext)


def test_steps_heatmap_keeps_the_latest_rows(sampled):
    fig = steps_heatmap(sampled, max_rows=2)
    assert len(fig.data[0].z) == 2
    assert list(fig.layout.yaxis.ticktext) == [step_context_label(sampled, i) for i in (4, 5)]
    assert "Last 2 of 6 steps" in fig.layout.title.subtitle.text


def test_no_steps_yet_is_an_input_error(tiny_lm):
    gen = Generation(tiny_lm, "the dog", Decoding(max_new_tokens=2))
    for draw in (steps_heatmap, step_distribution, lambda g: forced_lines(g, None)):
        with pytest.raises(InputError, match="Nothing has been generated"):
            draw(gen)
    assert "nothing generated yet" in continuation_strip(gen).layout.title.text


# ---------------------------------------------------------------- the coloured continuation


def test_continuation_strip_colours_each_new_token_by_its_p(greedy):
    fig = continuation_strip(greedy, per_line=64)
    new, prompt = fig.data
    assert new.type == prompt.type == "heatmap"
    p = len(greedy.prompt_ids)
    assert list(new.z[0][:p]) == [None] * p
    assert list(new.z[0][p:]) == pytest.approx([s.p for s in greedy.steps])
    assert list(prompt.z[0][:p]) == [0] * p and prompt.colorscale[0][1] == plotting.GREY
    assert list(new.text[0][p:]) == [esc(s.token.display) for s in greedy.steps]
    assert list(new.text[0][:p]) == [""] * p and list(prompt.text[0][p:]) == [""] * len(greedy.steps)
    assert new.hovertemplate == HOVER_CUSTOMDATA and "step 1" in new.customdata[0][p]


def test_continuation_strip_wraps_and_cuts_a_long_prompt(sampled):
    fig = continuation_strip(sampled, per_line=4, prompt_tokens=2)
    cells = 2 + len(sampled.steps)
    assert len(fig.data[0].z) == math.ceil(cells / 4) and len(fig.data[0].z[0]) == 4
    assert f"first {len(sampled.prompt_ids) - 2} tokens are left out" in fig.layout.title.subtitle.text
    assert esc(sampled.lm.decoder.token(sampled.prompt_ids[-1]).display) == fig.data[1].text[0][1]


# ---------------------------------------------------------------- one step


def test_step_distribution_before_and_after(sampled):
    fig = step_distribution(sampled, 2)
    before, after = fig.data
    step = sampled.steps[2]
    assert before.type == after.type == "bar"
    assert list(before.x) == unique_names([esc(c.token.display) for c in step.top])
    assert list(before.y) == pytest.approx([c.p_model for c in step.top])
    assert list(after.y) == pytest.approx([c.p for c in step.top])
    assert list(after.text[2:]) == ["dropped"] * 3 and list(after.y[2:]) == [0] * 3
    assert all(t.endswith("→0%") for row in steps_heatmap(sampled).data[1].text for t in row[2:])
    assert list(before.marker.pattern.shape) == ["", ""] + ["/"] * 3
    assert sum(after.y) == pytest.approx(1.0, abs=1e-6)  # top-k 2: the two kept hold all the mass
    assert max(*before.y, *after.y) < fig.layout.yaxis.range[1] <= 1.15  # the tallest bar and its label fit
    chosen = [a for a in fig.layout.annotations if a.name == "chosen"]
    assert len(chosen) == 1 and chosen[0].x == [c.token.id for c in step.top].index(step.token.id)
    assert chosen[0].text == "chosen" and chosen[0].showarrow
    assert "Step 3: chose" in fig.layout.title.text and "temperature 1.5" in fig.layout.title.subtitle.text


def test_step_distribution_adds_a_chosen_token_that_is_not_a_candidate(greedy):
    step = greedy.steps[0]
    step.top = [c for c in step.top if c.token.id != step.token.id]
    fig = step_distribution(greedy, 0)
    assert len(fig.data[0].x) == len(step.top) + 1 and fig.data[0].y[-1] == pytest.approx(step.p_model)


def test_step_distribution_defaults_to_the_latest_and_refuses_bad_steps(greedy):
    assert f"Step {len(greedy.steps)}:" in step_distribution(greedy).layout.title.text
    for bad in (-1, len(greedy.steps), 1.5, True):
        with pytest.raises(InputError, match="step must be"):
            step_distribution(greedy, bad)


# ---------------------------------------------------------------- teacher forcing


def test_teacher_forcing_lines_and_table(sampled):
    forced = teacher_forcing(sampled)
    tf = teacher_p(sampled, forced)
    assert tf == pytest.approx([s.p_model for s in sampled.steps], abs=1e-5)  # one pass = the steps' own p
    fig = forced_lines(sampled, forced)
    assert [t.type for t in fig.data] == ["scatter"] * 3
    model, teacher, chosen = fig.data
    assert list(chosen.y) == pytest.approx([s.p for s in sampled.steps]) and chosen.line.dash == "dash"
    assert list(model.y) == pytest.approx([s.p_model for s in sampled.steps])
    assert list(teacher.y) == pytest.approx(tf) and teacher.mode == "markers"
    assert list(fig.data[0].x) == [f"{i + 1}. {esc(s.token.display)}" for i, s in enumerate(sampled.steps)]
    table = forced_table(sampled, forced)
    assert list(table.columns) == [
        "step",
        "token",
        "p chosen with",
        "model p (step by step)",
        "p (teacher forcing)",
        "−ln p (teacher forcing)",
    ]
    assert len(table) == 6 and list(table["token"]) == [s.token.display for s in sampled.steps]
    assert table["−ln p (teacher forcing)"].mean() == pytest.approx(forced.loss, abs=1e-3)


def test_teacher_forcing_with_bos(tiny_lm):
    gen = Generation(tiny_lm, "the dog", Decoding(max_new_tokens=3), bos=True)
    gen.run()
    assert teacher_p(gen, teacher_forcing(gen)) == pytest.approx([s.p_model for s in gen.steps], abs=1e-5)


# ---------------------------------------------------------------- style


def test_classroom_style_enlarges_every_figure(sampled):
    forced = teacher_forcing(sampled)
    for draw in (steps_heatmap, continuation_strip, step_distribution, lambda g, style: forced_lines(g, forced, style)):
        normal, big = draw(sampled, style=plotting.NORMAL), draw(sampled, style=CLASSROOM)
        assert big.layout.font.size == CLASSROOM.font_size > normal.layout.font.size
        assert big.layout.width == CLASSROOM.width
