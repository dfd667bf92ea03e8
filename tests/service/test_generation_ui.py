"""The Generate and Layers tabs' request functions (tiny models), Gradio's State keeping a value by
reference, and the /generate and /lens API through gradio_client against the bundled model."""

import copy
import dataclasses
import json

import pytest

from tests.served import free_port, serve
from visualizer.analysis.generation import Decoding
from visualizer.analysis.lens import LensUnsupported
from visualizer.cli import main
from visualizer.errors import InputError
from visualizer.service import generation as service_generation
from visualizer.service import lens as service_lens
from visualizer.service import page as service
from visualizer.settings import Settings
from visualizer.views import plotting


@pytest.fixture
def tiny(tiny_lm):
    """Settings offering only the tiny model, and its name."""
    return Settings(model=tiny_lm.name, models=(tiny_lm.name,)), tiny_lm.name


# ---------------------------------------------------------------- reading the controls


def test_page_decoding_reads_off_values_as_off():
    dec = service_generation.page_decoding(20.0, "greedy", 0.7, 0, 1.0, 5.0)
    assert dec == Decoding(20, None, None, None, None)  # greedy reads no temperature or seed; 0 and 1 mean off
    dec = service_generation.page_decoding(8, "sample", 0.7, 40.0, 0.9, None)
    assert dec == Decoding(8, 0.7, 40, 0.9, None)
    with pytest.raises(InputError, match="greedy"):
        service_generation.page_decoding(8, "beam", 1.0, 0, 1.0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": 0}, "new tokens"),
        ({"max_new_tokens": 201}, "new tokens"),
        ({"max_new_tokens": 2.5}, "whole"),
        ({"temperature": 0}, "Temperature"),
        ({"top_k": 0}, "Top-k"),
        ({"top_p": 1.5}, "Top-p"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_are_one_sentence(kwargs, message):
    with pytest.raises(InputError, match=message):
        service_generation.decoding(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": 2.5}, "The number of new tokens must be a whole number, not 2.5."),
        ({"top_k": "3"}, "Top-k must be a whole number, not '3'."),
        ({"seed": True}, "The seed must be a whole number, not True."),
        ({"seed": float("inf")}, "The seed must be a whole number, not inf."),
    ],
)
def test_a_setting_that_is_not_a_whole_number_says_what_came(kwargs, message):
    """The decoding's whole numbers are read by `inputs.whole_number`, with the message they always had."""
    with pytest.raises(InputError) as refused:
        service_generation.decoding(**kwargs)
    assert str(refused.value) == message
    assert service_generation.decoding(8.0, top_k=None, seed=3.0) == Decoding(8, None, None, None, 3)


# ---------------------------------------------------------------- a generation between clicks


def test_clicks_step_the_same_run_until_the_request_changes(tiny):
    settings, name = tiny
    dec = Decoding(max_new_tokens=5, temperature=0.9, seed=2)
    run = service_generation.advance(None, "the dog", settings, name, dec)
    again = service_generation.advance(run, "the dog", settings, name, dec)
    assert again is run and len(run.generation.steps) == 2
    other = service_generation.advance(run, "the cat", settings, name, dec)
    assert other is not run and len(other.generation.steps) == 1
    done = service_generation.advance(other, "the cat", settings, name, dec, to_end=True)
    assert done is other and done.generation.done
    with pytest.raises(InputError, match="already stopped"):
        service_generation.advance(done, "the cat", settings, name, dec)


def test_stepping_on_the_page_equals_one_api_call(tiny):
    settings, name = tiny
    dec = Decoding(max_new_tokens=6, temperature=1.2, top_k=20, top_p=0.95, seed=7)
    run = None
    for _ in range(3):
        run = service_generation.advance(run, "the dog likes", settings, name, dec)
    run = service_generation.advance(run, "the dog likes", settings, name, dec, to_end=True)
    api = service_generation.generate("the dog likes", settings, name, 6, 1.2, 20, 0.95, 7, candidates=10)
    assert api == run.generation.to_dict()


def test_generate_returns_the_cli_json(tiny, capsys):
    settings, name = tiny
    assert main(["generate", "the dog", "--model", name, "--max-new-tokens", "4", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert service_generation.generate("the dog", settings, name, max_new_tokens=4) == cli


def test_teacher_forcing_runs_once_per_change(tiny, monkeypatch):
    settings, name = tiny
    calls = []
    real = service_generation.teacher_forcing
    monkeypatch.setattr(service_generation, "teacher_forcing", lambda gen: calls.append(1) or real(gen))
    run = service_generation.start_generation("the dog", settings, name, Decoding(max_new_tokens=3))
    assert run.teacher_forced() is None and calls == []
    run.generation.step()
    first = run.teacher_forced()
    assert run.teacher_forced() is first and len(calls) == 1
    run.generation.step()
    assert run.teacher_forced() is not first and len(calls) == 2


def test_generation_views(tiny):
    settings, name = tiny
    run = service_generation.advance(None, "the dog", settings, name, Decoding(max_new_tokens=4), to_end=True)
    views = service_generation.generation_views(run, classroom=True, step=2)
    n = len(run.generation.steps)
    assert views.step_choices == [(f"{s.index + 1}: {s.token.display}", s.index + 1) for s in run.generation.steps]
    assert "Step 2:" in views.step.layout.title.text and views.steps.layout.width == plotting.CLASSROOM.width
    assert len(views.table) == n and f"{n} of 4 new tokens" in views.summary
    assert "Teacher forcing" in views.summary and "greedy" in views.summary
    assert f"Step {n}:" in service_generation.step_figure(run, 99).layout.title.text


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "enter a prompt"), ("   ", "enter a prompt"), ("x" * 20_001, "limit"), (None, "string")],
)
def test_bad_prompts(tiny, prompt, message):
    settings, name = tiny
    with pytest.raises(InputError, match=message):
        service_generation.advance(None, prompt, settings, name, Decoding())


