"""The "Your data" tab in Chromium: a conversation with the model's template, a fine-tuning file's rows, a row in
every view, and a broken file answered in one sentence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ui.test_browser import wait_for_summary, wait_for_tick, wait_until_settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ROWS = [
    {"prompt": "The capital of France is", "completion": " Paris."},
    {"prompt": "2 + 2 =", "completion": " 4"},
    {"prompt": "Name a colour:", "completion": ""},
    {"prompt": "<b>bold</b> & friends", "completion": " <i>markup stays text</i>"},
]


def _open_data_tab(page, url: str):
    page.goto(url)
    page.get_by_role("tab", name="Your data").click()


def _upload(page, url: str, path: Path, rows: list[dict]) -> None:
    """At 1280x720, `rows` written as JSON Lines to `path` and chosen as the Your data tab's file."""
    page.set_viewport_size({"width": 1280, "height": 720})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _open_data_tab(page, url)
    page.locator("#data-file input[type=file]").set_input_files(str(path))


def test_a_conversation_shows_each_tokens_role_and_becomes_the_pages_analysis(page, server, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 720})
    _open_data_tab(page, server)
    page.locator("#chat-button").click()
    page.wait_for_function(
        "() => document.querySelector('#role-tokens')?.textContent.includes('assistant · counted')", timeout=60_000
    )
    legend = page.locator("#role-tokens").text_content()
    assert "user · counted" in legend and "template · counted" in legend  # preset 'all': everything counts
    wait_for_summary(page, "SmolLM2-135M-Instruct")
    page.screenshot(path=str(tmp_path / "conversation.png"))

    page.locator("#chat-preset input").click()  # the menu's box, not the block's centre
    page.get_by_role("option", name="assistant-only").click()
    page.locator("#chat-button").click()
    page.wait_for_function(
        "() => document.querySelector('#data-note textarea')?.value.includes('generation')", timeout=60_000
    )
    note = page.locator("#data-note textarea").input_value()
    assert note.startswith("⚠") and "Traceback" not in note

    page.get_by_role("tab", name="Predictions").click()  # the conversation's own tokens, drawn as the tab opens
    page.wait_for_function(
        "() => document.querySelector('#token-strip')?.textContent.includes('<|im_start|>')", timeout=60_000
    )
    wait_for_tick(page, "top-k-heatmap", "<|im_start|>system")


def test_a_files_rows_fill_the_table_and_a_chosen_row_shows_in_every_view(page, server, tmp_path):
    _upload(page, server, tmp_path / "rows.jsonl", ROWS)
    page.locator("#data-preset input").click()
    page.get_by_role("option", name="completion-only").click()
    page.locator("#scan-button").click()
    page.wait_for_function(
        "() => document.querySelector('#data-note textarea')?.value.startsWith('4 of 4 rows')", timeout=120_000
    )
    table = page.locator("#data-rows").inner_text()
    assert "The completion is empty." in table  # row 2's warning
    losses = re.findall(r"\n(\d+\.\d+)\n", table)
    assert len(losses) == 4 and all(len(x.split(".")[1]) <= 4 for x in losses)  # every row's loss, rounded
    assert page.locator("#data-rows i, #data-rows b").count() == 0  # typed markup is shown as text
    if ASSETS.is_dir():
        page.locator("#data-rows").scroll_into_view_if_needed()
        wait_until_settled(page)  # the scan's progress gone
        page.screenshot(path=str(ASSETS / "data-rows.png"))

    page.locator("#data-rows [role=gridcell]").nth(1).click()  # row 0's tokens (cells in reading order)
    page.wait_for_function(
        "() => document.querySelector('#role-tokens')?.textContent.includes('Paris completion · counted')",
        timeout=60_000,
    )
    wait_for_summary(page, "8 tokens")  # the row's own loss line (the page's example has 4 tokens)
    tokens = page.locator("#role-tokens").text_content()
    assert "capital prompt · masked" in tokens and "France prompt · masked" in tokens  # completion-only
    wait_until_settled(page)  # every output of the row drawn
    page.get_by_role("tab", name="Loss").click()
    wait_for_tick(page, "loss-bars", "Paris")

    page.get_by_role("tab", name="Compare").click()  # Compare reads the row's tokens and labels, not the text box
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-note')?.textContent.includes('tokens of data row 0')", timeout=60_000
    )
    wait_for_tick(page, "compare-plot-a", "Paris")


