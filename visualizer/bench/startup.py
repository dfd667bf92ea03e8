"""Section startup: process start to the first served analysis, cold and warm weight cache."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .measure import FIRST_TEXT, ROOT, TARGETS, Plan, spread, timed
from .server import PageClient, Server, free_port


def bench_startup(model: str, cache: Path, workdir: Path, plan: Plan) -> tuple[dict, Server]:
    """Process start to the first served analysis: cold (an empty weight cache) and warm (`cache`, filled;
    the median of `plan.warm_starts` starts), and where the time goes (a probe process, run between the
    two); returns the last warm server, running."""
    out = {"cold": _first_analysis(Server(model, workdir / "cold-cache", workdir / "server-cold.log"), keep=False)[0]}
    try:
        out["breakdown"] = run_probe("startup.startup_probe", model, str(cache), str(workdir / "probe-cache"))
    except Exception as err:  # noqa: BLE001 - a failed probe leaves the other figures standing
        out["breakdown"] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    starts, server = [], None
    for i in range(max(1, plan.warm_starts)):
        last = i == max(1, plan.warm_starts) - 1
        result, server = _first_analysis(Server(model, cache, workdir / f"server-warm-{i}.log"), keep=last)
        starts.append(result)
    out["warm"] = _warm_summary(starts)
    assert server is not None  # the last warm start keeps its server
    return out, server


def _warm_summary(starts: list[dict]) -> dict:
    """Median seconds to listening and to the first analysis over several warm starts, with their spread."""
    first = [s["first_analysis_s"] for s in starts]
    ok = all(s["ok"] for s in starts)
    return {
        "first_analysis_s": statistics.median(first),
        "listening_s": statistics.median(s["listening_s"] for s in starts),
        "first_analysis_spread": spread(first),
        "starts": starts,
        "ok": ok,
        "error": next((s["error"] for s in starts if not s["ok"]), ""),
        "target_s": TARGETS["warm_start_s"],
        "met": ok and statistics.median(first) <= TARGETS["warm_start_s"],
    }


def _first_analysis(server: Server, keep: bool) -> tuple[dict, Server]:
    """Start `server` and time it to listening and to its first page analysis; stop it unless `keep`."""
    server.start()
    try:
        listening = server.wait_ready(timeout=600)
        page = PageClient(server.url)
        reply = page.analyze(FIRST_TEXT)
        page.close()
    except BaseException:
        server.stop()
        raise
    result = {
        "first_analysis_s": time.perf_counter() - server.started,
        "listening_s": listening,
        "ok": reply.ok,
        "error": reply.error,
    }
    if not keep:
        server.stop()
    return result, server


def startup_probe(model: str, cache: str, scratch: str) -> dict:
    """In a fresh process, in app.py's order: seconds spent importing, building and launching the page,
    reading the tokenizer and the weights from the warm `cache` (module imports included, as a server
    pays them), the first analysis; then the cold path's extra work (GGUF into `scratch`)."""
    import psutil

    marks = {"interpreter_s": time.time() - psutil.Process().create_time()}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        marks[name], clock[0] = now - clock[0], now

    import gradio  # noqa: F401

    lap("import_gradio_s")
    import torch  # noqa: F401

    lap("import_torch_s")
    import transformers  # noqa: F401

    lap("import_transformers_s")
    import app

    lap("import_app_s")
    demo = app.build_demo().queue(default_concurrency_limit=1)
    lap("build_page_s")
    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, **app.launch_options()
    )
    lap("launch_server_s")
    demo.close()
    os.environ["VISUALIZER_CACHE"] = cache
    marks.update(_load_phases(model, Path(cache), Path(scratch)))
    return marks


def _load_phases(model: str, cache: Path, scratch: Path) -> dict:
    """Warm: tokenizer and weights as the server reads them (from the weight cache, or the model's directory),
    then the first analysis; cold (bundled GGUF only): tokenizer from GGUF, dequantizing and writing the cache."""
    import importlib

    from ..analysis.one_pass import analyze
    from ..model import loading

    auto = importlib.import_module("transformers")
    gguf = loading.bundled_gguf_path() if model == loading.BUNDLED_MODEL else None
    found = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")] if cache.is_dir() else []
    where = (found[0] if found else None) if gguf else model
    marks = {}
    if where is not None:
        marks["warm_tokenizer_s"] = timed(lambda: auto.AutoTokenizer.from_pretrained(where))
        marks["warm_weights_s"] = timed(lambda: auto.AutoModelForCausalLM.from_pretrained(where, dtype="float32"))
    lm = loading.load_model(model)
    marks["first_analysis_s"] = timed(lambda: analyze(FIRST_TEXT, lm))
    if gguf is not None:
        os.environ["VISUALIZER_CACHE"] = str(scratch)
        marks["cold_tokenizer_s"] = timed(lambda: auto.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))
        marks["cold_weights_and_cache_write_s"] = timed(lambda: loading.load_gguf(gguf)) - marks["cold_tokenizer_s"]
    return marks


def run_probe(name: str, *args: str) -> dict:
    """Run `visualizer.bench.<module>.<function>(*args)`, named "module.function", in a fresh interpreter;
    its JSON result (last stdout line)."""
    module, function = name.split(".")
    code = (
        f"import json, sys; from visualizer.bench import {module}; "
        f"print(json.dumps({module}.{function}(*sys.argv[1:])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
