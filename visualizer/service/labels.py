"""Requests about labels, without Gradio: masking choices, padded batches, shift mistakes, training.

app.py wires these to the "Masking", "Batches", "Shift mistakes" and "Train" views (Compare: service_compare).
Each returns plain results (dataclasses, figures, DataFrames, text) or raises InputError.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import cache
from typing import Callable

import pandas as pd
import plotly.graph_objects as go

from ..analysis.batches import BatchResult, analyze_batch
from ..analysis.masking import chat_example, mask_until
from ..analysis.one_pass import IGNORE_INDEX, Analysis, analyze, encode
from ..analysis.shifts import ShiftComparison, double_shift, off_by_one
from ..analysis.training import TRAINED, TrainingRun, TrainingSlots, train_for_session
from ..errors import InputError
from ..model.loading import LoadedModel, is_loaded
from ..settings import Settings
from ..views import label_figures, plotting, tables, walkthrough
from .page import Views, batcher, build_views, check_text, get_model, taking_turns

MASK_MODES = ("none", "first N tokens", "up to a marker", "picked tokens")
TRAINED_CHOICE = "your trained copy"
"""The model-menu entry that means: this session's trained copy."""
MISTAKES = {"double shift (labels shifted by hand)": double_shift, "off by one (logit k read as token k)": off_by_one}


@dataclass(frozen=True)
class MaskChoice:
    """Which labels to set to -100: a mode and its argument."""

    mode: str = "none"
    first_n: int = 0
    marker: str = ""
    picked: tuple[int, ...] = ()

    @property
    def waiting_for_marker(self) -> bool:
        """'up to a marker' chosen before a marker is typed: nothing is masked yet (not an error)."""
        return self.mode == "up to a marker" and self.marker == ""

    def indices(self, text: str, lm: LoadedModel, bos: bool, max_tokens: int | None) -> list[int]:
        """The label indices to mask for `text`."""
        if self.mode not in MASK_MODES:
            raise InputError(f"Unknown masking mode '{self.mode}'; choose one of: {', '.join(MASK_MODES)}.")
        if self.mode == "first N tokens":
            return list(range(min(_whole(self.first_n, "N"), lm.max_context)))  # no longer than any text
        if self.mode == "up to a marker":
            return [] if self.waiting_for_marker else mask_until(text, self.marker, lm, bos=bos, max_tokens=max_tokens)
        if self.mode == "picked tokens":
            return [int(i) for i in self.picked]
        return []


def _whole(value, name: str) -> int:
    """A non-negative whole number from a form field, or an InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not float(value).is_integer():
        raise InputError(f"{name} must be a whole number, 0 or more.")
    return int(value)


def resolve_model(name: str, settings: Settings, session_id: str | None, on_loading=None) -> LoadedModel:
    """A configured model, or this session's trained copy when `name` is TRAINED_CHOICE."""
    if name == TRAINED_CHOICE:
        return TRAINED.get(session_id or "")
    return get_model(name or settings.model, settings, on_loading)


def analyze_with_mask(
    text: str, settings: Settings, model: str, mask: MaskChoice, session_id: str | None = None,
    top_k=10, bos: bool = False, on_loading: Callable[[str], None] | None = None,
) -> Analysis:
    """The main analysis, with the labels the masking choice sets to -100 (and the trained copy allowed)."""
    check_text(text, settings)
    lm = resolve_model(model, settings, session_id, on_loading)
    masked = mask.indices(text, lm, bool(bos), settings.max_tokens)
    result = analyze(text, lm, top_k=top_k, masked=masked, bos=bool(bos), max_tokens=settings.max_tokens,
                     max_top_k=settings.max_top_k, measure=batcher(settings).measure)
    if mask.waiting_for_marker:
        result.notices.append("Type a marker: every label up to and including it becomes -100. Nothing is masked yet.")
    return result


