"""Shared forward passes: a padded batch gives each text what its own pass gives, the model's loss is
transformers' own, the batcher groups only what overlaps, and the token budget bounds what runs at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from visualizer.analysis import one_pass as analysis
from visualizer.analysis.one_pass import (
    IGNORE_INDEX,
    Request,
    analyze,
    measure_batch,
    measure_one,
    model_loss,
)
from visualizer.errors import InputError
from visualizer.service import batching
from visualizer.service import page as service
from visualizer.service.batching import ForwardBatcher, NewestRequests, TokenBudget
from visualizer.service.memory import release_freed_memory
from visualizer.settings import Settings

TEXTS = ["the dog likes food", "a cat", "the cat likes fish and the dog likes bones every day", "hello there"]


def _request(lm, text: str, top_k: int = 5, masked=()) -> Request:
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return Request(ids, [IGNORE_INDEX if i in masked else t for i, t in enumerate(ids)], top_k)


def _assert_same(a, b) -> None:
    """Two measurements of the same text agree: statistics to float32 noise, ranks and top ids exactly."""
    assert a.stats.keys() == b.stats.keys()
    for name in ("logp", "ent", "top_p", "columns_p", "p"):
        torch.testing.assert_close(a.stats[name], b.stats[name], atol=2e-5, rtol=1e-4)
    for name in ("rank", "top_i"):
        assert torch.equal(a.stats[name], b.stats[name]), name
    assert (a.loss is None) == (b.loss is None)
    if a.loss is not None:
        assert a.loss == pytest.approx(b.loss, abs=2e-5)


def test_a_padded_batch_equals_one_pass_per_text(tiny_lm):
    requests = [_request(tiny_lm, t, top_k=3 + i) for i, t in enumerate(TEXTS)]
    assert len({len(r.ids) for r in requests}) > 1  # padding really happens
    for alone, together in zip([measure_one(tiny_lm, r) for r in requests], measure_batch(tiny_lm, requests)):
        _assert_same(alone, together)


def test_model_loss_is_the_models_own_outputs_loss(tiny_lm, monkeypatch):
    monkeypatch.setattr(analysis, "CACHE_ELEMENTS", 1)  # one row per chunk: the chunks' sum is what is checked
    request = _request(tiny_lm, TEXTS[2], masked={1, 4, 5})
    with torch.no_grad():
        out = tiny_lm.model(torch.tensor([request.ids]), labels=torch.tensor([request.labels]))
    assert model_loss(tiny_lm, out.logits[0], request.labels) == pytest.approx(out.loss.item(), abs=1e-5)
    assert model_loss(tiny_lm, out.logits[0], [IGNORE_INDEX] * len(request.ids)) is None


def test_overlapping_requests_share_one_forward_pass(tiny_lm, monkeypatch):
    gate, calls = threading.Event(), []
    real = batching.measure_batch

    def held_first(lm, requests):
        calls.append(len(requests))
        if len(calls) == 1:
            gate.wait(10)  # the worker is busy: the other requests queue behind it
        return real(lm, requests)

    monkeypatch.setattr(batching, "measure_batch", held_first)
    batcher = ForwardBatcher(max_requests=8, max_tokens=4096)
    requests = [_request(tiny_lm, t) for t in TEXTS]
    with ThreadPoolExecutor(len(requests)) as pool:
        first = pool.submit(batcher.measure, tiny_lm, requests[0])
        _wait_until(lambda: calls == [1])
        rest = [pool.submit(batcher.measure, tiny_lm, r) for r in requests[1:]]
        _wait_until(lambda: len(batcher._jobs) == len(rest))
        gate.set()
        results = [first.result(10), *(job.result(10) for job in rest)]
    assert calls == [1, len(rest)]
    for request, got in zip(requests, results):
        _assert_same(got, measure_one(tiny_lm, request))


def test_a_batch_keeps_to_one_model_and_its_limits(tiny_gpt2_dir, tiny_llama_dir):
    from visualizer.model.loading import load_model

    gpt2, llama = load_model(tiny_gpt2_dir), load_model(tiny_llama_dir)
    batcher = ForwardBatcher(max_requests=2, max_tokens=40)
    short, long = _request(gpt2, "a b"), _request(gpt2, "x " * 30)
    jobs = [
        batching._Job(gpt2, short),
        batching._Job(llama, _request(llama, "a b")),
        batching._Job(gpt2, long),
        batching._Job(gpt2, short),
        batching._Job(gpt2, short),
        batching._Job(gpt2, short),
    ]
    batcher._jobs.extend(jobs)
    first = batcher._take()
    assert [j.lm for j in first] == [gpt2, gpt2] and first[1] is jobs[3]  # llama waits; the long text does not fit
    assert len(first) == batcher.max_requests
    assert batcher._take() == [jobs[1]]  # the other model, alone
    assert batcher._take() == [jobs[2]]  # too long to share 40 padded tokens with anything
    assert batcher._take() == jobs[4:]


def test_a_failed_batch_reaches_each_request_and_the_worker_lives_on(tiny_gpt2_dir, monkeypatch):
    from visualizer.model.loading import load_model

    lm = load_model(tiny_gpt2_dir)
    batcher = ForwardBatcher()
    real = batching.measure_batch
    monkeypatch.setattr(batching, "measure_batch", lambda *a: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(RuntimeError, match="out of memory"):
        batcher.measure(lm, _request(lm, TEXTS[0]))
    monkeypatch.setattr(batching, "measure_batch", real)
    _assert_same(batcher.measure(lm, _request(lm, TEXTS[0])), measure_one(lm, _request(lm, TEXTS[0])))


def test_concurrent_page_analyses_match_analyses_one_by_one(tiny_gpt2_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), batch_size=4)
    texts = TEXTS * 3
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda t: service.run_analysis(t, settings, top_k=4), texts))
    from visualizer.model.loading import load_model

    lm = load_model(tiny_gpt2_dir)
    for text, got in zip(texts, together):
        alone = analyze(text, lm, top_k=4)
        assert got.input_ids == alone.input_ids
        assert [p.p_target for p in got.positions] == pytest.approx([p.p_target for p in alone.positions], abs=2e-5)
        assert [[c.token.id for c in p.top] for p in got.positions] == [
            [c.token.id for c in p.top] for p in alone.positions
        ]
        assert got.loss == pytest.approx(alone.loss, abs=2e-5)


def test_a_turn_not_reached_within_the_wait_is_refused_and_leaves_the_budget_whole():
    budget = TokenBudget(100)
    with budget.hold(100):
        start = time.perf_counter()
        with pytest.raises(InputError, match="busy.*within 0.2 s"), budget.hold(1, wait_s=0.2):
            pass
        assert 0.2 <= time.perf_counter() - start < 5
        assert not budget._turns  # the refused request left the line
    with budget.hold(100, wait_s=0.2):  # and nothing of the budget was kept for it
        assert budget.free == 0
    assert budget.free == budget.total


def test_an_analysis_waits_for_its_turn_at_most_the_time_limit(tiny_gpt2_dir):
    """The API's analysis answers 'busy' once VISUALIZER_TIME_LIMIT_S passes without a turn."""
    from dataclasses import replace

    from visualizer.service import page as service
    from visualizer.settings import Settings

    settings = replace(Settings(), model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), time_limit_s=1, batch_tokens=64)
    budget = service._shared(settings.batch_size, settings.batch_tokens)[1]
    answers = []

    def ask():
        try:
            answers.append(service.analysis_contract("the dog likes food", settings))
        except InputError as err:
            answers.append(err)

    with budget.hold(budget.total):
        start = time.perf_counter()
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(10)
        assert len(answers) == 1 and "busy" in str(answers[0])  # not still waiting after 10 s
        assert 1 <= time.perf_counter() - start < 10
    assert service.analysis_contract("the dog likes food", settings)["loss"] is not None


