"""Figures from tiny random models: trace types, shapes, token labels, outlines, escaping; not pixels."""

import dataclasses
import html
import json
import math
import re

import pytest
from plotly.colors import get_colorscale, sample_colorscale

from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError
from visualizer.model.tokens import unique_names
from visualizer.views import plotting, predictions
from visualizer.views.loss import loss_bars
from visualizer.views.plotting import CLASSROOM, NORMAL, OTHER_COLUMN
from visualizer.views.predictions import token_strip, top_k_heatmap
from visualizer.views.walkthrough import position_detail, sentence_vocab_heatmap

TEXT = "the cat likes fish and the dog likes bones"
MARKUP = '<b>hi</b> <a href="x">x</a> <img src=x onerror=alert(1)> %{x}'


def esc(s: str) -> str:
    """The escaping the figures must apply, written out independently."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def row_label(pos) -> str:
    """The expected row label: the context's last 24 characters at most, escaped, then an arrow."""
    context = pos.context if len(pos.context) <= 24 else "…" + pos.context[-23:]
    return esc(context) + " →"


def strings(node):
    """Every string inside a JSON value."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def shapes(fig, name="target"):
    """The figure's shapes of one name."""
    return [s for s in fig.layout.shapes if s.name == name]


def outlined(fig, name="target") -> list[tuple[float, float, float, float]]:
    """The rectangles (x0, y0, x1, y1) that the outline path of one name draws, in drawing order."""
    paths = [s.path for s in shapes(fig, name)]
    assert len(paths) <= 1 and all(s.type == "path" for s in shapes(fig, name))
    rect = r"M([-\d.]+),([-\d.]+)H([-\d.]+)V([-\d.]+)H([-\d.]+)Z"
    boxes = [tuple(float(v) for v in m) for m in re.findall(rect, paths[0])] if paths else []
    assert not paths or (len(boxes) == paths[0].count("M") and all(b[4] == b[0] for b in boxes))
    return [b[:4] for b in boxes]


def all_figures(analysis, style=NORMAL):
    """One of each figure."""
    return [
        token_strip(analysis, style=style),
        token_strip(analysis, "rank", style=style),
        top_k_heatmap(analysis, style=style),
        sentence_vocab_heatmap(analysis, style=style),
        loss_bars(analysis, style=style),
        position_detail(analysis, 1, style=style),
    ]


@pytest.fixture
def analysis(tiny_lm):
    return analyze(TEXT, tiny_lm, top_k=5)


# ---------------------------------------------------------------- helpers


def test_escape_shorten_and_unique_names():
    assert plotting.escape_text('<b>"x" & y</b>') == '&lt;b&gt;"x" &amp; y&lt;/b&gt;'
    assert plotting.shorten("x" * 24) == "x" * 24
    assert plotting.shorten("a" + "x" * 30) == "…" + "x" * 23
    assert unique_names(["a", "b", "a", "a"]) == ["a", "b", "a (2)", "a (3)"]
    assert [plotting.rank_bucket(r) for r in (1, 2, 10, 11, 100, 101, 10**6)] == [0, 1, 1, 2, 2, 3, 3]
    assert plotting.percent(0.6) == "60%" and plotting.percent(0.008) == "0.8%"


# ---------------------------------------------------------------- token strip


def test_token_strip_colours_each_token_by_its_probability(analysis):
    fig = token_strip(analysis)
    main, first = fig.data
    assert main.type == first.type == "heatmap"
    n = len(analysis.tokens)
    assert n <= 16 and len(main.z) == 1 and len(main.z[0]) == n  # one line of n tokens
    assert main.z[0][0] is None
    assert list(main.z[0][1:]) == pytest.approx([p.p_target for p in analysis.positions])
    assert list(main.text[0][1:]) == [esc(t.display) for t in analysis.tokens[1:]]
    assert first.text[0][0] == esc(analysis.tokens[0].display) and first.showscale is False
    assert (main.zmin, main.zmax) == (0, 1)
    pos = analysis.positions[2]
    hover = main.customdata[0][3]
    assert f"rank {pos.rank}" in hover and plotting.percent(pos.p_target) in hover
    assert all(esc(c.token.display) in hover for c in pos.top[:3])
    assert main.hovertemplate == "%{customdata}<extra></extra>"