def page_analysis(
    text: str, settings: Settings, model: str, mask: MaskChoice, session_id: str | None = None,
    top_k=10, bos: bool = False, color_by: str = "probability", classroom: bool = False,
    on_loading: Callable[[str], None] | None = None,
) -> tuple[Analysis, Views]:
    """The page's main request: the masked analysis and every view, made in its turn of the in-flight
    token budget (the downloads are written when asked for: `service.export_file`)."""
    check_text(text, settings)
    lm = resolve_model(model, settings, session_id, on_loading)
    with taking_turns(settings, lm, text, bos):
        analysis = analyze_with_mask(text, settings, model, mask, session_id, top_k=top_k, bos=bos)
        return analysis, build_views(analysis, color_by, classroom)


def already_shown(held: Analysis | None, text: str, settings: Settings, model: str, mask: MaskChoice,
                  top_k=10, bos: bool = False) -> bool:
    """Whether `held` already is the analysis this request asks for: same text, configured model, top-K,
    BOS and labels. A masking control touched without changing which labels count (N edited while the
    mode is 'none', a marker box left as it was) then needs no forward pass. Never for the trained copy,
    which training again changes; any doubt (a bad field, a model not loaded) answers False."""
    if (held is None or model == TRAINED_CHOICE or held.model != (model or settings.model) or held.text != text
            or held.bos != bool(bos) or held.top_k != top_k or not is_loaded(held.model)):
        return False
    try:
        masked = set(mask.indices(text, get_model(held.model, settings), bool(bos), settings.max_tokens))
    except Exception:  # noqa: BLE001 - the full analysis reports it
        return False
    return held.labels == [IGNORE_INDEX if i in masked else t for i, t in enumerate(held.input_ids)]


def page_mask(held: Analysis | None, text: str, settings: Settings, model: str, bos: bool, session_id: str | None,
              mode: str, first_n, marker: str | None, picked) -> MaskChoice:
    """The page's masking controls as a MaskChoice for `text`, keeping only the picks that still name
    the token that was picked in `held` (the analysis the page shows)."""
    picks = picks_still_meant(held, text, settings, model, picked, bos, session_id)
    return MaskChoice(mode, first_n or 0, marker or "", picks)


def picks_still_meant(held: Analysis | None, text: str, settings: Settings, model: str, picked, bos: bool = False,
                      session_id: str | None = None) -> tuple[int, ...]:
    """The picked label indices that still name the token the user picked: those whose tokens, up to
    and including it, the new text shares with the held one. Picks are indices, so after an edit
    earlier in the text (or a new text) index 3 would silently mean another token."""
    picked = tuple(int(i) for i in picked or ())
    if held is None or not picked:
        return picked
    try:
        lm = resolve_model(model, settings, session_id)
        ids, _ = encode(lm, text, bos=bool(bos), max_tokens=settings.max_tokens)
    except Exception:  # noqa: BLE001 - the analysis itself reports a bad text or model
        return ()
    before = held.input_ids
    same = next((i for i, (a, b) in enumerate(zip(before, ids)) if a != b), min(len(before), len(ids)))
    return tuple(i for i in picked if i < same)


def chat_text(prompt: str, answer: str, settings: Settings, model: str) -> tuple[str, int]:
    """A chat example's full text and how many prompt tokens to mask (only the answer counts)."""
    example = chat_example(prompt, answer, get_model(model or settings.model, settings))
    return example.text, example.prompt_tokens


# ---------------------------------------------------------------- batches


def run_batch(texts: str, settings: Settings, model: str, mask_pads: bool, classroom: bool = False):
    """One sentence per line -> (result, grid figure, losses figure, row table, explanation)."""
    lines = [line for line in (texts or "").splitlines() if line.strip()]
    if len(lines) < 2:
        raise InputError("Give at least two sentences, one per line, to make a batch.")
    result = analyze_batch(lines, get_model(model or settings.model, settings), mask_pads=bool(mask_pads))
    return (result, *batch_figures(result, classroom), tables.for_display(batch_table(result)), result.explanation)


def batch_figures(result: BatchResult, classroom: bool = False) -> tuple[go.Figure, go.Figure]:
    """The batch's grid and its losses, in the normal or classroom style (redrawn when that changes)."""
    style = _style(classroom)
    return label_figures.batch_grid(result, style), label_figures.batch_losses(result, style)


