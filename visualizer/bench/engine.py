"""Through a vLLM server or in this process: the same weights analysed both ways, in one run.

    python -m visualizer.bench.engine [--quick] [--model M] [--out FILE.json]

The model (the bundled one by default) is exported as a standard checkpoint and served by vLLM's CPU build
(`engine_server`: fp32, eager, no prefix caching, max-logprobs 50, max-model-len 2048). Analysis: analyze() of
a text of 16, 256 and 1024 tokens through the engine and in this process, timed in the same repeats with the
order rotating (the bare forward pass here beside them, for scale); the median seconds of each and the median
of the repeat-by-repeat ratios engine / in-process, and, as a sanity check, the largest difference of their
loss and of a position's log p. The exact walkthrough table's extra request: the engine's measurement of the
shortest text with its cells outside the top K asked for, and without. Each side computes on one thread
(THREADS: vLLM's CPU worker takes one core).
Load: `python app.py` offering both (`VISUALIZER_MODELS`), one page client alone, then 16 at once, each sending
analyses back to back, on the engine model and on the in-process model in halves run A B B A; requests per
second, p50, p95, and the ratios engine / in-process throughput and p95 with 16 clients / a lone client's p50.
Every figure is a ratio of two things measured in this run, so a busy machine moves both sides; the server is
stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

import torch

from .engine_server import install_vllm, vllm_serving, vllm_version
from .in_process import forward_fn
from .load import load_result, send_requests
from .measure import paired, ratios, spread, stamp, text_of_tokens, texts_of_tokens
from .server import PageClient, Server

THREADS = 1
"""Compute threads on each side: vLLM's CPU worker runs on one core (it keeps the other for its server), so
this process and the app get one too; two threads beside other work on two shared cores also swing 10-fold
(a 16-token analyze() took 0.14 s to 4 s with two threads, 0.15-0.25 s with one)."""
ENGINE_TIMEOUT_S = "600"
"""VISUALIZER_ENGINE_TIMEOUT_S for this run: a 1024-token text under load is slow on two CPU cores, not broken."""


@dataclass(frozen=True)
class EnginePlan:
    """How much to measure: the full run, or a quick one."""

    lengths: tuple[int, ...] = (16, 256, 1024)
    repeats: tuple[int, ...] = (11, 7, 5)
    """Pairs per length in `lengths` (after one warm-up pair)."""
    clients: int = 16
    requests: int = 20
    """Analyses each client sends, back to back."""
    load_tokens: int = 32
    section_seconds: float = 240.0
    """No request loop runs longer than this."""


FULL = EnginePlan()
QUICK = EnginePlan(lengths=(16, 64), repeats=(3, 3), clients=4, requests=3, load_tokens=16, section_seconds=60.0)


def bench_analysis(local, engine, plan: EnginePlan) -> dict:
    """analyze() through the engine beside analyze() in this process, per length: times, ratio, agreement; the
    bare forward pass here (`model(input_ids)`) in the same repeats, for scale."""
    from ..analysis.one_pass import analyze

    out: dict = {}
    for n, repeats in zip(plan.lengths, plan.repeats):
        text = text_of_tokens(local.tokenizer, n)
        last: dict = {}  # each side's latest analysis, compared below

        def keeping(side, lm, text=text, last=last):
            return lambda: last.__setitem__(side, analyze(text, lm, top_k=10))

        fns = {side: keeping(side, lm) for side, lm in (("engine", engine), ("in_process", local))}
        t = paired({**fns, "forward": forward_fn(local, text)[0]}, repeats)
        served, here = last["engine"], last["in_process"]
        out[str(n)] = {
            "engine_s": spread(t["engine"]),
            "in_process_s": spread(t["in_process"]),
            "forward_s": spread(t["forward"]),
            "ratio": spread(ratios(t["engine"], t["in_process"])),
            "engine_over_forward": spread(ratios(t["engine"], t["forward"])),
            "loss_engine": served.mean_token_loss,
            "loss_in_process": here.loss,
            "loss_abs_diff": abs(served.mean_token_loss - here.loss),
            "logp_max_abs_diff": float(abs(served.arrays.logp - here.arrays.logp).max()),
        }
    return out


def bench_table_probes(engine, plan: EnginePlan) -> dict:
    """What the exact walkthrough table costs through the engine on the shortest text: its engine measurement with
    the cells outside the top K asked for (one more request) and without (those cells left bounded), paired."""
    from ..analysis.engine_pass import measure_engine, probe_tokens
    from ..analysis.measured import Request

    ids = engine.tokenizer(text_of_tokens(engine.tokenizer, plan.lengths[0]), add_special_tokens=False)["input_ids"]
    request = Request(ids, ids, 10)
    unknown = torch.isnan(measure_engine(engine, request, 0).stats["columns_p"]).nonzero().tolist()  # [[r, c], ...]
    fns = {  # the table exact whatever its size, and bounded
        "exact": lambda: measure_engine(engine, request, max_probe_tokens=10**9),
        "bounded": lambda: measure_engine(engine, request, 0),
    }
    t = paired(fns, plan.repeats[0])
    return {
        "tokens": len(ids),
        "probes": len(unknown),
        "probe_tokens": probe_tokens(unknown),
        "exact_s": spread(t["exact"]),
        "bounded_s": spread(t["bounded"]),
        "ratio": spread(ratios(t["exact"], t["bounded"])),
    }


def bench_load(model: str, entry: str, tokenizer, plan: EnginePlan, workdir: Path) -> dict:
    """The app offering both models; one client, then `plan.clients` at once, on each side (interleaved)."""
    from ..model.loading import cache_root

    texts = texts_of_tokens(tokenizer, plan.load_tokens, 40)
    server = Server(model, cache_root(), workdir / "app.log", models=(entry,)).start()
    try:
        server.wait_ready(timeout=600)
        for name in (entry, model):  # each model loaded and warm before any clock runs
            page = PageClient(server.url, model=name)
            replies = [page.analyze(text) for text in texts[:3]]
            page.close()
            if not all(r.ok for r in replies):
                raise RuntimeError(f"the app could not analyse with {name}: {replies[-1].error}")
        models = {"engine": entry, "in_process": model}
        sides: dict[str, dict] = {"engine": {}, "in_process": {}}
        for kind, clients in (("single", 1), ("concurrent", plan.clients)):
            runs = interleaved(server.url, texts, clients, plan.requests, plan.section_seconds, models)
            for side, result in runs.items():
                sides[side][kind] = result
    finally:
        server.stop()
    return {
        "clients": plan.clients,
        "requests": plan.requests,
        "tokens": plan.load_tokens,
        **sides,
        **load_ratios(sides),
    }


def interleaved(url: str, texts: list[str], clients: int, requests: int, seconds: float, models: dict) -> dict:
    """{side: load result} for each of `models` ({side: model name}): `clients` new page sessions, each sending
    `requests` analyses back to back, in the halves of `abba`; each side's halves pooled (its requests over its
    own seconds)."""
    import httpx

    config = httpx.get(f"{url}/config", timeout=30).json()
    replies: dict[str, list] = {side: [] for side in models}
    wall = dict.fromkeys(models, 0.0)
    for side, each in abba(list(models), requests):
        pages = [PageClient(url, config, model=models[side]) for _ in range(clients)]
        start = time.perf_counter()
        replies[side] += send_requests(pages, texts, each, seconds / 2)
        wall[side] += time.perf_counter() - start
        for page in pages:
            page.close()
    return {side: load_result(replies[side], wall[side], clients * requests) for side in models}


def abba(sides: list[str], requests: int) -> list[tuple[str, int]]:
    """(side, requests) in the order run: each side's first half, then its second half in reverse order (A B B A),
    so a machine growing busier or quieter over the run weighs on every side alike."""
    first, second = requests // 2, requests - requests // 2
    return [(side, first) for side in sides] + [(side, second) for side in reversed(sides)]


def load_ratios(sides: dict) -> dict:
    """From each side's lone and concurrent runs: engine / in-process throughput and lone p50, and per side
    p95 under load / lone p50 and concurrent / lone throughput (None where a run served nothing)."""

    def div(a, b):
        return a / b if a is not None and b else None

    engine, local = sides["engine"], sides["in_process"]
    out = {
        "throughput_ratio": div(engine["concurrent"]["rps"], local["concurrent"]["rps"]),
        "single_p50_ratio": div(engine["single"]["p50_s"], local["single"]["p50_s"]),
    }
    for side, runs in sides.items():
        out[f"{side}_p95_over_single_p50"] = div(runs["concurrent"]["p95_s"], runs["single"]["p50_s"])
        out[f"{side}_scaling"] = div(runs["concurrent"]["rps"], runs["single"]["rps"])
    return out


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """The figures as (what, engine, in-process, engine / in-process) cells of text."""

    def num(value, unit: str = "", digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}{unit}"

    out = []
    analysis = results.get("analysis") or {}
    analysis = {} if "error" in analysis else analysis  # a failed section: named under the table
    for n, r in analysis.items():
        ratio = r["ratio"]
        out.append(
            (
                f"analyze(), {n} tokens: median s",
                num(r["engine_s"]["median"]),
                num(r["in_process_s"]["median"]),
                f"{num(ratio['median'], 'x', 2)} [IQR {ratio['q1']:.2f}-{ratio['q3']:.2f}]",
            )
        )
        out.append(
            (
                f"  bare forward here, {n} tokens: median s",
                "",
                num(r["forward_s"]["median"]),
                f"engine / it {num(r['engine_over_forward']['median'], 'x', 2)}",
            )
        )
    probes = results.get("table_probes") or {}
    if "ratio" in probes:
        out.append(
            (
                f"  {probes['tokens']} tokens: exact table ({probes['probe_tokens']} probe tokens) / bounded",
                f"{num(probes['exact_s']['median'])} / {num(probes['bounded_s']['median'])}",
                "",
                num(probes["ratio"]["median"], "x", 2),
            )
        )
    diffs = [(r["loss_abs_diff"], r["logp_max_abs_diff"]) for r in analysis.values()]
    if diffs:
        worst = f"{max(d for d, _ in diffs):.1e} (log p {max(d for _, d in diffs):.1e})"
        out.append(("loss |engine - in-process|, max over the texts", worst, "", ""))
    load = results.get("load") or {}
    if "engine" in load:
        e, i, c = load["engine"], load["in_process"], load["clients"]

        def both(run: str, key: str, digits: int = 3) -> tuple[str, str]:
            return num(e[run][key], "", digits), num(i[run][key], "", digits)

        def errors(side: dict) -> str:
            runs = (side["single"], side["concurrent"])
            return f"{sum(r['errors'] for r in runs)} of {sum(r['requests'] for r in runs)}"

        out += [
            ("1 client: p50 s", *both("single", "p50_s"), num(load["single_p50_ratio"], "x", 2)),
            (f"{c} clients: requests/s", *both("concurrent", "rps", 2), num(load["throughput_ratio"], "x", 2)),
            (f"{c} clients: p50 s", *both("concurrent", "p50_s"), ""),
            (f"{c} clients: p95 s", *both("concurrent", "p95_s"), ""),
            (
                f"p95 with {c} clients / 1 client's p50",
                num(load["engine_p95_over_single_p50"], "x", 1),
                num(load["in_process_p95_over_single_p50"], "x", 1),
                "",
            ),
            (
                f"throughput {c} clients / 1 client",
                num(load["engine_scaling"], "x", 2),
                num(load["in_process_scaling"], "x", 2),
                "",
            ),
            ("errors (1 client and concurrent)", errors(e), errors(i), ""),
        ]
    return out


def table(results: dict) -> str:
    """The rows as a plain-text table, then any section that failed."""
    lines = [f"{'figure':<48} {'engine':>18} {'in-process':>11} {'engine / in-process':>24}"]
    lines += [f"{a:<48} {b:>18} {c:>11} {d:>24}" for a, b, c, d in rows(results)]
    lines += [
        f"{name}: FAILED: {results[name]['error']}"
        for name in ("analysis", "table_probes", "load")
        if "error" in (results.get(name) or {})
    ]
    return "\n".join(lines)


def run(model: str, plan: EnginePlan, workdir: Path) -> dict:
    """Export, serve, measure both sections, stop the server; a failed section is recorded, the other still runs."""
    from ..model.engine import EngineModel
    from ..model.export import export_checkpoint
    from ..model.loading import load_model, with_weights
    from .run import _section, machine

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        results: dict = {"machine": machine(), "model": model, "plan": asdict(plan), "threads": THREADS}
        local = with_weights(load_model(model), "The engine benchmark's in-process side")
        install_vllm()
        results["vllm"] = vllm_version()
        export_checkpoint(local, None, workdir / "model")
        with vllm_serving(workdir / "model", workdir) as server:
            results["engine_entry"], results["server_start_s"] = server.entry, server.timings["start"]
            engine = load_model(server.entry)
            assert isinstance(engine, EngineModel)  # a vllm: entry loads as one
            _section(results, "analysis", lambda: bench_analysis(local, engine, plan))
            _section(results, "table_probes", lambda: bench_table_probes(engine, plan))
            _section(results, "load", lambda: bench_load(model, server.entry, local.tokenizer, plan, workdir))
            engine.client.close()
    finally:
        torch.set_num_threads(before)
    results["load_average_after"] = machine()["load_average"]
    return results


def main(argv: list[str] | None = None) -> int:
    """Run it, print the table, write the JSON; 0 when it ran (ratios are data, not verdicts)."""
    from ..settings import BUNDLED_MODEL

    parser = argparse.ArgumentParser(prog="python -m visualizer.bench.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two short lengths and 4 clients (a first look, tests)")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model to serve both ways (default %(default)s)")
    parser.add_argument("--out", default="bench-results/engine.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="visualizer-bench-engine-"))
    started = time.time()
    try:
        env = {"VISUALIZER_ENGINE_TIMEOUT_S": ENGINE_TIMEOUT_S, "OMP_NUM_THREADS": str(THREADS)}  # app and vLLM
        with mock.patch.dict("os.environ", env):
            results = run(args.model, QUICK if args.quick else FULL, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stamp(results, "python -m visualizer.bench.engine", argv, args.quick, started)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
