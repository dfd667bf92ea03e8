"""Text in every script, in a real browser: a CJK character cut into byte tokens reads whole on each piece,
its hover names the bytes and the whole character's loss; right-to-left words keep their order."""

from __future__ import annotations

import re

import pytest

from tests.ui.test_browser import analyze_text, open_views, wait_for_summary

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STRIP_CELLS_JS = """() => {
  const plot = document.querySelector('#token-strip .js-plotly-plot');
  if (!plot || !plot.data || plot.data.length < 2) return null;
  const cells = plot.data[0].text.flat().filter(t => t !== '');
  const hovers = plot.data[0].customdata.flat().filter(t => t !== '');
  return {cells: [plot.data[1].text[0][0], ...cells], hovers};
}"""


def strip(page, needle: str) -> dict:
    """The token strip's cells and hovers, once a cell holds `needle`."""
    page.wait_for_function(
        f"(n) => (({STRIP_CELLS_JS})()?.cells || []).some(c => c.includes(n))", arg=needle, timeout=60_000
    )
    return page.evaluate(STRIP_CELLS_JS)


def test_a_split_character_reads_whole_on_each_of_its_pieces(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "日本語")  # the bundled tokenizer cuts 日 into two byte tokens and 語 into three
    shown = strip(page, "語 3/3")
    assert shown["cells"] == ["日 1/2", "日 2/2", "本", "語 1/3", "語 2/3", "語 3/3"]
    assert not any("<0x" in c or "\ufffd" in c for c in shown["cells"])
    hovers = " ".join(shown["hovers"])
    assert "日 2/2 (bytes A5)" in hovers and "語 1/3 (bytes E8)" in hovers  # 日 is E6 97 | A5, 語 E8 | AA | 9E
    assert "日 = 2 tokens: −ln p together" in hovers and "語 = 3 tokens: −ln p together" in hovers


def test_right_to_left_words_keep_their_order(page, server):
    open_views(page, server)
    wait_for_summary(page, "4 tokens")
    analyze_text(page, "שלום עולם")
    shown = strip(page, "\u2068")
    assert all(c.startswith("\u2068") and c.endswith("\u2069") for c in shown["cells"])  # each label isolated
    whole = [re.sub(r" (\d+)/\d+$", r"#\1", c.strip("\u2068\u2069")) for c in shown["cells"]]
    letters = "".join(c.split("#")[0] for c in whole if not c.endswith(("#2", "#3", "#4")))  # a split letter once
    assert letters.replace("␣", " ") == "שלום עולם"  # the pieces, read in order, are the words as typed
