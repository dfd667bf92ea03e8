"""The Lesson on a 1280x720 projector in a real browser: eight steps by keyboard alone, each on one screen,
the step in the URL, k moved with ↑/↓, the current step redrawn for a new text, typed markup inert."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .test_browser import MARKUP, wait_until_settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ASSETS = Path(__file__).resolve().parents[2] / "assets"
PROJECTOR = {"width": 1280, "height": 720}


@pytest.fixture
def projector(browser, server):
    """A page at the projector's size."""
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def wait_for_step(page, step: int, needle: str = "", timeout: float = 120_000) -> None:
    """Wait until the lesson shows step `step` (and its sentences hold `needle`) with its figure drawn."""
    page.wait_for_function(
        """([step, needle]) => {
            const head = document.querySelector('#lesson-heading')?.innerText || '';
            const body = document.querySelector('#lesson-text')?.innerText || '';
            const drawn = document.querySelector('#lesson-figure .main-svg');
            return head.includes(`${step} / 8`) && body.includes(needle) && drawn;
        }""",
        arg=[step, needle],
        timeout=timeout,
    )


def fits_one_screen(page) -> dict:
    """Where the figure lies and whether the page scrolls."""
    return page.evaluate(
        """() => {
            const box = document.querySelector('#lesson-figure').getBoundingClientRect();
            const lines = [...document.querySelectorAll('#lesson-text p')].map(p => p.getBoundingClientRect());
            return {top: box.top, bottom: box.bottom, scrolls: document.documentElement.scrollHeight > innerHeight,
                    text_top: Math.min(...lines.map(r => r.top)), text_bottom: Math.max(...lines.map(r => r.bottom)),
                    alt: document.querySelector('#lesson-figure .js-plotly-plot')?.getAttribute('aria-label') || ''};
        }"""
    )


def figure_title(page) -> str:
    return page.locator("#lesson-figure .gtitle").first.text_content() or ""


def test_a_teacher_teaches_all_eight_steps_by_keyboard_on_one_screen_each(projector, server):
    page = projector
    page.goto(server + "/?lesson=1&classroom=1")
    wait_for_step(page, 1, "1195")  # the bundled tokenizer's id of "the"
    for _ in range(12):  # keyboard alone: Tab to the text box
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.closest('#text-input') !== null"):
            break
    page.keyboard.type(" today")
    page.keyboard.press("Enter")
    wait_for_step(page, 1, "5 tokens")
    page.keyboard.press("Escape")  # leave the text box: the arrows now drive the lesson
    for step in range(1, 9):
        wait_for_step(page, step)
        where = fits_one_screen(page)
        assert 0 <= where["top"] < where["bottom"] <= PROJECTOR["height"], (step, where)
        assert where["top"] - 5 <= where["text_top"] < where["text_bottom"] <= PROJECTOR["height"], (step, where)
        assert not where["scrolls"], step
        assert any(ch.isdigit() for ch in where["alt"]), (step, where)  # its key numbers for a screen reader
        if step > 1:
            assert f"step={step}" in page.url
        if os.environ.get("VISUALIZER_SCREENSHOTS"):
            wait_until_settled(page)  # not dimmed or written over while updating
            page.wait_for_timeout(1500)  # nor while a later redraw of the same step runs (steps 7 and 8)
            page.screenshot(path=str(ASSETS / f"lesson-step-{step}.png"))
        page.keyboard.press("ArrowRight")
    wait_for_step(page, 8)  # the last step stays
    page.keyboard.press("ArrowLeft")
    wait_for_step(page, 7)
    assert page.dialogs == []


def test_up_and_down_move_k_and_the_url_opens_a_step(projector, server):
    page = projector
    page.goto(server + "/?lesson=1&classroom=1&step=4")
    wait_for_step(page, 4)
    page.wait_for_function("() => document.querySelector('#lesson-figure .gtitle')?.textContent.startsWith('k=3')")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('#lesson-figure .gtitle')?.textContent.startsWith('k=2')")
    assert "dog" in figure_title(page) and "→" in figure_title(page)
    page.keyboard.press("ArrowUp")
    page.wait_for_function("() => document.querySelector('#lesson-figure .gtitle')?.textContent.startsWith('k=3')")
    page.goto(server + "/?lesson=1&step=99")
    wait_for_step(page, 1)


def test_a_new_text_redraws_the_current_step_and_markup_stays_text(projector, server):
    page = projector
    page.goto(server + "/?lesson=1&step=4")
    wait_for_step(page, 4, "the dog likes")
    box = page.locator("#text-input textarea, #text-input input").first
    box.fill(MARKUP)
    box.press("Enter")
    wait_for_step(page, 4, "After “<b>”")  # k=3 stays; its context shown exactly as typed, not as bold
    ticks = " ".join(page.locator("#lesson-figure .xtick text").all_text_contents())
    assert all(t in ticks.split() for t in ("</", "{", "}", "␣&", "amp"))  # as typed: no markup, no template
    assert page.locator("#lesson-text b, #lesson-text img, #lesson-text script, #lesson-heading b").count() == 0
    assert page.dialogs == []
