"""Token-by-token generation: equality with transformers' generate, the filters against an
independent computation, the seed, the EOS stop, the KV cache, teacher forcing, and the CLI."""

import copy
import json

import pytest
import torch

from visualizer.analysis.generation import (
    STOP_EOS,
    STOP_MAX,
    Decoding,
    Generation,
    filtered_distributions,
    stop_token_ids,
    teacher_forcing,
)
from visualizer.errors import InputError
from visualizer.model.loading import LoadedModel

PROMPT = "the dog likes"


def _generate_ids(lm, prompt_ids, n):
    """transformers' own greedy decoding: (P + s,) ids."""
    eos = sorted(stop_token_ids(lm))
    with torch.no_grad():
        out = lm.model.generate(
            torch.tensor([prompt_ids]),
            do_sample=False,
            max_new_tokens=n,
            eos_token_id=eos,
            pad_token_id=eos[0],
        )
    return out[0].tolist()


def _next_logits(lm, ids):
    """Logits for the token after `ids`, from a full forward pass without cache: (V,) float64."""
    with torch.no_grad():
        return lm.model(torch.tensor([ids])).logits[0, -1].double()


# ---------------------------------------------------------------- greedy and teacher forcing


def test_greedy_equals_transformers_generate(tiny_lm):
    gen = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=12))
    gen.run()
    assert gen.ids == _generate_ids(tiny_lm, gen.prompt_ids, 12)
    assert gen.stop_reason in (STOP_EOS, STOP_MAX) and gen.done


def test_greedy_picks_the_argmax_of_an_uncached_pass(tiny_lm):
    gen = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=5))
    for step in gen:
        logits = _next_logits(tiny_lm, gen.ids[: len(gen.prompt_ids) + step.index])
        p = torch.softmax(logits, dim=-1)
        assert step.token.id == int(logits.argmax())
        assert step.p_model == pytest.approx(p[step.token.id].item(), abs=1e-6)
        assert step.p == pytest.approx(step.p_model, abs=1e-6) and step.n_kept == p.numel()
        assert [c.token.id for c in step.top] == torch.argsort(p, descending=True)[:10].tolist()


@pytest.mark.parametrize(
    "decoding", [Decoding(max_new_tokens=10), Decoding(max_new_tokens=10, temperature=1.3, seed=4)]
)
def test_teacher_forcing_agrees_with_each_step(tiny_lm, decoding):
    gen = Generation(tiny_lm, PROMPT, decoding)
    gen.run()
    analysis = teacher_forcing(gen)
    assert analysis.input_ids == gen.ids
    scored = [p for p in analysis.positions if not p.masked]
    assert [p.target.id for p in scored] == gen.generated_ids
    assert [p.p_target for p in scored] == pytest.approx([s.p_model for s in gen.steps], abs=1e-4)
    assert analysis.counted == len(gen.steps)


def test_each_step_reads_one_token_through_the_cache(tiny_lm):
    seen = []
    hook = tiny_lm.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((kwargs["input_ids"].shape[1], kwargs["cache"] is None)),
        with_kwargs=True,
    )
    try:
        gen = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=6))
        gen.run()
    finally:
        hook.remove()
    assert seen == [(len(gen.prompt_ids), True)] + [(1, False)] * (len(gen.steps) - 1)


# ---------------------------------------------------------------- sampling


def _sampled(lm, seed, **kwargs):
    gen = Generation(lm, PROMPT, Decoding(max_new_tokens=8, temperature=1.0, seed=seed, **kwargs))
    gen.run()
    return gen.generated_ids


def test_same_seed_same_output_different_seeds_differ(tiny_lm):
    assert _sampled(tiny_lm, 7) == _sampled(tiny_lm, 7)
    assert _sampled(tiny_lm, 7, top_k=20, top_p=0.9) == _sampled(tiny_lm, 7, top_k=20, top_p=0.9)
    assert any(_sampled(tiny_lm, seed) != _sampled(tiny_lm, 7) for seed in range(4))


def test_no_seed_records_one_that_repeats_the_run(tiny_lm):
    first = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=6, temperature=0.9))
    first.run()
    assert isinstance(first.seed, int) and first.to_dict()["decoding"]["seed"] == first.seed
    assert _sampled_with(tiny_lm, first.seed, 0.9) == first.generated_ids


