"""The labels views without a server: masking choices, batches, shift mistakes, training, comparing."""

import json

import pytest
import torch

from tests.views.test_figures import strings
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze
from visualizer.analysis.trained_copies import TRAINED
from visualizer.errors import InputError
from visualizer.model.loading import load_model
from visualizer.service.batches import run_batch
from visualizer.service.labels import (
    MaskChoice,
    already_shown,
    analyze_with_mask,
    chat_text,
    picks_still_meant,
)
from visualizer.service.models import TRAINED_CHOICE
from visualizer.service.shifts import MISTAKES, run_shift
from visualizer.service.training import reset_training, run_training
from visualizer.settings import Settings
from visualizer.views import label_figures
from visualizer.views.headings import HEADER_NAME_CHARS
from visualizer.views.plotting import escape_text

TEXT = "the dog likes food and the cat likes fish"


@pytest.fixture
def settings(tiny_gpt2_dir):
    return Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))


@pytest.mark.parametrize(
    "mask, expected",
    [
        (MaskChoice(), []),
        (MaskChoice("first N tokens", first_n=3), [0, 1, 2]),
        (MaskChoice("picked tokens", picked=(2, 5)), [2, 5]),
    ],
)
def test_mask_choices_set_labels(settings, mask, expected):
    result = analyze_with_mask(TEXT, settings, settings.model, mask)
    assert [i for i, label in enumerate(result.labels) if label == IGNORE_INDEX] == expected
    counted = [p.loss for p in result.positions if p.loss is not None]
    assert result.counted == len(counted) and result.loss == pytest.approx(sum(counted) / len(counted), abs=1e-5)


CHOICES = [
    MaskChoice(),
    MaskChoice("none", first_n=4, marker="likes"),
    MaskChoice("first N tokens"),
    MaskChoice("first N tokens", first_n=1),
    MaskChoice("first N tokens", first_n=2),
    MaskChoice("up to a marker", marker="likes"),
    MaskChoice("up to a marker", marker="the dog likes"),
    MaskChoice("picked tokens", picked=(0,)),
    MaskChoice("picked tokens", picked=(2, 5)),
    MaskChoice("picked tokens", picked=(5, 2, 5)),
    MaskChoice("first N tokens", first_n=99),
]


@pytest.mark.parametrize("shown", range(len(CHOICES)))
def test_a_masking_change_is_already_shown_exactly_when_the_labels_stay_the_same(settings, shown):
    held = analyze_with_mask(TEXT, settings, settings.model, CHOICES[shown], top_k=5)
    for choice in CHOICES:
        same = analyze_with_mask(TEXT, settings, settings.model, choice, top_k=5).labels == held.labels
        assert already_shown(held, TEXT, settings, settings.model, choice, top_k=5) is same, choice
    assert already_shown(held, TEXT, settings, settings.model, CHOICES[shown], top_k=5)


def test_anything_else_changed_is_never_already_shown(settings):
    held = analyze_with_mask(TEXT, settings, settings.model, MaskChoice(), top_k=5)
    kept = dict(settings=settings, model=settings.model, mask=MaskChoice(), top_k=5, bos=False)
    assert already_shown(held, TEXT, **kept)
    for change in (
        dict(top_k=6),
        dict(bos=True),
        dict(model=TRAINED_CHOICE),
        dict(model="another/model"),
        dict(mask=MaskChoice("first N tokens", first_n=-1)),
        dict(mask=MaskChoice("no such mode")),
    ):
        assert not already_shown(held, TEXT, **{**kept, **change}), change
    assert not already_shown(held, TEXT + " too", **kept)
    assert not already_shown(None, TEXT, **kept)


