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
    python -m visualizer.bench --quick --model path/to/tiny-model --sections analysis,e2e
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECTIONS = ("analysis", "startup", "e2e", "load", "memory", "long")
"""In the order they run: the in-process analysis first, with no server beside it."""
ROOT = Path(__file__).resolve().parent.parent
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
QUICK = Plan(lengths=(8, 16, 32), prefix_lengths=(8,), repeats=(3, 3, 3), prefix_repeats=2, e2e_lengths=(8, 32),
             e2e_repeats=3, payload_lengths=(32, 60), clients=4, requests=3, load_tokens=16, memory_requests=12,
             long_tokens=60, warm_starts=2, section_seconds=30.0)

TARGETS = {
    "analysis_ratio_short": 1.3, "analysis_ratio": 1.15, "e2e_added_s": 0.150, "payload_kb": 400,
    "warm_start_s": 8.0, "load_throughput_ratio": 1.0, "load_p95_over_single_p50": 16.0,
    "peak_rss_mb": 1500, "rss_growth_mb": 50,
}


# ---------------------------------------------------------------- numbers


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
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timed(fns[name]))
    return times


def ratios(top: list[float], bottom: list[float]) -> list[float]:
    """Repeat-by-repeat ratios of two paired lists."""
    return [a / b for a, b in zip(top, bottom)]


# ---------------------------------------------------------------- texts


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


# ---------------------------------------------------------------- section: analysis


def forward_fn(lm, text: str):
    """The floor: the bare `model(input_ids)` for `text`, under no_grad."""
    import torch

    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]], device=lm.device)

    def forward():
        with torch.no_grad():
            lm.model(ids)

    return forward, ids


def timed_measure():
    """A `measure` for analyze() that runs the usual tensor work (forward pass and statistics) and
    appends its seconds to the returned list: analyze() minus it is the Python work around it."""
    from .analysis import measure_one

    seconds: list[float] = []

    def measure(lm, request):
        sync()
        start = time.perf_counter()
        measured = measure_one(lm, request)
        sync()
        seconds.append(time.perf_counter() - start)
        return measured

    return measure, seconds


def bench_analysis(lm, plan: Plan) -> dict:
    """analyze() over the bare forward pass per length; the per-prefix loop as the naive baseline."""
    import torch

    from .analysis import analyze

    out: dict = {"lengths": {}, "per_prefix": {}}
    for n, repeats in zip(_fit(lm, plan.lengths), plan.repeats):
        text = text_of_tokens(lm.tokenizer, n)
        forward, _ = forward_fn(lm, text)
        measure, tensor_s = timed_measure()
        t = paired({"forward": forward, "analyze": lambda: analyze(text, lm, top_k=10, measure=measure),
                    "tokenize": lambda: lm.tokenizer(text, add_special_tokens=False)}, repeats)
        row = out["lengths"][str(n)] = _pair_result(t, "analyze", TARGETS["analysis_ratio_short" if n < 64 else "analysis_ratio"])
        row["outside_tensor_work_s"] = spread([a - m for a, m in zip(t["analyze"], tensor_s[-repeats:])])  # after the warm-up
        row["tokenize_s"] = spread(t["tokenize"])  # part of the work outside: text to ids
    for n in _fit(lm, plan.prefix_lengths):
        forward, ids = forward_fn(lm, text_of_tokens(lm.tokenizer, n))

        def per_prefix(ids=ids):
            with torch.no_grad():
                for k in range(1, ids.shape[1] + 1):
                    lm.model(ids[:, :k])

        t = paired({"forward": forward, "per_prefix": per_prefix}, plan.prefix_repeats, warmup=0)
        out["per_prefix"][str(n)] = _pair_result(t, "per_prefix", None)
    return out


def _fit(lm, lengths) -> list[int]:
    """The lengths that fit the model's context (a tiny test model reads 64 tokens)."""
    return [min(n, lm.max_context) for n in lengths]


def _pair_result(t: dict, name: str, target: float | None) -> dict:
    """Both sides' times and their repeat-by-repeat ratio, with the target and whether it is met."""
    ratio = spread(ratios(t[name], t["forward"]))
    return {"forward_s": spread(t["forward"]), f"{name}_s": spread(t[name]), "ratio": ratio,
            "target": target, "met": None if target is None else ratio["median"] <= target}


