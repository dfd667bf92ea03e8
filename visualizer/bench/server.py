"""The app under test in a subprocess, and clients that speak the page's queue protocol and the API."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from .measure import ROOT


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

    def __init__(self, model: str, cache: Path, log: Path, models: tuple[str, ...] = (), root: Path = ROOT):
        """`model` the page's default; `models` what else it offers (VISUALIZER_MODELS), `model` alone by default;
        `root` the checkout whose app.py runs (another one: a before/after comparison in one run)."""
        self.port, self.log, self.root = free_port(), log, root
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "VISUALIZER_CACHE": str(cache),
            "VISUALIZER_MODEL": model,
            "VISUALIZER_MODELS": ",".join(dict.fromkeys((model, *models))),
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()

    def start(self) -> Server:
        """Launch the process and begin sampling its RSS (the clock for start-up starts here)."""
        self.started = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.root / "app.py")],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    @property
    def process(self) -> subprocess.Popen:
        """The app's process (once started)."""
        if self.proc is None:
            raise RuntimeError("the app was not started")
        return self.proc

    def wait_ready(self, timeout: float) -> float:
        """Seconds from start until the app serves its config."""
        import httpx

        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with status {self.process.returncode}; see {self.log}")
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

        return psutil.Process(self.process.pid).memory_info().rss

    def peak_rss(self) -> int:
        """The process's peak RSS so far: VmHWM where Linux gives it, else the sampled maximum."""
        hwm = vm_hwm(self.process.pid)
        sampled = max((rss for _, rss in self.samples), default=0)
        return max(hwm or 0, sampled)

    def _sample(self) -> None:
        """Record (seconds since start, RSS) four times a second until stopped."""
        while not self._stop.is_set() and self.process.poll() is None:
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

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


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
    follow_bytes: int = 0
    """Characters of the figures' JSON the page's follow-up brought (the open tab's figures after its lead one)."""


class PageClient:
    """The browser's own protocol for the Analyze button: join the queue, read the event stream.

    The page's handler is not part of the public API (gradio_client cannot call it); this does
    what the page's JavaScript does, so the bytes counted are the bytes a browser receives.
    """

    def __init__(
        self,
        url: str,
        config: dict | None = None,
        timeout: float = 300,
        model: str | None = None,
        view: str | None = "Predictions",
    ):
        """A new page session on the app at `url`; its analyses use `model` (one the app offers), else the page's
        default. `view`: the tab opened first, as a reader does: the page draws the figures of the tab shown
        (None: the first tab, the Lesson, where an analysis draws none of them)."""
        import httpx

        self.url, self.http = url, httpx.Client(timeout=timeout)
        self.config = config or self.http.get(f"{url}/config").json()
        self.prefix = self.config.get("api_prefix", "/gradio_api")
        self.fn_index, self.trigger, self.defaults, self.text_at, model_at = analyze_event(self.config)
        if model is not None:
            self.defaults[model_at] = model
        self.session = uuid.uuid4().hex[:12]
        if view is not None:
            self.open_view(view)

    def open_view(self, name: str) -> None:
        """Select the tab `name` in this session, as a click on it does (the page's `track_tab` event); an app
        without that event (before it drew only the tab shown) is left as it is."""
        found = self._event("track_tab")
        if found is None:
            return
        tabs = [c for c in self.config["components"] if c.get("props", {}).get("label") == name]
        index = next((c.get("props", {}).get("id") for c in tabs), None)
        self._run(found, [], {"index": index, "value": name, "selected": True})

    def analyze(self, text: str, follow: bool = False) -> Reply:
        """Run the page's analysis of `text` and wait for its result (its time is to the open tab's lead figure).
        `follow`: then ask for the open tab's other figures as the page does once the analysis arrives."""
        data = list(self.defaults)
        data[self.text_at] = text
        body = {
            "data": data,
            "fn_index": self.fn_index,
            "trigger_id": self.trigger,
            "session_hash": self.session,
            "event_data": None,
        }
        start = time.perf_counter()
        try:
            joined = self.http.post(f"{self.url}{self.prefix}/queue/join", json=body)
            joined.raise_for_status()
            reply = self._result(joined.json()["event_id"], start)
            return replace(reply, follow_bytes=self._follow_up()) if follow and reply.ok else reply
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
                    msg = json.loads(raw.decode()[len("data:") :]) if raw.startswith(b"data:") else {}
                    if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                        seconds = time.perf_counter() - start
                        output = msg.get("output") or {}
                        ok = bool(msg.get("success")) and not str(_summary(output)).startswith("⚠")
                        return Reply(
                            seconds, ok, size, figure_bytes(output.get("data") or []), "" if ok else str(output)[:300]
                        )
        raise RuntimeError("the event stream ended without a result")

    def _follow_up(self) -> int:
        """Figure characters of the page's `draw_tab` event, which runs when the held analysis changes (no forward
        pass); 0 for an app without it. The held analysis and the open tab are this session's state on the server."""
        found = self._event("draw_tab")
        if found is None:
            return 0
        values = {c["id"]: c.get("props", {}).get("value") for c in self.config["components"]}
        return figure_bytes(self._run(found, [values.get(i) for i in found["inputs"]], None).get("data") or [])

    def _event(self, api_name: str) -> dict | None:
        """The page's event named `api_name` with a trigger, from the app's config; None when it has none."""
        return next(
            (d for d in self.config["dependencies"] if d.get("api_name") == api_name and d.get("targets")), None
        )

    def _run(self, event: dict, data: list, event_data: dict | None) -> dict:
        """Run `event` in this session outside the queue (`/run/predict`, as the page's unqueued events run) and
        return its JSON answer; an HTTP error is raised."""
        body = {
            "data": data,
            "fn_index": event.get("id"),
            "trigger_id": event["targets"][0][0],
            "session_hash": self.session,
            "event_data": event_data,
        }
        answer = self.http.post(f"{self.url}{self.prefix}/run/predict", json=body)
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()


def analyze_event(config: dict) -> tuple[int, int, list, int, int]:
    """(fn_index, trigger id, default input values, index of the text input, index of the model input) of the
    Analyze button's click."""
    components = {c["id"]: c for c in config["components"]}
    by_elem = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    button, text, model = by_elem.get("analyze-button"), by_elem.get("text-input"), by_elem.get("model")
    if button is None:
        raise RuntimeError("the app has no 'analyze-button'")
    for i, dep in enumerate(config["dependencies"]):
        inputs = dep["inputs"]
        if [button, "click"] in [list(t) for t in dep.get("targets", [])] and text in inputs and model in inputs:
            defaults = [components[c].get("props", {}).get("value") for c in inputs]
            return int(dep.get("id", i)), int(button), defaults, inputs.index(text), inputs.index(model)
    raise RuntimeError("the app has no 'analyze-button' click event taking 'text-input' and 'model'")


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