def _sampled_with(lm, seed, temperature):
    gen = Generation(lm, PROMPT, Decoding(max_new_tokens=6, temperature=temperature, seed=seed))
    gen.run()
    return gen.generated_ids


def test_stepping_equals_running(tiny_lm):
    decoding = Decoding(max_new_tokens=7, temperature=0.8, top_k=30, seed=11)
    stepped = Generation(tiny_lm, PROMPT, decoding)
    first = [stepped.step(), stepped.step()]
    assert len(stepped.steps) == 2 and not stepped.done and first == stepped.steps
    stepped.run()
    whole = Generation(tiny_lm, PROMPT, decoding)
    whole.run()
    assert [s.to_dict() for s in stepped.steps] == [s.to_dict() for s in whole.steps]
    with pytest.raises(InputError, match="already stopped"):
        stepped.step()


def test_sampled_token_is_always_kept(tiny_lm):
    gen = Generation(tiny_lm, PROMPT, Decoding(max_new_tokens=10, temperature=2.0, top_k=3, seed=0))
    for step in gen:
        assert step.p > 0 and step.n_kept == 3
        kept = [c for c in step.top if c.kept]
        assert len(kept) == 3 and all(c.p == 0 for c in step.top if not c.kept)
        assert sum(c.p for c in kept) == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- the filters, independently


def _independent_kept(logits, temperature=1.0, top_k=None, top_p=None):
    """The kept set by definition, in float64: k largest, then the fewest likeliest with sum >= p."""
    scores = logits.double() / temperature
    order = torch.argsort(scores, descending=True).tolist()
    if top_k is not None:
        order = order[:top_k]
    if top_p is not None:
        probs = torch.softmax(scores[order], dim=-1).tolist()
        total, keep = 0.0, 0
        while keep < len(order) and (keep == 0 or total < top_p):
            total += probs[keep]
            keep += 1
        order = order[:keep]
    return set(order)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "settings",
    [
        dict(top_k=1),
        dict(top_k=7),
        dict(top_p=0.5),
        dict(top_p=0.9, temperature=0.7),
        dict(top_k=40, top_p=0.6, temperature=1.5),
        dict(top_p=1e-9),
        dict(top_p=1.0),
        dict(top_k=1000),
    ],
)
def test_filters_keep_exactly_the_right_tokens(seed, settings):
    logits = torch.randn(300, generator=torch.Generator().manual_seed(seed)) * 3  # (V,)
    decoding = Decoding(
        temperature=settings.get("temperature", 1.0), top_k=settings.get("top_k"), top_p=settings.get("top_p")
    )
    p_model, p, kept = filtered_distributions(logits, decoding.warpers())
    expected = _independent_kept(logits, **settings)
    assert set(torch.nonzero(kept)[:, 0].tolist()) == expected
    assert torch.equal(p > 0, kept) and p.sum().item() == pytest.approx(1.0, abs=1e-5)
    scaled = torch.softmax(logits.double() / decoding.temperature, dim=-1)[kept]
    assert p[kept].double() == pytest.approx((scaled / scaled.sum()).tolist(), abs=1e-6)
    assert p_model.double() == pytest.approx(torch.softmax(logits.double(), dim=-1).tolist(), abs=1e-6)


def test_top_p_keeps_at_least_one_token():
    logits = torch.tensor([5.0, 1.0, 0.0, -1.0])
    _, p, kept = filtered_distributions(logits, Decoding(temperature=1.0, top_p=0.01).warpers())
    assert kept.tolist() == [True, False, False, False] and p[0].item() == 1.0


# ---------------------------------------------------------------- stopping at EOS


def _eos_shifted(lm: LoadedModel, shift: float) -> LoadedModel:
    """A copy of `lm` whose output head adds `shift` to the EOS logit (+100: EOS is the argmax; -100: never)."""
    model = copy.deepcopy(lm.model)
    eos = lm.tokenizer.eos_token_id
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: out + shift * torch.nn.functional.one_hot(torch.tensor(eos), out.shape[-1])
    )
    return LoadedModel(f"{lm.name}{shift:+}", model, lm.tokenizer, lm.decoder, lm.source)


