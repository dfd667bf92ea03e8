"""One way through (issue 15): a page request tokenizes its text once and runs one forward pass.

The text's ids are made at the top of the request and travel with it, to the token budget, the
masking and the analysis; nothing on the way encodes the text again: not through the page's handlers
(picks held across an edit, a marker that changes the labels), nor for each model of a comparison.
"""

from __future__ import annotations

import gradio as gr
import pytest

from visualizer.model.loading import load_model
from visualizer.service.labels import MaskChoice, already_shown, page_analysis, page_mask
from visualizer.service.page import analysis_contract
from visualizer.settings import Settings

TEXT = "Question: does the dog like food? Answer: the dog likes food"

MASKS = {
    "none": MaskChoice(),
    "first N tokens": MaskChoice("first N tokens", first_n=3),
    "up to a marker": MaskChoice("up to a marker", marker="Answer:"),
    "marker not typed yet": MaskChoice("up to a marker", marker=""),
    "picked tokens": MaskChoice("picked tokens", picked=(1, 4)),
}


@pytest.fixture
def settings(tiny_gpt2_dir):
    return Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))


@pytest.fixture
def calls(settings, monkeypatch):
    """How often the model's tokenizer was called and the model run, from when it is asked for."""
    lm = load_model(settings.model)
    counted = {"tokenizer": 0, "forward": 0}
    tokenizer_type = type(lm.tokenizer)
    call = tokenizer_type.__call__

    def counting_call(self, *args, **kwargs):
        counted["tokenizer"] += 1
        return call(self, *args, **kwargs)

    monkeypatch.setattr(tokenizer_type, "__call__", counting_call)
    hook = lm.model.register_forward_hook(lambda *_: counted.update(forward=counted["forward"] + 1))
    yield counted
    hook.remove()


@pytest.mark.parametrize("bos", [False, True], ids=["plain", "bos"])
@pytest.mark.parametrize("mode", MASKS)
def test_a_page_request_tokenizes_once_and_runs_one_forward_pass(settings, calls, mode, bos):
    analysis, views = page_analysis(TEXT, settings, settings.model, MASKS[mode], bos=bos, top_k=5)
    assert calls == {"tokenizer": 1, "forward": 1}
    assert analysis.bos == bos and views.summary.startswith(analysis.model)


@pytest.mark.parametrize("mode", MASKS)
def test_the_page_masking_controls_then_the_request_tokenize_once_for_the_text_shown(settings, calls, mode):
    held, _ = page_analysis(TEXT, settings, settings.model, MASKS["picked tokens"])
    calls.update(tokenizer=0, forward=0)
    choice = MASKS[mode]
    mask = page_mask(
        held, TEXT, settings, settings.model, False, None, choice.mode, choice.first_n, choice.marker, (1, 4)
    )
    assert mask.picked == (1, 4)  # the same text: every pick still names its token
    page_analysis(TEXT, settings, settings.model, mask)
    assert calls == {"tokenizer": 1, "forward": 1}


@pytest.mark.parametrize("mode", MASKS)
def test_asking_whether_the_page_already_shows_it_reads_the_held_ids(settings, calls, mode):
    held, _ = page_analysis(TEXT, settings, settings.model, MASKS[mode])
    calls.update(tokenizer=0, forward=0)
    assert already_shown(held, TEXT, settings, settings.model, MASKS[mode])
    assert calls == {"tokenizer": int(MASKS[mode].needs_offsets), "forward": 0}  # a marker: where tokens start


def test_an_api_request_tokenizes_once_and_runs_one_forward_pass(settings, calls):
    answer = analysis_contract(TEXT, settings, top_k=3, bos=True, mask_first=2)
    assert calls == {"tokenizer": 1, "forward": 1}
    assert answer["labels"][:2] == [-100, -100]


# ---------------------------------------------------------------- through the page's handlers


EDITED = TEXT.replace("likes food", "likes fish")
QUIET = dict(request=type("Request", (), {"session_hash": "one-way"})(), progress=lambda *a, **k: None)