def test_picks_are_kept_only_where_the_text_up_to_them_is_unchanged(settings):
    held = analyze_with_mask(TEXT, settings, settings.model, MaskChoice("picked tokens", picked=(2, 5)))
    tokens = [t.text for t in held.tokens]
    keep = lambda text, picked=(2, 5): picks_still_meant(held, text, settings, settings.model, picked)  # noqa: E731
    assert keep(TEXT) == (2, 5)
    assert keep(TEXT + " too") == (2, 5)  # an edit after both
    assert keep("".join(tokens[:4]) + " and a bird") == (2,)  # an edit between them
    assert keep("a cat likes food and the cat likes fish") == ()  # the first token changed
    assert keep("".join(tokens[:3])) == (2,)  # cut after the first pick
    assert keep(TEXT, ()) == () and picks_still_meant(None, "x", settings, settings.model, [3]) == (3,)
    assert picks_still_meant(held, TEXT, settings, settings.model, (2,), bos=True) == ()  # BOS shifts every index


def test_an_n_beyond_the_text_masks_everything_and_a_bad_n_is_refused(settings):
    for huge in (999, 10**20, 1e20):
        result = analyze_with_mask(TEXT, settings, settings.model, MaskChoice("first N tokens", first_n=huge))
        assert (
            set(result.labels) == {IGNORE_INDEX}
            and result.loss is None
            and "Every label is masked" in result.notices[0]
        )
    for bad in (-5, 2.5, "3"):
        with pytest.raises(InputError, match="N must be a whole number, 0 or more"):
            analyze_with_mask(TEXT, settings, settings.model, MaskChoice("first N tokens", first_n=bad))


def test_the_marker_mode_before_a_marker_is_typed_masks_nothing_yet(settings):
    waiting = MaskChoice("up to a marker", marker="")
    result = analyze_with_mask(TEXT, settings, settings.model, waiting)
    assert IGNORE_INDEX not in result.labels and "Type a marker" in result.notices[-1]
    assert already_shown(
        analyze_with_mask(TEXT, settings, settings.model, MaskChoice()), TEXT, settings, settings.model, waiting
    )  # so choosing the mode alone sends no new analysis
    with pytest.raises(InputError, match="does not occur"):
        analyze_with_mask(TEXT, settings, settings.model, MaskChoice("up to a marker", marker="zebra"))


def test_marker_masks_up_to_and_including_it(settings):
    result = analyze_with_mask(
        "Question: why? Answer: because", settings, settings.model, MaskChoice("up to a marker", marker="Answer:")
    )
    masked_text = "".join(t.text for t, label in zip(result.tokens, result.labels) if label == IGNORE_INDEX)
    assert masked_text == "Question: why? Answer:"
    with pytest.raises(InputError):
        analyze_with_mask("no marker here", settings, settings.model, MaskChoice("up to a marker", marker="Answer:"))


def test_chat_text_counts_only_the_answer(settings):
    text, n_prompt = chat_text("What does the dog like?", "Food.", settings, settings.model)
    result = analyze_with_mask(text, settings, settings.model, MaskChoice("first N tokens", first_n=n_prompt))
    counted_text = "".join(t.text for t, label in zip(result.tokens, result.labels) if label != IGNORE_INDEX)
    assert "Food." in counted_text and "dog" not in counted_text


def test_batch_view(settings):
    result, grid, losses, table, explanation = run_batch("the dog likes food\na cat", settings, settings.model, True)
    assert grid.data[0].type == "heatmap" and len(grid.data[0].z) == 2
    short = result.rows[1]
    assert grid.data[0].z[1][short.length :] == [label_figures.MASKED_PAD] * (len(short.tokens) - short.length)
    assert list(grid.data[0].text[1][short.length :]) == ["pad"] * (
        len(short.tokens) - short.length
    )  # named in the title
    assert escape_text(result.pad_token.display) in grid.data[0].customdata[1][-1]  # and in each pad's hover
    assert list(grid.data[0].text[1][: short.length]) == [escape_text(t.display) for t in short.tokens[: short.length]]
    assert table["loss"].iloc[-1] == float(f"{result.batch_loss:.4g}")  # the page shows 4 significant digits
    assert explanation
    wrong, grid_wrong, *_ = run_batch("the dog likes food\na cat", settings, settings.model, False)
    assert label_figures.COUNTED_PAD in grid_wrong.data[0].z[1] and wrong.pad_terms > 0
    with pytest.raises(InputError, match="two sentences"):
        run_batch("only one", settings, settings.model, True)


