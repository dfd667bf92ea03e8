"""Live typing in a real browser: how soon the figures follow the last keystroke, and what typing costs the server.

    python -m visualizer.bench.typing [--quick] [--model M] [--out FILE.json] [--against CHECKOUT]

Latency: a 16-token text is put in the box less its last character; once the page shows that text's
tokens, the last character is typed, and the clock (the page's own `performance.now()`) runs from that
keydown until the token strip shows the tokens of the whole text: the pause before an analysis starts
(`LIVE_DELAY_MS`), the request, the forward pass, the drawing and the transfer together; and until the top-K
heatmap, which the page draws right after the strip from the held analysis, shows the new text. Measured on the
Predictions view opened alone, then again after the page's other views (Predicted vs true, Loss, Table &
export) were opened once, as a reader who has looked around has them. Load: a 40-character sentence typed
letter by letter (at 150 ms a key, a quick typist, and at 300 ms, one who pauses after every letter) beside
the same sentence pasted and sent with Enter; for each, the analysis requests the page sent and the server's
CPU seconds, measured in the same run. `--against CHECKOUT` (say a git worktree of an earlier commit) also
runs that checkout's app.py, each text typed into both pages in turn (A B, then B A), so a machine growing
busier weighs on both sides alike. Needs Chromium and playwright (`make test` installs both)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from ..model.loading import load_model
from ..settings import BUNDLED_MODEL
from ..views.plotting import escape_text
from .measure import ROOT, percentile, spread, texts_of_tokens
from .server import Server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"]
SENTENCE = "The children played in the garden all day"  # 40 characters and a space
SETTLE_S = 1.0
"""After the last figure, how long to keep counting the server's CPU (late requests, drawing)."""
OTHER_VIEWS = ("Predicted vs true", "Loss", "Table & export")
"""The views opened once before the second latency run (then Predictions again)."""

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
  window.benchHeatmap = document.querySelector('#top-k-heatmap .js-plotly-plot')?.data;
}"""
# The top-K heatmap drawn anew: Plotly gives the plot a new data array for each new figure (cheap to poll).
HEATMAP_NEW_JS = """() => {
  const plot = document.querySelector('#top-k-heatmap .js-plotly-plot');
  return !!(plot && plot.data && plot.data !== window.benchHeatmap);
}"""
HEATMAP_WAIT_MS = 30_000


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


def keystroke_to_figure(page, lm, texts: list[str]) -> list[tuple[float, float]]:
    """Seconds from the last keystroke to the token strip of the whole text (the figure the analysis sends), and to
    the top-K heatmap drawn after it from the held analysis; one pair per text."""
    seconds = []
    for text in texts:
        box = text_box(page)
        box.fill(text[:-1])  # an input event: analysed once it rests
        wait_for_strip(page, strip_of(lm, text[:-1]))
        page.wait_for_timeout(300)  # the heatmap of that text drawn too
        box.press("End")
        page.evaluate(KEYDOWN_JS)  # armed after End: the clock starts at the last character's keydown
        page.keyboard.type(text[-1])
        shown = wait_for_strip(page, strip_of(lm, text))
        page.wait_for_function(HEATMAP_NEW_JS, timeout=HEATMAP_WAIT_MS, polling="raf")
        heatmap = page.evaluate("() => performance.now()")
        keydown = page.evaluate("() => window.benchKeydown")
        seconds.append(((shown - keydown) / 1000, (heatmap - keydown) / 1000))
    return seconds


def server_cpu(server: Server) -> float:
    """The server process's CPU seconds so far (user + system)."""
    times = psutil.Process(server.process.pid).cpu_times()
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


def open_page(browser, server: Server, lm):
    """A page of `server` on its Predictions view, once it shows its first analysis."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.sent = []
    page.on("request", lambda r: "/queue/join" in r.url and page.sent.append(r.url))
    page.goto(server.url + "/")
    page.get_by_role("tab", name="Predictions", exact=True).click()
    wait_for_strip(page, strip_of(lm, "the dog likes food"), timeout_ms=600_000)
    return page


def open_other_views(page) -> None:
    """Open each other view once (its figures draw), then come back to Predictions."""
    for name in OTHER_VIEWS:
        page.get_by_role("tab", name=name, exact=True).click()
        page.wait_for_timeout(1500)
    page.get_by_role("tab", name="Predictions", exact=True).click()
    page.wait_for_timeout(500)


def in_turn(pages: dict, lm, texts: list[str]) -> dict[str, list[tuple[float, float]]]:
    """Keystroke-to-figure seconds (strip, heatmap) per text on each page, the pages taking turns (A B, then B A)."""
    names = list(pages)
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in pages}
    for i, text in enumerate(texts):
        for name in names if i % 2 == 0 else names[::-1]:
            pages[name].bring_to_front()
            seconds[name] += keystroke_to_figure(pages[name], lm, [text])
    return seconds


def commit_of(root: Path) -> str:
    """The checkout's commit (short), with '+' when its tracked files differ from it; '?' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root, capture_output=True)
    except OSError:
        return "?"
    return sha.stdout.strip() + ("+" if dirty.returncode == 1 else "") if sha.returncode == 0 else "?"