def test_a_model_not_offered_is_refused(tiny):
    settings, _ = tiny
    with pytest.raises(InputError, match="not offered"):
        service_generation.generate("the dog", settings, "gpt2")
    with pytest.raises(InputError, match="not offered"):
        service_lens.lens_for("the dog", settings, "../etc")


# ---------------------------------------------------------------- the lens


def test_lens_is_cached_per_model_text_and_bos(tiny):
    settings, name = tiny
    first = service_lens.lens_for("the dog likes food", settings, name)
    assert service_lens.lens_for("the dog likes food", settings, name) is first
    assert service_lens.lens_for("the dog likes food", settings, name, bos=True) is not first
    fig = service_lens.lens_figure(first, "rank", classroom=True)
    assert fig.data[0].type == "heatmap" and fig.layout.width == plotting.CLASSROOM.width
    assert f"{len(first.tokens)} tokens" in service_lens.lens_summary(first)
    assert "at most 256" in service_lens.lens_summary(first)


def test_lens_reads_at_most_the_cap(tiny, monkeypatch):
    settings, name = tiny
    monkeypatch.setattr(service_lens, "LENS_MAX_TOKENS", 4)
    service_lens._cached_lens.cache_clear()
    lens = service_lens.lens_for("the cat likes fish and the dog likes bones", settings, name)
    service_lens._cached_lens.cache_clear()
    assert len(lens.tokens) == 4 and lens.truncated and "first 4 tokens" in lens.notices[0]


def test_an_unsupported_model_gets_a_message(tiny, tiny_lm, monkeypatch):
    settings, name = tiny
    broken = dataclasses.replace(tiny_lm, model=copy.deepcopy(tiny_lm.model))
    broken.model.get_output_embeddings = lambda: None
    monkeypatch.setattr(service_lens, "load_model", lambda _name: broken)
    service_lens._cached_lens.cache_clear()
    with pytest.raises(LensUnsupported) as err:
        service_lens.lens_for("the dog likes food and bones", settings, name)
    assert "output head" in service.user_message(err.value)