def test_page_tables_show_four_significant_digits_and_keep_the_rest():
    import pandas as pd

    from visualizer.views.tables import for_display

    raw = pd.DataFrame(
        {
            "k": [1, 2, 3],
            "p": [1.1985415251051983e-06, 0.5, float("nan")],
            "loss": [13.634405136108398, 0.00012345678, 1234567.0],
            "token": ["a", "b", "c"],
        }
    )
    shown = for_display(raw)
    assert shown["p"].tolist()[:2] == [1.199e-06, 0.5] and pd.isna(shown["p"].iloc[2])
    assert shown["loss"].tolist() == [13.63, 0.0001235, 1235000.0]
    assert shown["k"].tolist() == [1, 2, 3] and shown["token"].tolist() == ["a", "b", "c"]
    assert raw["loss"].iloc[0] == 13.634405136108398  # the original is untouched


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_shift_views(settings, mistake):
    comparison, fig, table, explanation = run_shift(TEXT, settings, settings.model, mistake)
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert table["loss"].tolist() == [float(f"{r.loss:.4g}") for r in comparison.rows]
    right = analyze(TEXT, load_model(settings.model))
    assert comparison.loss == pytest.approx(right.loss, abs=1e-5)
    assert comparison.wrong_loss != pytest.approx(comparison.loss, abs=1e-6) and explanation


def test_training_view_and_the_trained_copy(settings):
    shared = load_model(settings.model)
    weights = [p.detach().clone() for p in shared.model.parameters()]
    views = run_training("session-a", TEXT, settings, settings.model, steps=3, optimizer="adamw", lr=1e-2)
    assert [t.type for t in views.curve.data] == ["scatter"] and len(views.curve.data[0].x) == 4
    assert len(views.heatmap.data[0].z) == len(views.run.tokens) - 1
    assert views.run.losses[-1] < views.run.losses[0]
    assert all(torch.equal(a, b) for a, b in zip(weights, shared.model.parameters()))
    trained = analyze_with_mask(TEXT, settings, TRAINED_CHOICE, MaskChoice(), "session-a")
    assert "trained" in trained.model and trained.loss == pytest.approx(views.run.losses[-1], abs=1e-4)
    assert "Before training" in views.before.layout.title.text
    assert reset_training("session-a").startswith("The trained copy was freed")
    with pytest.raises(InputError, match="no trained copy"):
        analyze_with_mask(TEXT, settings, TRAINED_CHOICE, MaskChoice(), "session-a")
    assert "session-a" not in TRAINED


def test_side_by_side_names_are_cut_to_their_end_and_escaped():
    from visualizer.views.headings import short_name

    assert short_name("SmolLM2-135M-Instruct") == "SmolLM2-135M-Instruct"
    assert short_name("/home/me/" + "x" * 40 + "/tiny-gpt2", 20) == "…" + ("x" * 40 + "/tiny-gpt2")[-19:]
    assert len(short_name("a" * 100)) == HEADER_NAME_CHARS


def test_markup_in_batch_and_shift_figures_is_escaped(settings):
    markup = "<b>x</b> <img src=x onerror=alert(1)>\n<a href='y'>y</a> ok"
    _, grid, losses, _, _ = run_batch(markup, settings, settings.model, True)
    _, shift_fig, _, _ = run_shift(markup.replace("\n", " "), settings, settings.model, list(MISTAKES)[0])
    for fig in (grid, shift_fig):
        shown = " ".join(strings(json.loads(fig.to_json())))
        assert "&lt;" in shown  # the markup is there, escaped
        assert "<b>x" not in shown and "<img" not in shown and "<a href" not in shown
    # The row losses name rows, never tokens: every string they show is one of these.
    result = run_batch(markup, settings, settings.model, True)[0]
    rows = [f"row {i} ({r.counted} counted)" for i, r in enumerate(result.rows)]
    assert list(losses.data[0].x) == rows and list(losses.data[0].text) == [f"{r.loss:.3f}" for r in result.rows]
    shown = [a.text for a in losses.layout.annotations] + [losses.layout.title.text, losses.layout.yaxis.title.text]
    assert not any("<" in s.replace("<br>", "") or "href" in s or "onerror" in s for s in shown)


