"""`python -m visualizer.bench`: what the tool costs beside one forward pass, from analysis to HTTP.

Every figure is a ratio or a pair measured in the same run (medians over repeats, with the
quartiles and min/max), so a busy machine moves both sides of a comparison together.
Sections: analysis (analyze() over the bare forward pass), e2e (a request through the running
app over the same forward pass, and the bytes the page receives), startup (process start to the
first served analysis, cold and warm weight cache), load (16 concurrent clients beside one),
memory (the server's peak RSS and its growth over 500 requests) and long (a 2048-token text).
The server sections run `python app.py` in a subprocess on a loopback port and stop it by its pid;
the page's requests speak the browser's own queue protocol, so the bytes counted are what it receives.

    python -m visualizer.bench --out bench-results/cpu.json
    python -m visualizer.bench --quick --model path/to/tiny-model --sections analysis,e2e"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .end_to_end import bench_e2e
from .in_process import bench_analysis
from .load import bench_load, bench_memory
from .long_text import bench_long
from .measure import (
    FIRST_TEXT,
    FULL,
    MB,
    QUICK,
    SECTIONS,
    TARGETS,
    Plan,
    stamp,
    texts_of_tokens,
)
from .server import PageClient, Server
from .startup import bench_startup


def machine() -> dict:
    """Where the numbers came from."""
    import torch

    from ..model.loading import pick_device

    device = pick_device()
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run(sections: list[str], model: str, plan: Plan, workdir: Path) -> dict:
    """Run the chosen sections in order; one section's failure is recorded and the others still run."""
    from ..model.loading import load_model

    cache = workdir / "weight-cache"
    before = os.environ.get("VISUALIZER_CACHE")
    os.environ["VISUALIZER_CACHE"] = str(cache)  # the in-process model shares the server's fresh cache
    results: dict = {"machine": machine(), "model": model, "plan": asdict(plan), "sections": sections}
    server = None
    try:
        lm = load_model(model)  # fills the weight cache: the servers' warm starts read it
        if "analysis" in sections:  # first, while no server runs beside it
            _section(results, "analysis", lambda: bench_analysis(lm, plan))
        if "startup" in sections:
            server = _section(results, "startup", lambda: bench_startup(model, cache, workdir, plan))
        if {"e2e", "load", "memory"} & set(sections):
            server = server or _started(model, cache, workdir)
            _server_sections(lm, server, sections, plan, results)
            server.stop()  # the long text runs alone
        if "long" in sections:
            _section(results, "long", lambda: bench_long(model, plan))
    finally:
        if server is not None:
            server.stop()
        _restore("VISUALIZER_CACHE", before)
    return results