def test_a_conversations_prompt_turns_are_masked_under_completion_only(page, server, tmp_path):
    chat = {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What does the dog like?"}],
        "completion": [{"role": "assistant", "content": "The dog likes food."}],
    }
    _upload(page, server, tmp_path / "chat.jsonl", [chat])
    page.locator("#data-preset input").click()
    page.get_by_role("option", name="completion-only").click()
    page.locator("#scan-button").click()
    page.wait_for_function(
        "() => document.querySelector('#data-note textarea')?.value.startsWith('1 of 1 rows')", timeout=120_000
    )
    page.locator("#data-rows [role=gridcell]").nth(1).click()
    page.wait_for_function(
        "() => document.querySelector('#role-tokens')?.textContent.includes('food assistant · counted')",
        timeout=60_000,
    )
    tokens = page.locator("#role-tokens").text_content()
    assert "dog user · masked" in tokens and "brief system · masked" in tokens  # the prompt's turns train nothing
    assert "template · masked" in tokens  # the template's own tokens before the answer count for nothing either
    wait_until_settled(page)
    if ASSETS.is_dir():
        page.locator("#role-tokens").scroll_into_view_if_needed()
        page.mouse.move(1, 1)  # no hover left on whatever scrolled under the pointer
        page.screenshot(path=str(ASSETS / "data-row-masked.png"))


def test_packing_shows_where_each_example_sits_and_what_seeing_the_others_costs(page, server, tmp_path):
    _upload(page, server, tmp_path / "text.jsonl", [{"text": r["prompt"] + r["completion"]} for r in ROWS])
    page.locator("#data-max-length input").fill("32")
    page.locator("#data-packing input").check()
    page.locator("#scan-button").click()
    page.wait_for_function(
        "() => document.querySelector('#data-note textarea')?.value.startsWith('4 of 4 rows')", timeout=120_000
    )
    page.get_by_text("Packing: each example's loss").click()
    page.locator("#pack-button").click()
    page.wait_for_function(
        "() => document.querySelector('#pack-note textarea')?.value.startsWith('Packed sequence 0 of ')",
        timeout=120_000,
    )
    page.wait_for_function("() => document.querySelector('#pack-plot .main-svg')", timeout=30_000)
    page.wait_for_function(  # the figure's text alternative: each example's two losses
        "() => (document.querySelector('#pack-plot .js-plotly-plot')?.getAttribute('aria-label') || '')"
        ".startsWith('packed sequence 0, mean −ln p per example: row ')",
        timeout=30_000,
    )
    assert page.locator("#pack-plot b, #pack-table b").count() == 0  # typed markup is shown as text
    table = page.locator("#pack-table").inner_text()
    assert "loss together" in table and "loss apart" in table
    wait_until_settled(page)
    page.locator("#pack-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "packing.png"))
    if ASSETS.is_dir():
        page.screenshot(path=str(ASSETS / "data-packing.png"))


def test_a_malformed_file_is_one_sentence_naming_its_line(page, server, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": oops}\n')
    _open_data_tab(page, server)
    page.locator("#data-file input[type=file]").set_input_files(str(broken))
    page.locator("#scan-button").click()
    page.wait_for_function("() => document.querySelector('#data-note textarea')?.value.includes('2')", timeout=60_000)
    note = page.locator("#data-note textarea").input_value()
    assert note.startswith("⚠") and "line 2" in note and note.count("\n") == 0
