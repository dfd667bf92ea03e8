"""The logit-lens heatmap: trace type, shape (layers x positions), colour values for each choice,
cell text = each layer's top token, escaped labels, the cap said in the title; not pixels."""

import math

import pytest

from visualizer.analysis.lens import LogitLens, logit_lens
from visualizer.errors import InputError
from visualizer.views import plotting
from visualizer.views.lens_figures import LENS_VALUES, lens_heatmap
from visualizer.views.plotting import HOVER_CUSTOMDATA
from visualizer.views.plotting import escape_text as esc

TEXT = "<b>bold</b> & the dog likes food"


@pytest.fixture
def lens(tiny_lm):
    return logit_lens(TEXT, tiny_lm)


def test_rows_are_layers_columns_positions(lens):
    fig = lens_heatmap(lens)
    (heat,) = fig.data
    n = len(lens.tokens) - 1
    assert heat.type == "heatmap"
    assert len(heat.z) == lens.layers == 3 and all(len(row) == n for row in heat.z)  # (L+1, n-1)
    assert list(heat.y) == [0, 1, 2] and list(heat.x) == list(range(1, n + 1))
    assert list(fig.layout.yaxis.ticktext) == ["embeddings", "layer 1", "layer 2"]
    assert [list(r) for r in heat.z] == [pytest.approx([c.p_target for c in row]) for row in lens.rows]
    assert (heat.zmin, heat.zmax) == (0, 1)


def test_cell_text_is_each_layers_top_token_escaped(lens):
    heat = lens_heatmap(lens).data[0]
    clip = lambda s: s if len(s) <= 8 else s[:7] + "…"  # noqa: E731
    assert [list(r) for r in heat.text] == [[esc(clip(c.top.display)) for c in row] for row in lens.rows]
    assert heat.texttemplate == "%{text}" and heat.hovertemplate == HOVER_CUSTOMDATA
    cell = lens.rows[2][0]
    assert f"rank {cell.rank:,}" in heat.customdata[2][0] and "layer 2" in heat.customdata[2][0]


def test_position_labels_are_escaped(lens):
    ticks = list(lens_heatmap(lens).layout.xaxis.ticktext)
    assert ticks[0] == f"{esc(lens.tokens[0].display)} → {esc(lens.tokens[1].display)}"
    assert all("<b>" not in t and "<a" not in t for t in ticks)
    assert any("&lt;" in t for t in ticks)


def test_rank_and_entropy_colours(lens):
    vocab = 300
    rank = lens_heatmap(lens, "rank", vocab_size=vocab).data[0]
    assert [list(r) for r in rank.z] == [pytest.approx([math.log10(c.rank) for c in row]) for row in lens.rows]
    assert rank.reversescale and (rank.zmin, rank.zmax) == (0, pytest.approx(math.log10(vocab)))
    assert list(rank.colorbar.ticktext) == ["1", "10", "100"]
    ent = lens_heatmap(lens, "entropy", vocab_size=vocab).data[0]
    assert [list(r) for r in ent.z] == [pytest.approx([c.entropy for c in row]) for row in lens.rows]
    assert ent.zmax == pytest.approx(math.log(vocab)) and ent.reversescale
    with pytest.raises(InputError, match="lens colour"):
        lens_heatmap(lens, "loss")
    assert set(LENS_VALUES) == {"p_target", "rank", "entropy"}


def test_a_capped_text_says_so_in_the_title(tiny_lm):
    capped = logit_lens(TEXT, tiny_lm, max_tokens=5)
    fig = lens_heatmap(capped)
    assert capped.truncated and "first 5 tokens" in fig.layout.title.text
    assert "first" not in lens_heatmap(logit_lens("the dog likes", tiny_lm)).layout.title.text


def test_wide_lenses_hide_cell_text_and_thin_the_ticks(lens):
    fig = lens_heatmap(lens, max_text_columns=3)
    assert fig.data[0].texttemplate is None and "hover a cell" in fig.layout.title.subtitle.text
    long = LogitLens(lens.model, lens.text, lens.tokens * 20, [row * 20 for row in lens.rows])
    ticks = lens_heatmap(long).layout.xaxis.tickvals
    assert len(ticks) <= 48 and ticks[0] == 1


def test_classroom_style(lens):
    normal, big = lens_heatmap(lens), lens_heatmap(lens, style=plotting.CLASSROOM)
    assert big.layout.font.size > normal.layout.font.size and big.layout.width == plotting.CLASSROOM.width
    assert big.data[0].colorscale != normal.data[0].colorscale


def test_an_empty_lens_is_refused(lens):
    with pytest.raises(InputError, match="no positions"):
        lens_heatmap(LogitLens(lens.model, "", lens.tokens[:1], [[] for _ in lens.rows]))
