"""One generation step through an engine: vLLM chooses the token, with the same decoding settings.

Each step is one /v1/completions request: the ids so far as the prompt, max_tokens 1, `logprobs` K, and the
temperature / top-k / top-p and a per-step seed passed on (greedy is temperature 0). vLLM returns the chosen
token and the top K by the model's own log-probabilities (its default, raw log-probabilities). The
probability after the filters is computed from those K where they decide it (top-k within K, or temperature
1 with the kept set inside the K); elsewhere it stays unknown (NaN, and no count of kept tokens).
Pure: no gradio, no plotly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..model.engine import EngineError, EngineModel

if TYPE_CHECKING:
    from .generation import Decoding, Generation, Step

ID_PREFIX = "token_id:"
"""How vLLM names a token when asked for ids (`return_tokens_as_token_ids`)."""


def engine_step(gen: Generation) -> Step:
    """The next step of `gen`, chosen by its engine."""
    from .generation import Candidate, Step

    lm, dec = gen.lm, gen.decoding
    assert isinstance(lm, EngineModel)
    choice = lm.client.completion(gen.ids, **request_options(dec, gen.candidates, gen.seed, len(gen.steps)))
    chosen, ranked = _parse(choice.get("logprobs"))
    final, n_kept = after_filters(ranked, dec, len(lm.tokenizer))
    p_model = dict(ranked)
    top = [
        Candidate(lm.decoder.token(tid), p, final.get(tid, 0.0) if final is not None else math.nan, _kept(tid, final))
        for tid, p in ranked[: gen.candidates]
    ]
    p_final = math.nan if final is None else final.get(chosen, math.nan)
    return Step(len(gen.steps), lm.decoder.token(chosen), p_final, p_model[chosen], n_kept, top)


def request_options(dec: Decoding, candidates: int, seed: int | None, index: int) -> dict:
    """The completion request's options for one step: greedy is temperature 0; a sampled step gets the seed plus
    its index (one seed per step, so a run repeats)."""
    options: dict = dict(
        max_tokens=1,
        logprobs=max(candidates, dec.top_k or 0),
        return_tokens_as_token_ids=True,
        skip_special_tokens=False,
    )
    if dec.greedy:
        return {**options, "temperature": 0.0}
    options.update(temperature=float(dec.temperature or 1.0), seed=((seed or 0) + index) % 2**63)
    if dec.top_k is not None:
        options["top_k"] = int(dec.top_k)
    if dec.top_p is not None:
        options["top_p"] = float(dec.top_p)
    return options


def _parse(logprobs: object) -> tuple[int, list[tuple[int, float]]]:
    """(chosen id, [(id, p_model)] most likely first, the chosen one included) from the choice's `logprobs`."""
    try:
        chosen = _token_id(logprobs["tokens"][0])  # type: ignore[index]
        chosen_logp = float(logprobs["token_logprobs"][0])  # type: ignore[index]
        top = {_token_id(k): float(v) for k, v in logprobs["top_logprobs"][0].items()}  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise EngineError(
            "The vLLM server's answer to a generation step lacks its token or log-probabilities."
        ) from None
    top[chosen] = chosen_logp
    ranked = sorted(top.items(), key=lambda item: (-item[1], item[0]))
    return chosen, [(tid, math.exp(lp)) for tid, lp in ranked]


def _token_id(name: str) -> int:
    """'token_id:123' -> 123."""
    if not isinstance(name, str) or not name.startswith(ID_PREFIX):
        raise ValueError(name)
    return int(name[len(ID_PREFIX) :])


def after_filters(ranked: list[tuple[int, float]], dec: Decoding, vocab_size: int):
    """({id: p after temperature, top-k, top-p} for the kept candidates, how many tokens are kept), in the order
    transformers applies them; (None, None) where the K candidates do not decide it. Greedy records p with the
    filters but no temperature, as in-process."""
    temperature = 1.0 if dec.greedy else float(dec.temperature or 1.0)
    kept = ranked
    whole = False  # whether `kept` holds every kept token (else: the vocabulary's first few)
    if dec.top_k is not None:
        if dec.top_k > len(ranked):
            return None, None
        kept, whole = ranked[: dec.top_k], True
    if whole:
        weights = [p ** (1.0 / temperature) for _, p in kept]
        total = sum(weights)
        q = [w / total for w in weights]
    elif temperature == 1.0:
        q = [p for _, p in kept]  # the full softmax: the candidates' own p
    else:
        return None, None
    if dec.top_p is not None and dec.top_p < 1.0:
        cumulative, cut = 0.0, None
        for i, value in enumerate(q):
            cumulative += value
            if cumulative >= dec.top_p - 1e-9:
                cut = i + 1
                break
        if cut is None:
            return None, None
        kept, q, whole = kept[:cut], q[:cut], True
    if not whole:
        return {tid: value for (tid, _), value in zip(kept, q)}, vocab_size
    total = sum(q)
    return {tid: value / total for (tid, _), value in zip(kept, q)}, len(kept)


def _kept(token_id: int, final: dict | None) -> bool:
    """Whether the filters kept a candidate (True where that is not known: nothing says it was dropped)."""
    return True if final is None else token_id in final
