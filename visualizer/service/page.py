"""What the app and its API do per request, without Gradio: validate, analyse, render views.

app.py wires these to components; keeping them here makes them testable without a server.
One request runs one forward pass (`run_analysis`); every view is drawn from that
`Analysis` (`build_views`), so switching colours, classroom mode or the detail
position costs no model time. Requests that overlap share their forward pass (`batcher`),
and hold their tokens of an in-flight budget while analysed and drawn (`taking_turns`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import pandas as pd
import plotly.graph_objects as go

from ..analysis.one_pass import Analysis, Encoded, analyze, analyze_encoded, encode_text, validate_top_k
from ..errors import InputError, ModelLoadError
from ..model.adapters import check_adapter_base
from ..model.loading import AnyModel, is_loaded, load_model
from ..settings import Settings
from ..views import plotting, predictions, tables, walkthrough
from ..views.loss import loss_bars
from ..views.report import loss_line
from .batching import ForwardBatcher, TokenBudget
from .inputs import check_text, whole_number
from .memory import release_freed_memory

log = logging.getLogger(__name__)

EXAMPLES = [
    "the dog likes food",
    "Le chat dort sur le canapé parce qu'il fait chaud.",
    "def add(a, b):\n    return a + b\n",
    "The cat sat on the mat. It was warm in the sun, and the cat was happy to stay there all "
    "afternoon while the children played in the garden.",
    "The capital of France is Paris.",
]


FIGURES = ("token_strip", "top_k", "sentence_vocab", "loss", "detail")
"""The figures of a page's analysis, by their names in `Views`."""


@dataclass
class Views:
    """The figures and tables of one analysis, ready for display (a figure not asked for is None)."""

    token_strip: go.Figure | None
    top_k: go.Figure | None
    sentence_vocab: go.Figure | None
    loss: go.Figure | None
    detail: go.Figure | None
    labels: pd.DataFrame
    positions: pd.DataFrame
    summary: str
    """Plain text: the loss line and any notices."""


def check_model_allowed(name: str, settings: Settings) -> str:
    """The model name if the settings allow it (and, for an adapter, its base too), else an InputError listing
    what is allowed (a ModelLoadError for an adapter whose base is not offered)."""
    if not isinstance(name, str) or not settings.allows(name):
        allowed = ", ".join(settings.models)
        raise InputError(f"Model '{name}' is not offered here; choose one of: {allowed}.")
    check_adapter_base(name, settings.allows)
    return name


def get_model(name: str, settings: Settings, on_loading: Callable[[str], None] | None = None) -> AnyModel:
    """An allowed model from the registry, telling `on_loading` when it must be loaded first."""
    check_model_allowed(name, settings)
    _REQUESTED.set()
    if on_loading is not None and not is_loaded(name):
        on_loading(f"Loading {name} (first time only)…")
    return load_model(name)


_REQUESTED = threading.Event()
"""Set by the first request for a model: from then on, warming up would only slow real requests."""


def preload(settings: Settings) -> threading.Thread:
    """Start loading the default model in the background while the page is built and served, then,
    if no request has come yet, run one small analysis and draw it (the first use of each library
    path is the slowest), so the first visitor gets an answer at once; a failure is logged here and
    shown to the request that needs the model."""

    def load() -> None:
        try:
            lm = load_model(settings.model)
            if not _REQUESTED.is_set():
                build_views(analyze(EXAMPLES[0], lm, top_k=settings.top_k))
        except Exception:  # noqa: BLE001 - the first request retries and reports it
            log.warning("preloading %s failed", settings.model, exc_info=True)

    thread = threading.Thread(target=load, name="preload-model", daemon=True)
    thread.start()
    return thread


def run_analysis(
    text: str,
    settings: Settings,
    model: str | None = None,
    top_k: int | float = 10,
    bos: bool = False,
    mask_first: int | float = 0,
    on_loading: Callable[[str], None] | None = None,
) -> Analysis:
    """Validate a request, then run the one forward pass (shared with overlapping requests)."""
    check_text(text, settings)
    lm = get_model(model or settings.model, settings, on_loading)
    first, top_k = whole_number(mask_first, "mask_first"), validate_top_k(top_k, settings.max_top_k)
    return _analyze(lm, encode_text(lm, text, bos=bool(bos), max_tokens=settings.max_tokens), settings, top_k, first)