# ---------------------------------------------------------------- the server


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vm_hwm(pid: int) -> int | None:
    """The peak resident set size of a process (Linux VmHWM), bytes; None where unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else None


class Server:
    """`python app.py` in a subprocess on a free loopback port; stopped by its pid, never by name."""

    def __init__(self, model: str, cache: Path, log: Path):
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
                    "VISUALIZER_CACHE": str(cache), "VISUALIZER_MODEL": model, "VISUALIZER_MODELS": model,
                    "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()

    def start(self) -> "Server":
        """Launch the process and begin sampling its RSS (the clock for start-up starts here)."""
        self.started = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def wait_ready(self, timeout: float) -> float:
        """Seconds from start until the app serves its config."""
        import httpx

        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with status {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/config", timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"app.py did not answer within {timeout:.0f} s; see {self.log}")

    def rss(self) -> int:
        """The process's resident set size now, bytes."""
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def peak_rss(self) -> int:
        """The process's peak RSS so far: VmHWM where Linux gives it, else the sampled maximum."""
        hwm = vm_hwm(self.proc.pid)
        sampled = max((rss for _, rss in self.samples), default=0)
        return max(hwm or 0, sampled)

    def _sample(self) -> None:
        """Record (seconds since start, RSS) four times a second until stopped."""
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                self.samples.append((time.perf_counter() - self.started, self.rss()))
            except Exception:  # noqa: BLE001 - the process may end between the check and the read
                break
            self._stop.wait(0.25)

    def stop(self) -> None:
        """Terminate the process by its pid; kill it if it has not ended 10 s later."""
        self._stop.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- clients


@dataclass
class Reply:
    """One request as the client saw it."""

    seconds: float
    ok: bool
    stream_bytes: int = 0
    """Bytes of the event stream up to the result (what the page downloads for it)."""
    figure_bytes: int = 0
    """Characters of the figures' JSON in the result (the Plot components' payload)."""
    error: str = ""


class PageClient:
    """The browser's own protocol for the Analyze button: join the queue, read the event stream.

    The page's handler is not part of the public API (gradio_client cannot call it); this does
    what the page's JavaScript does, so the bytes counted are the bytes a browser receives.
    """

    def __init__(self, url: str, config: dict | None = None, timeout: float = 300):
        import httpx

        self.url, self.http = url, httpx.Client(timeout=timeout)
        self.config = config or self.http.get(f"{url}/config").json()
        self.prefix = self.config.get("api_prefix", "/gradio_api")
        self.fn_index, self.trigger, self.defaults, self.text_at = analyze_event(self.config)
        self.session = uuid.uuid4().hex[:12]

    def analyze(self, text: str) -> Reply:
        """Run the page's analysis of `text` and wait for its result."""
        data = list(self.defaults)
        data[self.text_at] = text
        body = {"data": data, "fn_index": self.fn_index, "trigger_id": self.trigger,
                "session_hash": self.session, "event_data": None}
        start = time.perf_counter()
        try:
            joined = self.http.post(f"{self.url}{self.prefix}/queue/join", json=body)
            joined.raise_for_status()
            return self._result(joined.json()["event_id"], start)
        except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the run
            return Reply(time.perf_counter() - start, False, error=f"{type(err).__name__}: {err}"[:300])

    def _result(self, event_id: str, start: float) -> Reply:
        """Read the session's event stream until this event completes."""
        size, buf = 0, b""
        params = {"session_hash": self.session}
        with self.http.stream("GET", f"{self.url}{self.prefix}/queue/data", params=params) as stream:
            stream.raise_for_status()
            for chunk in stream.iter_bytes():
                size, buf = size + len(chunk), buf + chunk
                while b"\n\n" in buf:
                    raw, buf = buf.split(b"\n\n", 1)
                    msg = json.loads(raw.decode()[len("data:"):]) if raw.startswith(b"data:") else {}
                    if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                        seconds = time.perf_counter() - start
                        output = msg.get("output") or {}
                        ok = bool(msg.get("success")) and not str(_summary(output)).startswith("⚠")
                        return Reply(seconds, ok, size, figure_bytes(output.get("data") or []),
                                     "" if ok else str(output)[:300])
        raise RuntimeError("the event stream ended without a result")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()


