"""`visualizer train`: the losses a plain training loop gives, a repeatable seed, both tables, one-line errors."""

import copy
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from visualizer.model.loading import load_model

TEXT = "the dog likes food"


def _train_json(run_cli, model_dir, *options):
    status, out, err = run_cli(["train", TEXT, "--model", model_dir, "--format", "json", *options])
    assert status == 0, err
    (line,) = out.splitlines()
    return json.loads(line)


def _plain_loop(model_dir, steps: int, lr: float, mask_first: int = 0):
    """The test's own AdamW loop on a copy: the loss before each update, and the per-position losses after."""
    lm = load_model(model_dir)
    model = copy.deepcopy(lm.model).requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    ids = torch.tensor([lm.tokenizer(TEXT, add_special_tokens=False)["input_ids"]])  # (1, n)
    labels = ids.clone()
    labels[0, :mask_first] = -100
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        logits = model(input_ids=ids).logits[0]  # (n, V)
        loss = F.cross_entropy(logits[:-1], labels[0, 1:], ignore_index=-100)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = F.cross_entropy(model(input_ids=ids).logits[0, :-1], ids[0, 1:], reduction="none")  # (n-1,)
    return losses, after.tolist()


def test_json_losses_are_a_plain_loops_and_the_labels_match(tiny_gpt2_dir, run_cli):
    data = _train_json(run_cli, tiny_gpt2_dir, "--steps", "3", "--lr", "0.01", "--mask-first", "2", "--seed", "5")
    losses, after = _plain_loop(tiny_gpt2_dir, 3, 0.01, mask_first=2)
    assert (data["steps"], data["optimizer"], data["lr"], data["seed"]) == (3, "adamw", 0.01, 5)
    assert data["losses"] == pytest.approx(losses, abs=1e-5) and len(data["losses"]) == 3
    before, trained = data["before"], data["after"]
    assert before["labels"] == trained["labels"] and before["labels"][:2] == [-100, -100]
    assert before["loss"] == pytest.approx(losses[0], abs=1e-5)
    assert [p["loss"] for p in trained["positions"]] == pytest.approx([None, *after[1:]], abs=1e-5)
    assert (
        trained["loss"] == pytest.approx(sum(after[1:]) / len(after[1:]), abs=1e-5) and trained["loss"] < before["loss"]
    )


def test_the_same_seed_gives_the_same_run(tiny_llama_dir, run_cli):
    first, again = (
        _train_json(run_cli, tiny_llama_dir, "--steps", "2", "--seed", "11", "--optimizer", "sgd", "--lr", "0.05")
        for _ in range(2)
    )
    assert first["losses"] == pytest.approx(again["losses"], abs=1e-6)
    for a, b in zip(first["after"]["positions"], again["after"]["positions"]):
        assert (a["p_target"], a["rank"]) == pytest.approx((b["p_target"], b["rank"]), abs=1e-6)
        assert [c["id"] for c in a["top"]] == [c["id"] for c in b["top"]]


def test_without_a_seed_the_output_says_which(tiny_gpt2_dir, run_cli):
    data = _train_json(run_cli, tiny_gpt2_dir, "--steps", "1")
    assert isinstance(data["seed"], int) and 0 <= data["seed"] < 2**32
    status, out, _ = run_cli(["train", TEXT, "--model", tiny_gpt2_dir, "--steps", "1"])
    assert status == 0 and re.search(r"seed \d+\)", out)


def test_table_shows_each_step_and_the_counted_rows_before_and_after(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(
        ["train", TEXT, "--model", tiny_gpt2_dir, "--steps", "2", "--lr", "0.01", "--mask-until", "dog", "--seed", "1"]
    )
    data = _train_json(run_cli, tiny_gpt2_dir, "--steps", "2", "--lr", "0.01", "--mask-until", "dog", "--seed", "1")
    assert status == 0
    lines = out.splitlines()
    for step, loss in enumerate(data["losses"], 1):
        assert f"{step:>4}  {loss:.4f}" in lines
    table = lines[lines.index(next(x for x in lines if x.startswith("before "))) :]
    contexts = [p["context"] for p in data["before"]["positions"] if p["loss"] is not None]
    rows = [line for line in table if " → " in line]
    assert len(rows) == len(contexts) and all(r.startswith(c + " → ") for r, c in zip(rows, contexts))
    assert all(r.count("|") == 1 and r.count("*") == 2 for r in rows)  # the true token starred on each side
    assert f"loss {data['after']['loss']:.4f}" in out


@pytest.mark.parametrize(
    "options, message",
    [
        (["--steps", "0"], "Steps must be from 1"),
        (["--steps", "-3"], "Steps must be from 1"),
        (["--steps", "51"], "At most 50 steps"),
        (["--lr", "0"], "learning rate"),
        (["--lr", "-1"], "learning rate"),
        (["--lr", "nan"], "learning rate"),
        (["--lr", "abc"], "--lr"),
        (["--optimizer", "adam"], "--optimizer"),
        (["--mask-first", "99"], "Every label is masked"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_bad_input_is_one_line_and_status_2(options, message, tiny_gpt2_dir, run_cli):
    status, out, err = run_cli(["train", TEXT, "--model", tiny_gpt2_dir, *options])
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_one_token_text_is_refused(tiny_gpt2_dir, run_cli):
    status, out, err = run_cli(["train", "the", "--model", tiny_gpt2_dir])
    assert status == 2 and "single token" in err and len(err.strip().splitlines()) == 1


def test_the_step_limit_comes_from_the_settings(tiny_gpt2_dir, run_cli, monkeypatch):
    monkeypatch.setenv("VISUALIZER_MAX_TRAIN_STEPS", "2")
    status, _, err = run_cli(["train", TEXT, "--model", tiny_gpt2_dir, "--steps", "3"])
    assert status == 2 and "At most 2 steps" in err


@pytest.mark.slow
def test_the_bundled_model_learns_food(bundled_lm, run_cli):
    status, out, _ = run_cli(["train", TEXT, "--steps", "3", "--seed", "0", "--format", "json"])
    data = json.loads(out)
    food = data["after"]["positions"][-1]
    assert status == 0 and food["target"]["display"] == "␣food"
    assert data["before"]["positions"][-1]["p_target"] < 0.05 < 0.9 < food["p_target"]
    assert math.isclose(data["losses"][0], data["before"]["loss"], abs_tol=1e-4)
