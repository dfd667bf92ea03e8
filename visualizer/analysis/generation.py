"""Generation one token at a time: what the model predicts, what the filters keep, what is chosen.

A `Generation` holds everything between two steps: the ids so far, the model's
key/value cache, the seeded sampling RNG and the steps taken. A UI keeps it and calls
`step()` on each click, or `run()` to go to the end. Each step feeds the model only
the tokens it has not read yet (the whole prompt first, then one token), so a step
costs one token's forward pass. Pure: no gradio, no plotly.

Example:
    gen = Generation(lm, "the dog", Decoding(max_new_tokens=5, temperature=0.8, top_k=20, seed=1))
    first = gen.step()   # Step: the token chosen, its p and p_model, the top candidates
    gen.run()            # the remaining steps, until EOS or max_new_tokens
    gen.to_dict()        # the JSON contract
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from transformers.generation.logits_process import (
    LogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from ..errors import InputError
from ..model.engine import EngineModel
from ..model.loading import AnyModel, LoadedModel
from ..model.tokens import Token
from .engine_generation import engine_step
from .one_pass import IGNORE_INDEX, Analysis, analyze_ids, encode

DEFAULT_NEW_TOKENS = 20
MAX_NEW_TOKENS = 200
SHOWN_CANDIDATES = 10
"""Candidates recorded per step (by the model's own probability), kept or dropped."""
STOP_EOS = "eos"
STOP_MAX = "max_new_tokens"


# ---------------------------------------------------------------- settings


def _number(value) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value) -> bool:
    """A whole number (an int, or a float without a fraction), not a bool."""
    return _number(value) and math.isfinite(value) and float(value).is_integer()


@dataclass(frozen=True)
class Decoding:
    """How each next token is chosen: greedy when `temperature` is None, else sampled.

    Sampling applies, in this order (as transformers' `generate` does): temperature,
    top-k, top-p. Greedy applies top-k/top-p only to the recorded `p` (the argmax is kept by both).
    """

    max_new_tokens: int = DEFAULT_NEW_TOKENS
    """Most new tokens, 1..MAX_NEW_TOKENS; generation also stops at EOS."""
    temperature: float | None = None
    """Logits are divided by it before sampling; None means greedy (argmax)."""
    top_k: int | None = None
    """Keep only the k most likely tokens; None keeps all."""
    top_p: float | None = None
    """Keep the smallest set of most likely tokens whose probabilities add up to >= top_p; None keeps all."""
    seed: int | None = None
    """Seed of the sampling RNG; None picks one (recorded on the Generation) so a run can be repeated."""

    def __post_init__(self):
        """Refuse settings that make no sense, with one sentence saying what is allowed."""
        n = self.max_new_tokens
        if not _whole(n) or not 1 <= n <= MAX_NEW_TOKENS:
            raise InputError(f"The number of new tokens must be a whole number from 1 to {MAX_NEW_TOKENS}, not {n}.")
        t = self.temperature
        if t is not None and (not _number(t) or not math.isfinite(t) or t <= 0):
            raise InputError(f"Temperature must be a number above 0 when sampling, not {t}.")
        if self.top_k is not None and (not _whole(self.top_k) or self.top_k < 1):
            raise InputError(f"Top-k must be a whole number, 1 or more, not {self.top_k}.")
        p = self.top_p
        if p is not None and (not _number(p) or not 0 < p <= 1):
            raise InputError(f"Top-p must be above 0 and at most 1, not {p}.")
        if self.seed is not None and (not _whole(self.seed) or not 0 <= self.seed < 2**63):
            raise InputError(f"The seed must be a whole number from 0 to 2**63-1, not {self.seed}.")

    @property
    def greedy(self) -> bool:
        """Whether the most likely token is always chosen."""
        return self.temperature is None

    def warpers(self) -> list[LogitsProcessor]:
        """transformers' logits warpers for these settings, in generate's order (none that change nothing)."""
        chain: list[LogitsProcessor] = []
        if self.temperature is not None and self.temperature != 1.0:  # not greedy
            chain.append(TemperatureLogitsWarper(float(self.temperature)))
        if self.top_k is not None:
            chain.append(TopKLogitsWarper(int(self.top_k)))
        if self.top_p is not None and self.top_p < 1.0:
            chain.append(TopPLogitsWarper(float(self.top_p)))
        return chain


