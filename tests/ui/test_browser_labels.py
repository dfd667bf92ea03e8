"""The labels views in a real browser: masking, a batch, a shift mistake, training and comparing."""

from __future__ import annotations

import time

import pytest

from tests.ui.test_browser import open_views, wait_for_summary, wait_for_tick

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def textbox_value(page, elem_id: str) -> str:
    """The value of a Gradio textbox by its elem_id."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def wait_for_text(page, elem_id: str, needle: str, timeout: float = 120_000):
    """Wait until the textbox `elem_id` holds `needle`."""
    page.wait_for_function(
        "([id, n]) => { const t = document.querySelector(`#${id} textarea`); return t && t.value.includes(n); }",
        arg=[elem_id, needle],
        timeout=timeout,
    )


def test_masking_the_first_tokens_greys_them(page, server, tmp_path):
    open_views(page, server)
    wait_for_summary(page, "loss = ")
    page.get_by_text("Labels: which positions count").click()
    page.locator("#mask-n input").fill("2")
    page.get_by_role("radio", name="first N tokens").check()
    wait_for_summary(page, "/ 2 =")  # two of the three positions count
    page.get_by_role("tab", name="Loss").click()
    wait_for_tick(page, "loss-bars", "food")
    assert "-100" in page.locator("#labels-table").inner_text()
    page.screenshot(path=str(tmp_path / "masked.png"), full_page=True)


def test_chat_example_counts_only_the_answer(page, server):
    open_views(page, server)
    wait_for_summary(page, "loss = ")
    page.get_by_text("Labels: which positions count").click()
    page.locator("#chat-example").click()
    wait_for_summary(page, "loss = ")
    page.wait_for_function(
        "() => document.querySelector('#text-input textarea, #text-input input').value.includes('assistant')"
    )


def test_batch_and_shift_views(page, server):
    open_views(page, server)
    wait_for_summary(page, "loss = ")
    page.get_by_role("tab", name="Batches & padding").click()
    page.locator("#batch-run").click()
    wait_for_text(page, "batch-note", "batch")
    wait_for_tick(page, "batch-grid", "row 1")
    page.locator("#mask-pads input").uncheck()
    wait_for_text(page, "batch-note", "pad")
    page.get_by_role("tab", name="Shift mistakes").click()
    page.locator("#shift-run").click()
    wait_for_text(page, "shift-note", "shifted by hand and then shifted again", timeout=60_000)  # the default mistake
    wait_for_tick(page, "shift-plot", "food")


def train_in_page(page, server, steps: int):
    """Open the page, train `steps` steps from the Train tab, and wait for the result."""
    open_views(page, server)
    wait_for_summary(page, "loss = ")
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-steps input[type=number]").fill(str(steps))
    page.locator("#train-steps input[type=number]").press("Enter")
    page.locator("#train-run").click()
    wait_for_text(page, "train-note", "loss before", timeout=300_000)


def test_train_then_compare_with_the_trained_copy(page, server, tmp_path):
    train_in_page(page, server, 3)
    wait_for_tick(page, "train-heatmap", "food")
    page.screenshot(path=str(tmp_path / "trained.png"), full_page=True)
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-b input").click()  # the menu's box: the block's centre can fall beside it
    page.get_by_role("option", name="your trained copy").click()
    page.locator("#compare-run").click()
    wait_for_tick(page, "compare-diff", "food")
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-reset").click()
    wait_for_text(page, "train-note", "freed")


def test_closing_the_page_frees_its_trained_copy(browser, server):
    from visualizer.analysis.trained_copies import TRAINED

    page = browser.new_page()
    train_in_page(page, server, 1)
    assert len(TRAINED) >= 1  # the server runs in this process
    page.close()
    deadline = time.monotonic() + 30
    while len(TRAINED) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(TRAINED) == 0
