"""A real vLLM server for the engine tests: `vllm_server`, once per session.

It installs vLLM's CPU build into `.venv-vllm` (scripts/setup-vllm.sh: a no-op once stamped; skipped, with the
script's last lines, where the install fails or the platform cannot run it), exports the bundled model as a
standard checkpoint (`visualizer.model.export`), starts vLLM's OpenAI-compatible server on a free loopback port
with the flags FIELD-NOTES records, and waits (bounded) until that server, and not another one, lists the model.
At the end it is stopped by its pid: SIGTERM, then SIGKILL to its process group after 20 s; an atexit hook
does the same if the session dies first.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ROOT / "scripts" / "setup-vllm.sh"
VLLM_VENV = ROOT / ".venv-vllm"
SERVED_NAME = "smollm2/served"
SETUP_TIMEOUT_S = 1200
"""The first install downloads torch and vLLM (~2 min on these machines); a stamped one takes milliseconds."""
READY_TIMEOUT_S = 240
STOP_WAIT_S = 20
TAIL_LINES = 30


@dataclass
class VllmServer:
    """A running vLLM server and where to reach it."""

    url: str
    """'http://127.0.0.1:PORT'."""
    served_name: str
    model_dir: Path
    pid: int
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds the fixture spent: 'setup' (install or its stamp check), 'export', 'start' (launch to ready)."""

    @property
    def entry(self) -> str:
        """The model entry the app's settings take for this server."""
        return f"vllm:{self.url}/{self.served_name}"


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _install_vllm() -> None:
    """Run scripts/setup-vllm.sh under a lock (one install at a time across sessions); skip where it cannot."""
    if sys.platform != "linux" or shutil.which("bash") is None:
        pytest.skip(f"vLLM's CPU build is installed and run on Linux with bash only (this is {sys.platform})")
    VLLM_VENV.mkdir(exist_ok=True)
    with open(VLLM_VENV / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session's install finishes first; then this one is a no-op
        try:
            done = subprocess.run(
                ["bash", str(SETUP_SCRIPT)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=SETUP_TIMEOUT_S,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as err:
            stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or ""
            pytest.skip(f"scripts/setup-vllm.sh ran past {SETUP_TIMEOUT_S} s; its last lines:\n{_tail(stderr)}")
    if done.returncode != 0:
        pytest.skip(
            f"scripts/setup-vllm.sh failed (exit {done.returncode}), so no vLLM server; its last lines:\n"
            f"{_tail(done.stderr or done.stdout)}"
        )


def _free_port() -> int:
    """A port nobody listens on now (the kernel's pick); the readiness check below tells a stranger apart."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server; after STOP_WAIT_S, SIGKILL to its process group (its engine and worker too)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_WAIT_S)
    # The server leads its own session (start_new_session), so its group id is its pid; ProcessLookupError:
    # the group is gone, every process of it has exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        print(f"vLLM's server (pid {process.pid}) did not exit after SIGKILL", file=sys.stderr)


def _ours(url: str, model_dir: Path) -> bool:
    """Whether the server at `url` answers and serves SERVED_NAME from `model_dir` (not some other server)."""
    try:
        answer = httpx.get(f"{url}/v1/models", timeout=5)
        models = answer.json()["data"] if answer.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return any(m.get("id") == SERVED_NAME and m.get("root") == str(model_dir) for m in models)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory, bundled_lm) -> Iterator[VllmServer]:
    """The bundled model served by a real vLLM (CPU, fp32) on 127.0.0.1, for the whole session."""
    from visualizer.model.export import export_checkpoint

    timings: dict[str, float] = {}
    started = time.perf_counter()
    _install_vllm()
    timings["setup"] = time.perf_counter() - started

    tmp = tmp_path_factory.mktemp("vllm")
    model_dir = tmp / "model"
    started = time.perf_counter()
    export_checkpoint(bundled_lm, None, model_dir)
    timings["export"] = time.perf_counter() - started

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp / "server.log"
    command = [
        str(VLLM_VENV / "bin" / "python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        *("--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)),
        *("--dtype", "float32", "--enforce-eager", "--max-model-len", "2048", "--no-enable-prefix-caching"),
        *("--max-logprobs", "50", "--served-model-name", SERVED_NAME),
    ]
    env = dict(
        os.environ,
        VLLM_CPU_KVCACHE_SPACE="1",  # GiB of KV cache; the default takes a large share of the machine
        HF_HUB_OFFLINE="1",  # a local directory: nothing to fetch
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        # start_new_session: its own process group, stopped as a whole and untouched by the terminal's ^C.
        process = subprocess.Popen(
            command,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    atexit.register(_stop, process)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _ours(url, model_dir):
            if process.poll() is not None:
                why = f"exited ({process.returncode}) before it was ready"
            elif time.monotonic() > deadline:
                why = f"was not ready after {READY_TIMEOUT_S} s"
            else:
                time.sleep(1)
                continue
            pytest.fail(f"vLLM's server {why}; the tail of {log_path}:\n{_tail(log_path.read_text(errors='replace'))}")
        timings["start"] = time.perf_counter() - started
        yield VllmServer(url, SERVED_NAME, model_dir, process.pid, log_path, timings)
    finally:
        _stop(process)
        atexit.unregister(_stop)
