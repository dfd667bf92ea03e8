"""Time the CPU work around the forward pass in one or more checkouts of this project, side by side.

Run: .venv/bin/python scripts/work_around_forward.py DIR [DIR ...] [--model M] [--lengths 256,1024]
(e.g. `git worktree add /tmp/before REV` and compare /tmp/before with .). Each checkout's
`visualizer` runs in its own process on the same model (the bundled one by default); the processes
take turns, `--rounds` times.
Printed per checkout and length, medians in ms: analyze() minus its tensor work (forward pass and
statistics, timed through analyze()'s `measure` hook), then the page's views and export files
drawn from that result: the work a GPU does not speed up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
try:  # the layout in folders (issue 15)
    from visualizer.analysis.one_pass import analyze, measure_one
    from visualizer.bench.measure import text_of_tokens
    from visualizer.model.loading import load_model
    from visualizer.service.exports import export_files
    from visualizer.service.page import build_views
except ImportError:  # a checkout from before it: flat modules
    from visualizer.analysis import analyze, measure_one
    from visualizer.bench import text_of_tokens
    from visualizer.loading import load_model
    from visualizer.service import build_views, export_files

lm = load_model(*sys.argv[4:])
out = {}
for n in map(int, sys.argv[2].split(",")):
    text = text_of_tokens(lm.tokenizer, min(n, lm.max_context))
    rows = []
    for _ in range(int(sys.argv[3]) + 1):  # the first is a warm-up
        tensor = []

        def measure(lm_, request):
            start = time.perf_counter()
            measured = measure_one(lm_, request)
            tensor.append(time.perf_counter() - start)
            return measured

        start = time.perf_counter()
        result = analyze(text, lm, top_k=10, measure=measure)
        outside = time.perf_counter() - start - tensor[0]
        start = time.perf_counter()
        build_views(result)
        views = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as folder:  # removed again, outside the timing: a probe leaves nothing
            start = time.perf_counter()
            export_files(result, folder)
            export = time.perf_counter() - start
        rows.append((outside, views, export))
    out[n] = rows[1:]
print(json.dumps(out))
"""


def probe(checkout: Path, args: argparse.Namespace) -> dict[str, list]:
    """One round in a fresh process: per length, (outside, views, export) seconds per repeat."""
    command = [sys.executable, "-c", PROBE, str(checkout), args.lengths, str(args.repeats), *filter(None, [args.model])]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Alternate the checkouts `--rounds` times, then print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="*", type=Path, help="project checkouts (default: this one)")
    parser.add_argument("--model", help="model for every checkout (default: the bundled one)")
    parser.add_argument("--lengths", default="256,1024", help="text lengths in tokens, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="analyses per round and length")
    args = parser.parse_args(argv)
    checkouts = [c.resolve() for c in args.checkouts] or [Path(__file__).resolve().parent.parent]
    rows: dict[tuple[Path, str], list] = {}
    for _ in range(args.rounds):
        for checkout in checkouts:
            for n, samples in probe(checkout, args).items():
                rows.setdefault((checkout, n), []).extend(samples)
    print(f"{'checkout':<40} {'tokens':>6} {'analyze - tensors':>18} {'views':>8} {'export':>8}  (ms, medians)")
    for (checkout, n), samples in rows.items():
        outside, views, export = (1e3 * statistics.median(column) for column in zip(*samples))
        print(f"{str(checkout):<40} {n:>6} {outside:>18.2f} {views:>8.1f} {export:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
