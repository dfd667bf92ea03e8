"""The app through gradio_client against a launched demo on loopback, with the bundled model."""

import pytest

from served import serve
from visualizer.analysis import analyze
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
