"""The page on a model served by a real vLLM server, in Chromium at 1280x720: type, read, switch views."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.served import serve
from tests.ui.conftest import browser  # noqa: F401 - the shared Chromium fixture
from tests.ui.test_browser import analyze_text, open_views, wait_for_summary, wait_for_tick
from visualizer.settings import BUNDLED_MODEL, Settings

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.engine]

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="module")
def engine_app(vllm_server, bundled_lm):
    """The app opening on the served model, with the in-process one beside it in the menu."""
    with serve(Settings(model=vllm_server.entry, models=(vllm_server.entry, BUNDLED_MODEL))) as url:
        yield url


def test_the_page_analyses_through_the_engine_and_says_what_needs_weights(browser, engine_app, tmp_path):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        open_views(page, engine_app)
        analyze_text(page, "the cat likes fish and <b>milk</b>")
        wait_for_summary(page, "mean loss over counted positions")
        wait_for_tick(page, "top-k-heatmap", "likes fish")  # a context label
        summary = page.locator("#summary textarea").input_value()
        assert "vllm:" in summary and "gives no loss of its own" in summary
        assert page.locator("#top-k-heatmap b").count() == 0  # the typed markup stays text
        page.screenshot(path=str(tmp_path / "engine-predictions.png"))
        if ASSETS.is_dir():
            page.screenshot(path=str(ASSETS / "engine-predictions.png"))

        analyze_text(page, "the dog likes food")  # short: its table is exact
        wait_for_tick(page, "top-k-heatmap", "the dog likes")
        page.get_by_role("tab", name="Predicted vs true").click()
        page.wait_for_function(  # the table's cells, every one known: a short text's table is exact
            "() => [...document.querySelectorAll('#vocab-heatmap text')].some(t => t.textContent.endsWith('%'))",
            timeout=30_000,
        )
        cells = page.locator("#vocab-heatmap text").all_text_contents()
        assert not [c for c in cells if c.startswith("≤") or c == "?"]

        page.get_by_role("tab", name="Layers").click()
        page.locator("#lens-button").click()
        page.wait_for_function(
            "() => document.querySelector('#lens-summary textarea')?.value.includes('needs the model')",
            timeout=30_000,
        )
        text = page.locator("#lens-summary textarea").input_value()
        assert "in this process" in text and "\n" not in text and "Traceback" not in text  # one sentence
    finally:
        context.close()
