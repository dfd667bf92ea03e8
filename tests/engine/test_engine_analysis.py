"""The analysis through a real vLLM server equals the in-process analysis of the same weights.

The server (tests/engine/conftest.py) serves the bundled model's exported weights in fp32; every number the
engine gives is checked against the in-process model's own forward pass, and every number it cannot give is
checked to be said so (null, NaN with its bound), never made up.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from visualizer.analysis.engine_pass import BOUNDED_TABLE_NOTICE, EXACT_TABLE_MAX_TOKENS, probe_tokens
from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError, ModelLoadError
from visualizer.model.engine import EngineError, EngineModel
from visualizer.model.loading import load_model
from visualizer.model.tokens import TokenDecoder
from visualizer.service.compare import compare_analyses
from visualizer.service.lesson import lesson_view
from visualizer.service.page import analysis_contract, build_views, run_analysis
from visualizer.settings import BUNDLED_MODEL, Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine]

TEXTS = [
    "the dog likes food",
    "The capital of France is Paris, and the capital of Japan is Tokyo.",
    "café naïve 日本語 😀 emoji",
    "<b>bold</b> &amp; %{x} <script>alert(1)</script>",
    "def add(a, b):\n\treturn a + b\n",
    "Le chat dort sur le canapé parce qu'il fait chaud.",
    "3.14159 is pi; 2+2=4, and 10/4 = 2.5",
    "She said: «yes», then — after a pause — “no”.",
]
LOGP_TOL = 1e-4


@pytest.fixture(scope="module")
def engine(vllm_server):
    """The served model, loaded through the app's own registry from its entry."""
    return load_model(vllm_server.entry)


def _same_top(engine_result, local_result, j: int) -> bool:
    """Row j's top-K: the same ids in the same order, except where neighbours' p tie (within LOGP_TOL)."""
    a_ids, b_ids = engine_result.arrays.top_ids[j], local_result.arrays.top_ids[j]
    a_p, b_p = engine_result.arrays.top_p[j], local_result.arrays.top_p[j]
    if not np.allclose(a_p, b_p, atol=LOGP_TOL):
        return False
    return all(x == y or abs(float(p) - float(q)) < LOGP_TOL for x, y, p, q in zip(a_ids, b_ids, a_p, b_p))


@pytest.mark.parametrize("bos", [False, True])
@pytest.mark.parametrize("mask_first", [0, 3])
def test_engine_and_in_process_agree_on_varied_texts(engine, bundled_lm, bos, mask_first):
    positions = 0
    for text in TEXTS:
        served = analyze(text, engine, top_k=10, bos=bos, mask_first=mask_first)
        local = analyze(text, bundled_lm, top_k=10, bos=bos, mask_first=mask_first)
        assert served.input_ids == local.input_ids and served.labels == local.labels
        assert np.abs(served.arrays.logp - local.arrays.logp).max() < LOGP_TOL, text
        likely = local.arrays.p_target >= 1e-3
        assert (served.arrays.rank[likely] == local.arrays.rank[likely]).all(), text
        assert all(_same_top(served, local, j) for j in range(len(served.positions))), text
        assert served.counted == local.counted
        if local.loss is None:
            assert served.shown_loss is None
        else:
            assert served.shown_loss == pytest.approx(local.loss, abs=LOGP_TOL)
        positions += len(served.positions)
    assert positions >= 120  # 8 texts, 128 predicted positions without BOS


def test_what_the_engine_cannot_give_is_null_never_made_up(engine):
    served = analyze("the dog likes food", engine, top_k=5)
    assert served.backend == "vllm" and served.loss is None
    assert np.isnan(served.arrays.entropy).all()
    contract = json.loads(served.to_json())
    assert contract["backend"] == "vllm" and contract["loss"] is None
    assert contract["mean_token_loss"] == pytest.approx(served.loss_sum / served.counted)
    assert all(p["entropy"] is None for p in contract["positions"])
    assert any("gives no loss of its own" in n for n in contract["notices"])


def test_a_short_texts_table_is_exact_with_cells_outside_the_top_k_asked_for(engine, bundled_lm):
    text = "the cat likes fish and the dog likes bones"
    served, local = analyze(text, engine, top_k=5), analyze(text, bundled_lm, top_k=5)
    column_ids = np.array([t.id for t in local.vocab.columns])  # (D,)
    outside_top_k = ~(column_ids[None, :, None] == local.arrays.top_ids[:, None, :]).any(-1)  # (n-1, D)
    assert outside_top_k.sum() > 20  # most cells came from the probes, not the first answer
    assert served.vocab.exact and served.vocab.p_bound is None
    np.testing.assert_allclose(served.vocab.p_columns, local.vocab.p_columns, atol=LOGP_TOL, rtol=1e-3)
    np.testing.assert_allclose(served.vocab.p_other, local.vocab.p_other, atol=LOGP_TOL)
    for row in range(len(served.positions)):
        assert served.vocab.crude_loss(row) == pytest.approx(local.vocab.crude_loss(row), abs=1e-3)
    assert not any(n == BOUNDED_TABLE_NOTICE for n in served.notices)


