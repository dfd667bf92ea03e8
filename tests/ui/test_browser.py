"""The page in a real browser (Debian's Chromium driven by playwright): type, click, switch views."""

from __future__ import annotations

import contextlib
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MARKUP = '<b>hi</b> <a href="x">x</a> <img src=x onerror=alert(1)> <script>alert(2)</script> %{x} &amp;'


def open_views(page, url: str) -> None:
    """Open the page at `url` and switch from the Lesson (the first tab) to the Predictions view."""
    page.goto(url)
    page.get_by_role("tab", name="Predictions").click()


SETTLED_JS = "() => !document.querySelector('.pending, .progress-text')"
"""True once no output shows an update under way: Gradio dims some outputs (`.pending`) and writes
'processing | 0.4s' (`.progress-text`) over the others while their event runs."""


def wait_until_settled(page, timeout: float = 60_000) -> None:
    """Wait until no event of the page is running, so a screenshot or a contrast check sees the outputs drawn."""
    page.wait_for_function(SETTLED_JS, timeout=timeout)


def wait_for_summary(page, needle: str, timeout: float = 60_000):
    """Wait until the loss box holds `needle`; on a timeout, say what it holds instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "(n) => { const t = document.querySelector('#summary textarea'); return t && t.value.includes(n); }",
            arg=needle,
            timeout=timeout,
        )
    except PlaywrightTimeout:
        shown = page.evaluate("() => document.querySelector('#summary textarea')?.value")
        raise AssertionError(
            f"the loss box never held {needle!r}; it holds {shown!r}; the page sent {getattr(page, 'analyses', '?')}"
        ) from None


def tick_labels(page, plot_id: str) -> list[str]:
    """The text of every axis tick label drawn in one Plotly figure."""
    return page.locator(f"#{plot_id} .xtick text, #{plot_id} .ytick text").all_text_contents()


def wait_for_tick(page, plot_id: str, needle: str, timeout: float = 30_000):
    """Wait until some axis tick label of a figure contains `needle` (figures draw after the text box)."""
    page.wait_for_function(
        """([id, n]) => [...document.querySelectorAll(`#${id} .xtick text, #${id} .ytick text`)]
                          .some(e => e.textContent.includes(n))""",
        arg=[plot_id, needle],
        timeout=timeout,
    )


def analyze_text(page, text: str):
    """Type `text` into the box and press Enter, then wait for its result."""
    box = page.locator("#text-input textarea, #text-input input").first
    box.fill(text)
    box.press("Enter")


def test_page_opens_with_the_walkthrough_and_makes_no_outside_requests(page, server, tmp_path):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    page.wait_for_selector("#top-k-heatmap .ytick text")
    labels = " ".join(tick_labels(page, "top-k-heatmap"))
    assert "the dog likes" in labels
    page.screenshot(path=str(tmp_path / "main.png"), full_page=True)
    outside = [u for u in page.requests if not u.startswith((server, "data:", "blob:"))]
    assert outside == []


def test_type_a_sentence_and_switch_views(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "The capital of France is Paris.")
    wait_for_summary(page, "7 tokens")
    wait_for_tick(page, "top-k-heatmap", "France is")
    page.get_by_role("tab", name="Predicted vs true").click()
    wait_for_tick(page, "vocab-heatmap", "Paris")
    page.get_by_role("tab", name="Loss").click()
    wait_for_tick(page, "loss-bars", "Paris")
    assert page.locator("#labels-table").inner_text().count("input_ids[:") >= 6


def test_a_new_text_sent_while_one_runs_is_what_the_page_ends_on(page, server, tmp_path):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "The cat sat on the warm mat by the door. " * 40)  # a few seconds of work
    analyze_text(page, "The capital of France is Paris.")  # sent while the long one runs
    wait_for_summary(page, "7 tokens")
    wait_for_tick(page, "top-k-heatmap", "France is")
    time.sleep(3)  # had the long text's result come later, it would show by now
    assert "7 tokens" in page.locator("#summary textarea").input_value()
    page.screenshot(path=str(tmp_path / "latest.png"), full_page=True)


def test_classroom_mode_from_the_toggle_and_the_url(page, server, tmp_path):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    page.locator("#classroom input[type=checkbox]").check()
    page.wait_for_function("() => document.body.classList.contains('classroom')")
    size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#summary textarea')).fontSize)")
    assert size >= 20
    open_views(page, server + "/?classroom=1&text=the%20cat%20sat%20down")
    page.wait_for_function("() => document.body.classList.contains('classroom')")
    wait_for_summary(page, "4 tokens")
    wait_for_tick(page, "top-k-heatmap", "the cat sat")
    font = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#top-k-heatmap .ytick text')).fontSize)"
    )
    assert font >= 16
    assert "the cat sat" in " ".join(tick_labels(page, "top-k-heatmap"))
    page.screenshot(path=str(tmp_path / "classroom.png"), full_page=True)


CLIPPED_TABS_JS = """() => [...document.querySelectorAll('[role=tablist] button')]
    .filter(b => b.offsetParent && b.scrollWidth > b.clientWidth).map(b => b.textContent)"""


def tabs_whole(page, timeout: float = 10_000) -> list[str]:
    """Wait until no tab name is clipped (the page re-measures its tab bar after a style change, later on a
    busy machine); return the clipped names, [] once none is."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"() => ({CLIPPED_TABS_JS})().length === 0", timeout=timeout)
    return page.evaluate(CLIPPED_TABS_JS)


