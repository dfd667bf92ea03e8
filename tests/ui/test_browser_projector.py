"""Classroom mode on a 1280x720 projector: every view is one click away and its main figure or table begins
inside the first screen; body text is at least 20 px and figure text at least 16 px."""

from __future__ import annotations

import pytest

from tests.ui.test_browser import EVERY_TAB, every_tab_shown, wait_for_summary
from tests.ui.test_browser_lesson import PROJECTOR

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Each view's main figure or table (its block is laid out before anything is drawn in it).
MAIN_VIEW = {
    "Lesson": "lesson-figure",
    "Predictions": "token-strip",
    "Predicted vs true": "vocab-heatmap",
    "Loss": "loss-bars",
    "Table & export": "positions-table",
    "Generate": "gen-text",
    "Layers": "lens-heatmap",
    "Batches & padding": "batch-grid",
    "Shift mistakes": "shift-plot",
    "Train": "train-curve",
    "Compare": "compare-plot-a",
    "Your data": "role-tokens",
}
# The top of a view's main block, and the smallest figure text in the panel shown.
MAIN_VIEW_JS = """(id) => {
  const panel = [...document.querySelectorAll('[role=tabpanel]')].find(p => p.offsetParent);
  const main = document.getElementById(id);
  const texts = [...panel.querySelectorAll('.main-svg text')].filter(t => t.textContent.trim());
  const sizes = texts.map(t => parseFloat(getComputedStyle(t).fontSize)).filter(s => s > 0);
  return {top: main && main.offsetParent ? main.getBoundingClientRect().top : null,
          smallest: sizes.length ? Math.min(...sizes) : null};
}"""


def test_every_view_begins_in_the_first_screen_in_classroom_mode(browser, server):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.goto(server + "/?classroom=1")
    wait_for_summary(page, "4 tokens")
    assert every_tab_shown(page) == EVERY_TAB == list(MAIN_VIEW)  # one click away: no overflow menu
    body = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#text-input textarea')).fontSize)")
    assert body >= 20
    low = {}
    for name, main in MAIN_VIEW.items():
        page.get_by_role("tab", name=name, exact=True).click()
        page.wait_for_function(  # a tab is built when first opened: wait for its main block, then for the layout
            "(id) => document.getElementById(id)?.offsetParent && document.getElementById(id).offsetHeight > 50",
            arg=main,
        )
        page.wait_for_timeout(1000)
        where = page.evaluate(MAIN_VIEW_JS, main)
        if where["top"] is None or where["top"] >= PROJECTOR["height"]:
            low[name] = where["top"]
        if where["smallest"] is not None and where["smallest"] < 16:
            low[f"{name} text"] = where["smallest"]
    context.close()
    assert low == {}