def test_training_stops_at_the_time_limit(tiny_gpt2_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), time_limit_s=0)
    with pytest.raises(InputError, match="time limit"):
        run_training("session-t", TEXT, settings, settings.model, steps=5)
    assert "session-t" not in TRAINED


def test_training_steps_respect_the_setting(tiny_gpt2_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), max_train_steps=3)
    with pytest.raises(InputError, match="At most 3 steps"):
        run_training("session-s", TEXT, settings, settings.model, steps=4)


def test_classroom_mode_redraws_the_batch_shift_train_and_compare_figures_from_what_they_showed(settings):
    import gradio as gr

    from visualizer.ui.compare_tab import make_compare_handlers
    from visualizer.ui.label_tabs import make_label_handlers
    from visualizer.views.plotting import CLASSROOM, NORMAL

    h = make_label_handlers(settings)
    request = type("Request", (), {"session_hash": "restyle"})()
    batched = h.batch("the dog likes food\na cat", settings.model, True, False)[0]
    shifted = h.shift(TEXT, settings.model, list(MISTAKES)[0], False, False)[0]
    trained = h.train(
        TEXT,
        settings.model,
        2,
        "sgd",
        0,
        False,
        False,
        "none",
        0,
        "",
        [],
        request=request,
        progress=lambda *a, **k: None,
    )[0]
    compared = make_compare_handlers(settings).compare(
        TEXT, settings.model, settings.model, "top-K", 5, False, False, "none", 0, "", [], request=request
    )[0]
    assert batched and shifted and trained and compared
    assert trained[0].trained is None and "restyle" in TRAINED  # the page keeps no model: the registry bounds them
    for style, on in ((CLASSROOM, True), (NORMAL, False)):
        figures = h.restyle(batched, shifted, trained, compared, on)
        assert len(figures) == 10 and {f.layout.font.size for f in figures} == {style.font_size}
    skips = h.restyle(None, None, None, None, True)  # nothing shown yet: nothing redrawn
    assert all(isinstance(s, type(gr.skip())) for s in skips) and len(skips) == 10
    reset_training("restyle")


def test_train_and_compare_drop_picks_that_name_other_tokens_now(settings):
    from visualizer.ui.compare_tab import make_compare_handlers
    from visualizer.ui.label_tabs import make_label_handlers

    held = analyze_with_mask(TEXT, settings, settings.model, MaskChoice("picked tokens", picked=(1, 3)))
    h = make_label_handlers(settings)
    request = type("Request", (), {"session_hash": "stale-picks"})()
    edited = "the dog eats a lot of fish"  # token 1 is the same, token 3 is not
    mask = ["picked tokens", 0, "", [1, 3]]
    compare = make_compare_handlers(settings).compare
    compared = compare(
        edited, settings.model, settings.model, "top-K", 5, False, False, *mask, held, settings.model, request=request
    )[0]
    assert [i for i, label in enumerate(compared.a.labels) if label == IGNORE_INDEX] == [1]
    run = h.train(
        edited, settings.model, 1, "sgd", 0, False, False, *mask, held, request=request, progress=lambda *a, **k: None
    )[0][0]
    assert [i for i, label in enumerate(run.labels) if label == IGNORE_INDEX] == [1]
    reset_training("stale-picks")


def test_a_failed_analysis_clears_the_picks():
    import gradio as gr

    from visualizer.ui.analysis_tabs import failure_outputs

    cleared = failure_outputs("x")[-1]
    assert isinstance(cleared, gr.CheckboxGroup) and cleared.value == []