EVERY_TAB = [
    "Lesson",
    "Predictions",
    "Predicted vs true",
    "Loss",
    "Table & export",
    "Generate",
    "Layers",
    "Batches & padding",
    "Shift mistakes",
    "Train",
    "Compare",
    "Your data",
]


def every_tab_shown(page) -> list[str]:
    """The names of the tab buttons drawn in the bar itself, in order; [] if an overflow menu is shown."""
    if page.locator(".overflow-menu:visible").count():
        return []
    return page.evaluate(
        "() => [...document.querySelectorAll('[role=tablist] button')].filter(b => b.offsetParent)"
        ".map(b => b.textContent.trim())"
    )


def test_classroom_tab_names_are_whole_and_a_figure_drawn_while_hidden_fills_its_box(page, server):
    page.goto(server + "/?classroom=1")
    wait_for_summary(page, "4 tokens")
    page.wait_for_function("() => document.body.classList.contains('classroom')")
    assert tabs_whole(page) == []
    assert every_tab_shown(page) == EVERY_TAB  # the bar wraps: no view hides behind a "more" menu
    page.locator("#classroom input[type=checkbox]").uncheck()
    page.locator("#classroom input[type=checkbox]").check()
    assert tabs_whole(page) == []
    assert every_tab_shown(page) == EVERY_TAB
    page.get_by_role("tab", name="Loss").click()
    page.get_by_role("tab", name="Predictions").click()
    analyze_text(page, "I am happy today because it is sunny")  # the loss bars are redrawn while hidden
    wait_for_summary(page, "8 tokens")
    page.get_by_role("tab", name="Loss").click()
    wait_for_tick(page, "loss-bars", "sunny")
    page.wait_for_function(
        """() => Math.abs(document.querySelector('#loss-bars .main-svg').getAttribute('width')
                                             - document.querySelector('#loss-bars').clientWidth) < 30""",
        timeout=5_000,
    )


