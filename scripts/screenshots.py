"""Regenerate the README screenshots: the app on the bundled model, normal and classroom mode.

Run: .venv/bin/python scripts/screenshots.py   (needs Debian's chromium; writes assets/*.png)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from served import serve  # noqa: E402

ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking"]


def shoot(url: str, path: Path, wait_text: str, tab: str = "Predictions", full_page: bool = True, height: int = 720):
    """Open `url`, wait for the analysis, open a tab (the page opens on the Lesson), save a screenshot 1280 wide."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": height})
        page.goto(url)
        page.wait_for_function(
            "(n) => (document.querySelector('#summary textarea') || {}).value?.includes(n)",
            arg=wait_text,
            timeout=120_000,
        )
        page.get_by_role("tab", name=tab, exact=True).click()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(path), full_page=full_page)
        browser.close()


def main() -> None:
    """Write assets/screenshot-main.png, assets/classroom-1280x720.png (the projector's first screen) and two
    view shots; the lesson's are written by its browser test (VISUALIZER_SCREENSHOTS=1)."""
    out = ROOT / "assets"
    with serve() as url:
        shoot(url, out / "screenshot-main.png", "4 tokens")
        shoot(url + "/?classroom=1", out / "classroom-1280x720.png", "4 tokens", full_page=False)
        shoot(url, out / "screenshot-vocab.png", "4 tokens", tab="Predicted vs true")
        shoot(url, out / "screenshot-loss.png", "4 tokens", tab="Loss")


if __name__ == "__main__":
    main()