# ---------------------------------------------------------------- Gradio keeps State by reference


@pytest.mark.slow
def test_gradio_state_holds_a_returned_object_by_reference():
    """The app keeps a GenerationRun (model, KV cache) in gr.State: it must not be deep-copied."""
    import gradio as gr
    from gradio_client import Client

    class Uncopyable:
        def __deepcopy__(self, memo):
            raise AssertionError("gr.State deep-copied its value")

    seen = []

    def make():
        thing = Uncopyable()
        seen.append(id(thing))
        return thing, "made"

    def use(thing):
        seen.append(id(thing))
        return thing, "used"

    with gr.Blocks() as demo:
        state, out = gr.State(None), gr.Textbox()
        gr.Button().click(make, None, [state, out], api_name="make")
        gr.Button().click(use, state, [state, out], api_name="use")
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{demo.server_port}", verbose=False)
        assert [client.predict(api_name=a) for a in ("/make", "/use", "/use")] == ["made", "used", "used"]
    finally:
        demo.close()
    assert len(seen) == 3 and len(set(seen)) == 1


# ---------------------------------------------------------------- the app's API


@pytest.fixture(scope="module")
def client(bundled_lm):
    from gradio_client import Client

    with serve(Settings()) as url:
        yield Client(url, verbose=False)


@pytest.mark.slow
def test_api_generate_equals_the_cli_json(client, capsys):
    prompt = "The capital of France is"
    result = client.predict(prompt, max_new_tokens=4, temperature=0.8, top_k=5, top_p=0.9, seed=1, api_name="/generate")
    argv = [
        "generate",
        prompt,
        "--max-new-tokens",
        "4",
        "--temperature",
        "0.8",
        "--top-k",
        "5",
        "--top-p",
        "0.9",
        "--seed",
        "1",
        "--format",
        "json",
    ]
    assert main(argv) == 0
    assert result == json.loads(capsys.readouterr().out)
    assert result["steps"][0]["token"]["text"] == " Paris" and result["decoding"]["seed"] == 1
    greedy = client.predict(prompt, max_new_tokens=2, api_name="/generate")
    assert greedy["decoding"]["greedy"] and len(greedy["steps"]) == 2


@pytest.mark.slow
def test_api_lens_equals_the_cli_json(client, capsys):
    text = "The capital of France is Paris."
    result = client.predict(text, api_name="/lens")
    assert main(["lens", text, "--format", "json"]) == 0
    assert result == json.loads(capsys.readouterr().out)
    assert result["layers"] == 31 and len(result["rows"][0]["cells"]) == len(result["tokens"]) - 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("api", "kwargs", "message"),
    [
        ("/generate", {"prompt": ""}, "empty"),
        ("/generate", {"prompt": "a b", "temperature": 0}, "Temperature"),
        ("/generate", {"prompt": "a b", "max_new_tokens": 500}, "new tokens"),
        ("/generate", {"prompt": "a b", "model": "gpt2"}, "not offered"),
        ("/lens", {"text": "the"}, "single token"),
        ("/lens", {"text": " "}, "empty"),
    ],
)
def test_api_bad_input_gets_a_message(client, api, kwargs, message):
    with pytest.raises(Exception, match=message):
        client.predict(**kwargs, api_name=api)


def test_generation_respects_the_time_limit_and_token_setting(tiny_gpt2_dir):
    slow = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), time_limit_s=0)
    with pytest.raises(InputError, match="time limit"):
        service_generation.generate("the dog", slow, max_new_tokens=5)
    small = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), max_new_tokens=3)
    with pytest.raises(InputError, match="At most 3 new tokens"):
        service_generation.generate("the dog", small, max_new_tokens=4)
    assert len(service_generation.generate("the dog", small, max_new_tokens=3)["steps"]) <= 3
