"""Live typing in a real browser: the text is analysed as it rests, the page ends on the last text typed,
no text is run twice, Enter still works, and the Lesson follows the typing too."""

from __future__ import annotations

import pytest

from tests.ui.test_browser import open_views, wait_for_summary, wait_for_tick
from tests.ui.test_browser_lesson import wait_for_step
from visualizer.service import labels

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FIRST, REST = "The children played in", " the garden all day"


@pytest.fixture
def analysed(monkeypatch) -> list[str]:
    """The texts the server analyses for the page, in order (a request skipped as already shown is absent)."""
    texts: list[str] = []
    real = labels.page_analysis

    def counting(text, *args, **kwargs):
        texts.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(labels, "page_analysis", counting)
    return texts


def text_box(page):
    return page.locator("#text-input textarea, #text-input input").first


def test_typing_letter_by_letter_ends_on_the_last_text_and_runs_each_text_once(page, server, analysed):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analysed.clear()
    box = text_box(page)
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(FIRST, delay=40)  # quicker than the pause that starts an analysis: no request per letter
    wait_for_tick(page, "top-k-heatmap", "played")  # no Enter: the rested text was analysed
    page.keyboard.type(REST, delay=40)  # typed while the page may still be drawing the first half
    wait_for_tick(page, "top-k-heatmap", "garden all")  # the context of the last token, "day"
    last = FIRST + REST
    assert box.input_value() == last
    assert analysed[-1] == last
    assert len(analysed) <= 6, analysed  # 41 keystrokes, a handful of analyses
    assert len(set(analysed)) == len(analysed), analysed  # nothing ran twice for the same text
    shown = page.locator("#summary textarea").input_value()
    box.press("Enter")  # Enter on the text already shown: nothing new to run
    page.wait_for_timeout(1500)
    assert analysed[-1] == last and analysed.count(last) == 1, analysed
    assert page.locator("#summary textarea").input_value() == shown
    box.press("End")
    page.keyboard.type(".")
    box.press("Enter")  # Enter still works, and the pause after it sends nothing more
    wait_for_tick(page, "top-k-heatmap", "all day")  # now a context: the text ends with "."
    page.wait_for_function("(s) => document.querySelector('#summary textarea').value !== s", arg=shown, timeout=60_000)
    page.wait_for_timeout(1000)
    assert analysed[-1] == last + "." and analysed.count(last + ".") == 1, analysed
    assert page.dialogs == []


def test_the_lesson_follows_the_typing(page, server):
    page.goto(server + "/?lesson=1&step=1")
    wait_for_step(page, 1, "4 tokens")
    text_box(page).click()
    page.keyboard.press("End")
    page.keyboard.type(" today", delay=40)
    wait_for_step(page, 1, "5 tokens")  # no Enter: the step was redrawn for the text as typed


SHOWS_JS = """(id) => { const p = document.querySelector(`#${id} .js-plotly-plot`);
    return p && p.data ? JSON.stringify([p.data.map(t => [t.x, t.y, t.text]), p.layout.xaxis, p.layout.yaxis]) : '' }"""


def test_typing_draws_the_tab_shown_and_each_other_tab_as_it_opens(page, server, analysed):
    """The figures of the other tabs are cleared, never left showing the text before, and drawn from the held
    analysis when their tab opens: one analysis in all (tests/ui/test_tab_drawing.py: each tab drawn once)."""
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    for tab, plot in (("Predicted vs true", "vocab-heatmap"), ("Loss", "loss-bars")):  # each view opened once
        page.get_by_role("tab", name=tab).click()
        wait_for_tick(page, plot, "food")
    page.get_by_role("tab", name="Predictions").click()
    analysed.clear()
    box = text_box(page)
    box.click()
    page.keyboard.press("End")
    page.keyboard.type(" today", delay=40)
    wait_for_tick(page, "top-k-heatmap", "likes food")  # the context of "today"
    assert "today" in page.evaluate(SHOWS_JS, "token-strip")
    for plot in ("vocab-heatmap", "loss-bars"):  # hidden: cleared, not the text before
        assert "food" not in page.evaluate(SHOWS_JS, plot)
    page.get_by_role("tab", name="Loss").click()
    wait_for_tick(page, "loss-bars", "today")
    page.get_by_role("tab", name="Predicted vs true").click()
    wait_for_tick(page, "vocab-heatmap", "today")
    wait_for_tick(page, "position-detail", "today")
    assert analysed == ["the dog likes food today"]  # every view from the one analysis
    assert page.dialogs == []