BATCH_COLUMNS = ("row", "text", "tokens", "counted", "loss_sum", "loss")
SHIFT_COLUMNS = ("k", "context", "target", "p", "loss", "mistake scores", "mistake p", "mistake loss")


def batch_table(result: BatchResult) -> pd.DataFrame:
    """One row per sentence: its length, counted terms, loss sum and own loss; then the batch totals."""
    rows = [{"row": i, "text": r.text, "tokens": r.length, "counted": r.counted, "loss_sum": r.loss_sum, "loss": r.loss}
            for i, r in enumerate(result.rows)]
    rows.append({"row": "batch", "text": "(the model's batch loss)", "tokens": sum(r.length for r in result.rows),
                 "counted": sum(r.counted for r in result.rows), "loss_sum": result.loss_sum, "loss": result.batch_loss})
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)


# ---------------------------------------------------------------- shift mistakes


def run_shift(text: str, settings: Settings, model: str, mistake: str, bos: bool = False, classroom: bool = False):
    """(comparison, figure, table, explanation) for one shift mistake on `text`."""
    if mistake not in MISTAKES:
        raise InputError(f"Unknown mistake '{mistake}'.")
    check_text(text, settings)
    comparison = MISTAKES[mistake](text, get_model(model or settings.model, settings), bos=bool(bos),
                                   max_tokens=settings.max_tokens)
    return comparison, shift_figure(comparison, classroom), tables.for_display(shift_table(comparison)), comparison.explanation


def shift_figure(comparison: ShiftComparison, classroom: bool = False) -> go.Figure:
    """The right numbers beside the mistaken ones, in the normal or classroom style."""
    return label_figures.shift_comparison(comparison, _style(classroom))


def shift_table(comparison: ShiftComparison) -> pd.DataFrame:
    """Right and mistaken numbers side by side, one row per position."""
    return pd.DataFrame([
        {"k": r.k, "context": r.context, "target": r.target.display, "p": r.p, "loss": r.loss,
         "mistake scores": None if r.wrong_target is None else r.wrong_target.display,
         "mistake p": r.wrong_p, "mistake loss": r.wrong_loss}
        for r in comparison.rows
    ], columns=SHIFT_COLUMNS)


# ---------------------------------------------------------------- training


@dataclass
class TrainingViews:
    """A training run and everything drawn from it."""

    run: TrainingRun
    curve: go.Figure
    heatmap: go.Figure
    before: go.Figure
    after: go.Figure
    summary: str
    analyses: tuple[Analysis, Analysis]
    """The text analysed before and after training (to redraw the figures in another style)."""

    @property
    def redrawable(self) -> tuple[TrainingRun, Analysis, Analysis]:
        """What `training_figures` needs, without the trained model: a page keeps this for an hour,
        and the trained copies held at once must stay bounded (VISUALIZER_MAX_TRAINED_COPIES)."""
        return (replace(self.run, trained=None), *self.analyses)


