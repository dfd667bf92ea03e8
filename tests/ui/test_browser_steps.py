"""The Generate and Layers tabs in a real browser: step a generation three tokens, run it to the end,
open the layer view (computed only then), and see markup in a prompt shown literally."""

from __future__ import annotations

import pytest

from tests.ui.test_browser import open_views, tick_labels, wait_for_summary, wait_for_tick

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LONG = 180_000
"""ms: a shared 2-core machine can be slow to step the model."""


def wait_for_box(page, box_id: str, needle: str, timeout: float = LONG):
    """Wait until the read-only text box `#box_id` holds `needle`."""
    page.wait_for_function(
        "([id, n]) => { const t = document.querySelector(`#${id} textarea`); return t && t.value.includes(n); }",
        arg=[box_id, needle],
        timeout=timeout,
    )


def box_text(page, box_id: str) -> str:
    return page.locator(f"#{box_id} textarea").input_value()


def open_generate(page, server, prompt: str):
    """Load the page, open the Generate tab and type `prompt`."""
    open_views(page, server)
    wait_for_summary(page, "4 tokens", timeout=LONG)
    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-prompt textarea").first.fill(prompt)


def test_step_three_tokens_run_to_the_end_then_open_the_layers(page, server, tmp_path):
    open_generate(page, server, "The capital of France is")
    for n in (1, 2, 3):
        page.locator("#gen-next").click()
        wait_for_box(page, "gen-summary", f"· {n} of 20 new tokens")
    wait_for_tick(page, "gen-steps", "3. ")
    rows = [t for t in tick_labels(page, "gen-steps") if t[:1].isdigit()]
    assert [r.split(".")[0] for r in rows] == ["1", "2", "3"]
    assert "Paris" in " ".join(page.locator("#gen-text text").all_text_contents())  # greedy: ' Paris' first
    assert "Teacher forcing" in box_text(page, "gen-summary")
    assert page.locator("#gen-forced-table").inner_text().count("\n") >= 3
    page.screenshot(path=str(tmp_path / "generate-3.png"), full_page=True)

    page.locator("#gen-run").click()
    wait_for_box(page, "gen-summary", "Stopped")
    assert "Run to end" not in box_text(page, "gen-summary")

    assert page.locator("#lens-heatmap .ytick text").count() == 0  # nothing computed before the tab opens
    page.get_by_role("tab", name="Layers").click()
    wait_for_box(page, "lens-summary", "30 layers")
    wait_for_tick(page, "lens-heatmap", "layer 30")
    labels = tick_labels(page, "lens-heatmap")
    assert "embeddings" in labels and any("dog" in t for t in labels)
    page.screenshot(path=str(tmp_path / "layers.png"), full_page=True)

    box = page.locator("#text-input textarea, #text-input input").first  # a new text while Layers is shown
    box.fill("The capital of France is Paris.")
    box.press("Enter")
    wait_for_box(page, "lens-summary", "7 tokens")
    wait_for_tick(page, "lens-heatmap", "Paris")


def test_sampling_with_filters_marks_dropped_candidates(page, server):
    open_generate(page, server, "The capital of France is")
    page.locator("#gen-mode").get_by_text("sample").click()
    top_k = page.locator("#gen-top-k input[type=number]").first
    top_k.fill("2")
    top_k.press("Enter")
    page.locator("#gen-next").click()
    wait_for_box(page, "gen-summary", "top-k 2")
    page.wait_for_selector("#gen-bars .xtick text")
    assert "dropped" in " ".join(page.locator("#gen-bars text").all_text_contents())
    assert "seed 0" in box_text(page, "gen-summary")


def test_markup_in_a_prompt_shows_literally(page, server):
    open_generate(page, server, "<b>hi</b> <img src=x onerror=alert(1)>")
    page.locator("#gen-next").click()
    wait_for_box(page, "gen-summary", "1 of 20")
    wait_for_tick(page, "gen-steps", "1. ")
    assert any("alert(1)> →" in t for t in tick_labels(page, "gen-steps"))  # the end of the prompt, as typed
    assert page.locator("img[src='x']").count() == 0
    assert page.locator(".js-plotly-plot svg tspan[style*='bold']").count() == 0
    assert page.dialogs == []


def test_bad_input_and_a_finished_generation_get_one_message(page, server):
    open_generate(page, server, "   ")
    page.locator("#gen-next").click()
    wait_for_box(page, "gen-summary", "Please enter a prompt")
    page.locator("#gen-prompt textarea").first.fill("The capital of France is")
    page.locator("#gen-max-new input[type=number]").first.fill("2")
    page.locator("#gen-max-new input[type=number]").first.press("Enter")
    page.locator("#gen-run").click()
    wait_for_box(page, "gen-summary", "Stopped")
    page.locator("#gen-next").click()
    wait_for_box(page, "gen-summary", "already stopped")
    page.locator("#gen-reset").click()
    wait_for_box(page, "gen-summary", "Press Next token")
