"""One way through (issue 15): a page request tokenizes its text once and runs one forward pass.

The text's ids are made at the top of the request and travel with it, to the token budget, the
masking and the analysis; nothing on the way encodes the text again.
"""

from __future__ import annotations

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
