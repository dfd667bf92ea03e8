"""Training a copy on one sentence: the shared model untouched, the updates a plain loop's, the registry bounded."""

import contextlib
import copy
import json
import threading
import time

import pytest
import torch

from visualizer.analysis import training
from visualizer.analysis.one_pass import IGNORE_INDEX, analyze
from visualizer.analysis.trained_copies import TrainedCopies, train_for_session
from visualizer.analysis.training import TrainingSlots, train_on_text, validate_options
from visualizer.errors import InputError

TEXT = "the dog likes food"


def _snapshot(lm):
    """Cloned weights and logits of the model, for bitwise comparison."""
    ids = torch.tensor([lm.tokenizer(TEXT, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = lm.model(ids).logits.clone()
    return {k: v.clone() for k, v in lm.model.state_dict().items()}, logits


def test_shared_model_is_bitwise_unchanged(tiny_lm):
    weights, logits = _snapshot(tiny_lm)
    run = train_on_text(TEXT, tiny_lm, steps=3, lr=1e-2)
    after_weights, after_logits = _snapshot(tiny_lm)
    assert weights.keys() == after_weights.keys()
    assert all(torch.equal(weights[k], after_weights[k]) for k in weights)
    assert torch.equal(logits, after_logits)
    assert not any(p.requires_grad for p in tiny_lm.model.parameters()) and not tiny_lm.model.training
    # ... while the copy did move.
    trained = run.trained.model.state_dict()
    assert any(not torch.equal(weights[k], trained[k]) for k in weights)


def test_history_is_the_model_before_and_after(tiny_lm):
    run = train_on_text(TEXT, tiny_lm, steps=4, lr=1e-2)
    before, after = analyze(TEXT, tiny_lm), analyze(TEXT, run.trained)
    assert len(run.history) == 5 and [h.step for h in run.history] == list(range(5))
    assert run.history[0].loss == pytest.approx(before.loss, abs=1e-5)
    assert run.history[0].p_target == pytest.approx([p.p_target for p in before.positions], abs=1e-6)
    assert run.history[-1].loss == pytest.approx(after.loss, abs=1e-5)
    assert run.history[-1].p_target == pytest.approx([p.p_target for p in after.positions], abs=1e-6)
    assert run.losses[-1] < run.losses[0]
    grid = run.p_target_grid()
    assert len(grid) == len(before.positions) and all(len(row) == 5 for row in grid)
    assert [row[2] for row in grid] == run.history[2].p_target


def test_trained_copy_is_a_loaded_model(tiny_lm):
    run = train_on_text(TEXT, tiny_lm, steps=2, lr=1e-2)
    trained = run.trained
    assert trained.name == f"{tiny_lm.name} (trained 2 steps)" and trained.source == "trained"
    assert trained.tokenizer is tiny_lm.tokenizer and trained.decoder is tiny_lm.decoder
    assert trained.model is not tiny_lm.model and not trained.model.training
    params = list(trained.model.parameters())
    assert not any(p.requires_grad or p.grad is not None for p in params)
    assert not any(getattr(p, "_post_accumulate_grad_hooks", None) for p in params)
    data = json.loads(json.dumps(run.to_dict()))
    assert data["steps_taken"] == 2 and data["trained_model"] == trained.name and len(data["losses"]) == 3


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_updates_equal_a_plain_training_loop(tiny_lm, optimizer):
    """Stepping each parameter inside backward gives the same weights as zero_grad/backward/step."""
    lr = 1e-2
    run = train_on_text(TEXT, tiny_lm, steps=3, optimizer=optimizer, lr=lr, mask_first=2)
    model = copy.deepcopy(tiny_lm.model).requires_grad_(True)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0) if optimizer == "adamw" else torch.optim.SGD(params, lr=lr)
    ids = torch.tensor([[t.id for t in run.tokens]])
    labels = torch.tensor([run.labels])
    for _ in range(3):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    expected, got = model.state_dict(), run.trained.model.state_dict()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)


def test_the_mask_is_respected(tiny_lm):
    run = train_on_text(TEXT, tiny_lm, steps=2, lr=1e-2, mask_first=2)
    assert run.labels[:2] == [IGNORE_INDEX] * 2 and run.labels[2:] == [t.id for t in run.tokens[2:]]
    assert run.history[0].loss == pytest.approx(analyze(TEXT, tiny_lm, mask_first=2).loss, abs=1e-5)
    assert run.history[-1].loss == pytest.approx(analyze(TEXT, run.trained, mask_first=2).loss, abs=1e-5)
    unmasked = train_on_text(TEXT, tiny_lm, steps=2, lr=1e-2)
    assert unmasked.history[1].loss != pytest.approx(run.history[1].loss, abs=1e-4)
    with pytest.raises(InputError, match="nothing to train"):
        train_on_text(TEXT, tiny_lm, mask_first=100)


def test_progress_is_called_after_each_step(tiny_lm):
    calls = []
    run = train_on_text(TEXT, tiny_lm, steps=3, lr=1e-2, progress=lambda *a: calls.append(a))
    assert calls == [(s, 3, run.history[s].loss) for s in (1, 2, 3)]


@pytest.mark.parametrize(
    "options, match",
    [
        ({"steps": 0}, "Steps"),
        ({"steps": 51}, "Steps"),
        ({"steps": 2.5}, "Steps"),
        ({"steps": "10"}, "Steps"),
        ({"steps": True}, "Steps"),
        ({"optimizer": "adam"}, "AdamW or SGD"),
        ({"optimizer": None}, "AdamW or SGD"),
        ({"lr": 0}, "learning rate"),
        ({"lr": -1e-3}, "learning rate"),
        ({"lr": 2.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"lr": "0.1"}, "learning rate"),
    ],
)
def test_bad_options_are_refused(tiny_lm, options, match):
    with pytest.raises(InputError, match=match):
        train_on_text(TEXT, tiny_lm, **options)


def test_long_texts_are_refused(tiny_lm, monkeypatch):
    monkeypatch.setattr(training, "MAX_TOKENS", 3)
    with pytest.raises(InputError, match="at most 3"):
        train_on_text(TEXT, tiny_lm)


def test_option_defaults():
    assert validate_options(10, "AdamW", None) == (10, "adamw", training.DEFAULT_LR["adamw"])
    assert validate_options(50.0, " sgd ", 0.5) == (50, "sgd", 0.5)


def test_no_free_slot_refuses_at_once_or_after_the_wait(tiny_lm):
    slots = TrainingSlots(1)
    assert slots.acquire()
    with pytest.raises(InputError, match="1 training run is in progress"):
        train_on_text(TEXT, tiny_lm, steps=1, slots=slots)
    start = time.perf_counter()
    with pytest.raises(InputError, match="in progress"):
        train_on_text(TEXT, tiny_lm, steps=1, wait_s=0.2, slots=slots)
    assert time.perf_counter() - start >= 0.2
    slots.release()
    assert train_on_text(TEXT, tiny_lm, steps=1, slots=slots).trained is not None


def _overlapping_runs(lm, slots: TrainingSlots, runs: int):
    """Start `runs` trainings at once, each holding its slot in its first step until all have started
    or 5 s pass; returns (how many were inside together at most, the errors)."""
    inside, together, errors, lock = threading.Barrier(runs, timeout=5), [0], [], threading.Lock()

    def hold(step, total, loss):
        if step == 1:
            with lock:
                together[0] = max(together[0], slots.running)
            with contextlib.suppress(threading.BrokenBarrierError):
                inside.wait()

    def train():
        try:
            train_on_text(TEXT, lm, steps=2, progress=hold, slots=slots, wait_s=0.0)
        except InputError as err:
            errors.append(str(err))
            inside.abort()

    workers = [threading.Thread(target=train) for _ in range(runs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    return together[0], errors


def test_two_slots_run_two_trainings_at_once(tiny_lm):
    together, errors = _overlapping_runs(tiny_lm, TrainingSlots(2), 2)
    assert errors == [] and together == 2


def test_one_slot_refuses_the_second_overlapping_run(tiny_lm):
    together, errors = _overlapping_runs(tiny_lm, TrainingSlots(1), 2)
    assert together == 1 and len(errors) == 1 and "in progress" in errors[0]


def test_the_slot_is_freed_when_a_run_fails(tiny_lm):
    def fail(*_):
        raise RuntimeError("cancelled")

    slots = TrainingSlots(1)
    with pytest.raises(RuntimeError):
        train_on_text(TEXT, tiny_lm, steps=2, progress=fail, slots=slots)
    assert slots.running == 0 and slots.acquire()


def test_the_same_seed_repeats_a_run_and_no_seed_picks_one(tiny_lm):
    first = train_on_text(TEXT, tiny_lm, steps=3, lr=1e-2, seed=7)
    again = train_on_text(TEXT, tiny_lm, steps=3, lr=1e-2, seed=7)
    assert first.seed == again.seed == 7 and first.losses == again.losses
    picked = train_on_text(TEXT, tiny_lm, steps=1, lr=1e-2)
    assert 0 <= picked.seed <= training.MAX_SEED and picked.to_dict()["seed"] == picked.seed


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "3"])
def test_bad_seeds_are_refused(tiny_lm, seed):
    with pytest.raises(InputError, match="seed"):
        train_on_text(TEXT, tiny_lm, steps=1, seed=seed)


# ---------------------------------------------------------------- trained copies per session


def test_registry_drops_the_oldest(tiny_lm):
    copies = TrainedCopies(max_copies=2)
    assert copies.put("a", tiny_lm) == [] and copies.put("b", tiny_lm) == []
    assert copies.put("c", tiny_lm) == ["a"]
    assert len(copies) == 2 and "a" not in copies
    with pytest.raises(InputError, match="dropped"):
        copies.get("a")
    assert copies.get("c") is tiny_lm
    assert copies.release("b") and not copies.release("b")
    with pytest.raises(InputError, match="no trained copy"):
        copies.get("b")
    with pytest.raises(InputError, match="no trained copy"):
        copies.get("never")
    copies.put("a", tiny_lm)  # training again after a drop works
    assert copies.get("a") is tiny_lm


def test_replacing_a_session_copy_keeps_the_others(tiny_lm):
    copies = TrainedCopies(max_copies=2)
    copies.put("a", tiny_lm)
    copies.put("b", tiny_lm)
    assert copies.put("a", tiny_lm) == [] and len(copies) == 2


def test_train_for_session_holds_the_copy(tiny_lm):
    copies = TrainedCopies(max_copies=1)
    run = train_for_session("s1", TEXT, tiny_lm, copies=copies, steps=1)
    assert copies.get("s1") is run.trained
    train_for_session("s2", TEXT, tiny_lm, copies=copies, steps=1)
    with pytest.raises(InputError, match="dropped"):
        copies.get("s1")


# ---------------------------------------------------------------- the bundled model


@pytest.mark.slow
def test_bundled_model_learns_the_sentence(bundled_lm):
    import psutil

    weights, logits = _snapshot(bundled_lm)
    before = analyze(TEXT, bundled_lm)
    proc = psutil.Process()
    base, peak, done = proc.memory_info().rss, [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run = train_on_text(TEXT, bundled_lm)  # 10 AdamW steps at the default learning rate
    finally:
        done.set()
        sampler.join()
    after = analyze(TEXT, run.trained)
    assert run.steps == 10 and len(run.history) == 11 and not run.notices
    assert after.loss < before.loss - 2.0 and run.losses[-1] == pytest.approx(after.loss, abs=1e-4)
    food_before, food_after = before.positions[2], after.positions[2]
    assert food_before.target.text == food_after.target.text == " food"
    assert food_after.p_target > max(0.5, food_before.p_target)
    assert (peak[0] - base) / 1e9 < 3.0
    after_weights, after_logits = _snapshot(bundled_lm)
    assert all(torch.equal(weights[k], after_weights[k]) for k in weights)
    assert torch.equal(logits, after_logits)


def test_the_pages_train_event_and_slots_follow_the_setting(tiny_gpt2_dir):
    """VISUALIZER_TRAINING_CONCURRENCY sizes both the page's queue for Train (which shows the waiting
    their place) and the slots behind it, so the queue never starts a run that the slots refuse."""
    from dataclasses import replace

    import app
    from visualizer.service import training as service_training
    from visualizer.settings import Settings

    settings = replace(
        Settings.from_env({"VISUALIZER_TRAINING_CONCURRENCY": "3"}), model=tiny_gpt2_dir, models=(tiny_gpt2_dir,)
    )
    demo = app.configure_queue(app.build_demo(settings), settings)
    train = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "train"]
    assert [(f.concurrency_id, f.concurrency_limit) for f in train] == [("training", 3)]
    assert service_training.training_slots(settings).size == 3
