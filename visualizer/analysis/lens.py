"""The logit lens: what each layer would predict if the model stopped there.

`output_hidden_states=True` gives L+1 states per position: the embeddings (layer 0),
then each block's output (layers 1..L). Each state goes through the model's final
norm and its output head, as the last one does, and becomes a distribution over the
vocabulary. In transformers 5 the last state of GPT-2 and Llama is already
final-normed, so it goes through the head only; this is checked at run time against
the model's own logits, and a model that fits neither reading is refused rather than
drawn wrong. Logits exist for one layer and one chunk of positions at a time.
Pure: no gradio, no plotly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..model.loading import LoadedModel
from ..model.tokens import Token
from .one_pass import encode

FINAL_NORM_PATHS = (
    "model.norm",  # Llama, Mistral, Qwen, Gemma, ...
    "transformer.ln_f",  # GPT-2, GPT-J, Bloom
    "gpt_neox.final_layer_norm",  # GPT-NeoX, Pythia
    "model.decoder.final_layer_norm",  # OPT
)
"""Where a causal LM keeps the norm applied before its output head."""
LENS_CHUNK = 512
"""Positions turned into logits at a time (one layer's (LENS_CHUNK, V) floats alive at once)."""


class LensUnsupported(InputError):
    """A model whose final norm or output head cannot be found or does not explain its output."""


@dataclass
class LensCell:
    """What one layer predicts at one position."""

    top: Token
    """The layer's most likely next token."""
    p_top: float
    """Its probability."""
    p_target: float
    """Probability the layer gives the true next token."""
    rank: int
    """Rank of the true next token (1 = the layer's top choice)."""
    entropy: float
    """Entropy of the layer's distribution, nats."""

    def to_dict(self) -> dict:
        """The JSON contract's cell object."""
        return {
            "top": self.top.to_dict(),
            "p_top": self.p_top,
            "p_target": self.p_target,
            "rank": self.rank,
            "entropy": self.entropy,
        }


@dataclass
class LogitLens:
    """Every layer's prediction at every position of one text."""

    model: str
    text: str
    tokens: list[Token]
    """(n,) the tokens fed to the model."""
    rows: list[list[LensCell]]
    """(L+1, n-1): rows[layer][k-1] predicts tokens[k]; layer 0 is the embeddings, layer L the model's output."""
    bos: bool = False
    truncated: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        """How many rows: the embeddings plus each block (L+1)."""
        return len(self.rows)

    def grid(self, name: str) -> list[list]:
        """(L+1, n-1) values of one cell field, e.g. grid('p_target'), for heatmaps."""
        return [[getattr(cell, name) for cell in row] for row in self.rows]

    @staticmethod
    def layer_name(layer: int) -> str:
        """'embeddings' for layer 0, else 'layer N'."""
        return "embeddings" if layer == 0 else f"layer {layer}"

    def to_dict(self) -> dict:
        """The JSON contract: tokens, the layer count, and one row of cells per layer."""
        return {
            "model": self.model,
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "bos": self.bos,
            "truncated": self.truncated,
            "notices": self.notices,
            "layers": self.layers,
            "targets": [{"k": k, **t.to_dict()} for k, t in enumerate(self.tokens) if k > 0],
            "rows": [
                {
                    "layer": i,
                    "name": self.layer_name(i),
                    "cells": [{"k": k + 1, **c.to_dict()} for k, c in enumerate(row)],
                }
                for i, row in enumerate(self.rows)
            ],
        }


# ---------------------------------------------------------------- the model's pieces


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The norm the model applies before its head, or LensUnsupported."""
    for path in FINAL_NORM_PATHS:
        module: object = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise LensUnsupported(
        f"The logit lens needs the model's final norm, and this {type(model).__name__} has none where "
        f"it was looked for ({', '.join(FINAL_NORM_PATHS)}); it cannot show the layers."
    )


def output_head(model: torch.nn.Module) -> torch.nn.Module:
    """The model's output head (hidden state -> logits), or LensUnsupported."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if getter is not None else None
    if not isinstance(head, torch.nn.Module):
        raise LensUnsupported(
            f"The logit lens needs the model's output head, and this {type(model).__name__} has none."
        )
    return head


def hidden_states(lm: LoadedModel, ids: list[int]) -> tuple[list[torch.Tensor], bool]:
    """One forward pass -> (L+1 states of shape (n, d), whether the last is already final-normed)."""
    norm, head = final_norm(lm.model), output_head(lm.model)
    with torch.no_grad():
        out = lm.model(input_ids=torch.tensor([ids], device=lm.device), output_hidden_states=True, logits_to_keep=1)
        states = [h[0] for h in out.hidden_states]  # L+1 x (n, d)
        last, own = states[-1][-1:], out.logits[0, -1:].float()  # (1, d), (1, V)
        if torch.allclose(head(last).float(), own, rtol=1e-4, atol=1e-4):
            return states, True
        if torch.allclose(head(norm(last)).float(), own, rtol=1e-4, atol=1e-4):
            return states, False
    raise LensUnsupported(
        f"This {type(lm.model).__name__}'s output is not its head applied to its last hidden state "
        "(it scales or caps its logits), so the logit lens would show a wrong picture."
    )


def lens_logits(lm: LoadedModel, ids: list[int], chunk: int = LENS_CHUNK):
    """Yield (layer, start, logits (c, V) float32) for each layer and chunk of positions, one chunk at a time."""
    norm, head = final_norm(lm.model), output_head(lm.model)
    states, last_normed = hidden_states(lm, ids)
    for layer, state in enumerate(states):
        skip_norm = last_normed and layer == len(states) - 1
        for start in range(0, state.shape[0], chunk):
            h = state[start : start + chunk]  # (c, d)
            with torch.no_grad():
                logits = head(h if skip_norm else norm(h)).float()  # (c, V)
            yield layer, start, logits


# ---------------------------------------------------------------- the lens


def logit_lens(text: str, lm: LoadedModel, bos: bool = False, max_tokens: int | None = None) -> LogitLens:
    """Every layer's top token, p(true next token), its rank and the entropy, at every position of `text`."""
    final_norm(lm.model)  # refuse an unsupported model before any work
    output_head(lm.model)
    ids, truncated = encode(lm, text, bos=bos, max_tokens=max_tokens)
    if len(ids) < 2:
        raise InputError("The text is a single token: there is no next token to predict. Add a word.")
    targets = torch.tensor(ids[1:], device=lm.device)  # (n-1,)
    rows: list[list[LensCell]] = []
    for layer, start, logits in lens_logits(lm, ids):
        if start == 0:
            rows.append([])
        tgt = targets[start : start + logits.shape[0]]  # (c',) the last position has no target
        rows[layer].extend(_cells(lm, logits[: tgt.shape[0]], tgt))
    notices = [f"The text was cut to the first {len(ids)} tokens."] if truncated else []
    return LogitLens(lm.name, text, lm.decoder.tokens(ids), rows, bos, truncated, notices)


def _cells(lm: LoadedModel, logits: torch.Tensor, targets: torch.Tensor) -> list[LensCell]:
    """(c, V) logits and (c,) targets -> c cells."""
    if logits.shape[0] == 0:
        return []
    logp = torch.log_softmax(logits, dim=-1)  # (c, V)
    logp_t = logp.gather(1, targets[:, None])  # (c, 1)
    rank = ((logp > logp_t).sum(dim=1) + 1).tolist()
    entropy = (-(logp.exp() * logp).nan_to_num().sum(dim=1)).tolist()
    top_logp, top_id = logp.max(dim=1)  # (c,), (c,)
    return [
        LensCell(lm.decoder.token(i), p_top, p_t, int(r), e)
        for i, p_top, p_t, r, e in zip(
            top_id.tolist(), top_logp.exp().tolist(), logp_t[:, 0].exp().tolist(), rank, entropy
        )
    ]
