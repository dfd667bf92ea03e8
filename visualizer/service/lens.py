"""What the Layers tab (and the /lens API) does per request, without Gradio: the logit lens, computed on
request and cached per (model, text, bos)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import plotly.graph_objects as go

from ..analysis.lens import LogitLens, logit_lens
from ..model.loading import is_loaded, load_model, with_weights
from ..settings import Settings
from ..views import lens_figures, plotting
from .inputs import check_text
from .page import get_model

LENS_MAX_TOKENS = 256
"""The lens reads at most this many tokens: it costs one head projection per layer and position."""


LENS_CACHE = 16
"""Lenses kept, most recently used first."""


@functools.lru_cache(maxsize=LENS_CACHE)
def _cached_lens(model: str, text: str, bos: bool) -> LogitLens:
    """The lens of the first LENS_MAX_TOKENS tokens, once per (model, text, bos)."""
    return logit_lens(text, with_weights(load_model(model), "The Layers view"), bos=bos, max_tokens=LENS_MAX_TOKENS)


def lens_for(
    text,
    settings: Settings,
    model: str | None = None,
    bos: bool = False,
    on_loading: Callable[[str], None] | None = None,
) -> LogitLens:
    """Validate a request, then the (cached) logit lens of its first LENS_MAX_TOKENS tokens."""
    check_text(text, settings)
    name = model or settings.model
    with_weights(get_model(name, settings, on_loading), "The Layers view")  # refuses a model not offered; loads once
    return _cached_lens(name, text, bool(bos))


def lens_figure(lens: LogitLens, value: str = "p_target", classroom: bool = False) -> go.Figure:
    """The layers x positions heatmap of a lens, coloured by `value`."""
    style = plotting.CLASSROOM if classroom else plotting.NORMAL
    vocab = len(load_model(lens.model).tokenizer) if is_loaded(lens.model) else None
    return lens_figures.lens_heatmap(lens, value, style, vocab_size=vocab)


def lens_summary(lens: LogitLens) -> str:
    """One or two lines: what was read, and any notice."""
    head = (
        f"{lens.model} · {lens.layers - 1} layers + the embeddings · {len(lens.tokens)} tokens "
        f"(the lens reads at most {LENS_MAX_TOKENS})"
    )
    return "\n".join([head, *lens.notices])
