"""The page draws the figures of the tab it shows: an analysis sends the open tab's lead figure at once, leaves its
other figures to be drawn right after from the held analysis and clears the other tabs'; a tab opened later is drawn
from the held analysis (no second forward pass), once per analysis."""

from __future__ import annotations

import gradio as gr
import plotly.graph_objects as go
import pytest

from visualizer.service import labels as service_labels
from visualizer.service.page import FIGURES, build_views
from visualizer.settings import Settings
from visualizer.ui import analysis_tabs
from visualizer.ui.analysis_tabs import LOSS, PREDICTIONS, TAB_FIGURES, VOCAB, lead_figures

SKIP = type(gr.skip())
QUIET = dict(request=type("Request", (), {"session_hash": "tabs"})(), progress=lambda *a, **k: None)
FIGS = slice(2, 2 + len(FIGURES))
"""Where the five figures sit in the page's outputs (after the analysis and the loss box)."""


@pytest.fixture
def handlers(tiny_gpt2_dir):
    return analysis_tabs.make_analysis_handlers(Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,)))


@pytest.fixture
def forward_passes(monkeypatch) -> list[str]:
    runs: list[str] = []
    real = service_labels.page_analysis
    monkeypatch.setattr(service_labels, "page_analysis", lambda text, *a, **k: runs.append(text) or real(text, *a, **k))
    return runs


def analyse(handlers, model: str, text: str, open_tab) -> list:
    controls = [model, 5, False, "probability", False, "none", 0, "", []]
    return handlers.analyze_page(None, text, *controls, open_tab, **QUIET)


def test_every_tab_has_figures_and_together_they_are_every_figure():
    names = [name for tab in TAB_FIGURES.values() for name in tab]
    assert sorted(names) == sorted(FIGURES) and len(names) == len(set(names))


@pytest.mark.parametrize("open_tab", [PREDICTIONS, VOCAB, LOSS, "Lesson", "Table & export", None])
def test_an_analysis_sends_the_open_tabs_lead_figure_then_draws_the_rest_of_the_tab(handlers, tiny_gpt2_dir, open_tab):
    outputs = analyse(handlers, tiny_gpt2_dir, "the dog likes food", open_tab)
    shown = dict(zip(FIGURES, outputs[FIGS]))
    tab = TAB_FIGURES.get(open_tab, ())
    assert {n for n, f in shown.items() if isinstance(f, go.Figure)} == set(tab[:1]) == set(lead_figures(open_tab))
    assert all(isinstance(f, SKIP) for n, f in shown.items() if n in tab[1:])  # left for draw_tab
    assert all(f is None for n, f in shown.items() if n not in tab)
    held, drawn = outputs[0], outputs[-2]
    assert drawn == (held, frozenset(tab[:1]))
    assert outputs[-1].value == []  # the picked tokens stay the last output
    rest = handlers.draw_tab(held, open_tab, "probability", False, None, drawn)  # as the new analysis arrives
    after = dict(zip(FIGURES, rest[:-1]))
    assert {n for n, f in after.items() if isinstance(f, go.Figure)} == set(tab[1:])
    assert all(isinstance(f, SKIP) for n, f in after.items() if n not in tab[1:])  # the lead one not sent again
    if tab[1:]:
        assert rest[-1] == (held, frozenset(tab))
    else:  # nothing left to draw: nothing sent
        assert all(isinstance(o, SKIP) for o in rest)


def test_a_tab_opened_later_is_drawn_from_the_held_analysis_once(handlers, tiny_gpt2_dir, forward_passes):
    outputs = analyse(handlers, tiny_gpt2_dir, "the dog likes food", PREDICTIONS)
    held, drawn = outputs[0], outputs[-2]
    opened = handlers.draw_tab(held, LOSS, "probability", False, None, drawn)
    loss = dict(zip(FIGURES, opened[:-1]))["loss"]
    expected = build_views(held, figures=["loss"]).loss
    assert loss.to_plotly_json() == expected.to_plotly_json()
    assert all(isinstance(f, SKIP) for n, f in zip(FIGURES, opened[:-1]) if n != "loss")  # the others left alone
    assert opened[-1] == (held, frozenset(["token_strip", "loss"]))
    again = handlers.draw_tab(held, LOSS, "probability", False, None, opened[-1])  # reopened: already drawn
    assert all(isinstance(o, SKIP) for o in again)
    assert forward_passes == ["the dog likes food"]  # drawing a tab runs no model


def test_figures_drawn_for_an_older_analysis_are_drawn_again(handlers, tiny_gpt2_dir):
    """The tab shown when an analysis ends is drawn for it, even if its figures were drawn for the one before (a
    tab opened while the analysis ran)."""
    older = analyse(handlers, tiny_gpt2_dir, "the dog likes food", PREDICTIONS)
    opened = handlers.draw_tab(older[0], LOSS, "probability", False, None, older[-2])
    newer = analyse(handlers, tiny_gpt2_dir, "the cat likes fish", PREDICTIONS)
    after = handlers.draw_tab(newer[0], LOSS, "probability", False, None, opened[-1])  # drawn: the older analysis
    assert isinstance(dict(zip(FIGURES, after[:-1]))["loss"], go.Figure)
    assert after[-1] == (newer[0], frozenset(["loss"]))
    assert all(isinstance(o, SKIP) for o in handlers.draw_tab(None, LOSS, "probability", False, None, after[-1]))


def test_a_new_colour_redraws_the_open_tab_and_clears_the_others(handlers, tiny_gpt2_dir):
    outputs = analyse(handlers, tiny_gpt2_dir, "the dog likes food", PREDICTIONS)
    redrawn = handlers.redraw(outputs[0], VOCAB, "rank", True, None)
    shown = dict(zip(FIGURES, redrawn[:-1]))
    assert {n for n, f in shown.items() if isinstance(f, go.Figure)} == {"sentence_vocab", "detail"}
    assert shown["token_strip"] is None and redrawn[-1] == (outputs[0], frozenset(["sentence_vocab", "detail"]))