def test_token_strip_wraps_long_texts(analysis):
    fig = token_strip(analysis, per_line=4)
    n = len(analysis.tokens)
    assert len(fig.data[0].z) == math.ceil(n / 4) and len(fig.data[0].z[0]) == 4
    r, c = divmod(n - 1, 4)
    assert fig.data[0].z[r][c] == pytest.approx(analysis.positions[-1].p_target)
    assert fig.data[0].text[r][c] == esc(analysis.tokens[-1].display)
    short = token_strip(analysis, max_tokens=3)
    assert len(short.data[0].z[0]) == 3 and "First 3 of" in short.layout.title.subtitle.text


def test_token_strip_rank_buckets(analysis):
    fig = token_strip(analysis, color_by="rank")
    main = fig.data[0]
    expected = [0 if p.rank == 1 else 1 if p.rank <= 10 else 2 if p.rank <= 100 else 3 for p in analysis.positions]
    assert list(main.z[0][1:]) == expected
    assert list(main.colorbar.ticktext) == ["top-1", "top-10", "top-100", "beyond"]
    assert list(main.colorbar.tickvals) == [0, 1, 2, 3] and (main.zmin, main.zmax) == (-0.5, 3.5)
    # Each bucket value sits in the middle of one flat step of its own colour, from Viridis.
    colours = sample_colorscale(get_colorscale("Viridis"), [1.0, 2 / 3, 1 / 3, 0.0])
    assert len(set(colours)) == 4
    steps = [(edge, colour) for i, colour in enumerate(colours) for edge in (i / 4, (i + 1) / 4)]
    assert [(pytest.approx(edge), c) for edge, c in main.colorscale] == steps
    with pytest.raises(InputError):
        token_strip(analysis, color_by="loss")


# ---------------------------------------------------------------- top-K heatmap


def test_top_k_heatmap_rows_columns_and_labels(analysis):
    fig = top_k_heatmap(analysis)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    rows = len(analysis.positions)
    assert len(heat.z) == rows and all(len(row) == 5 for row in heat.z)  # (positions, K)
    assert [list(r) for r in heat.z] == [pytest.approx([c.p for c in p.top]) for p in analysis.positions]
    assert list(fig.layout.yaxis.ticktext) == [row_label(p) for p in analysis.positions]
    assert list(fig.layout.yaxis.tickvals) == list(range(rows)) and fig.layout.yaxis.autorange == "reversed"
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 3, 4, 5]
    top = analysis.positions[0].top[0]
    assert heat.text[0][0] == f"{esc(top.token.display)}<br>{plotting.percent(top.p)}"