def analyze_event(config: dict) -> tuple[int, int, list, int]:
    """(fn_index, trigger id, default input values, index of the text input) of the Analyze button's click."""
    components = {c["id"]: c for c in config["components"]}
    by_elem = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    button, text = by_elem.get("analyze-button"), by_elem.get("text-input")
    for i, dep in enumerate(config["dependencies"]):
        if [button, "click"] in [list(t) for t in dep.get("targets", [])] and text in dep["inputs"]:
            defaults = [components[c].get("props", {}).get("value") for c in dep["inputs"]]
            return dep.get("id", i), button, defaults, dep["inputs"].index(text)
    raise RuntimeError("the app has no 'analyze-button' click event taking 'text-input'")


def _summary(output: dict):
    """The summary text of a page result (second output), or '' when absent."""
    data = output.get("data") or []
    return data[1] if len(data) > 1 and isinstance(data[1], str) else ""


def figure_bytes(data: list) -> int:
    """Characters of Plotly JSON among a result's outputs ({'type': 'plotly', 'plot': '...'})."""
    return sum(len(item["plot"]) for item in data if isinstance(item, dict) and item.get("type") == "plotly")


def api_client(url: str):
    """A gradio_client Client for the app's public /analyze endpoint."""
    from gradio_client import Client

    return Client(url, verbose=False)


# ---------------------------------------------------------------- section: start-up


def bench_startup(model: str, cache: Path, workdir: Path, plan: Plan) -> tuple[dict, Server]:
    """Process start to the first served analysis: cold (an empty weight cache) and warm (`cache`, filled;
    the median of `plan.warm_starts` starts), and where the time goes (a probe process, run between the
    two); returns the last warm server, running."""
    out = {"cold": _first_analysis(Server(model, workdir / "cold-cache", workdir / "server-cold.log"), keep=False)[0]}
    try:
        out["breakdown"] = run_probe("startup_probe", model, str(cache), str(workdir / "probe-cache"))
    except Exception as err:  # noqa: BLE001 - a failed probe leaves the other figures standing
        out["breakdown"] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    starts, server = [], None
    for i in range(max(1, plan.warm_starts)):
        last = i == max(1, plan.warm_starts) - 1
        result, server = _first_analysis(Server(model, cache, workdir / f"server-warm-{i}.log"), keep=last)
        starts.append(result)
    out["warm"] = _warm_summary(starts)
    return out, server


def _warm_summary(starts: list[dict]) -> dict:
    """Median seconds to listening and to the first analysis over several warm starts, with their spread."""
    first = [s["first_analysis_s"] for s in starts]
    ok = all(s["ok"] for s in starts)
    return {"first_analysis_s": statistics.median(first), "listening_s": statistics.median(s["listening_s"] for s in starts),
            "first_analysis_spread": spread(first), "starts": starts, "ok": ok,
            "error": next((s["error"] for s in starts if not s["ok"]), ""), "target_s": TARGETS["warm_start_s"],
            "met": ok and statistics.median(first) <= TARGETS["warm_start_s"]}


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
    result = {"first_analysis_s": time.perf_counter() - server.started, "listening_s": listening,
              "ok": reply.ok, "error": reply.error}
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
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    lap("launch_server_s")
    demo.close()
    os.environ["VISUALIZER_CACHE"] = cache
    marks.update(_load_phases(model, Path(cache), Path(scratch)))
    return marks


def _load_phases(model: str, cache: Path, scratch: Path) -> dict:
    """Warm: tokenizer and weights as the server reads them (from the weight cache, or the model's directory),
    then the first analysis; cold (bundled GGUF only): tokenizer from GGUF, dequantizing and writing the cache."""
    import importlib

    from . import loading
    from .analysis import analyze

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
    """Run `visualizer.bench.<name>(*args)` in a fresh interpreter; its JSON result (last stdout line)."""
    code = f"import json, sys; from visualizer import bench; print(json.dumps(bench.{name}(*sys.argv[1:])))"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- section: end to end


