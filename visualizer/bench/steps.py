"""Benchmarks of the step-by-step features: generation with the KV cache, and training a copy.

    python -m visualizer.bench.steps [--quick] [--model M] [--out FILE.json]

Generation: the time of each new token at steps 1-20 and 181-200 of a 200-token greedy run
(one token's forward pass each, through the KV cache) beside a forward pass over the whole
prefix at those lengths (what a step would cost without the cache). Training: 10 AdamW steps on
"the dog likes food": seconds per step and the peak extra memory (RSS, sampled every 5 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import psutil
import torch

from ..analysis.generation import Decoding, Generation
from ..analysis.training import train_on_text
from ..model.loading import LoadedModel, load_model, with_weights
from ..settings import BUNDLED_MODEL

PROMPT = "Once upon a time, in a small village by the sea,"


def _sync() -> None:
    """Wait for queued GPU work (nothing on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def generation_steps(lm: LoadedModel, new_tokens: int = 200, window: int = 20) -> dict:
    """Median seconds per cached step at the start and the end of a long run, beside uncached passes."""
    gen = Generation(lm, PROMPT, Decoding(max_new_tokens=new_tokens))
    times = []
    while not gen.done:
        _sync()
        start = time.perf_counter()
        gen.step()
        _sync()
        times.append(time.perf_counter() - start)
    ids = gen.ids
    early, late = times[1 : window + 1], times[-window:]  # step 0 reads the whole prompt
    result = {
        "steps": len(times),
        "prompt_tokens": len(gen.prompt_ids),
        "cached_step_s_early": statistics.median(early),
        "cached_step_s_late": statistics.median(late),
    }
    for name, length in (("early", len(gen.prompt_ids) + window), ("late", len(ids))):
        full = _median_forward(lm, ids[:length])
        result[f"uncached_pass_s_{name}"] = full
        result[f"cached_over_uncached_{name}"] = result[f"cached_step_s_{name}"] / full
    return result


def _median_forward(lm: LoadedModel, ids: list[int], repeats: int = 5) -> float:
    """Median seconds of one forward pass over `ids` without a cache."""
    tensor = torch.tensor([ids], device=lm.device)
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        with torch.no_grad():
            lm.model(tensor, use_cache=False)
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class PeakRSS:
    """Samples this process's RSS in a thread; `.peak` is the highest value seen, bytes."""

    def __init__(self, every_s: float = 0.005):
        self.every_s, self.peak, self._stop = every_s, 0, threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRSS:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.every_s)


def training_steps(lm: LoadedModel, steps: int = 10) -> dict:
    """Seconds per AdamW step and the peak extra memory of training a copy on the walkthrough's sentence."""
    before = psutil.Process().memory_info().rss
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as rss:
        start = time.perf_counter()
        run = train_on_text("the dog likes food", lm, steps=steps)
        seconds = time.perf_counter() - start
    result = {
        "steps": len(run.history) - 1,
        "seconds_per_step": seconds / steps,
        "peak_extra_rss_gb": (rss.peak - before) / 1e9,
        "loss_before": run.losses[0],
        "loss_after": run.losses[-1],
    }
    if torch.cuda.is_available():
        result["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return result


def main(argv: list[str] | None = None) -> int:
    """Run both sections, print them, and write JSON."""
    parser = argparse.ArgumentParser(prog="python -m visualizer.bench.steps", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--quick", action="store_true", help="20 new tokens and 2 training steps (for tests)")
    parser.add_argument("--out", default="bench-results/steps.json")
    args = parser.parse_args(argv)
    lm = with_weights(load_model(args.model), "The generation and training benchmark")
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "device": str(lm.device),
            "threads": torch.get_num_threads(),
        },
        "model": args.model,
        "generation": generation_steps(lm, 20 if args.quick else 200, 5 if args.quick else 20),
        "training": training_steps(lm, 2 if args.quick else 10),
    }
    for section in ("generation", "training"):
        for key, value in report[section].items():
            print(
                f"{section:<11} {key:<28} {value:.4g}"
                if isinstance(value, float)
                else f"{section:<11} {key:<28} {value}"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
