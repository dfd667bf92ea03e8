"""Fixtures of the page tests: the app launched on loopback and Debian's Chromium driven by playwright."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.served import serve
from visualizer.settings import Settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(bundled_lm):
    with serve(Settings()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: scripts/setup.sh --dev installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that records dialogs and every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs, page.requests, page.analyses = [], [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("request", lambda r: "/queue/join" in r.url and page.analyses.append(_sent_values(r.post_data)))
    yield page
    context.close()


def _sent_values(body: str | None) -> list:
    """The plain values of a queued event's inputs (text, options, mask, request number), for failure messages."""
    try:
        return [v for v in json.loads(body or "{}").get("data", []) if not isinstance(v, dict)][:12]
    except ValueError:
        return []