@pytest.mark.parametrize("temperature", [None, 1.0])
def test_generation_stops_at_eos(tiny_lm, temperature):
    lm = _eos_shifted(tiny_lm, 100.0)
    gen = Generation(lm, PROMPT, Decoding(max_new_tokens=10, temperature=temperature, seed=0))
    steps = gen.run()
    assert len(steps) == 1 and steps[0].token.id == tiny_lm.tokenizer.eos_token_id
    assert gen.stop_reason == STOP_EOS and gen.text == "" and steps[0].p_model > 0.99
    if temperature is None:
        assert gen.ids == _generate_ids(lm, gen.prompt_ids, 10)


def test_max_new_tokens_stops(tiny_lm):
    gen = Generation(_eos_shifted(tiny_lm, -100.0), PROMPT, Decoding(max_new_tokens=3))
    gen.run()
    assert len(gen.steps) == 3 and gen.stop_reason == STOP_MAX and gen.to_dict()["stop_reason"] == "max_new_tokens"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(temperature=0), "Temperature"),
        (dict(temperature=-1.0), "Temperature"),
        (dict(temperature=float("nan")), "Temperature"),
        (dict(top_p=0), "Top-p"),
        (dict(top_p=1.5), "Top-p"),
        (dict(top_k=0), "Top-k"),
        (dict(top_k=2.5), "Top-k"),
        (dict(max_new_tokens=201), "new tokens"),
        (dict(max_new_tokens=0), "new tokens"),
        (dict(max_new_tokens=True), "new tokens"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        Decoding(**kwargs)


@pytest.mark.parametrize("prompt", ["", "  \n"])
def test_empty_prompt_is_refused(tiny_lm, prompt):
    with pytest.raises(InputError, match="empty"):
        Generation(tiny_lm, prompt)


def test_prompt_without_room_is_refused(tiny_lm):
    with pytest.raises(InputError, match="context of 64"):
        Generation(tiny_lm, "the dog likes food " * 12, Decoding(max_new_tokens=40))


def test_teacher_forcing_needs_a_step(tiny_lm):
    with pytest.raises(InputError, match="Nothing has been generated"):
        teacher_forcing(Generation(tiny_lm, PROMPT))


# ---------------------------------------------------------------- CLI


def test_cli_json_contract(tiny_gpt2_dir, run_cli):
    argv = [
        "generate",
        PROMPT,
        "--model",
        tiny_gpt2_dir,
        "--max-new-tokens",
        "4",
        "--temperature",
        "0.9",
        "--top-k",
        "5",
        "--seed",
        "3",
        "--format",
        "json",
    ]
    status, out, _ = run_cli(argv)
    data = json.loads(out)
    assert status == 0 and data["prompt"] == PROMPT and data["stop_reason"] in ("eos", "max_new_tokens")
    assert isinstance(data["text"], str) and 1 <= len(data["steps"]) <= 4
    step = data["steps"][0]
    assert set(step) >= {"token", "p", "p_model", "top"} and set(step["token"]) == {"id", "text", "display"}
    assert set(step["top"][0]) == {"id", "text", "display", "p_model", "p", "kept"}
    assert sum(c["kept"] for c in step["top"]) == 5
    assert run_cli(argv)[1] == out  # the seed repeats the run


def test_cli_greedy_table(tiny_llama_dir, run_cli):
    status, out, _ = run_cli(["generate", PROMPT, "--model", tiny_llama_dir, "--max-new-tokens", "3", "--greedy"])
    assert status == 0 and "greedy" in out and "stop:" in out and "p_model" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--temperature", "0"],
        ["--temperature", "-2"],
        ["--top-p", "1.5"],
        ["--top-p", "0"],
        ["--top-k", "0"],
        ["--max-new-tokens", "201"],
        ["--max-new-tokens", "0"],
        ["--temperature", "hot"],
        ["--greedy", "--temperature", "1"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, run_cli):
    status, out, err = run_cli(["generate", PROMPT, *argv])
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "error" in err


def test_cli_empty_prompt(run_cli):
    status, _, err = run_cli(["generate", "  "])
    assert status == 2 and err.strip() == "visualizer: error: Please enter a prompt: it is empty."


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_bundled_greedy_equals_generate_and_knows_paris(bundled_lm):
    gen = Generation(bundled_lm, "The capital of France is", Decoding(max_new_tokens=6))
    gen.run()
    assert gen.ids == _generate_ids(bundled_lm, gen.prompt_ids, 6)
    assert "Paris" in gen.text
    scored = [p for p in teacher_forcing(gen).positions if not p.masked]
    assert [p.p_target for p in scored] == pytest.approx([s.p_model for s in gen.steps], abs=1e-4)