def test_the_token_budget_bounds_what_runs_at_once_and_serves_in_order():
    budget, lock = TokenBudget(100), threading.Lock()
    running, peak, order = [0], [0], []

    def job(name: str, tokens: int) -> None:
        with budget.hold(tokens):
            with lock:
                order.append(name)
                running[0] += min(tokens, 100)
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= min(tokens, 100)

    sizes = [("a", 60), ("b", 60), ("huge", 500), ("c", 10), ("d", 30), ("e", 30), ("f", 30)]
    threads = []
    for i, (name, tokens) in enumerate(sizes):  # each waits or runs before the next starts: they queue in this order
        threads.append(threading.Thread(target=job, args=(name, tokens)))
        threads[-1].start()
        _wait_until(lambda i=i: len(budget._turns) + len(order) > i)
    for t in threads:
        t.join(10)
    assert peak[0] <= 100 and budget.free == budget.total
    assert order == [name for name, _ in sizes]  # first come, first served: 'c' does not overtake 'huge'


def test_newest_requests_per_session():
    newest = NewestRequests()
    a1, b1 = newest.begin("a"), newest.begin("b")
    a2 = newest.begin("a")
    assert not newest.is_newest("a", a1) and newest.is_newest("a", a2) and newest.is_newest("b", b1)
    assert newest.is_newest(None, newest.begin(None))  # API calls have no session: always shown
    newest.forget("a")
    assert newest.is_newest("a", a1)  # a forgotten session has no newer request


def test_a_page_numbering_its_requests_decides_which_is_newest():
    newest = NewestRequests()
    second = newest.begin("page", order=2)  # sent second, but began here first
    first = newest.begin("page", order=1)
    assert newest.is_newest("page", second) and not newest.is_newest("page", first)
    third = newest.begin("page", order=3)
    assert newest.is_newest("page", third) and not newest.is_newest("page", second)