def pause_ms(root: Path) -> int | None:
    """The checkout's pause before a typed text is analysed (`LIVE_DELAY_MS`, read from its source)."""
    try:
        found = re.search(r"^LIVE_DELAY_MS = (\d+)", (root / "visualizer/ui/shared.py").read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def latency(seconds: list[float]) -> dict:
    return {**spread(seconds), "p50": percentile(seconds, 50), "p95": percentile(seconds, 95)}


def run(model: str, repeats: int, workdir: Path, against: Path | None = None) -> dict:
    """Start the app (and the one of `against`) and Chromium, then measure latency and load."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("Chromium is not installed: `make test` (scripts/setup.sh --dev) installs it")
    lm = load_model(model)
    texts = [t.strip() for t in texts_of_tokens(lm.tokenizer, 16, repeats + 1)]
    roots = {"this": ROOT, **({"against": against.resolve()} if against else {})}
    servers = {
        name: Server(model, workdir / f"weight-cache-{name}", workdir / f"server-{name}.log", root=root)
        for name, root in roots.items()
    }
    try:
        for server in servers.values():
            server.start().wait_ready(600)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            pages = {name: open_page(browser, server, lm) for name, server in servers.items()}
            for page in pages.values():
                keystroke_to_figure(page, lm, texts[:1])  # warm-up: the first drawing of each figure is slow
            alone = in_turn(pages, lm, texts[1:])
            for page in pages.values():
                open_other_views(page)
                keystroke_to_figure(page, lm, texts[:1])  # warm-up of the views' first redraw
            viewed = in_turn(pages, lm, texts[1:])
            page, server = pages["this"], servers["this"]
            page.bring_to_front()
            load = {
                "pasted + Enter": typing_load(page, lm, server, SENTENCE, None),
                "typed, 150 ms a key": typing_load(page, lm, server, SENTENCE, 150),
                "typed, 300 ms a key": typing_load(page, lm, server, SENTENCE, 300),
            }
            browser.close()
    finally:
        for server in servers.values():
            server.stop()
    sides = {
        name: {
            "commit": commit_of(root),
            "pause_ms": pause_ms(root),
            "latency_s": latency([strip for strip, _ in alone[name]]),
            "latency_all_views_s": latency([strip for strip, _ in viewed[name]]),
            "heatmap_latency_s": latency([heat for _, heat in alone[name]]),
            "seconds": alone[name],
            "seconds_all_views": viewed[name],
        }
        for name, root in roots.items()
    }
    return {
        "model": model,
        "tokens": 16,
        **sides["this"],
        "load": load,
        **({"against": {"root": str(roots["against"]), **sides["against"]}} if against else {}),
    }


def report(result: dict) -> str:
    """The figures as a few lines of text."""
    load = result["load"]
    base = load["pasted + Enter"]["cpu_s"] or float("nan")

    def line(side: dict, what: str) -> str:
        lat, every, heat = side["latency_s"], side["latency_all_views_s"], side.get("heatmap_latency_s")
        return (
            f"{what}, {side['pause_ms']} ms pause: token strip p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s "
            f"(min {lat['min']:.3f}, max {lat['max']:.3f}); every view opened: p50 {every['p50']:.3f} s, "
            f"p95 {every['p95']:.3f} s"
            + (f"; top-K heatmap p50 {heat['p50']:.3f} s, p95 {heat['p95']:.3f} s" if heat else "")
        )

    lines = [
        f"last keystroke -> updated figure, {result['tokens']} tokens (the pause included)",
        line(result, f"this checkout ({result['commit']})"),
    ]
    if "against" in result:
        other = result["against"]
        lines.append(line(other, f"against {other['root']} ({other['commit']})"))
        for key, what in (("latency_s", "alone"), ("latency_all_views_s", "every view opened")):
            lines.append(f"this / against, p50 {what}: {result[key]['p50'] / other[key]['p50']:.2f}")
    lines.append(
        f"{'typing a 40-character sentence':<32} {'keys':>5} {'requests':>9} {'server CPU s':>13} {'x pasted':>9}"
    )
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
    parser.add_argument(
        "--against", type=Path, metavar="CHECKOUT", help="also measure this checkout's app, taking turns with this one"
    )
    args = parser.parse_args(argv)
    if args.against and not (args.against / "app.py").is_file():
        parser.error(f"{args.against} has no app.py")
    with tempfile.TemporaryDirectory(prefix="bench-typing-") as tmp:
        result = run(args.model, 3 if args.quick else 21, Path(tmp), args.against)
    print(report(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
