"""Generation through a real vLLM server: its choices and probabilities against the in-process model's own.

For every step the engine took, the in-process model reads the same ids and the same transformers warpers give
the distribution after the filters; p_model and (where the engine's top K decides it) p must agree.
"""

from __future__ import annotations

import math

import pytest
import torch

from visualizer.analysis.generation import Decoding, Generation, filtered_distributions
from visualizer.model.loading import load_model
from visualizer.service.generation import generate
from visualizer.settings import BUNDLED_MODEL, Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine]

PROMPT = "The capital of France is"
TOL = 1e-4


@pytest.fixture(scope="module")
def engine(vllm_server):
    return load_model(vllm_server.entry)


def _local_step(lm, ids: list[int], dec: Decoding):
    """(p_model, p after the filters, kept count) of the in-process model after `ids`."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float()  # (V,)
    return filtered_distributions(logits, dec.warpers())


def test_greedy_generation_is_the_in_process_models(engine, bundled_lm):
    dec = Decoding(max_new_tokens=8)
    served, local = Generation(engine, PROMPT, dec), Generation(bundled_lm, PROMPT, dec)
    served.run(), local.run()
    assert served.generated_ids == local.generated_ids and served.text == local.text
    for a, b in zip(served.steps, local.steps):
        assert a.p_model == pytest.approx(b.p_model, abs=TOL) and a.p == pytest.approx(b.p, abs=TOL)
        assert a.n_kept == b.n_kept == len(bundled_lm.tokenizer)
        assert [c.token.id for c in a.top[:3]] == [c.token.id for c in b.top[:3]]


@pytest.mark.parametrize(
    "dec",
    [
        Decoding(max_new_tokens=6, temperature=0.8, top_k=20, seed=3),
        Decoding(max_new_tokens=6, temperature=1.3, top_k=5, top_p=0.9, seed=7),
        Decoding(max_new_tokens=6, temperature=1.0, top_p=0.8, seed=11),
    ],
)
def test_sampled_steps_record_the_filtered_distribution_the_token_came_from(engine, bundled_lm, dec):
    gen = Generation(engine, PROMPT, dec)
    gen.run()
    known = 0
    for step in gen.steps:
        ids = gen.ids[: len(gen.prompt_ids) + step.index]
        p_model, p, kept = _local_step(bundled_lm, ids, dec)
        assert step.p_model == pytest.approx(float(p_model[step.token.id]), abs=TOL)
        assert bool(kept[step.token.id])  # the engine never chose a token the filters drop
        if not math.isnan(step.p):
            known += 1
            assert step.p == pytest.approx(float(p[step.token.id]), abs=TOL)
            assert step.n_kept == int(kept.sum())
    assert known >= 1
    again = Generation(engine, PROMPT, dec)
    again.run()
    assert again.generated_ids == gen.generated_ids  # the seed repeats the run


def test_a_temperature_the_top_k_cannot_decide_leaves_p_unknown_not_guessed(engine, bundled_lm):
    gen = Generation(engine, PROMPT, Decoding(max_new_tokens=2, temperature=0.7, seed=1))
    gen.run()
    assert all(math.isnan(s.p) and s.n_kept is None for s in gen.steps)
    assert all(s.p_model > 0 for s in gen.steps)


def test_the_generate_api_and_its_teacher_forcing_run_on_the_engine(vllm_server):
    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry))
    result = generate(PROMPT, settings, vllm_server.entry, 4, None, None, None, None, 5, False)
    local = generate(PROMPT, settings, BUNDLED_MODEL, 4, None, None, None, None, 5, False)
    assert result["text"] == local["text"] and len(result["steps"]) == 4
    assert [s["p_model"] for s in result["steps"]] == pytest.approx([s["p_model"] for s in local["steps"]], abs=TOL)
