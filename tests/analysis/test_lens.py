"""The logit lens: shapes, the last layer is the model's own output, each layer against an
independent computation, chunking, refusing models it cannot read, and the CLI."""

import copy
import dataclasses
import json

import pytest
import torch

from visualizer.analysis import lens as lens_module
from visualizer.analysis.lens import LensUnsupported, hidden_states, lens_logits, logit_lens
from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError

TEXT = "the cat likes fish and the dog likes bones"


def _final_norm_owner(lm):
    """(module holding the final norm, its attribute name) for the two tiny architectures."""
    if hasattr(lm.model, "transformer"):
        return lm.model.transformer, "ln_f"
    return lm.model.model, "norm"


def _reference_logits(lm, ids):
    """Each layer's logits computed directly, without the package: (L+1, n, V) float64 (tiny models only)."""
    owner, name = _final_norm_owner(lm)
    norm, head = getattr(owner, name), lm.model.get_output_embeddings()
    with torch.no_grad():
        states = lm.model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        normed = [norm(h[0]) for h in states[:-1]] + [states[-1][0]]  # the last is final-normed already
        return torch.stack([head(h) for h in normed]).double()


def test_shapes(tiny_lm):
    result = logit_lens(TEXT, tiny_lm)
    n = len(result.tokens)
    assert result.layers == tiny_lm.model.config.num_hidden_layers + 1 == 3
    assert len(result.rows) == 3 and all(len(row) == n - 1 for row in result.rows)
    assert len(result.grid("p_target")) == 3 and len(result.grid("rank")[0]) == n - 1


def test_the_last_hidden_state_is_already_final_normed(tiny_lm):
    ids = analyze(TEXT, tiny_lm).input_ids
    _, last_normed = hidden_states(tiny_lm, ids)
    assert last_normed


def test_last_layer_is_exactly_the_models_output(tiny_lm):
    ids = analyze(TEXT, tiny_lm).input_ids
    last = [logits for layer, _, logits in lens_logits(tiny_lm, ids) if layer == 2]
    with torch.no_grad():
        own = tiny_lm.model(torch.tensor([ids])).logits[0]  # (n, V)
    assert len(last) == 1 and torch.equal(last[0], own)


def test_last_row_matches_the_analysis(tiny_lm):
    result, lens = analyze(TEXT, tiny_lm), logit_lens(TEXT, tiny_lm)
    for pos, cell in zip(result.positions, lens.rows[-1]):
        assert cell.p_target == pytest.approx(pos.p_target, abs=1e-7)
        assert cell.rank == pos.rank and cell.top == pos.top[0].token
        assert cell.entropy == pytest.approx(pos.entropy, abs=1e-6)


def test_every_layer_matches_an_independent_computation(tiny_lm):
    lens = logit_lens(TEXT, tiny_lm)
    ids = [t.id for t in lens.tokens]
    logp = torch.log_softmax(_reference_logits(tiny_lm, ids), dim=-1)[:, :-1]  # (L+1, n-1, V)
    targets = torch.tensor(ids[1:])
    for layer, row in enumerate(lens.rows):
        lp = logp[layer]
        lp_t = lp.gather(1, targets[:, None])[:, 0]
        assert lens.grid("p_target")[layer] == pytest.approx(lp_t.exp().tolist(), abs=1e-6)
        assert lens.grid("rank")[layer] == ((lp > lp_t[:, None]).sum(dim=1) + 1).tolist()
        assert [c.top.id for c in row] == lp.argmax(dim=1).tolist()
        assert lens.grid("p_top")[layer] == pytest.approx(lp.max(dim=1).values.exp().tolist(), abs=1e-6)
        assert lens.grid("entropy")[layer] == pytest.approx((-(lp.exp() * lp).sum(dim=1)).tolist(), abs=1e-5)
    # the layers differ: layer 0 (embeddings) is not the output
    assert lens.grid("p_target")[0] != pytest.approx(lens.grid("p_target")[-1], abs=1e-6)


