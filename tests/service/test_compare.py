"""Compare: every view for two models, rows lined up by where their target tokens end, picks carried over."""

import pytest
import torch
import torch.nn.functional as F

from tests.analysis.test_alignment import byte_sets, own_ends
from visualizer.analysis.one_pass import IGNORE_INDEX
from visualizer.model.loading import load_model
from visualizer.service.compare import COMPARE_VIEWS, compare_analyses, compare_views
from visualizer.service.labels import MaskChoice
from visualizer.settings import Settings
from visualizer.views.headings import HEADER_NAME_CHARS

TEXT = "the dog likes food and the cat likes fish"
MIXED = "café naïve 日本語 😀 emoji and the dog likes food"


def own_losses(path: str, text: str, bos: bool = False) -> list[float]:
    """The test's own forward pass: -ln p of each next token, by F.cross_entropy."""
    lm = load_model(path)
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[lm.tokenizer.bos_token_id] * bos + ids])
    with torch.no_grad():
        logits = lm.model(ids).logits[0].float()
    return F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none").tolist()


@pytest.mark.parametrize("view", COMPARE_VIEWS)
def test_every_view_for_two_models_with_one_tokenizer(tiny_gpt2_dir, tiny_llama_dir, view):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir, tiny_llama_dir))
    compared = compare_analyses(TEXT, settings, tiny_gpt2_dir, tiny_llama_dir, None, top_k=5)
    views = compare_views(compared, view)
    a, b = own_losses(tiny_gpt2_dir, TEXT), own_losses(tiny_llama_dir, TEXT)
    assert list(views.difference.data[0].y) == pytest.approx([lb - la for la, lb in zip(a, b)], abs=1e-4)
    assert compared.positions.rows == [(j, j) for j in range(len(a))] and "same" in compared.note
    if view == "labels table":
        assert list(views.left["token"]) == [t.display for t in compared.a.tokens] == list(views.right["token"])
        return
    left, right = views.left, views.right
    assert left.layout.height == right.layout.height and left.layout.margin.t == right.layout.margin.t
    assert left.layout.title.text.startswith("A: ") and right.layout.title.text.startswith("B: ")
    name = left.layout.title.text.split(" · ")[0][3:]
    assert len(name) <= HEADER_NAME_CHARS and tiny_gpt2_dir.endswith(name.removeprefix("…"))
    if view in ("top-K", "predicted vs true"):
        assert left.layout.yaxis.range == right.layout.yaxis.range == (len(a) - 0.5, -0.5)
        assert list(left.layout.yaxis.tickvals) == list(range(len(a)))
    if view == "loss per position":
        assert f"{compared.b.loss:.3f} nats" in right.layout.title.text
        assert left.layout.yaxis.range == right.layout.yaxis.range and left.layout.yaxis.range[1] >= max(a + b)