def test_an_overtaken_page_analysis_shows_nothing(tiny_gpt2_dir, monkeypatch):
    import gradio as gr

    from visualizer.service import labels as service_labels
    from visualizer.ui import analysis_tabs, shared

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    analyze_page = analysis_tabs.make_analysis_handlers(settings).analyze_page
    request = type("Request", (), {"session_hash": "page-1"})()
    args = (None, "the dog likes food", tiny_gpt2_dir, 5, False, "probability", False, "none", 0, "", [])
    shown = analyze_page(*args, request=request, progress=lambda *a, **k: None)
    assert shown[0] is not None and "loss" in shown[1]
    real = service_labels.page_analysis

    def overtaken(*a, **k):
        shared.NEWEST.begin("page-1")  # the same page sends a newer request while this one runs
        return real(*a, **k)

    monkeypatch.setattr(service_labels, "page_analysis", overtaken)
    stale = analyze_page(*args, request=request, progress=lambda *a, **k: None)
    assert len(stale) == len(shown) and all(isinstance(o, type(gr.skip())) for o in stale)


def test_a_masking_edit_that_changes_no_label_runs_no_analysis_but_still_wins(tiny_gpt2_dir, monkeypatch):
    """N edited in mode 'none' needs no forward pass; and the page ends on what it shows, not on an older
    request still running (the skipped request is numbered too)."""
    import gradio as gr

    from visualizer.service import labels as service_labels
    from visualizer.ui import analysis_tabs, shared

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    handlers = analysis_tabs.make_analysis_handlers(settings)
    request = type("Request", (), {"session_hash": "page-2"})()
    quiet = dict(request=request, progress=lambda *a, **k: None)
    args = ["the dog likes food", tiny_gpt2_dir, 5, False, "probability", False, "none", 0, "", []]
    held = handlers.analyze_page(None, *args, **quiet)[0]
    runs = []
    real = service_labels.page_analysis
    monkeypatch.setattr(service_labels, "page_analysis", lambda *a, **k: runs.append(a[3]) or real(*a, **k))

    older = shared.NEWEST.begin("page-2")  # an analysis of this page, still running
    skipped = handlers.analyze_if_changed(held, *args[:7], 3, "", [], **quiet)  # N = 3, mode 'none'
    assert runs == [] and all(isinstance(o, type(gr.skip())) for o in skipped)
    assert not shared.NEWEST.is_newest("page-2", older)
    assert all(
        isinstance(o, type(gr.skip()))
        for o in handlers.analyze_if_changed(held, *args[:6], "first N tokens", 0, "", [], **quiet)
    )
    shown = handlers.analyze_if_changed(held, *args[:6], "first N tokens", 2, "", [], **quiet)
    assert [m.first_n for m in runs] == [2] and shown[0].labels[:2] == [-100, -100]


def test_a_new_text_does_not_inherit_picks_that_named_other_tokens(tiny_gpt2_dir):
    from visualizer.ui import analysis_tabs

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    handlers = analysis_tabs.make_analysis_handlers(settings)
    quiet = dict(request=type("Request", (), {"session_hash": "page-3"})(), progress=lambda *a, **k: None)
    options = [tiny_gpt2_dir, 5, False, "probability", False, "picked tokens", 0, ""]
    held = handlers.analyze_page(None, "the dog likes food", *options, [1, 3], **quiet)[0]
    assert [i for i, label in enumerate(held.labels) if label == -100] == [1, 3]
    edited = handlers.analyze_page(held, "the dog likes fish and more", *options, [1, 3], **quiet)
    assert [i for i, label in enumerate(edited[0].labels) if label == -100] == [1]  # token 3 is another one now
    assert edited[-1].value == [1]  # and the page's ticks say so


def test_release_freed_memory_is_safe_to_call():
    assert release_freed_memory() in (True, False)


def _wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


def test_the_app_runs_main_analyses_batch_size_at_once_and_other_views_apart(tiny_gpt2_dir):
    from visualizer.ui.page import build_demo

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), batch_size=7)
    demo = build_demo(settings)
    groups: dict[str, set] = {}
    for fn in demo.fns.values():
        if fn.concurrency_id in ("analysis", "views"):
            groups.setdefault(fn.concurrency_id, set()).add(fn.concurrency_limit)
    page = [fn for fn in demo.fns.values() if fn.name in ("analyze_page", "analyze_if_changed")]
    assert {fn.name for fn in page} == {"analyze_page", "analyze_if_changed"} and all(
        fn.concurrency_id == "analysis" for fn in page
    )
    assert groups["analysis"] == {7}  # every member of the group says 7: Gradio takes the smallest
    assert groups["views"] == {"default"}  # the queue's default: analysis_concurrency