def test_a_long_texts_table_is_exact_in_the_top_k_and_bounded_outside_it(engine, bundled_lm):
    text = TEXTS[1]  # 16 tokens: its unknown cells' prompts hold more than EXACT_TABLE_MAX_TOKENS tokens
    served, local = analyze(text, engine, top_k=5), analyze(text, bundled_lm, top_k=5)
    cells, truth = served.vocab.p_columns, local.vocab.p_columns  # (n-1, D)
    known = ~np.isnan(cells)
    assert known.any() and probe_tokens(np.argwhere(~known).tolist()) > EXACT_TABLE_MAX_TOKENS
    np.testing.assert_allclose(cells[known], truth[known], atol=LOGP_TOL)
    bounds = np.broadcast_to(served.vocab.p_bound[:, None], cells.shape)  # (n-1, D)
    assert (truth[~known] <= bounds[~known] + 1e-6).all()  # what an unknown cell says, "at most p_K", holds
    np.testing.assert_allclose(served.vocab.p_bound, local.arrays.top_p[:, -1], atol=LOGP_TOL)
    for row in range(len(served.positions)):  # the walkthrough's crude loss needs no unknown cell
        assert served.vocab.crude_loss(row) == pytest.approx(local.vocab.crude_loss(row), abs=1e-3)
    assert BOUNDED_TABLE_NOTICE in served.notices


def test_an_api_request_without_the_table_asks_the_engine_once(engine, vllm_server, monkeypatch):
    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry))
    requests: list[int] = []  # each /v1/completions request's number of prompts
    asked = engine.client.completions
    monkeypatch.setattr(
        engine.client, "completions", lambda prompts, **kw: requests.append(len(prompts)) or asked(prompts, **kw)
    )
    text = "the cat likes fish and the dog likes bones"  # a short text: its table would be asked for cell by cell
    lean = analysis_contract(text, settings, model=vllm_server.entry, top_k=3, sentence_vocab=False)
    assert requests == [1] and lean["sentence_vocab"] is None and BOUNDED_TABLE_NOTICE not in lean["notices"]
    full = analysis_contract(text, settings, model=vllm_server.entry, top_k=3)
    assert requests[1] == 1 and requests[2] > 20 and len(requests) == 3  # then one holding every unknown cell
    assert full["sentence_vocab"]
    assert json.dumps(lean["positions"]) == json.dumps(full["positions"])  # the same numbers (entropy NaN in both)


def test_every_view_that_needs_only_these_numbers_draws(engine, vllm_server):
    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry))
    analysis = run_analysis("the dog likes food", settings, model=vllm_server.entry, top_k=5)
    views = build_views(analysis, classroom=True)
    assert "mean loss over counted positions" in views.summary
    local = build_views(run_analysis("the dog likes food", settings, model=BUNDLED_MODEL, top_k=5), classroom=True)
    cells = views.sentence_vocab.to_plotly_json()["data"][0]["text"]
    assert cells == local.sentence_vocab.to_plotly_json()["data"][0]["text"]  # a short text's table is exact
    assert views.positions["entropy"].isna().all()
    for step in range(1, 7):
        shown = lesson_view(analysis, step, None, True, settings, lambda: engine)
        assert shown.figure is not None and shown.heading
    contract = analysis_contract("the dog likes food", settings, model=vllm_server.entry, top_k=3)
    assert contract["backend"] == "vllm" and len(contract["positions"][0]["top"]) == 3


def test_views_that_need_the_weights_say_so_in_one_sentence(engine, vllm_server):
    from visualizer.service.batches import run_batch
    from visualizer.service.lens import lens_for
    from visualizer.service.shifts import run_shift

    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry))
    calls = [
        lambda: lens_for("the dog", settings, vllm_server.entry),
        lambda: run_batch("the dog\nthe cat likes", settings, vllm_server.entry, mask_pads=True),
        lambda: run_shift("the dog likes food", settings, vllm_server.entry, "off by one (logit k read as token k)"),
        lambda: lesson_view(
            run_analysis("the dog likes food", settings, model=vllm_server.entry),
            7,
            None,
            False,
            settings,
            lambda: engine,
        ),
    ]
    for call in calls:
        with pytest.raises(ModelLoadError, match="needs the model's weights in this process.*served by vllm"):
            call()


def test_compare_in_process_and_engine_on_the_same_weights_differs_by_about_zero(vllm_server):
    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry))
    compared = compare_analyses("the dog likes food and bones", settings, BUNDLED_MODEL, vllm_server.entry, None)
    assert compared.same_tokens
    diff = compared.b.arrays.logp - compared.a.arrays.logp
    assert np.abs(diff).max() < LOGP_TOL


def test_a_top_k_above_the_servers_max_logprobs_is_its_one_sentence(vllm_server):
    settings = Settings(models=(BUNDLED_MODEL, vllm_server.entry), max_top_k=100)
    with pytest.raises(EngineError, match=r"HTTP 400.*logprobs"):
        run_analysis("the dog likes food", settings, model=vllm_server.entry, top_k=60)


def test_ids_that_disagree_with_the_engine_are_refused(engine, tiny_tokenizer):
    other = EngineModel(engine.name, engine.client, tiny_tokenizer, TokenDecoder(tiny_tokenizer), 2048)
    with pytest.raises(EngineError, match="splits this text differently"):
        analyze("the dog likes food", other)


def test_a_wrong_served_name_is_one_sentence(vllm_server):
    with pytest.raises(EngineError, match=rf"serves '{vllm_server.served_name}', not 'no/such-model'"):
        load_model(f"vllm:{vllm_server.url}/no/such-model")


def test_a_text_past_the_engines_context_is_cut_with_a_notice(engine):
    long_text = " ".join(["word"] * 3000)
    served = analyze(long_text, engine, top_k=1)
    assert len(served.tokens) == engine.max_context == 2047 and served.truncated
    assert math.isfinite(served.shown_loss)


def test_bad_input_is_refused_before_the_engine_is_called(engine):
    with pytest.raises(InputError, match="empty"):
        analyze("   ", engine)
    with pytest.raises(InputError, match="single token"):
        analyze("the", engine)