def analysis_contract(
    text: str,
    settings: Settings,
    model: str | None = None,
    sentence_vocab: bool = True,
    top_k: int | float = 10,
    bos: bool = False,
    mask_first: int | float = 0,
) -> dict:
    """The JSON contract for one request (the API's answer), made in its turn of the token budget: the text
    is encoded once, and those ids are what the budget counts and the forward pass reads."""
    check_text(text, settings)
    lm = get_model(model or settings.model, settings)
    encoded = encode_text(lm, text, bos=bool(bos), max_tokens=settings.max_tokens)
    with taking_turns(settings, len(encoded.ids)):
        mask_first = whole_number(mask_first, "mask_first")
        analysis = _analyze(lm, encoded, settings, top_k, mask_first, exact_table=bool(sentence_vocab))
        return analysis.to_dict(sentence_vocab=bool(sentence_vocab))


def _analyze(
    lm: AnyModel, encoded: Encoded, settings: Settings, top_k, mask_first: int, exact_table: bool = True
) -> Analysis:
    """The request's one forward pass over its encoded text, shared with overlapping requests (`exact_table`: see
    `analyze_ids`)."""
    return analyze_encoded(
        lm,
        encoded,
        top_k=top_k,
        mask_first=mask_first,
        max_top_k=settings.max_top_k,
        measure=batcher(settings).measure,
        exact_table=exact_table,
    )


@cache
def _shared(batch_size: int, batch_tokens: int) -> tuple[ForwardBatcher, TokenBudget]:
    """The process's forward batcher and in-flight token budget for these limits."""
    size, tokens = max(1, batch_size), max(1, batch_tokens)
    return ForwardBatcher(max_requests=size, max_tokens=tokens), TokenBudget(2 * tokens)


def batcher(settings: Settings) -> ForwardBatcher:
    """Where analyses run their forward pass: shared by requests that overlap."""
    return _shared(settings.batch_size, settings.batch_tokens)[0]


@contextmanager
def taking_turns(settings: Settings, n_tokens: int):
    """Hold a text's `n_tokens` (its encoded ids) of the in-flight budget while it is analysed and drawn (long
    texts take turns, so memory stays bounded); afterwards hand freed memory back to the OS."""
    try:
        with _shared(settings.batch_size, settings.batch_tokens)[1].hold(n_tokens, wait_s=settings.time_limit_s):
            yield
    finally:
        release_freed_memory()


def build_views(
    analysis: Analysis,
    color_by: str = "probability",
    classroom: bool = False,
    detail_k: int | None = None,
    figures: Collection[str] = FIGURES,
) -> Views:
    """Draw the views of one analysis (no model call): every figure, or those named in `figures` (the others
    None: the page draws only the figures of the tab it shows, and the others when their tab opens)."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures {sorted(unknown)}; the figures are {', '.join(FIGURES)}")
    style = plotting.CLASSROOM if classroom else plotting.NORMAL
    draw = {
        "token_strip": lambda: predictions.token_strip(analysis, color_by=color_by, style=style),
        "top_k": lambda: predictions.top_k_heatmap(analysis, style=style),
        "sentence_vocab": lambda: walkthrough.sentence_vocab_heatmap(analysis, style=style),
        "loss": lambda: loss_bars(analysis, style=style),
        "detail": lambda: detail_figure(analysis, detail_k, classroom),
    }
    return Views(
        **{name: draw[name]() if name in figures else None for name in FIGURES},
        labels=tables.labels_table(analysis),
        positions=tables.for_display(tables.position_table(analysis)),
        summary=summary_text(analysis),
    )


def detail_figure(analysis: Analysis, k: int | None, classroom: bool = False) -> go.Figure:
    """The position-detail view; the last position when `k` is missing or out of range."""
    last = len(analysis.positions)
    k = last if not isinstance(k, (int, float)) or not 1 <= int(k) <= last else int(k)
    return walkthrough.position_detail(analysis, k, style=plotting.CLASSROOM if classroom else plotting.NORMAL)


def summary_text(analysis: Analysis) -> str:
    """The loss line plus notices, as plain text."""
    n = len(analysis.tokens)
    head = f"{analysis.model} · {n} tokens · {len(analysis.positions)} predictions"
    return "\n".join([head, loss_line(analysis), *analysis.notices])


def user_message(err: Exception) -> str:
    """One sentence for the page; unexpected errors are logged with their traceback."""
    if isinstance(err, (InputError, ModelLoadError)):
        return str(err)
    log.exception("unexpected error while analysing")
    return "Something went wrong while analysing this text; the server logged the details."