def _handlers(settings):
    from visualizer.ui import analysis_tabs

    return analysis_tabs.make_analysis_handlers(settings)


def _controls(settings, choice: MaskChoice, picked=(1, 4)) -> list:
    """The page's inputs after the text: model, top-K, BOS, colour, classroom, then the masking controls."""
    return [settings.model, 5, False, "probability", False, choice.mode, choice.first_n, choice.marker, list(picked)]


@pytest.mark.parametrize("handler", ["analyze_page", "analyze_if_changed"])
@pytest.mark.parametrize("mode", MASKS)
def test_an_edited_text_with_picks_held_tokenizes_once_through_the_page(settings, calls, mode, handler):
    """The picks held are checked against the edited text's tokens, and the analysis reads those same tokens."""
    handlers = _handlers(settings)
    held = handlers.analyze_page(None, TEXT, *_controls(settings, MASKS["picked tokens"]), **QUIET)[0]
    calls.update(tokenizer=0, forward=0)
    outputs = getattr(handlers, handler)(held, EDITED, *_controls(settings, MASKS[mode]), **QUIET)
    assert outputs[0].text == EDITED and "⚠" not in outputs[1]
    assert calls == {"tokenizer": 1, "forward": 1}
    assert outputs[-1].value == [1, 4]  # the edit comes later in the text: both picks still name their tokens


@pytest.mark.parametrize("shown", ["none", "first N tokens", "picked tokens"])
def test_a_marker_that_changes_the_labels_tokenizes_once_through_the_page(settings, calls, shown):
    """Whether the page already shows it needs where the tokens start; the analysis then reads those tokens."""
    handlers = _handlers(settings)
    held = handlers.analyze_page(None, TEXT, *_controls(settings, MASKS[shown]), **QUIET)[0]
    calls.update(tokenizer=0, forward=0)
    outputs = handlers.analyze_if_changed(held, TEXT, *_controls(settings, MASKS["up to a marker"]), **QUIET)
    assert outputs[0].labels != held.labels and outputs[0].labels[0] == -100
    assert calls == {"tokenizer": 1, "forward": 1}


@pytest.mark.parametrize("mode", MASKS)
def test_a_request_the_page_already_shows_tokenizes_only_to_find_where_a_marker_ends(settings, calls, mode):
    handlers = _handlers(settings)
    held = handlers.analyze_page(None, TEXT, *_controls(settings, MASKS[mode]), **QUIET)[0]
    calls.update(tokenizer=0, forward=0)
    skipped = handlers.analyze_if_changed(held, TEXT, *_controls(settings, MASKS[mode]), **QUIET)
    assert all(isinstance(o, type(gr.skip())) for o in skipped)
    assert calls == {"tokenizer": int(MASKS[mode].needs_offsets), "forward": 0}


# ---------------------------------------------------------------- comparing two models


@pytest.mark.parametrize("page_model", ["a", "b"])
@pytest.mark.parametrize("mode", MASKS)
def test_comparing_two_models_encodes_the_text_once_for_each(settings, calls, tiny_llama_dir, mode, page_model):
    """Each model's analysis, carrying the picks over and lining the two up read one encoding of the text; the
    other tokenizer call per model is the offsets mapping that says where its tokens end (`alignment.char_ends`)."""
    from visualizer.service.compare import compare_analyses

    both = Settings(model=settings.model, models=(settings.model, tiny_llama_dir))
    a, b = load_model(settings.model), load_model(tiny_llama_dir)
    assert type(a.tokenizer) is type(b.tokenizer)  # so `calls` counts both models' tokenizer calls
    calls.update(tokenizer=0)
    picked_on = {"a": settings.model, "b": tiny_llama_dir}[page_model]
    compared = compare_analyses(TEXT, both, settings.model, tiny_llama_dir, None, 5, False, MASKS[mode], picked_on)
    assert calls["tokenizer"] == 2 * 2
    masked_a, masked_b = ([i for i, label in enumerate(x.labels) if label == -100] for x in (compared.a, compared.b))
    assert masked_a == masked_b and (mode != "picked tokens" or masked_a == [1, 4])  # one tokenizer: the same tokens
