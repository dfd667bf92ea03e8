"""The engine client's entries, its gate and its faults, against real sockets (no vLLM needed).

A closed port is a port nobody listens on; the HTTP faults (500, malformed JSON, a slow answer, an unknown
served name) come from a small real HTTP server on loopback that answers each path as a test sets it. The
numbers of a real vLLM server are checked in tests/engine/.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from visualizer.errors import InputError, ModelLoadError
from visualizer.model.engine import EngineClient, EngineError, is_engine_entry, load_engine, parse_entry
from visualizer.service.page import get_model
from visualizer.settings import Settings


def test_an_entry_names_a_server_and_a_served_name_that_may_hold_slashes():
    entry = parse_entry("vllm:http://127.0.0.1:8000/meta-llama/Llama-3.1-8B")
    assert (entry.base_url, entry.served_name) == ("http://127.0.0.1:8000", "meta-llama/Llama-3.1-8B")
    assert entry.name == "vllm:http://127.0.0.1:8000/meta-llama/Llama-3.1-8B"
    assert parse_entry("vllm:https://gpu.example:443/m").base_url == "https://gpu.example:443"
    assert parse_entry("vllm:http://[::1]:9/m").base_url == "http://[::1]:9"
    assert is_engine_entry("vllm:http://h:1/m") and not is_engine_entry("HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.mark.parametrize(
    "bad",
    [
        "vllm:127.0.0.1:8000/m",  # no scheme
        "vllm:http://127.0.0.1:8000",  # no served name
        "vllm:http://127.0.0.1:8000/",
        "vllm:ftp://host/m",
        "vllm:http://user:secret@host:1/m",  # credentials belong in VISUALIZER_ENGINE_API_KEY
        "vllm:http://host:1/m?x=1",
        "vllm:http://host:99999/m",
    ],
)
def test_a_malformed_entry_gets_one_sentence_with_the_form(bad):
    with pytest.raises(EngineError, match="vllm:http://HOST:PORT/SERVED_NAME"):
        parse_entry(bad)


class _Answers(BaseHTTPRequestHandler):
    """Answers each path as the server's `answers` say: (status, body bytes, delay s); records every request."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, body, delay = self.server.answers.get(self.path, (404, b'{"error": {"message": "no such path"}}', 0))
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up first (the time-limit test)
            self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def http_server():
    """A loopback HTTP server on a free port; stopped at the end of the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.answers, server.seen = {}, []
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def _models(*names: str) -> bytes:
    return json.dumps({"data": [{"id": n, "root": n, "max_model_len": 64} for n in names]}).encode()


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unconfigured_entry_is_refused_without_calling_it_even_when_any_model_is_allowed(http_server):
    http_server.answers["/v1/models"] = (200, _models("m"), 0)
    entry = f"vllm:{http_server.url}/m"
    for settings in (Settings(), Settings(allow_any_model=True)):
        assert not settings.allows(entry)
        with pytest.raises(InputError, match="not offered here"):
            get_model(entry, settings)
    assert http_server.seen == []
    assert Settings(models=("SmolLM2-135M-Instruct", entry)).allows(entry)
    assert Settings(allow_any_model=True).allows("some/hub-model")  # other names still open with the flag


def test_a_closed_port_is_one_sentence_after_bounded_retries():
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"cannot be reached .*is it running\?") as caught:
        load_engine(f"vllm:http://127.0.0.1:{_closed_port()}/m", timeout_s=5)
    assert time.monotonic() - started < 5  # two retries, 0.5 s and 1 s apart
    assert isinstance(caught.value, ModelLoadError)  # shown as is by the page, exit 2 in the CLI


def test_a_wrong_served_name_says_what_the_server_serves(http_server):
    http_server.answers["/v1/models"] = (200, _models("a/b", "c"), 0)
    with pytest.raises(EngineError, match=r"serves 'a/b', 'c', not 'missing/model'"):
        load_engine(f"vllm:{http_server.url}/missing/model")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b'{"error": {"message": "engine dead"}}', r"failed \(HTTP 500 on /v1/models\): engine dead"),
        (400, b'{"object": "error", "message": "bad\\n request"}', r"refused the request \(HTTP 400.*\): bad request"),
        (200, b"<html>not json</html>", "cannot read: /v1/models did not answer with JSON"),
        (200, b'{"data": "nope"}', "cannot read: /v1/models has no list of models"),
        (200, b"[1, 2]", "did not answer with a JSON object"),
    ],
)
def test_http_errors_and_malformed_answers_are_one_sentence(http_server, status, body, expected):
    http_server.answers["/v1/models"] = (status, body, 0)
    with pytest.raises(EngineError, match=expected):
        load_engine(f"vllm:{http_server.url}/m")


def test_a_503_is_retried_a_bounded_number_of_times(http_server):
    http_server.answers["/v1/models"] = (503, b'{"error": {"message": "loading"}}', 0)
    with pytest.raises(EngineError, match="HTTP 503"):
        load_engine(f"vllm:{http_server.url}/m")
    assert len(http_server.seen) == 3  # the first try and two retries, then the sentence


def test_a_slow_server_is_cut_at_the_time_limit_and_not_retried(http_server):
    http_server.answers["/v1/models"] = (200, _models("m"), 3)
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not answer within 1 s"):
        load_engine(f"vllm:{http_server.url}/m", timeout_s=1)
    assert time.monotonic() - started < 2.5 and len(http_server.seen) == 1


def test_the_api_key_goes_out_as_a_bearer_token_and_never_into_a_message_or_log(http_server, monkeypatch, caplog):
    secret = "sk-test-0123456789"
    monkeypatch.setenv("VISUALIZER_ENGINE_API_KEY", secret)
    http_server.answers["/v1/models"] = (401, b'{"error": {"message": "Unauthorized"}}', 0)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EngineError) as caught:
        load_engine(f"vllm:{http_server.url}/m")
    assert http_server.seen[0][2]["Authorization"] == f"Bearer {secret}"
    assert secret not in str(caught.value) and secret not in caplog.text
    assert "HTTP 401" in str(caught.value)


def test_the_client_ignores_proxy_settings_from_the_environment(http_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{_closed_port()}")
    http_server.answers["/v1/models"] = (200, _models("m"), 0)
    client = EngineClient(parse_entry(f"vllm:{http_server.url}/m"))
    assert client.served_models()[0]["id"] == "m"