def bench_e2e(lm, server: Server, plan: Plan) -> dict:
    """A request through the app (API via gradio_client, and the page's own event) over the bare forward pass."""
    api, page = api_client(server.url), PageClient(server.url)
    out: dict = {"lengths": {}, "payload": {}}
    for n in _fit(lm, plan.e2e_lengths):
        text = text_of_tokens(lm.tokenizer, n)
        forward, _ = forward_fn(lm, text)
        t = paired({"forward": forward, "api": lambda: api.predict(text, api_name="/analyze"),
                    "page": lambda: _checked(page.analyze(text))}, plan.e2e_repeats)
        out["lengths"][str(n)] = {
            "forward_s": spread(t["forward"]), "api_s": spread(t["api"]), "page_s": spread(t["page"]),
            "api_added_s": spread([a - f for a, f in zip(t["api"], t["forward"])]),
            "page_added_s": spread([p - f for p, f in zip(t["page"], t["forward"])]),
            "target_added_s": TARGETS["e2e_added_s"] if n == min(plan.e2e_lengths) else None,
        }
    for n in _fit(lm, plan.payload_lengths):
        out["payload"][str(n)] = _payload(lm, page, api, text_of_tokens(lm.tokenizer, n))
    short = out["lengths"][str(_fit(lm, plan.e2e_lengths)[0])]
    short["met"] = short["api_added_s"]["median"] <= TARGETS["e2e_added_s"]
    page.close()
    return out


def _checked(reply: Reply) -> Reply:
    """The reply, or an error when the page reported a failure."""
    if not reply.ok:
        raise RuntimeError(f"page request failed: {reply.error}")
    return reply


def _payload(lm, page: PageClient, api, text: str) -> dict:
    """Bytes the page receives for one analysis: the figures' JSON as received and as built in-process."""
    from .analysis import analyze
    from .service import build_views

    reply = _checked(page.analyze(text))
    views = build_views(analyze(text, lm, top_k=10))
    built = sum(len(getattr(views, f).to_json()) for f in ("token_strip", "top_k", "sentence_vocab", "loss", "detail"))
    api_bytes = len(json.dumps(api.predict(text, api_name="/analyze"), ensure_ascii=False))
    return {"figures_kb": reply.figure_bytes / 1000, "figures_built_kb": built / 1000,
            "stream_kb": reply.stream_bytes / 1000, "api_json_kb": api_bytes / 1000,
            "target_kb": TARGETS["payload_kb"], "met": reply.figure_bytes / 1000 <= TARGETS["payload_kb"]}


# ---------------------------------------------------------------- sections: load and memory


def run_clients(url: str, texts: list[str], clients: int, requests: int, seconds: float) -> dict:
    """`clients` new page sessions, each sending `requests` analyses back to back; rate, latency, errors."""
    import httpx

    config = httpx.get(f"{url}/config", timeout=30).json()
    pages = [PageClient(url, config) for _ in range(clients)]
    start = time.perf_counter()
    replies = _requests(pages, texts, requests, seconds)
    wall = time.perf_counter() - start
    for page in pages:
        page.close()
    return _load_result(replies, wall, clients * requests)


def _load_result(replies: list[Reply], wall: float, planned: int) -> dict:
    """Requests per second, p50/p95 latency and the errors of one load run."""
    ok = [r.seconds for r in replies if r.ok]
    errors = [r.error for r in replies if not r.ok]
    return {"requests": len(replies), "planned": planned, "errors": len(errors), "first_error": errors[0] if errors else "",
            "wall_s": wall, "rps": len(ok) / wall, "p50_s": percentile(ok, 50) if ok else None,
            "p95_s": percentile(ok, 95) if ok else None, "max_s": max(ok, default=None)}


def bench_load(lm, server: Server, plan: Plan) -> dict:
    """One client alone, then `plan.clients` at once, against the same server."""
    texts = texts_of_tokens(lm.tokenizer, min(plan.load_tokens, lm.max_context), 40)
    single = run_clients(server.url, texts, 1, plan.requests, plan.section_seconds)
    many = run_clients(server.url, texts, plan.clients, plan.requests, plan.section_seconds)
    batching = bench_batching(lm, texts[: plan.clients], plan.prefix_repeats)
    throughput = many["rps"] / single["rps"] if single["rps"] else None
    tail = many["p95_s"] / single["p50_s"] if single["p50_s"] and many["p95_s"] else None
    met = (many["errors"] == single["errors"] == 0 and many["requests"] == many["planned"]
           and throughput is not None and throughput >= TARGETS["load_throughput_ratio"]
           and tail is not None and tail <= TARGETS["load_p95_over_single_p50"])
    return {"single": single, "concurrent": many, "clients": plan.clients, "tokens": plan.load_tokens,
            "throughput_ratio": throughput, "p95_over_single_p50": tail, "met": met, "batching": batching}


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
    return {"texts": len(texts), "one_by_one_s": spread(t["one_by_one"]), "batched_s": spread(t["batched"]),
            "speedup": spread(ratios(t["one_by_one"], t["batched"]))}


