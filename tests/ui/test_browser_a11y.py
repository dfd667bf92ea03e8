"""An axe-core scan (axe-playwright-python) of the main page, classroom mode and each lesson step: no serious
or critical violation."""

from __future__ import annotations

import pytest

from tests.ui.test_browser import open_views, wait_for_summary, wait_for_tick, wait_until_settled
from tests.ui.test_browser_lesson import PROJECTOR, wait_for_step

pytestmark = [pytest.mark.slow, pytest.mark.browser]

BLOCKING = ("serious", "critical")


def violations(page) -> list[str]:
    """The serious and critical axe violations on the page as shown, one line each with a node it names."""
    from axe_playwright_python.sync_playwright import Axe

    wait_until_settled(page)  # outputs are dimmed or written over while they update
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']}; {len(v['nodes'])} nodes: "
        + " | ".join(f"{n['target']} {n.get('failureSummary', '')[-120:]}" for n in v["nodes"][:6])
        for v in found
        if v["impact"] in BLOCKING
    ]


def test_the_main_page_and_classroom_mode_have_no_serious_violation(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    wait_for_tick(page, "top-k-heatmap", "the dog")
    assert violations(page) == []
    open_views(page, server + "/?classroom=1")
    page.wait_for_function("() => document.body.classList.contains('classroom')")
    wait_for_tick(page, "top-k-heatmap", "the dog")
    assert violations(page) == []


FIGURE_LABELS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent)
    .map(p => [p.getAttribute('role'), p.getAttribute('aria-label') || ''])"""


def test_every_figure_of_the_analysis_views_has_a_text_alternative_with_its_numbers(page, server):
    open_views(page, server)
    wait_for_tick(page, "top-k-heatmap", "the dog")
    for view in ("Predictions", "Predicted vs true", "Loss"):
        page.get_by_role("tab", name=view, exact=True).click()
        page.wait_for_function(f"() => ({FIGURE_LABELS_JS})().length > 0 && ({FIGURE_LABELS_JS})().every(l => l[1])")
        labels = page.evaluate(FIGURE_LABELS_JS)
        assert all(role == "figure" and any(ch.isdigit() for ch in alt) for role, alt in labels), (view, labels)
    page.get_by_role("tab", name="Loss", exact=True).click()
    assert any("nats over 3 positions; highest at k=" in alt for _, alt in page.evaluate(FIGURE_LABELS_JS))


def test_every_lesson_step_has_no_serious_violation(browser, server):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.goto(server + "/?lesson=1&classroom=1")
    for step in range(1, 9):
        wait_for_step(page, step)
        assert violations(page) == [], step
        page.keyboard.press("ArrowRight")
    context.close()
