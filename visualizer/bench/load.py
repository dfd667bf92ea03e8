"""Sections load and memory: concurrent clients beside one, shared forward passes, the server's memory over
many requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .measure import (
    MB,
    MEMORY_CLIENTS,
    TARGETS,
    Plan,
    paired,
    percentile,
    ratios,
    spread,
    texts_of_tokens,
)
from .server import PageClient, Reply, Server


def run_clients(
    url: str, texts: list[str], clients: int, requests: int, seconds: float, model: str | None = None
) -> dict:
    """`clients` new page sessions, each sending `requests` analyses (of `model`, else the page's default) back
    to back; rate, latency, errors."""
    import httpx

    config = httpx.get(f"{url}/config", timeout=30).json()
    pages = [PageClient(url, config, model=model) for _ in range(clients)]
    start = time.perf_counter()
    replies = send_requests(pages, texts, requests, seconds)
    wall = time.perf_counter() - start
    for page in pages:
        page.close()
    return load_result(replies, wall, clients * requests)


def load_result(replies: list[Reply], wall: float, planned: int) -> dict:
    """Requests per second, p50/p95 latency and the errors of one load run."""
    ok = [r.seconds for r in replies if r.ok]
    errors = [r.error for r in replies if not r.ok]
    return {
        "requests": len(replies),
        "planned": planned,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "wall_s": wall,
        "rps": len(ok) / wall,
        "p50_s": percentile(ok, 50) if ok else None,
        "p95_s": percentile(ok, 95) if ok else None,
        "max_s": max(ok, default=None),
    }


def bench_load(lm, server: Server, plan: Plan) -> dict:
    """One client alone, then `plan.clients` at once, against the same server."""
    texts = texts_of_tokens(lm.tokenizer, min(plan.load_tokens, lm.max_context), 40)
    single = run_clients(server.url, texts, 1, plan.requests, plan.section_seconds)
    many = run_clients(server.url, texts, plan.clients, plan.requests, plan.section_seconds)
    batching = bench_batching(lm, texts[: plan.clients], plan.prefix_repeats)
    throughput = many["rps"] / single["rps"] if single["rps"] else None
    tail = many["p95_s"] / single["p50_s"] if single["p50_s"] and many["p95_s"] else None
    met = (
        many["errors"] == single["errors"] == 0
        and many["requests"] == many["planned"]
        and throughput is not None
        and throughput >= TARGETS["load_throughput_ratio"]
        and tail is not None
        and tail <= TARGETS["load_p95_over_single_p50"]
    )
    return {
        "single": single,
        "concurrent": many,
        "clients": plan.clients,
        "tokens": plan.load_tokens,
        "throughput_ratio": throughput,
        "p95_over_single_p50": tail,
        "met": met,
        "batching": batching,
    }


def bench_batching(lm, texts: list[str], repeats: int) -> dict:
    """What batching concurrent requests could gain: one forward pass over all `texts` (equal lengths)
    beside one pass per text, in this process."""
    import torch

    ids = torch.tensor([lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts], device=lm.device)

    def one_by_one():
        with torch.no_grad():
            for row in ids:
                lm.model(row[None])

    def batched():
        with torch.no_grad():
            lm.model(ids)

    t = paired({"one_by_one": one_by_one, "batched": batched}, repeats)
    return {
        "texts": len(texts),
        "one_by_one_s": spread(t["one_by_one"]),
        "batched_s": spread(t["batched"]),
        "speedup": spread(ratios(t["one_by_one"], t["batched"])),
    }


def bench_memory(lm, server: Server, plan: Plan) -> dict:
    """Peak RSS of the server, and its growth over `plan.memory_requests` requests from a few long-lived
    sessions (as a class working for a while), counted from a warm-up of their first requests."""
    texts = texts_of_tokens(lm.tokenizer, min(plan.load_tokens, lm.max_context), 40)
    pages = [PageClient(server.url) for _ in range(MEMORY_CLIENTS)]
    replies = send_requests(pages, texts, 5, plan.section_seconds)  # each session's first requests: the warm-up
    steps = [(0, server.rss())]
    for _ in range(2):
        batch = send_requests(pages, texts, -(-plan.memory_requests // (2 * len(pages))), plan.section_seconds / 2)
        steps.append((steps[-1][0] + len(batch), server.rss()))
        replies += batch
    for page in pages:
        page.close()
    peak, growth = server.peak_rss() / MB, (steps[-1][1] - steps[0][1]) / MB
    return {
        "peak_rss_mb": peak,
        "baseline_rss_mb": steps[0][1] / MB,
        "growth_mb": growth,
        "requests": steps[-1][0],
        "sessions": len(pages),
        "errors": sum(not r.ok for r in replies),
        "rss_mb_after_requests": {str(n): rss / MB for n, rss in steps},
        "target_peak_mb": TARGETS["peak_rss_mb"],
        "target_growth_mb": TARGETS["rss_growth_mb"],
        "met": peak <= TARGETS["peak_rss_mb"] and growth <= TARGETS["rss_growth_mb"],
    }


def send_requests(pages: list[PageClient], texts: list[str], each: int, seconds: float) -> list[Reply]:
    """`each` requests from every page client at once (bounded by `seconds`); their replies."""
    deadline = time.perf_counter() + seconds

    def one(c: int) -> list[Reply]:
        return [
            pages[c].analyze(texts[(c * each + r) % len(texts)]) for r in range(each) if time.perf_counter() < deadline
        ]

    with ThreadPoolExecutor(len(pages)) as pool:
        return [reply for batch in pool.map(one, range(len(pages))) for reply in batch]