# ---------------------------------------------------------------- results


@dataclass
class Candidate:
    """One of the model's most likely tokens at a step, and whether the filters kept it."""

    token: Token
    p_model: float
    """Probability before temperature and filters (the model's own softmax)."""
    p: float
    """Probability in the final distribution the token is drawn from (0 when dropped)."""
    kept: bool
    """False when top-k or top-p removed it."""

    def to_dict(self) -> dict:
        """The token's fields plus p_model, p and kept."""
        return {**self.token.to_dict(), "p_model": self.p_model, "p": self.p, "kept": self.kept}


@dataclass
class Step:
    """One generated token: the distributions it came from and the choice."""

    index: int
    """0 for the first new token."""
    token: Token
    """The chosen token."""
    p: float
    """Its probability in the final distribution (after temperature, top-k, top-p)."""
    p_model: float
    """Its probability before temperature and filters."""
    n_kept: int | None
    """How many vocabulary tokens the filters left to choose from (None: an engine's step where its top K
    does not decide it)."""
    top: list[Candidate]
    """(SHOWN_CANDIDATES,) the model's most likely tokens, most likely first, dropped ones marked."""

    def to_dict(self) -> dict:
        """The JSON contract's step object."""
        return {
            "index": self.index,
            "token": self.token.to_dict(),
            "p": self.p,
            "p_model": self.p_model,
            "n_kept": self.n_kept,
            "top": [c.to_dict() for c in self.top],
        }


# ---------------------------------------------------------------- the state between clicks