def run_training(
    session_id: str, text: str, settings: Settings, model: str, steps=10, optimizer: str = "adamw", lr=None,
    mask: MaskChoice = MaskChoice(), bos: bool = False, classroom: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainingViews:
    """Train this session's copy on `text`; the walkthrough's table before and after, side by side."""
    if not session_id:
        raise InputError("Training needs a browser session.")
    before = analyze_with_mask(text, settings, model, mask, session_id, bos=bos)
    lm = resolve_model(model, settings, session_id)
    masked = [i for i, label in enumerate(before.labels) if label == -100]
    if isinstance(steps, (int, float)) and steps > settings.max_train_steps:
        raise InputError(f"At most {settings.max_train_steps} steps are allowed here, not {steps}.")
    run = train_for_session(session_id, text, lm, steps=steps, optimizer=optimizer, lr=lr or None,
                            masked=masked, bos=bool(bos), progress=_with_deadline(progress, settings.time_limit_s),
                            slots=training_slots(settings))
    after = analyze(text, run.trained, masked=masked, bos=bool(bos), max_tokens=settings.max_tokens)
    curve, heatmap, before_fig, after_fig = training_figures(run, before, after, classroom)
    return TrainingViews(run=run, curve=curve, heatmap=heatmap, before=before_fig, after=after_fig,
                         summary=training_summary(run, before, after), analyses=(before, after))


def training_slots(settings: Settings) -> TrainingSlots:
    """The process's training slots: VISUALIZER_TRAINING_CONCURRENCY runs at once (the page's queue lets
    no more than that many start, and shows the others their place)."""
    return _slots(max(1, settings.training_concurrency))


@cache
def _slots(size: int) -> TrainingSlots:
    return TrainingSlots(size)


def training_figures(run: TrainingRun, before: Analysis, after: Analysis, classroom: bool = False) -> tuple:
    """(loss curve, positions x steps heatmap, the walkthrough's table before, and after) in one style."""
    style = _style(classroom)
    return (label_figures.training_curve(run, style), label_figures.training_heatmap(run, style),
            _headed(walkthrough.sentence_vocab_heatmap(before, style), "Before training", before),
            _headed(walkthrough.sentence_vocab_heatmap(after, style), f"After {len(run.history) - 1} steps", after))


def _with_deadline(progress, time_limit_s: float):
    """A progress callback that also stops training (InputError) once the time limit has passed."""
    deadline = time.monotonic() + time_limit_s

    def report(step: int, total: int, loss: float) -> None:
        if progress is not None:
            progress(step, total, loss)
        if step < total and time.monotonic() > deadline:
            raise InputError(f"Training stopped after {step} of {total} steps: it ran past the time limit "
                             f"({time_limit_s} s). Try fewer steps.")

    return report


def training_summary(run: TrainingRun, before: Analysis, after: Analysis) -> str:
    """Plain text: loss before and after, time per step, and what the copy is."""
    steps = len(run.history) - 1
    lines = [
        f"Trained a private copy of {run.model} for {steps} steps ({run.optimizer}, lr {run.lr:g}) "
        f"in {run.seconds:.1f} s ({run.seconds / max(steps, 1):.2f} s per step).",
        f"loss before: {_num(before.loss)} → after: {_num(after.loss)}  (the shared model is unchanged)",
        f"Pick '{TRAINED_CHOICE}' in the model menu to analyse any text with it; Reset frees it.",
        *run.notices,
    ]
    return "\n".join(lines)


def reset_training(session_id: str | None) -> str:
    """Free this session's trained copy."""
    freed = TRAINED.release(session_id or "")
    return "The trained copy was freed; analyses use the shared model." if freed else "There was no trained copy."


# ---------------------------------------------------------------- titles shared with Compare


HEADER_NAME_CHARS = 60
"""A model name in a compared figure's title keeps its last this many characters."""


def _headed(fig: go.Figure, label: str, analysis: Analysis, loss_bars: bool = False) -> go.Figure:
    """One of two figures to compare (A and B, before and after), titled with which one it is and its loss
    ('A: SmolLM2-135M-Instruct · loss = 6.366 nats') instead of the view's own title (the page names the
    view). Loss bars' subtitle, which repeats the loss, is cut to the rest; any other (rows left out) stays."""
    title = f"{plotting.escape_text(label)} · loss = {_num(analysis.loss)} nats"
    subtitle = fig.layout.title.subtitle.text or ""
    if loss_bars and analysis.counted:
        subtitle = f"the mean of the {analysis.counted} counted bars · perplexity = {_num(analysis.perplexity, 2)}"
    fig.update_layout(title_text=title, title_subtitle_text=subtitle)
    return fig


def short_name(name: str, chars: int = HEADER_NAME_CHARS) -> str:
    """A model name cut to its last `chars` characters: '/home/me/models/tiny-gpt2' -> '…/models/tiny-gpt2'."""
    return name if len(name) <= chars else "…" + name[-(chars - 1):]


def _style(classroom: bool) -> plotting.FigureStyle:
    """The figure style for classroom mode or not."""
    return plotting.CLASSROOM if classroom else plotting.NORMAL


def _num(value: float | None, digits: int = 3) -> str:
    """'10.387' or '—'."""
    return "—" if value is None else f"{value:.{digits}f}"