def test_two_tokenizers_line_up_by_where_the_targets_end(tiny_gpt2_dir, other_tokenizer_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir, other_tokenizer_dir))
    compared = compare_analyses(MIXED, settings, tiny_gpt2_dir, other_tokenizer_dir, None, top_k=5, bos=True)
    a, b = compared.a, compared.b
    ends_a = [None, *own_ends(a.decoder.tokenizer, a.input_ids[1:])]  # independent: the tokens' own bytes
    ends_b = [None, *own_ends(b.decoder.tokenizer, b.input_ids[1:])]
    assert "aligned by character offsets" in compared.note and compared.positions.gaps > 0
    loss_a, loss_b = own_losses(tiny_gpt2_dir, MIXED, True), own_losses(other_tokenizer_dir, MIXED, True)
    diff = compare_views(compared, "top-K").difference.data[0].y
    assert len(diff) == len(compared.positions.rows)
    for (ja, jb), d in zip(compared.positions.rows, diff):
        if ja is None or jb is None:
            assert d is None
        else:
            assert ends_a[ja + 1] == ends_b[jb + 1] and d == pytest.approx(loss_b[jb] - loss_a[ja], abs=1e-4)
    paired = sum(1 for ja, jb in compared.positions.rows if ja is not None and jb is not None)
    assert paired == len(set(ends_a[1:]) & set(ends_b[1:]))
    for view in ("top-K", "predicted vs true"):
        left, right = compare_views(compared, view).left, compare_views(compared, view).right
        rows = len(compared.positions.rows)
        assert left.layout.height == right.layout.height and len(left.data[0].z) == len(right.data[0].z) == rows
        assert list(left.layout.yaxis.tickvals) == compared.positions.slots(0).rows
        gaps = [r for r, (ja, _) in enumerate(compared.positions.rows) if ja is None]
        assert all(all(v != v for v in left.data[0].z[r]) for r in gaps)  # NaN: an empty row
    bars = compare_views(compared, "loss per position")
    for side, fig in enumerate((bars.left, bars.right)):  # each bar in its aligned slot, blanks in the gaps
        slots = list(fig.layout.xaxis.categoryarray)
        assert len(slots) == len(compared.positions.rows)
        assert [r for r, name in enumerate(slots) if name.strip("\u200b")] == compared.positions.slots(side).rows
    table = compare_views(compared, "labels table")
    assert len(table.left) == len(table.right) == len(compared.tokens.rows)


def test_picked_tokens_are_carried_over_by_their_bytes(tiny_gpt2_dir, other_tokenizer_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir, other_tokenizer_dir))
    page = load_model(tiny_gpt2_dir)
    ids = page.tokenizer(MIXED, add_special_tokens=False)["input_ids"]
    picked = (1, 2, 9)
    mask = MaskChoice("picked tokens", picked=picked)
    compared = compare_analyses(
        MIXED, settings, other_tokenizer_dir, tiny_gpt2_dir, None, mask=mask, page_model=tiny_gpt2_dir
    )
    chosen = set().union(*(byte_sets(page.tokenizer, ids, 0)[i] for i in picked))
    other = compared.a
    expected = [j for j, own in enumerate(byte_sets(other.decoder.tokenizer, other.input_ids, 0)) if own & chosen]
    assert [i for i, label in enumerate(other.labels) if label == IGNORE_INDEX] == expected
    assert [i for i, label in enumerate(compared.b.labels) if label == IGNORE_INDEX] == list(picked)
    assert expected != list(picked) and "carried over" in compared.note


def test_app_handlers_switch_views_and_restyle_every_view(tiny_gpt2_dir, other_tokenizer_dir):
    from visualizer.ui.compare_tab import make_compare_handlers
    from visualizer.ui.label_tabs import make_label_handlers
    from visualizer.views.plotting import CLASSROOM, NORMAL

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir, other_tokenizer_dir))
    h, labels = make_compare_handlers(settings), make_label_handlers(settings)
    out = h.compare(MIXED, tiny_gpt2_dir, other_tokenizer_dir, "top-K", 5, False, False, "none", 0, "", [])
    compared = out[0]
    assert compared is not None and "character offsets" in out[1]
    for view in COMPARE_VIEWS:
        plot_a, plot_b, table_a, table_b, diff, menu = h.compare_view(compared, view, False)
        assert table_a.visible == (view == "labels table") and plot_a.visible != table_a.visible
        assert menu.visible == (view == "position detail")
        for style, on in ((CLASSROOM, True), (NORMAL, False)):
            figures = labels.restyle(None, None, None, compared, on, view)[-3:]
            shown = [f for f in figures if hasattr(f, "layout")]
            assert len(shown) == (1 if view == "labels table" else 3)
            assert {f.layout.font.size for f in shown} == {style.font_size}
    failed = h.compare(MIXED, tiny_gpt2_dir, "not-a-model", "top-K", 5, False, False, "none", 0, "", [])
    assert failed[0] is None and failed[1].startswith("⚠")