def _restore(name: str, value: str | None) -> None:
    """Put an environment variable back as it was (unset when it was)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _server_sections(lm, server: Server, sections, plan: Plan, results: dict) -> None:
    """e2e, then load and memory, against one running server."""
    page = PageClient(server.url)
    page.analyze(FIRST_TEXT)  # the model is loaded before any clock runs
    if "e2e" in sections:
        _section(results, "e2e", lambda: bench_e2e(lm, server, plan))
    for text in texts_of_tokens(lm.tokenizer, min(plan.load_tokens, lm.max_context), 10):
        page.analyze(text)  # warm-up at the load's length
    if "load" in sections:
        before = server.rss()
        _section(results, "load", lambda: bench_load(lm, server, plan))
        if "single" in results["load"]:
            results["load"]["rss_growth_mb"] = (server.rss() - before) / MB  # new sessions included
    if "memory" in sections:
        _section(results, "memory", lambda: bench_memory(lm, server, plan))
    page.close()


def _started(model: str, cache: Path, workdir: Path) -> Server:
    """A server, started and ready."""
    server = Server(model, cache, workdir / "server.log").start()
    try:
        server.wait_ready(timeout=600)
    except BaseException:
        server.stop()
        raise
    return server


def _section(results: dict, name: str, fn):
    """results[name] = fn() (its first item when fn returns a pair, whose second is given back), or
    {'error': ...} when it raises: a failed section is reported and the run goes on. Its seconds go in 'section_s'."""
    start = time.perf_counter()
    try:
        value = fn()
    except Exception as err:  # noqa: BLE001
        value = {"error": f"{type(err).__name__}: {err}"[:2000]}
    results.setdefault("section_s", {})[name] = time.perf_counter() - start
    value, extra = value if isinstance(value, tuple) else (value, None)
    results[name] = value
    return extra


def verdicts(results: dict) -> list[dict]:
    """One row per target: what was measured, the target, and whether it was met."""
    rows = []

    def add(figure, value, target, met, unit=""):
        rows.append({"figure": figure, "value": value, "target": target, "met": met, "unit": unit})

    for n, r in (results.get("analysis") or {}).get("lengths", {}).items():
        add(f"analyze / forward, {n} tokens", r["ratio"]["median"], f"<= {r['target']}", r["met"], "x")
        add(f"analyze outside its tensor work, {n} tokens", r["outside_tensor_work_s"]["median"] * 1e3, "-", None, "ms")
        add(f"  of which tokenizing the text, {n} tokens", r["tokenize_s"]["median"] * 1e3, "-", None, "ms")
    for n, r in (results.get("analysis") or {}).get("per_prefix", {}).items():
        add(f"per-prefix loop / forward, {n} tokens (naive baseline)", r["ratio"]["median"], "-", None, "x")
    e2e = results.get("e2e") or {}
    for n, r in e2e.get("lengths", {}).items():
        target = r.get("target_added_s")
        add(
            f"API request - forward, {n} tokens",
            r["api_added_s"]["median"],
            f"<= {target}" if target else "-",
            r.get("met"),
            "s",
        )
        add(f"page request - forward, {n} tokens", r["page_added_s"]["median"], "-", None, "s")
    for n, r in e2e.get("payload", {}).items():
        add(
            f"figures' JSON received, {n} tokens",
            r["figures_kb"],
            f"<= {r['target_kb']}" if n == max(e2e["payload"], key=int) else "-",
            r["met"] if n == max(e2e["payload"], key=int) else None,
            "KB",
        )
    start = results.get("startup") or {}
    if "warm" in start:
        add("start to first analysis, cold cache", start["cold"]["first_analysis_s"], "-", None, "s")
        add(
            f"start to first analysis, warm cache (median of {len(start['warm']['starts'])})",
            start["warm"]["first_analysis_s"],
            f"<= {start['warm']['target_s']}",
            start["warm"]["met"],
            "s",
        )
    load = results.get("load") or {}
    if "single" in load:
        add(
            f"throughput, {load['clients']} clients / 1 client",
            load["throughput_ratio"],
            ">= 1.0",
            load["throughput_ratio"] >= TARGETS["load_throughput_ratio"],
            "x",
        )
        add(
            f"p95 with {load['clients']} clients / single p50",
            load["p95_over_single_p50"],
            "<= 16",
            load["p95_over_single_p50"] <= TARGETS["load_p95_over_single_p50"],
            "x",
        )
        add("errors under load", load["concurrent"]["errors"], "0", load["concurrent"]["errors"] == 0)
    mem = results.get("memory") or {}
    if "peak_rss_mb" in mem:
        add(
            "server peak RSS",
            mem["peak_rss_mb"],
            f"<= {mem['target_peak_mb']}",
            mem["peak_rss_mb"] <= mem["target_peak_mb"],
            "MB",
        )
        add(
            f"RSS growth over {mem['requests']} requests",
            mem["growth_mb"],
            f"<= {mem['target_growth_mb']}",
            mem["growth_mb"] <= mem["target_growth_mb"],
            "MB",
        )
    long = results.get("long") or {}
    if "tokens" in long:
        add(f"{long['tokens']}-token text: analyze time", long["analyze_s"], "completes", True, "s")
        add(f"{long['tokens']}-token text: peak RSS", long["analyze_peak_rss_mb"], "no OOM", True, "MB")
        add(
            f"{long['tokens']}-token text: logits kept in result",
            int(long["result_holds_vocab_rows"]),
            "0",
            long["met"],
        )
    return rows


def table(results: dict) -> str:
    """The verdicts as a plain-text table, then any section errors."""
    rows = results["verdicts"]
    lines = [f"{'figure':<58} {'value':>12} {'target':>11}  met"]
    for r in rows:
        value = r["value"]
        shown = (
            "n/a" if value is None else f"{value:.3f}{r['unit']}" if isinstance(value, float) else f"{value}{r['unit']}"
        )
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        lines.append(f"{r['figure']:<58} {shown:>12} {r['target']:>11}  {met}")
    for name in SECTIONS:
        if isinstance(results.get(name), dict) and "error" in results[name]:
            lines.append(f"{name}: FAILED: {results[name]['error']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m visualizer.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (for tests and a first look)")
    parser.add_argument(
        "--out", default="bench-results/bench.json", help="where to write the JSON (default %(default)s)"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--model", help="model to measure (default: the bundled one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 0 when it ran (targets missed are data, not errors)."""
    from ..settings import Settings

    args = build_parser().parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        build_parser().error(f"unknown sections: {', '.join(sorted(unknown))}")
    model = args.model or Settings().model
    workdir = Path(tempfile.mkdtemp(prefix="visualizer-bench-"))
    started = time.time()
    try:
        results = run(sections, model, QUICK if args.quick else FULL, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stamp(results, "python -m visualizer.bench", argv, args.quick, started)
    results["verdicts"] = verdicts(results)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")
    return 0
