"""The launched app on loopback with tiny models: settings from the environment, analytics off by the app
itself, the any-model switch, undecodable bytes in a request, and a weight cache deleted while it serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.served import ROOT, free_port, serve
from visualizer.model import loading
from visualizer.settings import Settings

pytestmark = pytest.mark.slow
TEXT = "the dog likes food"


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll the app's config until it answers; fail with its output if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("app.py did not answer in time")


@pytest.fixture
def app_process(tiny_gpt2_dir, tmp_path):
    """`python app.py` as an operator starts it: settings only from VISUALIZER_* variables, and without
    GRADIO_ANALYTICS_ENABLED (which conftest sets for this process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISUALIZER_", "GRADIO_"))}
    env.update(
        VISUALIZER_MODEL=tiny_gpt2_dir,
        VISUALIZER_TOP_K="3",
        VISUALIZER_MAX_CHARS="40",
        VISUALIZER_MAX_TOKENS="6",
        VISUALIZER_CACHE=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
    )
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_app_py_reads_its_settings_from_the_environment_and_turns_analytics_off(app_process, tiny_gpt2_dir):
    from gradio_client import Client

    assert httpx.get(f"{app_process}/config", timeout=10).json()["analytics_enabled"] is False
    client = Client(app_process, verbose=False)
    result = client.predict("the cat likes fish and the dog likes", api_name="/analyze")
    assert result["model"] == tiny_gpt2_dir and result["top_k"] == 3  # VISUALIZER_MODEL and VISUALIZER_TOP_K
    assert {len(p["top"]) for p in result["positions"]} == {3}
    assert len(result["tokens"]) == 6 and result["truncated"]  # VISUALIZER_MAX_TOKENS
    with pytest.raises(Exception, match="limit is 40"):  # VISUALIZER_MAX_CHARS
        client.predict("x" * 41, api_name="/analyze")
    assert client.predict("x" * 40, api_name="/analyze")["positions"]


# ---------------------------------------------------------------- any model, or only the list


def test_an_unlisted_directory_loads_only_with_allow_any_model(tiny_gpt2_dir, tiny_llama_dir, tmp_path):
    from gradio_client import Client

    unlisted = str(shutil.copytree(tiny_llama_dir, tmp_path / "unlisted"))
    listed_only = Settings.from_env({"VISUALIZER_MODEL": tiny_gpt2_dir})
    with serve(listed_only) as url:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="not offered here"):
            client.predict(TEXT, model=unlisted, api_name="/analyze")
        assert not loading.is_loaded(unlisted)
    anything = Settings.from_env({"VISUALIZER_MODEL": tiny_gpt2_dir, "VISUALIZER_ALLOW_ANY_MODEL": "1"})
    with serve(anything) as url:
        client = Client(url, verbose=False)
        assert client.predict(TEXT, model=unlisted, api_name="/analyze")["model"] == unlisted
        for address in ("https://huggingface.co/gpt2", "http://127.0.0.1:1/model", "file:///etc"):
            with pytest.raises(Exception, match="Unknown model") as err:  # never fetched from a URL
                client.predict(TEXT, model=address, api_name="/analyze")
            assert len(str(err.value).splitlines()) == 1
        assert client.predict(TEXT, api_name="/analyze")["positions"]


# ---------------------------------------------------------------- bytes that are not UTF-8


def _call(url: str, body: bytes) -> str:
    """POST a raw body to /analyze's queue; the event stream's text, or the HTTP refusal's."""
    answer = httpx.post(
        f"{url}/gradio_api/call/analyze", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}: {answer.text}"
    event = answer.json()["event_id"]
    return httpx.get(f"{url}/gradio_api/call/analyze/{event}", timeout=60).text


@pytest.mark.parametrize("raw", [b"ab\xff\xfecd", b"caf\xc3", b"\xed\xa0\x80 surrogate as bytes", b"\xc0\xaf"])
def test_undecodable_bytes_get_one_refusal_and_the_server_keeps_serving(tiny_gpt2_dir, raw):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    with serve(settings) as url:
        body = b'{"data": ["' + raw + b'", "' + tiny_gpt2_dir.encode() + b'", 3, false, 0, true]}'
        answer = _call(url, body)
        refused = answer.startswith("HTTP 400: ") and len(answer.splitlines()) == 1  # the body is not JSON text
        explained = answer.startswith("event: error") and "not valid Unicode" in answer  # decoded to a lone surrogate
        assert (refused or explained) and "Traceback" not in answer, answer
        good = json.dumps({"data": [TEXT, tiny_gpt2_dir, 3, False, 0, True]}).encode()
        assert "event: complete" in _call(url, good)


# ---------------------------------------------------------------- the weight cache removed under a running app


@pytest.fixture
def fake_ggufs(tmp_path, tiny_llama_dir, monkeypatch):
    """Two .gguf paths whose 'conversion' yields the tiny Llama, a private cache, and an empty registry."""
    real = loading._from_pretrained
    conversions = []

    def from_pretrained(where, **kwargs):
        if "gguf_file" in kwargs:
            conversions.append(kwargs["gguf_file"])
            return real(tiny_llama_dir)
        return real(where, **kwargs)

    monkeypatch.setattr(loading, "_from_pretrained", from_pretrained)
    monkeypatch.setattr(loading, "_REGISTRY", {})
    monkeypatch.setenv("VISUALIZER_CACHE", str(tmp_path / "cache"))
    paths = []
    for name in ("first.gguf", "second.gguf"):
        (tmp_path / name).write_bytes(b"GGUF stand-in " + name.encode())
        paths.append(str(tmp_path / name))
    return paths, conversions, tmp_path / "cache"


def test_a_cache_deleted_while_the_app_serves(fake_ggufs):
    from gradio_client import Client

    (first, second), conversions, cache = fake_ggufs
    with serve(Settings(model=first, models=(first, second))) as url:
        client = Client(url, verbose=False)
        before = client.predict(TEXT, api_name="/analyze")
        assert conversions == ["first.gguf"] and loading._cache_is_complete(next(cache.iterdir()))
        shutil.rmtree(cache)
        assert client.predict(TEXT, api_name="/analyze")["loss"] == before["loss"]  # the loaded model is unharmed
        assert client.predict(TEXT, model=second, api_name="/analyze")["positions"]  # a new load rebuilds its cache
        assert conversions == ["first.gguf", "second.gguf"]
        loading.forget_models()  # the loaded models dropped: the first must come from its (deleted) cache again
        assert client.predict(TEXT, api_name="/analyze")["loss"] == pytest.approx(before["loss"], abs=1e-6)
        assert conversions == ["first.gguf", "second.gguf", "first.gguf"]
        assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["first", "second"]
        assert all(loading._cache_is_complete(p) for p in cache.iterdir())
        assert loading.load_gguf(Path(first))[2] == "cache"
