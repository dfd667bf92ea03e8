"""The Train view's request: a few optimizer steps on this session's copy of the model, the walkthrough's
table before and after; the process's training slots, and freeing the copy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

import plotly.graph_objects as go

from ..analysis.one_pass import Analysis, analyze
from ..analysis.trained_copies import TRAINED, train_for_session
from ..analysis.training import TrainingRun, TrainingSlots
from ..errors import InputError
from ..model.loading import with_weights
from ..settings import Settings
from ..views import label_figures, walkthrough
from ..views.headings import headed, number, style_for
from .labels import MaskChoice, analyze_with_mask
from .models import TRAINED_CHOICE, resolve_model


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
    session_id: str | None,
    text: str,
    settings: Settings,
    model: str,
    steps=10,
    optimizer: str = "adamw",
    lr=None,
    mask: MaskChoice = MaskChoice(),
    bos: bool = False,
    classroom: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainingViews:
    """Train this session's copy on `text`; the walkthrough's table before and after, side by side (a browser
    session only: an InputError without one)."""
    if not session_id:
        raise InputError("Training needs a browser session.")
    lm = with_weights(resolve_model(model, settings, session_id), "Training")
    before = analyze_with_mask(text, settings, model, mask, session_id, bos=bos)
    masked = [i for i, label in enumerate(before.labels) if label == -100]
    if isinstance(steps, (int, float)) and steps > settings.max_train_steps:
        raise InputError(f"At most {settings.max_train_steps} steps are allowed here, not {steps}.")
    run = train_for_session(
        session_id,
        text,
        lm,
        steps=steps,
        optimizer=optimizer,
        lr=lr or None,
        masked=masked,
        bos=bool(bos),
        progress=_with_deadline(progress, settings.time_limit_s),
        slots=training_slots(settings),
    )
    assert run.trained is not None  # a run the service made holds its trained copy
    after = analyze(text, run.trained, masked=masked, bos=bool(bos), max_tokens=settings.max_tokens)
    curve, heatmap, before_fig, after_fig = training_figures(run, before, after, classroom)
    return TrainingViews(
        run=run,
        curve=curve,
        heatmap=heatmap,
        before=before_fig,
        after=after_fig,
        summary=training_summary(run, before, after),
        analyses=(before, after),
    )


def training_slots(settings: Settings) -> TrainingSlots:
    """The process's training slots: VISUALIZER_TRAINING_CONCURRENCY runs at once (the page's queue lets
    no more than that many start, and shows the others their place)."""
    return _slots(max(1, settings.training_concurrency))


@cache
def _slots(size: int) -> TrainingSlots:
    return TrainingSlots(size)


def training_figures(run: TrainingRun, before: Analysis, after: Analysis, classroom: bool = False) -> tuple:
    """(loss curve, positions x steps heatmap, the walkthrough's table before, and after) in one style."""
    style = style_for(classroom)
    return (
        label_figures.training_curve(run, style),
        label_figures.training_heatmap(run, style),
        headed(walkthrough.sentence_vocab_heatmap(before, style), "Before training", before),
        headed(walkthrough.sentence_vocab_heatmap(after, style), f"After {len(run.history) - 1} steps", after),
    )


def _with_deadline(progress, time_limit_s: float):
    """A progress callback that also stops training (InputError) once the time limit has passed."""
    deadline = time.monotonic() + time_limit_s

    def report(step: int, total: int, loss: float) -> None:
        if progress is not None:
            progress(step, total, loss)
        if step < total and time.monotonic() > deadline:
            raise InputError(
                f"Training stopped after {step} of {total} steps: it ran past the time limit "
                f"({time_limit_s} s). Try fewer steps."
            )

    return report


def training_summary(run: TrainingRun, before: Analysis, after: Analysis) -> str:
    """Plain text: loss before and after, time per step, and what the copy is."""
    steps = len(run.history) - 1
    lines = [
        f"Trained a private copy of {run.model} for {steps} steps ({run.optimizer}, lr {run.lr:g}) "
        f"in {run.seconds:.1f} s ({run.seconds / max(steps, 1):.2f} s per step).",
        f"loss before: {number(before.loss)} → after: {number(after.loss)}  (the shared model is unchanged)",
        f"Pick '{TRAINED_CHOICE}' in the model menu to analyse any text with it; Reset frees it.",
        *run.notices,
    ]
    return "\n".join(lines)


def reset_training(session_id: str | None) -> str:
    """Free this session's trained copy."""
    freed = TRAINED.release(session_id or "")
    return "The trained copy was freed; analyses use the shared model." if freed else "There was no trained copy."