def test_clicking_an_example_runs_it(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    page.get_by_text("The capital of France is Paris.", exact=True).first.click()
    wait_for_summary(page, "7 tokens")


def test_markup_shows_literally_and_runs_nothing(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, MARKUP)
    wait_for_tick(page, "top-k-heatmap", "alert(1)")
    labels = tick_labels(page, "top-k-heatmap")
    assert "<b> →" in labels and "<b>hi →" in labels  # shown literally, not as bold
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href='x']").count() == 0
    assert page.locator(".js-plotly-plot svg a").count() == 0  # no link was made
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot svg image')].map(i => i.getAttribute('href'))"
    )
    assert all(h.startswith("data:") for h in hrefs)  # only Plotly's own heatmap bitmaps
    assert page.locator(".js-plotly-plot svg tspan[style*='bold']").count() == 0  # '<b>' did not turn bold
    assert page.locator("script:has-text('alert(2)')").count() == 0
    page.get_by_role("tab", name="Loss").click()
    page.wait_for_function("() => document.querySelector('#labels-table').innerText.includes('<b>hi')")
    assert page.locator("#labels-table b").count() == 0  # the table shows the text as typed, not as bold
    page.wait_for_timeout(500)
    assert page.dialogs == []


def test_entities_and_plotly_templates_typed_show_literally(page, server):
    """A typed '&amp;' stays '&amp;' (not '&') and '%{x}' stays '%{x}' (not a value) in figures and tables."""
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "a &amp; b %{x} c")
    wait_for_tick(page, "top-k-heatmap", "%{x}")
    rows = tick_labels(page, "top-k-heatmap")
    assert "a &amp; b %{x} →" in rows and not any("a & b" in r for r in rows)
    svg = " ".join(page.locator("#top-k-heatmap svg text").all_text_contents())
    assert "&amp;" in svg and "%{x}" in svg
    page.get_by_role("tab", name="Predicted vs true").click()
    wait_for_tick(page, "vocab-heatmap", "amp")
    columns = " ".join(tick_labels(page, "vocab-heatmap"))
    assert "amp" in columns and "%{" in columns and "&amp;amp;" not in columns
    page.get_by_role("tab", name="Loss").click()
    page.wait_for_function("() => document.querySelector('#labels-table').innerText.includes('%{x}')")
    table = page.locator("#labels-table").inner_text()
    assert "a &amp; b %{x}" in table and "a & b" not in table
    page.get_by_role("tab", name="Table & export").click()
    page.wait_for_function("() => document.querySelector('#positions-table').innerText.includes('%{x}')")
    assert "a &amp; b %{x}" in page.locator("#positions-table").inner_text()


def test_bad_input_shows_one_message_and_the_page_keeps_working(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "the")
    wait_for_summary(page, "single token")
    analyze_text(page, "the dog likes food")
    wait_for_summary(page, "4 tokens")


def test_exports_download_and_figures_offer_png(page, server, tmp_path):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    wait_for_tick(page, "top-k-heatmap", "the dog likes")
    page.locator("#top-k-heatmap").hover()
    assert page.locator("#top-k-heatmap .modebar-btn[data-title*='png' i]").count() == 1  # Plotly's own, offline
    page.get_by_role("tab", name="Table & export").click()
    for button, first_line in [("#dl-positions", "k,context,target"), ("#dl-top-k", "k,rank,token")]:
        with page.expect_download() as download:
            page.locator(button).click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        assert path.read_text(encoding="utf-8").startswith(first_line)
    with page.expect_download() as download:
        page.locator("#dl-json").click()
    path = tmp_path / "analysis.json"
    download.value.save_as(path)
    import json

    assert json.loads(path.read_text(encoding="utf-8"))["text"] == "the dog likes food"
    with page.expect_download() as again:  # the same button twice: the file again
        page.locator("#dl-json").click()
    again.value.save_as(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_a_download_after_a_failed_analysis_gives_a_warning_and_no_file(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    page.get_by_role("tab", name="Table & export").click()
    with page.expect_download():  # the hidden download button now holds this text's file
        page.locator("#dl-json").click()
    page.locator("#text-input textarea").fill("   ")
    page.locator("#analyze-button").click()
    wait_for_summary(page, "⚠")
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.locator("#dl-json").click()
    page.get_by_text("Analyze a text first").first.wait_for(timeout=15_000)
    page.wait_for_timeout(1_000)
    assert downloads == []  # not the previous text's file