def bench_memory(lm, server: Server, plan: Plan) -> dict:
    """Peak RSS of the server, and its growth over `plan.memory_requests` requests from a few long-lived
    sessions (as a class working for a while), counted from a warm-up of their first requests."""
    texts = texts_of_tokens(lm.tokenizer, min(plan.load_tokens, lm.max_context), 40)
    pages = [PageClient(server.url) for _ in range(MEMORY_CLIENTS)]
    replies = _requests(pages, texts, 5, plan.section_seconds)  # each session's first requests: the warm-up
    steps = [(0, server.rss())]
    for _ in range(2):
        batch = _requests(pages, texts, -(-plan.memory_requests // (2 * len(pages))), plan.section_seconds / 2)
        steps.append((steps[-1][0] + len(batch), server.rss()))
        replies += batch
    for page in pages:
        page.close()
    peak, growth = server.peak_rss() / MB, (steps[-1][1] - steps[0][1]) / MB
    return {"peak_rss_mb": peak, "baseline_rss_mb": steps[0][1] / MB, "growth_mb": growth, "requests": steps[-1][0],
            "sessions": len(pages), "errors": sum(not r.ok for r in replies),
            "rss_mb_after_requests": {str(n): rss / MB for n, rss in steps},
            "target_peak_mb": TARGETS["peak_rss_mb"], "target_growth_mb": TARGETS["rss_growth_mb"],
            "met": peak <= TARGETS["peak_rss_mb"] and growth <= TARGETS["rss_growth_mb"]}


def _requests(pages: list[PageClient], texts: list[str], each: int, seconds: float) -> list[Reply]:
    """`each` requests from every page client at once (bounded by `seconds`); their replies."""
    deadline = time.perf_counter() + seconds

    def one(c: int) -> list[Reply]:
        return [pages[c].analyze(texts[(c * each + r) % len(texts)]) for r in range(each)
                if time.perf_counter() < deadline]

    with ThreadPoolExecutor(len(pages)) as pool:
        return [reply for batch in pool.map(one, range(len(pages))) for reply in batch]


# ---------------------------------------------------------------- section: long text


def long_probe(model: str, tokens: str) -> dict:
    """In a fresh process: analyse a long text; its time and peak memory beside the bare forward pass."""
    import torch

    from .analysis import analyze
    from .loading import load_model

    lm = load_model(model)
    n = min(int(tokens), lm.max_context)
    text = text_of_tokens(lm.tokenizer, n)
    forward, _ = forward_fn(lm, text)
    analyze(text_of_tokens(lm.tokenizer, 16), lm)  # warm-up on a short text
    out = {"tokens": n, "vocab": lm.model.config.vocab_size, "rss_model_mb": _rss() / MB,
           "full_logits_mb": n * lm.model.config.vocab_size * 4 / MB, "device": str(lm.device)}
    for name, fn in (("analyze", lambda: out.__setitem__("result", analyze(text, lm, top_k=10))), ("forward", forward)):
        _reset_peak()
        out[f"{name}_s"] = timed(fn)
        out[f"{name}_peak_rss_mb"] = (vm_hwm(os.getpid()) or _rss()) / MB
        if torch.cuda.is_available():
            out[f"{name}_peak_gpu_mb"] = torch.cuda.max_memory_allocated() / MB
    result = out.pop("result")
    out["result_holds_vocab_rows"] = holds_vocab_rows(result, lm.model.config.vocab_size)
    out["ratio"] = out["analyze_s"] / out["forward_s"]
    out["analyze_extra_mb"] = out["analyze_peak_rss_mb"] - out["rss_model_mb"]
    out["forward_extra_mb"] = out["forward_peak_rss_mb"] - out["rss_model_mb"]
    out["extra_peak_over_forward_mb"] = out["analyze_peak_rss_mb"] - out["forward_peak_rss_mb"]
    return out


def holds_vocab_rows(result, vocab_size: int) -> bool:
    """Whether an analysis keeps any tensor or array as wide as the vocabulary (full-size logits)."""
    import numpy as np
    import torch

    held = [*vars(result).values(), *vars(result.arrays).values(), *vars(result.vocab).values()]
    if result.top_k >= vocab_size:  # a top-K as wide as a (toy) vocabulary was asked for
        held = [v for v in held if v is not result.arrays.top_p and v is not result.arrays.top_ids]
    return any(isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim and v.shape[-1] >= vocab_size for v in held)


def _rss() -> int:
    """This process's resident set size, bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> None:
    """Start a new peak-memory window: Linux clear_refs for VmHWM, and CUDA's peak counter."""
    import torch

    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def bench_long(model: str, plan: Plan) -> dict:
    """The long-text probe in its own process, so its peak memory is its own."""
    out = run_probe("long_probe", model, str(plan.long_tokens))
    out["met"] = not out["result_holds_vocab_rows"]
    return out


# ---------------------------------------------------------------- run, table, JSON


def machine() -> dict:
    """Where the numbers came from."""
    import torch

    from .loading import pick_device

    device = pick_device()
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": str(device),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run(sections: list[str], model: str, plan: Plan, workdir: Path) -> dict:
    """Run the chosen sections in order; one section's failure is recorded and the others still run."""
    from .loading import load_model

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
        add(f"API request - forward, {n} tokens", r["api_added_s"]["median"], f"<= {target}" if target else "-",
            r.get("met"), "s")
        add(f"page request - forward, {n} tokens", r["page_added_s"]["median"], "-", None, "s")
    for n, r in e2e.get("payload", {}).items():
        add(f"figures' JSON received, {n} tokens", r["figures_kb"], f"<= {r['target_kb']}" if n == max(e2e["payload"], key=int) else "-",
            r["met"] if n == max(e2e["payload"], key=int) else None, "KB")
    start = results.get("startup") or {}
    if "warm" in start:
        add("start to first analysis, cold cache", start["cold"]["first_analysis_s"], "-", None, "s")
        add(f"start to first analysis, warm cache (median of {len(start['warm']['starts'])})",
            start["warm"]["first_analysis_s"], f"<= {start['warm']['target_s']}", start["warm"]["met"], "s")
    load = results.get("load") or {}
    if "single" in load:
        add(f"throughput, {load['clients']} clients / 1 client", load["throughput_ratio"], ">= 1.0",
            load["throughput_ratio"] >= TARGETS["load_throughput_ratio"], "x")
        add(f"p95 with {load['clients']} clients / single p50", load["p95_over_single_p50"], "<= 16",
            load["p95_over_single_p50"] <= TARGETS["load_p95_over_single_p50"], "x")
        add("errors under load", load["concurrent"]["errors"], "0", load["concurrent"]["errors"] == 0)
    mem = results.get("memory") or {}
    if "peak_rss_mb" in mem:
        add("server peak RSS", mem["peak_rss_mb"], f"<= {mem['target_peak_mb']}", mem["peak_rss_mb"] <= mem["target_peak_mb"], "MB")
        add(f"RSS growth over {mem['requests']} requests", mem["growth_mb"], f"<= {mem['target_growth_mb']}",
            mem["growth_mb"] <= mem["target_growth_mb"], "MB")
    long = results.get("long") or {}
    if "tokens" in long:
        add(f"{long['tokens']}-token text: analyze time", long["analyze_s"], "completes", True, "s")
        add(f"{long['tokens']}-token text: peak RSS", long["analyze_peak_rss_mb"], "no OOM", True, "MB")
        add(f"{long['tokens']}-token text: logits kept in result", int(long["result_holds_vocab_rows"]), "0", long["met"])
    return rows


def table(results: dict) -> str:
    """The verdicts as a plain-text table, then any section errors."""
    rows = results["verdicts"]
    lines = [f"{'figure':<58} {'value':>12} {'target':>11}  met"]
    for r in rows:
        value = r["value"]
        shown = "n/a" if value is None else f"{value:.3f}{r['unit']}" if isinstance(value, float) else f"{value}{r['unit']}"
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
    parser.add_argument("--out", default="bench-results/bench.json", help="where to write the JSON (default %(default)s)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS))
    parser.add_argument("--model", help="model to measure (default: the bundled one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 0 when it ran (targets missed are data, not errors)."""
    from .settings import Settings

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
    results.update(command="python -m visualizer.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                   mode="quick" if args.quick else "full", seconds=time.time() - started,
                   date=time.strftime("%Y-%m-%d %H:%M:%S %z"))
    results["verdicts"] = verdicts(results)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