def test_top_k_heatmap_outlines_the_target_or_names_its_rank(analysis):
    # Make rows 0..4 have their target at ranks 1..5 (the figure reads only the dataclass); rows after keep theirs.
    positions = list(analysis.positions)
    for r in range(5):
        pos = positions[r]
        positions[r] = dataclasses.replace(pos, target=pos.top[r].token, p_target=pos.top[r].p, rank=r + 1)
    edited = dataclasses.replace(analysis)
    edited.positions = positions  # the heatmap reads its rows from these
    fig = top_k_heatmap(edited)
    boxes = outlined(fig)
    in_top = [r for r, p in enumerate(positions) if p.target.id in {c.token.id for c in p.top}]
    assert [(x0, y0) for x0, y0, _, _ in boxes] == [(positions[r].rank - 0.5, r - 0.5) for r in in_top]
    assert [(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes] == [(1, 1)] * len(in_top)
    assert outlined(fig, "target-core") == boxes
    assert in_top[:5] == [0, 1, 2, 3, 4]
    notes = [a for a in fig.layout.annotations if a.name == "target outside top-K"]
    outside = [r for r in range(len(positions)) if r not in in_top]
    assert [a.y for a in notes] == outside
    for a, r in zip(notes, outside):
        pos = positions[r]
        assert a.text == f"target {esc(pos.target.display)}: {plotting.percent(pos.p_target)}, rank {pos.rank}"
        assert a.x > 5  # right of the last column


# ---------------------------------------------------------------- the walkthrough's table


def test_sentence_vocab_heatmap_matches_the_table(analysis):
    fig = sentence_vocab_heatmap(analysis)
    predicted, truth = fig.data
    vocab = analysis.vocab
    names = [esc(t.display) for t in vocab.columns] + [OTHER_COLUMN]
    assert predicted.type == truth.type == "heatmap" and len(set(names)) == len(names)
    assert list(predicted.x) == list(truth.x) == names
    assert (predicted.xaxis, truth.xaxis) == ("x", "x2")
    for r in range(len(analysis.positions)):
        assert list(predicted.z[r]) == pytest.approx(vocab.predicted(r), abs=1e-6)
        assert list(truth.z[r]) == vocab.one_hot(r)
    assert [x0 + 0.5 for x0, _, _, _ in outlined(fig)] == vocab.target_column
    assert [y0 + 0.5 for _, y0, _, _ in outlined(fig)] == list(range(len(analysis.positions)))
    assert {a.text for a in fig.layout.annotations} >= {"predicted", "true (one-hot)"}
    assert list(fig.layout.yaxis.ticktext) == [row_label(p) for p in analysis.positions]


def test_sentence_vocab_heatmap_makes_lookalike_columns_unique(analysis):
    labels = list(analysis.column_labels)
    twin = dataclasses.replace(analysis)
    twin.column_labels = [labels[0], labels[0], *labels[2:]]  # two columns that read alike
    x = list(sentence_vocab_heatmap(twin).data[0].x)
    assert x[:2] == [esc(labels[0]), esc(labels[0]) + " (2)"]
    assert len(set(x)) == len(x)


# ---------------------------------------------------------------- loss


def test_loss_bars_grey_out_masked_positions_and_leave_them_out_of_the_mean(tiny_lm):
    analysis = analyze(TEXT, tiny_lm, mask_first=2, masked=[4])
    fig = loss_bars(analysis)
    counted, masked = fig.data
    labels = [f"k={p.k} {esc(p.target.display)}" for p in analysis.positions]
    assert counted.type == masked.type == "bar"
    assert list(masked.x) == [labels[0], labels[3]]  # k=1 and k=4
    assert list(masked.y) == pytest.approx([-math.log(analysis.positions[j].p_target) for j in (0, 3)])
    assert masked.marker.color == plotting.GREY and masked.opacity < 1 and masked.marker.pattern.shape
    assert list(masked.text) == ["masked", "masked"]
    kept = [p.loss for p in analysis.positions if not p.masked]
    assert list(counted.y) == pytest.approx(kept)
    assert list(fig.layout.xaxis.categoryarray) == labels
    (line,) = [s for s in fig.layout.shapes if s.name.startswith("mean")]
    mean = sum(kept) / len(kept)
    all_bars = (sum(kept) + sum(masked.y)) / len(labels)
    assert line.y0 == line.y1 == pytest.approx(mean) == pytest.approx(analysis.loss, abs=1e-5)
    assert abs(line.y0 - all_bars) > 1e-6
    assert line.showlegend and line.name == f"mean = {mean:.3f} nats" and not fig.layout.annotations
    note = fig.layout.title.subtitle.text
    assert f"{mean:.3f}" in note and f"{analysis.loss:.3f}" in note and f"{analysis.perplexity:.2f}" in note


def test_loss_bars_with_nothing_counted(tiny_lm):
    analysis = analyze(TEXT, tiny_lm, mask_first=100)
    fig = loss_bars(analysis)
    assert analysis.loss is None
    assert [t.name for t in fig.data] == ["masked (not in the loss)"]
    assert not fig.layout.shapes
    assert "no loss" in fig.layout.title.text


# ---------------------------------------------------------------- one position


def test_position_detail_values_and_title(analysis):
    vocab = analysis.vocab
    for k in (1, len(analysis.positions)):
        fig = position_detail(analysis, k)
        predicted, truth, diff = fig.data
        assert predicted.type == truth.type == diff.type == "bar" and fig.layout.barmode == "group"
        names = [esc(t.display) for t in vocab.columns] + [OTHER_COLUMN]
        assert list(predicted.x) == list(truth.x) == list(diff.x) == names
        assert list(predicted.y) == pytest.approx(vocab.predicted(k - 1))
        assert list(truth.y) == vocab.one_hot(k - 1)
        assert list(diff.y) == pytest.approx(vocab.abs_diff(k - 1))
        pos = analysis.positions[k - 1]
        title = fig.layout.title.text
        assert f"{pos.loss:.3f}" in title and f"{sum(vocab.abs_diff(k - 1)):.3f}" in title
        assert row_label(pos) in title and esc(pos.target.display) in title


@pytest.mark.parametrize("k", [0, -1, 1.5, "2", True, None])
def test_position_detail_rejects_positions_out_of_range(analysis, k):
    with pytest.raises(InputError, match="from 1 to"):
        position_detail(analysis, k)


def test_position_detail_rejects_one_past_the_end(analysis):
    with pytest.raises(InputError, match=f"from 1 to {len(analysis.positions)}"):
        position_detail(analysis, len(analysis.positions) + 1)


# ---------------------------------------------------------------- style and size


def test_classroom_style_is_large_and_high_contrast(analysis):
    for fig in all_figures(analysis, CLASSROOM):
        layout = fig.layout
        assert layout.font.size >= 20 and layout.title.font.size >= 20
        # The page's width (1280 px on a projector, less the margins), 720 px high: nothing cut off.
        assert layout.width is None and (layout.height >= 720 or fig.data[0].name == "tokens")
        assert layout.paper_bgcolor == "white" and layout.font.color == "#000000"
        assert layout.xaxis.tickfont.size >= 16 and layout.yaxis.tickfont.size >= 16
        assert all(t.textfont.size >= 16 for t in fig.data if t.type == "heatmap")
    cividis, viridis = ([c for _, c in get_colorscale(name)] for name in ("Cividis", "Viridis"))
    for make in (token_strip, top_k_heatmap, sentence_vocab_heatmap):
        assert [c for _, c in make(analysis, style=CLASSROOM).data[0].colorscale] == cividis
        assert [c for _, c in make(analysis).data[0].colorscale] == viridis
    rank = token_strip(analysis, "rank", CLASSROOM).data[0]
    assert rank.colorscale[0][1] == sample_colorscale(get_colorscale("Cividis"), [1.0])[0]
    boxes = shapes(sentence_vocab_heatmap(analysis, style=CLASSROOM))
    assert boxes and all(b.line.width >= 4 and b.line.color == "black" for b in boxes)
    assert top_k_heatmap(analysis).data[0].textfont.size < 16  # the normal style differs
    assert token_strip(analysis, style=CLASSROOM).layout.width is None


def test_long_texts_show_the_first_max_rows(analysis):
    n = len(analysis.positions)
    assert n > 6
    top = top_k_heatmap(analysis, max_rows=6)
    assert len(top.data[0].z) == 6 and len(top.layout.yaxis.ticktext) == 6
    assert f"First 6 of {n} positions" in top.layout.title.subtitle.text
    assert all(y0 < 6 for _, y0, _, _ in outlined(top))
    table = sentence_vocab_heatmap(analysis, max_rows=6)
    shown = list(dict.fromkeys(t.id for t in analysis.tokens[:7]))
    assert list(table.data[0].x) == [esc(t.display) for t in analysis.vocab.columns[: len(shown)]] + [OTHER_COLUMN]
    assert len(table.data[0].z) == len(table.data[1].z) == 6
    assert [sum(row) for row in table.data[0].z] == pytest.approx([1.0] * 6, abs=1e-4)
    assert "the rest are left out" in table.layout.title.subtitle.text
    assert not top_k_heatmap(analysis).layout.title.subtitle.text
    with pytest.raises(InputError):
        top_k_heatmap(analysis, max_rows=0)


# ---------------------------------------------------------------- escaping


def test_markup_in_the_text_stays_text(tiny_lm):
    analysis = analyze(MARKUP, tiny_lm, top_k=5)
    plain = analyze(TEXT, tiny_lm, top_k=5)
    templates = {}
    for name, fig in (("markup", all_figures(analysis)), ("plain", all_figures(plain))):
        found = set()
        for f in fig:
            data = json.loads(f.to_json())
            for s in strings(data):
                assert "<b>" not in s and "<a " not in s and "<img" not in s.lower(), s
            found |= {t.get("hovertemplate") for t in data["data"]} | {t.get("texttemplate") for t in data["data"]}
        templates[name] = found
    # The templates never depend on the text: user text reaches the figure only through text/customdata.
    assert templates["markup"] == templates["plain"]
    labels = " ".join(top_k_heatmap(analysis).layout.yaxis.ticktext)
    assert "&lt;b&gt;hi&lt;/b&gt;" in labels and html.unescape("&lt;b&gt;") == "<b>"
    assert "%{x" in labels  # the typed '%{x}' is carried as a label, not read as a template


def test_plot_config_and_figure_json(analysis):
    fig = loss_bars(analysis)
    data = json.loads(plotting.figure_json(fig))
    assert data["config"]["displaylogo"] is False
    assert data["config"]["toImageButtonOptions"]["format"] == "png"
    assert data["layout"]["title"]["text"] == fig.layout.title.text


def test_top_k_cells_cut_long_tokens_to_fit_and_the_hover_keeps_them_whole(analysis, monkeypatch):
    monkeypatch.setattr(predictions, "PAGE_WIDTH", 400)  # a narrow page: 4 characters a cell
    (heat,) = top_k_heatmap(analysis).data
    for pos, cells, hovers in zip(analysis.positions, heat.text, heat.customdata):
        for c, cell, hover in zip(pos.top, cells, hovers):
            shown = cell.split("<br>")[0]
            assert hover == esc(c.token.display)
            assert (
                shown == esc(c.token.display) if len(c.token.display) <= 4 else shown == esc(c.token.display[:3] + "…")
            )
    assert "%{customdata}" in heat.hovertemplate and any("…" in cell for row in heat.text for cell in row)
    assert plotting.cut("␣computational", 6) == "␣comp…" and plotting.cut("␣dog", 6) == "␣dog"


def test_a_cell_holds_more_characters_on_a_wider_page_and_fewer_with_more_columns():
    chars = predictions._cell_chars
    for style in (NORMAL, CLASSROOM):
        assert chars(style, 10, 20, 300) >= 4
        assert chars(style, 10, 20, 300) < chars(dataclasses.replace(style, width=2400), 10, 20, 300)
        assert chars(style, 5, 20, 300) > chars(style, 10, 20, 300) >= chars(style, 50, 20, 300) == 4
        assert chars(style, 10, 40, 300) <= chars(style, 10, 20, 300)  # longer row labels leave less room
    assert chars(NORMAL, 10, 20, 300) > chars(CLASSROOM, 10, 20, 300)  # larger type, fewer characters
