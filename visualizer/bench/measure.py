"""Plans, targets, statistics and texts that every benchmark section shares."""

from __future__ import annotations

import functools
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("analysis", "startup", "e2e", "load", "memory", "long")
"""In the order they run: the in-process analysis first, with no server beside it."""
ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout: app.py lives here
MB = 1e6
MEMORY_CLIENTS = 4
"""Sessions that send the memory section's requests."""
FIRST_TEXT = "the dog likes food"
"""What the page analyses on a first visit: the start-up clock stops when it is served."""


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or a quick one for tests."""

    lengths: tuple[int, ...] = (16, 64, 256, 1024)
    prefix_lengths: tuple[int, ...] = (16, 64)
    repeats: tuple[int, ...] = (21, 15, 9, 5)
    """Pairs per length in `lengths`."""
    prefix_repeats: int = 3
    e2e_lengths: tuple[int, ...] = (16, 256)
    e2e_repeats: int = 7
    payload_lengths: tuple[int, ...] = (256, 1024)
    clients: int = 16
    requests: int = 20
    load_tokens: int = 32
    memory_requests: int = 500
    long_tokens: int = 2048
    warm_starts: int = 5
    """Warm starts timed (the machine's noise is large: one start is not a figure)."""
    section_seconds: float = 300.0
    """No request loop runs longer than this."""


FULL = Plan()
QUICK = Plan(
    lengths=(8, 16, 32),
    prefix_lengths=(8,),
    repeats=(3, 3, 3),
    prefix_repeats=2,
    e2e_lengths=(8, 32),
    e2e_repeats=3,
    payload_lengths=(32, 60),
    clients=4,
    requests=3,
    load_tokens=16,
    memory_requests=12,
    long_tokens=60,
    warm_starts=2,
    section_seconds=30.0,
)

TARGETS = {
    "analysis_ratio_short": 1.3,
    "analysis_ratio": 1.15,
    "e2e_added_s": 0.150,
    "payload_kb": 400,
    "warm_start_s": 8.0,
    "load_throughput_ratio": 1.0,
    "load_p95_over_single_p50": 16.0,
    "peak_rss_mb": 1500,
    "rss_growth_mb": 50,
}


def spread(values: list[float]) -> dict:
    """Median, quartiles, min, max and count: {'median': .., 'q1': .., 'q3': .., 'min': .., 'max': .., 'n': ..}."""
    vals = sorted(values)
    q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else (vals[0],) * 3
    return {"median": statistics.median(vals), "q1": q1, "q3": q3, "min": vals[0], "max": vals[-1], "n": len(vals)}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the nearest ranks."""
    vals = sorted(values)
    at = (len(vals) - 1) * q / 100
    low = int(at)
    return vals[low] + (vals[min(low + 1, len(vals) - 1)] - vals[low]) * (at - low)


def sync() -> None:
    """Wait for queued GPU work, so a timer around it measures it (no-op on a CPU)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> float:
    """Seconds `fn()` takes, GPU work included."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def paired(fns: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each of `fns` once per repeat, rotating their order, so noise falls on all of them alike."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(fns[name]))
    return times


def ratios(top: list[float], bottom: list[float]) -> list[float]:
    """Repeat-by-repeat ratios of two paired lists."""
    return [a / b for a, b in zip(top, bottom)]


@functools.lru_cache(maxsize=1)
def corpus() -> str:
    """Long, varied English prose that ships with Python (the pydoc topics), the same on every machine."""
    from pydoc_data.topics import topics

    return " ".join(" ".join(topics[k].split()) for k in sorted(topics))


def text_of_tokens(tokenizer, n: int, offset: int = 0) -> str:
    """A text that the tokenizer turns into exactly `n` tokens, cut from the corpus at token `offset`."""
    words = corpus().split(" ")
    start = 0
    for start in range(offset, len(words)):
        if words[start][:1].isalpha():
            break
    ids = tokenizer(" ".join(words[start : start + 2 * n + 200]), add_special_tokens=False)["input_ids"]
    for m in range(n, n + 40):
        text = tokenizer.decode(ids[:m])
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n:
            return text
    raise RuntimeError(f"no text of exactly {n} tokens found")


def texts_of_tokens(tokenizer, n: int, count: int) -> list[str]:
    """`count` different texts of `n` tokens each (different places in the corpus)."""
    return [text_of_tokens(tokenizer, n, offset=97 * i) for i in range(count)]


def stamp(results: dict, command: str, argv, quick: bool, started: float) -> dict:
    """Record how a benchmark run was made beside its figures: its command line, plan, duration and date."""
    results.update(
        command=f"{command} " + " ".join(argv if argv is not None else sys.argv[1:]),
        mode="quick" if quick else "full",
        seconds=time.time() - started,
        date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
    )
    return results
