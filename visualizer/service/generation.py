"""What the Generate tab (and the /generate API) does per request, without Gradio.

A generation lives between clicks as a `GenerationRun` that the page keeps by reference
(Gradio's State stores a handler's return value as is; it deep-copies only a State's
initial value, and that is None here). Each click adds one step (one token's forward
pass with the KV cache) or runs to the end; the views are then drawn from the run, and
teacher forcing (one more forward pass) is recomputed only when the steps changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from ..analysis.generation import (
    DEFAULT_NEW_TOKENS,
    STOP_EOS,
    STOP_MAX,
    Decoding,
    Generation,
    teacher_forcing,
)
from ..analysis.one_pass import Analysis, validate_top_k
from ..errors import InputError
from ..settings import Settings
from ..views import generation_figures, plotting
from .inputs import check_text, whole_number
from .page import get_model

PAGE_CANDIDATES = 10
"""Candidates recorded per step on the page."""


PROMPT_EXAMPLE = "The capital of France is"


GREEDY, SAMPLE = "greedy", "sample"


def _int_or_none(value, name: str) -> int | None:
    """A whole number as int (`whole_number`: a float like 5.0 from a slider becomes 5), None as None."""
    return None if value is None else whole_number(value, name)


def decoding(max_new_tokens=DEFAULT_NEW_TOKENS, temperature=None, top_k=None, top_p=None, seed=None) -> Decoding:
    """The API's and CLI's reading: None switches a filter off, no temperature means greedy."""
    return Decoding(
        max_new_tokens=whole_number(max_new_tokens, "The number of new tokens"),  # never None: no limit is no run
        temperature=temperature,
        top_k=_int_or_none(top_k, "Top-k"),
        top_p=top_p,
        seed=_int_or_none(seed, "The seed"),
    )


def page_decoding(max_new_tokens, mode: str, temperature, top_k, top_p, seed) -> Decoding:
    """The page's reading of its controls: top-k 0 and top-p 1 are 'off', an empty seed picks one.

    Greedy reads neither the temperature nor the seed, so changing them does not restart a greedy run.
    """
    if mode not in (GREEDY, SAMPLE):
        raise InputError(f"Choose '{GREEDY}' or '{SAMPLE}', not {mode!r}.")
    sample = mode == SAMPLE
    return decoding(
        max_new_tokens,
        temperature if sample else None,
        None if top_k in (0, 0.0, None) else top_k,
        None if top_p is None or top_p >= 1 else top_p,
        seed if sample else None,
    )


@dataclass
class GenerationRun:
    """A generation kept between clicks, what started it, and its teacher forcing for the steps so far."""

    generation: Generation
    request: tuple
    """(model, prompt, decoding, bos, candidates): a click with other values starts a new run."""
    _forced: Analysis | None = field(default=None, repr=False)

    def teacher_forced(self) -> Analysis | None:
        """Teacher forcing of the prompt and the steps so far (None before the first step); one pass per change."""
        gen = self.generation
        if not gen.steps:
            return None
        if self._forced is None or len(self._forced.tokens) != len(gen.ids):
            self._forced = teacher_forcing(gen)
        return self._forced


def start_generation(
    prompt,
    settings: Settings,
    model: str | None = None,
    dec: Decoding | None = None,
    bos: bool = False,
    candidates=PAGE_CANDIDATES,
    on_loading: Callable[[str], None] | None = None,
) -> GenerationRun:
    """Validate a request and set up a generation (no token chosen yet)."""
    check_text(prompt, settings, "prompt")
    dec = dec or Decoding()
    if dec.max_new_tokens > settings.max_new_tokens:
        raise InputError(f"At most {settings.max_new_tokens} new tokens are allowed here, not {dec.max_new_tokens}.")
    candidates = validate_top_k(candidates, settings.max_top_k)
    name = model or settings.model
    lm = get_model(name, settings, on_loading)
    gen = Generation(lm, prompt, dec, bos=bool(bos), candidates=candidates)
    return GenerationRun(gen, (name, prompt, dec, bool(bos), candidates))


def advance(
    run: GenerationRun | None,
    prompt,
    settings: Settings,
    model: str | None,
    dec: Decoding,
    bos: bool = False,
    to_end: bool = False,
    candidates=PAGE_CANDIDATES,
    on_loading: Callable[[str], None] | None = None,
) -> GenerationRun:
    """One more step (or all the rest) of the held run, or of a new one when the request changed."""
    request = (model or settings.model, prompt, dec, bool(bos), candidates)
    if run is None or run.request != request:
        run = start_generation(prompt, settings, model, dec, bos, candidates, on_loading)
    if to_end:
        run_until_done(run.generation, settings.time_limit_s)
    else:
        run.generation.step()
    return run


def run_until_done(gen: Generation, time_limit_s: float) -> bool:
    """Step until the generation ends or the time limit passes; True when it ended."""
    deadline = time.monotonic() + time_limit_s
    while not gen.done:
        if time.monotonic() > deadline:
            return False
        gen.step()
    return True


def generate(
    prompt,
    settings: Settings,
    model: str | None = None,
    max_new_tokens=DEFAULT_NEW_TOKENS,
    temperature=None,
    top_k=None,
    top_p=None,
    seed=None,
    candidates=None,
    bos: bool = False,
) -> dict:
    """The API: generate to the end and return the JSON contract of `python -m visualizer generate --format json`."""
    dec = decoding(max_new_tokens, temperature, top_k, top_p, seed)
    run = start_generation(prompt, settings, model, dec, bos, settings.top_k if candidates is None else candidates)
    if not run_until_done(run.generation, settings.time_limit_s):
        raise InputError(
            f"Generating took longer than the time limit ({settings.time_limit_s} s); ask for fewer new tokens."
        )
    return run.generation.to_dict()


@dataclass
class GenerationViews:
    """Every figure and table of a generation so far, ready for display."""

    summary: str
    """Plain text: settings, progress, why it stopped, teacher forcing in one line."""
    steps: go.Figure
    text: go.Figure
    step: go.Figure
    forced: go.Figure
    table: pd.DataFrame
    step_choices: list[tuple[str, int]]
    """(label, 1-based step) for a step picker."""


def generation_views(run: GenerationRun, classroom: bool = False, step: int | None = None) -> GenerationViews:
    """Draw every view of the run (no model call but teacher forcing when the steps changed).

    `step`: 1-based step for the before/after bars; None or out of range = the latest.
    """
    gen, style = run.generation, plotting.CLASSROOM if classroom else plotting.NORMAL
    forced = run.teacher_forced()
    if forced is None:
        raise InputError(generation_figures.NOTHING_GENERATED)
    return GenerationViews(
        summary=generation_summary(run),
        steps=generation_figures.steps_heatmap(gen, style),
        text=generation_figures.continuation_strip(gen, style),
        step=generation_figures.step_distribution(gen, _step_index(run, step), style),
        forced=generation_figures.forced_lines(gen, forced, style),
        table=generation_figures.forced_table(gen, forced),
        step_choices=[(f"{s.index + 1}: {s.token.display}", s.index + 1) for s in gen.steps],
    )


def step_figure(run: GenerationRun, step: int | None, classroom: bool = False) -> go.Figure:
    """The before/after bars of one 1-based step (the latest when `step` is missing or out of range)."""
    style = plotting.CLASSROOM if classroom else plotting.NORMAL
    return generation_figures.step_distribution(run.generation, _step_index(run, step), style)


def _step_index(run: GenerationRun, step) -> int:
    """0-based index of a 1-based step from a picker; the latest when it is missing or out of range."""
    n = len(run.generation.steps)
    ok = isinstance(step, (int, float)) and not isinstance(step, bool) and 1 <= step <= n
    return int(step) - 1 if ok else n - 1


def generation_summary(run: GenerationRun) -> str:
    """Three lines: model, settings and progress; what happens next; teacher forcing."""
    gen = run.generation
    n, limit = len(gen.steps), gen.decoding.max_new_tokens
    head = f"{gen.lm.name} · {generation_figures.decoding_text(gen)} · {n} of {limit} new tokens"
    stops: dict[str | None, str] = {
        STOP_EOS: "Stopped: the model chose its end-of-text token.",
        STOP_MAX: f"Stopped: {limit} new tokens, the limit.",
    }
    nxt = stops.get(gen.stop_reason, "Next token adds one step; Run to end goes on until EOS or the limit.")
    lines = [head, nxt]
    forced = run.teacher_forced()
    if forced is not None:
        tf = generation_figures.teacher_p(gen, forced)
        gap = max(abs(a - s.p_model) for a, s in zip(tf, gen.steps))
        loss = "" if forced.shown_loss is None else f"; loss of the continuation = {forced.shown_loss:.3f} nats"
        lines.append(
            f"Teacher forcing (one pass over prompt + continuation) gives each new token the model's p "
            f"to within {gap:.1e}{loss}."
        )
    return "\n".join(lines)
