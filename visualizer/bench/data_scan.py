"""Benchmark of checking fine-tuning data (issue 18): scanning a conversational JSONL file with the model.

    python -m visualizer.bench.data_scan [--rows N] [--model M] [--max-length N] [--out FILE.json]

A deterministic file of N conversations (default 1000: short system / user / assistant exchanges, some
multi-turn, a few edge rows: an empty answer, an empty question, a long answer, a turn of whitespace) is written
to a temporary folder and scanned as `visualizer labels` scans it (`open_data`, then `scan_file(...).rows`):
preset `all` on the conversations, and `completion-only` on the same exchanges as prompt + completion messages
(SmolLM2's ChatML has no generation markers, so `assistant-only` is refused there). Reported for each: time to
the first row of the table (from opening the file), total time, rows per second, and memory: the process's RSS
before the scan and its peak during it (psutil, sampled every 5 ms), and `resource.getrusage`'s peak RSS of the
whole process so far (model loading included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from ..model.loading import load_model
from ..service import training_data
from ..settings import BUNDLED_MODEL, Settings

SUBJECTS = ["the moon", "a cat", "Python lists", "the French revolution", "bread", "a bicycle", "rain", "chess"]
QUESTIONS = ["What is {s}?", "Tell me one fact about {s}.", "How would you describe {s} to a child?", "Why {s}?"]
ANSWERS = [
    "{S} is a common topic, and there is a lot to say about it.",
    "In short: {s} is interesting.",
    "Here is one fact: people have written about {s} for a long time, in many languages.",
    "I am not sure, but {s} is worth reading about.",
]
SYSTEMS = ["You are a helpful assistant.", "Answer in one sentence.", "Be brief and friendly."]
EDGE_EVERY = 97
"""One row in this many is an edge case (an empty answer, an empty question, a long answer, whitespace)."""


def conversation(i: int) -> list[dict]:
    """Row i's messages: deterministic, varied by i. Every 5th has a system prompt, every 7th is multi-turn (two
    or three exchanges); every EDGE_EVERY-th is an edge row."""
    s = SUBJECTS[i % len(SUBJECTS)]
    turns = 1 + (i % 7 == 0) * (1 + i % 2)
    messages = [{"role": "system", "content": SYSTEMS[i % len(SYSTEMS)]}] if i % 5 == 0 else []
    for k in range(turns):
        subject = SUBJECTS[(i + k) % len(SUBJECTS)] if k else s
        messages.append({"role": "user", "content": QUESTIONS[(i + k) % len(QUESTIONS)].format(s=subject)})
        answer = ANSWERS[(i // 3 + k) % len(ANSWERS)]
        messages.append({"role": "assistant", "content": answer.format(s=subject, S=subject.capitalize())})
    if i % EDGE_EVERY == 1:
        edge = (i // EDGE_EVERY) % 4
        if edge == 0:
            messages[-1]["content"] = ""
        elif edge == 1:
            messages[-2]["content"] = ""
        elif edge == 2:
            messages[-1]["content"] = " ".join([messages[-1]["content"]] * 12)
        else:
            messages[-2]["content"] = "   "
    return messages


def conversations(n: int) -> list[dict]:
    """n rows of `messages` data."""
    return [{"messages": conversation(i)} for i in range(n)]


def as_prompt_completion(rows: list[dict]) -> list[dict]:
    """The same rows as conversational prompt + completion: every message but the last, then the last."""
    return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Rows as JSON Lines."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


class PeakRss:
    """The process's RSS sampled every 5 ms in a thread while the block runs: `before` and `peak`, bytes."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def scan_once(lm, path: Path, preset: str, max_length: int, settings: Settings) -> dict:
    """One scan of the file as `visualizer labels` makes it: time to the first row, total, rows/s, memory."""
    with PeakRss() as rss:
        start = time.perf_counter()
        data = training_data.open_data(path, settings)
        options = training_data.label_options(preset, max_length)
        first = None
        rows = 0
        counted = 0
        for report in training_data.scan_file(data, lm, options, settings).rows:
            if first is None:
                first = time.perf_counter() - start
            rows += 1
            counted += report.counted
        total = time.perf_counter() - start
    return {
        "preset": preset,
        "format": data.format,
        "rows": rows,
        "counted_tokens": counted,
        "first_row_s": first,
        "total_s": total,
        "rows_per_s": rows / total,
        "rss_before_gb": rss.before / 1e9,
        "rss_peak_gb": rss.peak / 1e9,
        "rss_extra_gb": (rss.peak - rss.before) / 1e9,
        "process_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,  # Linux: KiB
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="rows in the generated file (default %(default)s)")
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--max-length", type=int, default=1024, help="SFTConfig.max_length (default TRL's 1024)")
    parser.add_argument("--presets", default="all,completion-only", help="comma-separated (default %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    settings = Settings()
    start = time.perf_counter()
    lm = load_model(args.model)
    load_s = time.perf_counter() - start
    rows = conversations(args.rows)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "all": write_jsonl(Path(tmp) / "messages.jsonl", rows),
            "completion-only": write_jsonl(Path(tmp) / "prompt_completion.jsonl", as_prompt_completion(rows)),
        }
        for preset in args.presets.split(","):
            results.append(scan_once(lm, files[preset], preset, args.max_length, settings))
            r = results[-1]
            print(
                f"{preset:>16} ({r['format']}): {r['rows']} rows, first row {r['first_row_s']:.2f} s, total "
                f"{r['total_s']:.1f} s, {r['rows_per_s']:.1f} rows/s; RSS {r['rss_before_gb']:.2f} -> peak "
                f"{r['rss_peak_gb']:.2f} GB (+{r['rss_extra_gb']:.2f}); process maxrss {r['process_maxrss_gb']:.2f} GB",
                flush=True,
            )
    report = {
        "model": args.model,
        "rows": args.rows,
        "max_length": args.max_length,
        "batch_tokens": settings.batch_tokens,
        "model_load_s": load_s,
        "scans": results,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "torch_threads": torch.get_num_threads(),
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