class Generation:
    """A generation in progress: `step()` adds one token, `run()` goes to the end.

    Holds the KV cache, the seeded RNG and the steps so far, so it can be kept between
    UI events. It references the loaded model, so keep it by reference, do not deep-copy it.
    """

    def __init__(
        self,
        lm: AnyModel,
        prompt: str,
        decoding: Decoding | None = None,
        bos: bool = False,
        candidates: int = SHOWN_CANDIDATES,
    ):
        self.lm = lm
        self.prompt = prompt
        self.decoding = decoding or Decoding()
        self.bos = bos
        self.candidates = candidates
        self.prompt_ids = prompt_ids(lm, prompt, self.decoding.max_new_tokens, bos)
        self.seed = self.decoding.seed
        if self.seed is None and not self.decoding.greedy:
            self.seed = random.randrange(2**31)
        self.steps: list[Step] = []
        self.stop_reason: str | None = None
        """None while running, then STOP_EOS or STOP_MAX."""
        self._warpers = self.decoding.warpers()
        self._stop_ids = stop_token_ids(lm)
        self._rng = None  # an engine samples, seeded per step (engine_generation)
        if self.seed is not None and isinstance(lm, LoadedModel):
            self._rng = torch.Generator(device=lm.device).manual_seed(int(self.seed))
        self._cache = None
        self._unread = list(self.prompt_ids)

    @property
    def done(self) -> bool:
        """Whether generation has stopped (EOS chosen, or max_new_tokens reached)."""
        return self.stop_reason is not None

    @property
    def generated_ids(self) -> list[int]:
        """(s,) the new token ids so far, a final EOS included."""
        return [s.token.id for s in self.steps]

    @property
    def ids(self) -> list[int]:
        """(P + s,) prompt ids and new ids."""
        return self.prompt_ids + self.generated_ids

    @property
    def text(self) -> str:
        """The continuation as readable text (a final EOS left out)."""
        ids = self.generated_ids
        if self.stop_reason == STOP_EOS:
            ids = ids[:-1]
        return self.lm.decoder.text_of(ids)

    def step(self) -> Step:
        """Choose one more token; an InputError once generation has stopped."""
        if self.done:
            raise InputError(f"This generation has already stopped ({self.stop_reason}); start a new one.")
        step = engine_step(self) if isinstance(self.lm, EngineModel) else self._choose(self._next_logits())
        self.steps.append(step)
        self._unread = [step.token.id]
        if step.token.id in self._stop_ids:
            self.stop_reason = STOP_EOS
        elif len(self.steps) >= self.decoding.max_new_tokens:
            self.stop_reason = STOP_MAX
        return step

    def run(self) -> list[Step]:
        """Step until EOS or max_new_tokens; returns every step (those taken before included)."""
        while not self.done:
            self.step()
        return self.steps

    def __iter__(self):
        """Yield each new step until generation stops (for streaming)."""
        while not self.done:
            yield self.step()

    def _next_logits(self) -> torch.Tensor:
        """Feed the unread ids with the cache; the logits for the next token, (V,) float32."""
        assert not isinstance(self.lm, EngineModel)
        input_ids = torch.tensor([self._unread], device=self.lm.device)  # (1, t)
        with torch.no_grad():
            out = self.lm.model(input_ids=input_ids, cache=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.cache
        return out.logits[0, -1].float()  # (V,)

    def _choose(self, logits: torch.Tensor) -> Step:
        """Apply the warpers to (V,) logits, pick a token, and record both distributions."""
        p_model, p, kept = filtered_distributions(logits, self._warpers)  # (V,) each
        if self.decoding.greedy:
            choice = int(logits.argmax())
        else:
            choice = int(torch.multinomial(p, 1, generator=self._rng))
        top_p, top_i = p_model.topk(min(self.candidates, p_model.numel()))
        top = [
            Candidate(self.lm.decoder.token(i), q, p[i].item(), bool(kept[i]))
            for i, q in zip(top_i.tolist(), top_p.tolist())
        ]
        return Step(
            index=len(self.steps),
            token=self.lm.decoder.token(choice),
            p=p[choice].item(),
            p_model=p_model[choice].item(),
            n_kept=int(kept.sum()),
            top=top,
        )

    def to_dict(self) -> dict:
        """The JSON contract: prompt, continuation text, steps and why it stopped."""
        d = self.decoding
        return {
            "model": self.lm.name,
            "prompt": self.prompt,
            "prompt_tokens": [t.to_dict() for t in self.lm.decoder.tokens(self.prompt_ids)],
            "text": self.text,
            "steps": [s.to_dict() for s in self.steps],
            "stop_reason": self.stop_reason,
            "decoding": {
                "greedy": d.greedy,
                "temperature": d.temperature,
                "top_k": d.top_k,
                "top_p": d.top_p,
                "seed": self.seed,
                "max_new_tokens": d.max_new_tokens,
            },
        }


# ---------------------------------------------------------------- pieces


def filtered_distributions(logits: torch.Tensor, warpers):
    """(V,) logits -> (p_model, p, kept): the model's softmax, the softmax after the warpers, the kept mask."""
    scores = logits[None]  # (1, V)
    p_model = torch.softmax(scores, dim=-1)[0]  # (V,)
    for warp in warpers:
        scores = warp(None, scores)  # the warpers used here never read input_ids
    kept = scores[0] > -math.inf  # (V,) bool: False where top-k / top-p dropped the token
    return p_model, torch.softmax(scores, dim=-1)[0], kept


def prompt_ids(lm: AnyModel, prompt: str, max_new_tokens: int, bos: bool = False) -> list[int]:
    """The prompt's ids, refusing a prompt that leaves no room for max_new_tokens in the context."""
    ids, truncated = encode(lm, prompt, bos=bos)
    room = lm.max_context - len(ids)
    if truncated or room < max_new_tokens:
        raise InputError(
            f"The prompt is {len(ids)}{'+' if truncated else ''} tokens; with {max_new_tokens} new tokens it "
            f"passes this model's context of {lm.max_context}. Shorten it or ask for fewer tokens."
        )
    return ids


def stop_token_ids(lm: AnyModel) -> set[int]:
    """The tokenizer's EOS id, plus any the model's generation config names as EOS (an engine's: the tokenizer's)."""
    ids = {lm.tokenizer.eos_token_id}
    configured = getattr(getattr(lm, "model", None), "generation_config", None)
    configured = getattr(configured, "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {int(i) for i in ids if i is not None}


def teacher_forcing(generation: Generation, top_k: int = 10) -> Analysis:
    """The prompt ids and the generated ids scored in one forward pass, as an Analysis.

    The prompt's labels are masked (-100), so the loss is the continuation's alone; the
    position predicting new token i has the p_target that step i recorded as p_model.
    """
    ids = generation.ids
    if len(generation.steps) == 0:
        raise InputError("Nothing has been generated yet: take a step first.")
    labels = [IGNORE_INDEX] * len(generation.prompt_ids) + generation.generated_ids
    return analyze_ids(generation.lm, ids, labels, generation.prompt + generation.text, generation.bos, top_k)
