"""The app through gradio_client against a launched demo on loopback, with the bundled model."""

import json

import pytest

from tests.model.test_tokens import bytes_of_display
from tests.served import serve
from visualizer.analysis.one_pass import analyze
from visualizer.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(bundled_lm):
    from gradio_client import Client

    with serve(Settings()) as url:
        yield Client(url, verbose=False)


def test_api_returns_the_json_contract(client, bundled_lm):
    result = client.predict("the dog likes food", api_name="/analyze")
    expected = analyze("the dog likes food", bundled_lm).to_dict()
    assert [t["display"] for t in result["tokens"]] == ["the", "␣dog", "␣likes", "␣food"]
    assert result["loss"] == pytest.approx(expected["loss"], abs=1e-6)
    assert [p["context"] for p in result["positions"]] == ["the", "the dog", "the dog likes"]
    assert len(result["positions"][0]["top"]) == 10


def test_api_options(client):
    result = client.predict("the dog likes food", top_k=3, bos=True, mask_first=2, api_name="/analyze")
    assert result["bos"] and len(result["tokens"]) == 5
    assert len(result["positions"][0]["top"]) == 3
    assert result["labels"][:2] == [-100, -100] and result["counted"] == 3


def test_api_can_leave_out_the_walkthrough_table(client):
    full = client.predict("the dog likes food", api_name="/analyze")
    small = client.predict("the dog likes food", sentence_vocab=False, api_name="/analyze")
    assert small["sentence_vocab"] is None and full["sentence_vocab"]["columns"]
    assert {k: v for k, v in small.items() if k != "sentence_vocab"} == {
        k: v for k, v in full.items() if k != "sentence_vocab"
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": ""}, "empty"),
        ({"text": "  \n "}, "empty"),
        ({"text": "the"}, "single token"),
        ({"text": "a b", "top_k": 0}, "Top-K"),
        ({"text": "a b", "top_k": 500}, "Top-K"),
        ({"text": "a b", "model": "gpt2"}, "not offered"),
        ({"text": "a b", "model": "../../etc"}, "not offered"),
        ({"text": "x" * 20_001}, "limit"),
        ({"text": "a b", "top_k": 2.5}, "Top-K"),
        ({"text": "a b", "top_k": -1}, "Top-K"),
        ({"text": "a b", "model": "someone/some-model"}, "not offered"),
        ({"text": "a b", "mask_first": -2}, "mask_first"),
    ],
)
def test_bad_input_gets_a_message_and_the_server_keeps_serving(client, kwargs, message):
    with pytest.raises(Exception, match=message):
        client.predict(**kwargs, api_name="/analyze")
    assert client.predict("the dog likes food", api_name="/analyze")["positions"][2]["k"] == 3


def test_markup_comes_back_as_plain_text(client):
    text = "<b>hi</b> <img src=x onerror=alert(1)>"
    result = client.predict(text, api_name="/analyze")
    assert result["text"] == text
    assert "".join(t["text"] for t in result["tokens"]) == text


@pytest.mark.parametrize(
    "text",
    [
        "I like 😀🎉",
        "日本語のテキスト",
        "שלום עולם مرحبا",
        "e\u0301 a\u0308",
        "a\x00b\x07c",
        "<script>alert(1)</script> %{x} &amp;",
    ],
)
def test_unusual_text_is_analysed_as_typed(client, text):
    result = client.predict(text, api_name="/analyze")
    assert result["text"] == text and result["positions"] and not result["notices"]
    assert b"".join(bytes_of_display(t["display"]) for t in result["tokens"]) == text.encode("utf-8")


@pytest.mark.parametrize(
    "api, kwargs, message",
    [
        ("/generate", {"prompt": ""}, "empty"),
        ("/generate", {"prompt": "hi", "temperature": 0}, "emperature"),
        ("/generate", {"prompt": "hi", "temperature": -1}, "emperature"),
        ("/generate", {"prompt": "hi", "temperature": 1.0, "top_p": 1.5}, "op-p"),
        ("/generate", {"prompt": "hi", "temperature": 1.0, "top_p": 0}, "op-p"),
        ("/generate", {"prompt": "hi", "max_new_tokens": 201}, "new tokens"),
        ("/generate", {"prompt": "hi", "max_new_tokens": 0}, "new tokens"),
        ("/generate", {"prompt": "hi", "model": "../x"}, "not offered"),
        ("/lens", {"text": ""}, "empty"),
        ("/lens", {"text": "hi", "model": "/etc"}, "not offered"),
    ],
)
def test_generate_and_lens_bad_input(client, api, kwargs, message):
    with pytest.raises(Exception, match=message):
        client.predict(**kwargs, api_name=api)
    assert client.predict("The capital of France is", max_new_tokens=2, api_name="/generate")["steps"]


def test_lone_surrogates_and_control_characters_over_raw_http(client):
    """A JSON body may escape a lone surrogate (no client library would send one); the answer is one sentence."""
    import httpx

    base = client.src.rstrip("/")
    for text, expected in [("ab\ud800cd", "not valid Unicode"), ("a\x00b\x1bc d", None)]:
        body = json.dumps({"data": [text, "SmolLM2-135M-Instruct", 10, False, 0, True]}).encode(
            "ascii"
        )  # '\\ud800' escaped in ASCII JSON
        event = httpx.post(
            f"{base}/gradio_api/call/analyze", content=body, headers={"content-type": "application/json"}, timeout=30
        ).json()["event_id"]
        stream = httpx.get(f"{base}/gradio_api/call/analyze/{event}", timeout=60).text
        if expected:
            assert "event: error" in stream and expected in stream and "Traceback" not in stream
        else:
            assert "event: complete" in stream and "\\u0000" in stream
