"""A real vLLM server on this machine, for the engine tests (tests/engine/conftest.py) and the engine benchmark.

`install_vllm()` runs scripts/setup-vllm.sh (vLLM's CPU build in `.venv-vllm`; a no-op once stamped) under a
lock; `vllm_serving(model_dir, workdir)` starts vLLM's OpenAI-compatible server on a free loopback port with
the flags FIELD-NOTES records (fp32, eager, no prefix caching, max-logprobs 50, max-model-len 2048), waits
(bounded) until that server, and not another one, lists the model from `model_dir`, and stops it by its pid
when the block ends: SIGTERM, then SIGKILL to its process group after 20 s; an atexit hook does the same if the
process dies first.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .measure import ROOT
from .server import free_port

SETUP_SCRIPT = ROOT / "scripts" / "setup-vllm.sh"
VLLM_VENV = ROOT / ".venv-vllm"
SERVED_NAME = "smollm2/served"
SETUP_TIMEOUT_S = 1200
"""The first install downloads torch and vLLM (~2 min on these machines); a stamped one takes milliseconds."""
READY_TIMEOUT_S = 240
STOP_WAIT_S = 20
TAIL_LINES = 30


class VllmUnavailable(RuntimeError):
    """vLLM's CPU build cannot be installed or run here; the message says why (the script's last lines)."""


class VllmStartFailed(RuntimeError):
    """The server exited, or was not ready in time; the message holds its log's tail."""


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
    """Seconds spent: 'start' (launch to ready); the caller may add its own ('setup', 'export')."""

    @property
    def entry(self) -> str:
        """The model entry the app's settings take for this server."""
        return f"vllm:{self.url}/{self.served_name}"


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.strip().splitlines()[-lines:])


def install_vllm() -> None:
    """Run scripts/setup-vllm.sh under a lock (one install at a time across sessions); VllmUnavailable where it
    cannot."""
    if sys.platform != "linux" or shutil.which("bash") is None:
        raise VllmUnavailable(f"vLLM's CPU build is installed and run on Linux with bash only (this is {sys.platform})")
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
            raise VllmUnavailable(
                f"scripts/setup-vllm.sh ran past {SETUP_TIMEOUT_S} s; its last lines:\n{tail(stderr)}"
            ) from None
    if done.returncode != 0:
        raise VllmUnavailable(
            f"scripts/setup-vllm.sh failed (exit {done.returncode}), so no vLLM server; its last lines:\n"
            f"{tail(done.stderr or done.stdout)}"
        )


def serve_command(model_dir: Path, port: int, served_name: str = SERVED_NAME) -> list[str]:
    """vLLM's server on 127.0.0.1:`port` for the checkpoint in `model_dir`: fp32 (this process's numbers), eager
    (no graph capture to wait for), no prefix caching (it can change prompt log-probabilities), K up to 50."""
    return [
        str(VLLM_VENV / "bin" / "python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        *("--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)),
        *("--dtype", "float32", "--enforce-eager", "--max-model-len", "2048", "--no-enable-prefix-caching"),
        *("--max-logprobs", "50", "--served-model-name", served_name),
    ]


def server_env(environ: dict[str, str]) -> dict[str, str]:
    """The server's environment: `environ` with a small KV cache and nothing fetched or reported."""
    return dict(
        environ,
        VLLM_CPU_KVCACHE_SPACE="1",  # GiB of KV cache; the default takes a large share of the machine
        HF_HUB_OFFLINE="1",  # a local directory: nothing to fetch
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )


def stop(process: subprocess.Popen) -> None:
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


def is_ours(url: str, model_dir: Path, served_name: str = SERVED_NAME) -> bool:
    """Whether the server at `url` answers and serves `served_name` from `model_dir` (not some other server)."""
    import httpx

    try:
        answer = httpx.get(f"{url}/v1/models", timeout=5)
        models = answer.json()["data"] if answer.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return any(m.get("id") == served_name and m.get("root") == str(model_dir) for m in models)


@contextlib.contextmanager
def vllm_serving(model_dir: Path, workdir: Path, served_name: str = SERVED_NAME) -> Iterator[VllmServer]:
    """The checkpoint in `model_dir` served by vLLM (CPU build, fp32) on 127.0.0.1 while the block runs; its log
    in `workdir`/server.log. VllmStartFailed when it exits or is not ready within READY_TIMEOUT_S."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        # start_new_session: its own process group, stopped as a whole and untouched by the terminal's ^C.
        process = subprocess.Popen(
            serve_command(model_dir, port, served_name),
            cwd=workdir,
            env=server_env(dict(os.environ)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    on_exit = functools.partial(stop, process)  # this server's own hook: unregistering it leaves others'
    atexit.register(on_exit)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not is_ours(url, model_dir, served_name):
            if process.poll() is not None:
                why = f"exited ({process.returncode}) before it was ready"
            elif time.monotonic() > deadline:
                why = f"was not ready after {READY_TIMEOUT_S} s"
            else:
                time.sleep(1)
                continue
            raise VllmStartFailed(
                f"vLLM's server {why}; the tail of {log_path}:\n{tail(log_path.read_text(errors='replace'))}"
            )
        timings = {"start": time.perf_counter() - started}
        yield VllmServer(url, served_name, model_dir, process.pid, log_path, timings)
    finally:
        stop(process)
        atexit.unregister(on_exit)


def vllm_version() -> str | None:
    """The installed vLLM's version (its CPU build's distribution), without importing vLLM."""
    code = (
        "import importlib.metadata as m\n"
        "for name in ('vllm-cpu', 'vllm'):\n"
        "    try:\n        print(m.version(name)); break\n"
        "    except m.PackageNotFoundError:\n        pass"
    )
    try:
        done = subprocess.run(
            [str(VLLM_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