def test_chunks_give_the_same_lens(tiny_lm, monkeypatch):
    whole = logit_lens(TEXT, tiny_lm)
    monkeypatch.setattr(lens_module, "LENS_CHUNK", 3)
    ids = [t.id for t in whole.tokens]
    assert max(logits.shape[0] for _, _, logits in lens_logits(tiny_lm, ids, chunk=3)) == 3
    chunked = logit_lens(TEXT, tiny_lm)
    for name in ("p_target", "p_top", "entropy"):
        for a, b in zip(chunked.grid(name), whole.grid(name)):
            assert a == pytest.approx(b, abs=1e-6)
    assert chunked.grid("rank") == whole.grid("rank")


def test_json_contract(tiny_lm):
    data = logit_lens("the dog likes food", tiny_lm).to_dict()
    n = len(data["tokens"])
    assert data["layers"] == 3 == len(data["rows"]) and len(data["targets"]) == n - 1
    assert [r["name"] for r in data["rows"]] == ["embeddings", "layer 1", "layer 2"]
    cell = data["rows"][1]["cells"][0]
    assert cell["k"] == 1 and set(cell) == {"k", "top", "p_top", "p_target", "rank", "entropy"}
    assert set(cell["top"]) == {"id", "text", "display"}


# ---------------------------------------------------------------- refusals


def test_missing_final_norm_is_refused(tiny_lm):
    lm = dataclasses.replace(
        tiny_lm, model=copy.deepcopy(tiny_lm.model)
    )  # nn.Module attributes defeat monkeypatch's undo
    owner, name = _final_norm_owner(lm)
    setattr(owner, name, None)
    with pytest.raises(LensUnsupported, match="final norm"):
        logit_lens(TEXT, lm)
    assert issubclass(LensUnsupported, InputError)


def test_missing_head_is_refused(tiny_lm, monkeypatch):
    monkeypatch.setattr(tiny_lm.model, "get_output_embeddings", lambda: None)
    with pytest.raises(LensUnsupported, match="output head"):
        logit_lens(TEXT, tiny_lm)


def test_a_model_whose_output_is_not_its_head_is_refused(tiny_lm):
    def scale(module, args, kwargs, out):
        out.logits = out.logits * 2.0
        return out

    hook = tiny_lm.model.register_forward_hook(scale, with_kwargs=True)
    try:
        with pytest.raises(LensUnsupported, match="wrong picture"):
            logit_lens(TEXT, tiny_lm)
    finally:
        hook.remove()


@pytest.mark.parametrize(("text", "message"), [("", "empty"), ("  ", "empty"), ("the", "single token")])
def test_bad_text_is_refused(tiny_lm, text, message):
    with pytest.raises(InputError, match=message):
        logit_lens(text, tiny_lm)


# ---------------------------------------------------------------- CLI


def test_cli_json(tiny_llama_dir, run_cli):
    status, out, _ = run_cli(["lens", "the dog likes food", "--model", tiny_llama_dir, "--format", "json"])
    data = json.loads(out)
    assert status == 0 and data["layers"] == 3
    assert all(len(r["cells"]) == len(data["tokens"]) - 1 for r in data["rows"])


def test_cli_table(tiny_gpt2_dir, run_cli):
    status, out, _ = run_cli(["lens", "the dog likes food", "--model", tiny_gpt2_dir])
    lines = out.splitlines()
    assert status == 0 and "3 layers" in lines[0] and "'␣dog'" in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["layer", "layer", "embeddings"]


def test_cli_empty_text_exits_2_with_one_line(run_cli):
    status, out, err = run_cli(["lens", " "])
    assert status == 2 and out == "" and err.strip() == "visualizer: error: Please enter some text: it is empty."


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_bundled_lens_finds_paris_only_in_late_layers(bundled_lm):
    result = logit_lens("The capital of France is Paris.", bundled_lm)
    assert result.layers == bundled_lm.model.config.num_hidden_layers + 1
    k = next(k for k, t in enumerate(result.tokens) if t.text == " Paris")
    ranks = [row[k - 1].rank for row in result.rows]
    assert ranks[-1] == 1 and ranks[0] > 1
    analysis = analyze("The capital of France is Paris.", bundled_lm)
    assert result.rows[-1][k - 1].p_target == pytest.approx(analysis.positions[k - 1].p_target, abs=1e-6)
