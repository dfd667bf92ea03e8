"""Compare in a real browser: every view, the two models side by side from 1280 px, rows level with their partners."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.served import serve
from tests.service.test_compare import MIXED
from tests.ui.test_browser import wait_for_summary
from visualizer.service.compare import COMPARE_VIEWS
from visualizer.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.browser]

BOXES_JS = """(ids) => ids.map(id => { const e = document.getElementById(id);
    if (!e || !e.offsetParent) return null; const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; })"""
PLOT_AREA_JS = """(id) => { const r = document.querySelector(`#${id} .nsewdrag`).getBoundingClientRect();
    return [r.y + window.scrollY, r.height]; }"""
ROWS_JS = """(id) => [...document.querySelectorAll(`#${id} .virtual-row`)].map(r => {
    const b = r.getBoundingClientRect(); return [Math.round(b.y + window.scrollY), Math.round(b.height)]; })"""


@pytest.fixture(scope="module")
def two_tokenizers(tiny_gpt2_dir, other_tokenizer_dir):
    with serve(Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir, other_tokenizer_dir))) as url:
        yield url


def open_compare(page, url: str, classroom: bool) -> None:
    """Open the page on the mixed text, go to Compare (one click: the tab bar wraps), run it."""
    page.goto(f"{url}/?classroom={int(classroom)}&text={quote(MIXED)}")
    wait_for_summary(page, "loss = ")
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-note')?.innerText.includes('character offsets')", timeout=60_000
    )


def show_view(page, view: str) -> None:
    """Pick a view and wait until both halves show it."""
    page.locator("#compare-view").get_by_label(view, exact=True).check()
    ids = ["compare-table-a", "compare-table-b"] if view == "labels table" else ["compare-plot-a", "compare-plot-b"]
    wait = (
        "(ids) => ids.every(id => document.getElementById(id)?.offsetParent && "
        "(id.includes('table') ? document.querySelector(`#${id} .virtual-row`)"
        " : document.querySelector(`#${id} .nsewdrag`)))"
    )
    page.wait_for_function(wait, arg=ids, timeout=30_000)
    page.wait_for_timeout(700)  # Plotly's resize after the switch


@pytest.mark.parametrize("size, classroom", [((1280, 720), True), ((1600, 900), False), ((1000, 800), False)])
def test_every_view_side_by_side_from_1280_px_with_rows_level(browser, two_tokenizers, size, classroom, tmp_path):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    open_compare(page, two_tokenizers, classroom)
    for view in COMPARE_VIEWS:
        show_view(page, view)
        table = view == "labels table"
        ids = ["compare-table-a", "compare-table-b"] if table else ["compare-plot-a", "compare-plot-b"]
        a, b = page.evaluate(BOXES_JS, ids)
        if size[0] >= 1280:  # side by side: level, A on the left, neither overlapping nor cut
            assert abs(a["y"] - b["y"]) < 2 and b["x"] >= a["x"] + a["width"] - 1, (view, a, b)
            assert abs(a["width"] - b["width"]) < 2 and a["width"] > 0.4 * size[0], (view, a, b)
        else:  # stacked, full width
            assert b["y"] >= a["y"] + a["height"] - 1 and abs(a["x"] - b["x"]) < 2, (view, a, b)
        if table:
            rows_a, rows_b = page.evaluate(ROWS_JS, ids[0]), page.evaluate(ROWS_JS, ids[1])
            assert len(rows_a) == len(rows_b) > 30 and [h for _, h in rows_a] == [h for _, h in rows_b]
            if size[0] >= 1280:
                assert [y for y, _ in rows_a] == [y for y, _ in rows_b]
        else:
            assert abs(a["height"] - b["height"]) < 2, (view, a, b)
            area_a, area_b = page.evaluate(PLOT_AREA_JS, ids[0]), page.evaluate(PLOT_AREA_JS, ids[1])
            assert abs(area_a[1] - area_b[1]) < 1.5, (view, area_a, area_b)  # the same plot height: rows level
            if size[0] >= 1280:
                assert abs(area_a[0] - area_b[0]) < 1.5, (view, area_a, area_b)
        page.locator("#compare-pair").screenshot(path=str(tmp_path / f"{view.replace(' ', '-')}.png"))
    context.close()
