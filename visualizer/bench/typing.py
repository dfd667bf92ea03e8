"""Live typing in a real browser: how soon the figures follow the last keystroke, and what typing costs the server.

    python -m visualizer.bench.typing [--quick] [--model M] [--out FILE.json]

Latency: a 16-token text is put in the box less its last character; once the page shows that text's
tokens, the last character is typed, and the clock (the page's own `performance.now()`) runs from that
keydown until the token strip shows the tokens of the whole text: the 250 ms pause, the request, the
forward pass, the drawing and the transfer together. Load: a 40-character sentence typed letter by letter
(at 150 ms a key, a quick typist, and at 300 ms, one who pauses after every letter) beside the same
sentence pasted and sent with Enter; for each, the analysis requests the page sent and the server's CPU
seconds, measured in the same run. Needs Chromium and playwright (`make test` installs both)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from ..model.loading import load_model
from ..settings import BUNDLED_MODEL
from ..views.plotting import escape_text
from .measure import percentile, spread, texts_of_tokens
from .server import Server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"]
SENTENCE = "The children played in the garden all day"  # 40 characters and a space
SETTLE_S = 1.0
"""After the last figure, how long to keep counting the server's CPU (late requests, drawing)."""

# The token strip's cells, in order: the first token (its own trace), then the rest row by row.
STRIP_JS = """() => {
  const plot = document.querySelector('#token-strip .js-plotly-plot');
  if (!plot || !plot.data || plot.data.length < 2) return null;
  const rest = plot.data[0].text.flat().filter(t => t !== '');
  return [plot.data[1].text[0][0], ...rest].join('|');
}"""
KEYDOWN_JS = """() => {
  window.benchKeydown = null;
  document.addEventListener('keydown', () => { window.benchKeydown = performance.now(); }, {once: true});
}"""


def strip_of(lm, text: str) -> str:
    """What the token strip shows for `text`, cell by cell, as STRIP_JS reads it."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return "|".join(escape_text(label) for label in lm.decoder.labels_in_text(ids))


def wait_for_strip(page, expected: str, timeout_ms: float = 120_000) -> float:
    """Wait until the strip shows `expected`; the page's clock then (ms)."""
    page.wait_for_function(f"(e) => ({STRIP_JS})() === e", arg=expected, timeout=timeout_ms, polling="raf")
    return page.evaluate("() => performance.now()")


def text_box(page):
    return page.locator("#text-input textarea, #text-input input").first


def keystroke_to_figure(page, lm, texts: list[str]) -> list[float]:
    """Seconds from the last keystroke to the figure of the whole text, one per text."""
    seconds = []
    for text in texts:
        box = text_box(page)
        box.fill(text[:-1])  # an input event: analysed once it rests
        wait_for_strip(page, strip_of(lm, text[:-1]))
        box.press("End")
        page.evaluate(KEYDOWN_JS)  # armed after End: the clock starts at the last character's keydown
        page.keyboard.type(text[-1])
        shown = wait_for_strip(page, strip_of(lm, text))
        seconds.append((shown - page.evaluate("() => window.benchKeydown")) / 1000)
    return seconds


def server_cpu(server: Server) -> float:
    """The server process's CPU seconds so far (user + system)."""
    times = psutil.Process(server.proc.pid).cpu_times()
    return times.user + times.system


def typing_load(page, lm, server: Server, sentence: str, delay_ms: float | None) -> dict:
    """Requests sent and server CPU seconds for `sentence` typed at `delay_ms` a key (None: pasted + Enter)."""
    box = text_box(page)
    box.fill("the dog likes food")
    wait_for_strip(page, strip_of(lm, "the dog likes food"))
    time.sleep(SETTLE_S)
    page.sent = []
    cpu = server_cpu(server)
    if delay_ms is None:
        box.fill(sentence)
        box.press("Enter")
    else:
        box.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(sentence, delay=delay_ms)
    wait_for_strip(page, strip_of(lm, sentence))
    time.sleep(SETTLE_S)
    return {
        "keystrokes": 0 if delay_ms is None else len(sentence),
        "requests": len(page.sent),
        "cpu_s": server_cpu(server) - cpu,
    }


def run(model: str, repeats: int, workdir: Path) -> dict:
    """Start the app and Chromium, then measure latency and load."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Chromium is not installed: `make test` (scripts/setup.sh --dev) installs it")
    lm = load_model(model)
    texts = [t.strip() for t in texts_of_tokens(lm.tokenizer, 16, repeats + 1)]
    server = Server(model, workdir / "weight-cache", workdir / "server.log").start()
    try:
        server.wait_ready(600)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.sent = []
            page.on("request", lambda r: "/queue/join" in r.url and page.sent.append(r.url))
            page.goto(server.url + "/")
            page.get_by_role("tab", name="Predictions", exact=True).click()
            wait_for_strip(page, strip_of(lm, "the dog likes food"), timeout_ms=600_000)
            keystroke_to_figure(page, lm, texts[:1])  # warm-up: the first drawing of each figure is slow
            latency = keystroke_to_figure(page, lm, texts[1:])
            load = {
                "pasted + Enter": typing_load(page, lm, server, SENTENCE, None),
                "typed, 150 ms a key": typing_load(page, lm, server, SENTENCE, 150),
                "typed, 300 ms a key": typing_load(page, lm, server, SENTENCE, 300),
            }
            browser.close()
    finally:
        server.stop()
    return {
        "model": model,
        "tokens": 16,
        "latency_s": {**spread(latency), "p50": percentile(latency, 50), "p95": percentile(latency, 95)},
        "load": load,
    }


def report(result: dict) -> str:
    """The figures as a few lines of text."""
    lat, load = result["latency_s"], result["load"]
    base = load["pasted + Enter"]["cpu_s"] or float("nan")
    lines = [
        f"last keystroke -> updated figure, {result['tokens']} tokens: p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s "
        f"(min {lat['min']:.3f}, max {lat['max']:.3f}; the 0.25 s pause included)",
        f"{'typing a 40-character sentence':<32} {'keys':>5} {'requests':>9} {'server CPU s':>13} {'x pasted':>9}",
    ]
    for name, row in load.items():
        lines.append(
            f"{name:<32} {row['keystrokes']:>5} {row['requests']:>9} {row['cpu_s']:>13.3f} {row['cpu_s'] / base:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visualizer.bench.typing", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 texts instead of 21")
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-typing-") as tmp:
        result = run(args.model, 3 if args.quick else 21, Path(tmp))
    print(report(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
