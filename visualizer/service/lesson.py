"""The lesson's requests: one step of the walkthrough drawn from the page's analysis, without Gradio.

Steps 1-6 only redraw the analysis the page already has (no model time). Steps 7 and 8 run the model
again (a few training steps on a copy; a masked prompt and a padded batch); their numbers are kept for
the last few texts, so moving k or stepping back and forth does not run them again."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go

from ..analysis import lesson as computations
from ..analysis.one_pass import Analysis
from ..errors import InputError
from ..model.loading import AnyModel, LoadedModel, with_weights
from ..settings import Settings
from ..views import lesson as steps
from ..views.headings import style_for
from ..views.plotting import describe
from .remembered import Remembered
from .training import training_slots

STEPS = steps.STEPS
K_STEPS = (4, 5, 7)
"""The steps that show one position k (moved with ↑/↓)."""
REMEMBERED = 8
"""How many texts' training and open-question results are kept."""


@dataclass
class LessonView:
    """One step, ready for the page."""

    step: int
    k: int | None
    """The position shown, on the steps that show one; else None."""
    heading: str
    """'### 4 / 8 · What the model says at position k' (Markdown)."""
    body: str
    """The step's sentences as Markdown paragraphs, every character of user text escaped."""
    figure: go.Figure
    alt: str
    """The figure's key numbers as plain text."""


def check_step(step) -> int:
    """The step as an int in 1..STEPS; a number outside that range or not whole is an InputError."""
    ok = not isinstance(step, bool) and isinstance(step, (int, float)) and float(step).is_integer()
    if not ok or not 1 <= int(step) <= STEPS:
        raise InputError(f"The lesson has steps 1 to {STEPS}, not {step!r}.")
    return int(step)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>=$:])")


def markdown_literal(text: str) -> str:
    """Text that Markdown shows exactly as typed: HTML's <, > and & as entities, Markdown's punctuation
    backslash-escaped, so '<b>x</b> **y**' stays '<b>x</b> **y**' on the page."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def lesson_heading(step: steps.LessonStep) -> str:
    """'### 4 / 8 · What the model says at position k'."""
    return f"### {step.number} / {STEPS} · {markdown_literal(step.title)}"


def lesson_body(step: steps.LessonStep) -> str:
    """The sentences, one paragraph each, shown as typed."""
    return "\n\n".join(markdown_literal(s) for s in step.sentences)


TRAINED_RESULTS, OPEN_QUESTIONS = Remembered(REMEMBERED), Remembered(REMEMBERED)


def _key(analysis: Analysis, lm: LoadedModel) -> tuple:
    """What the slow steps' numbers depend on: the model, its tokens and labels."""
    return (lm.name, id(lm.model), tuple(analysis.input_ids), tuple(analysis.labels), analysis.top_k)


def lesson_view(
    analysis: Analysis,
    step,
    k: int | None,
    classroom: bool,
    settings: Settings,
    model: Callable[[], AnyModel],
) -> LessonView:
    """Draw step `step` of the lesson for this analysis; `model` gives the analysed model for steps 7-8."""
    step = check_step(step)
    style = style_for(classroom)
    k = steps.check_k(analysis, k) if step in K_STEPS else None
    drawn = _draw(analysis, step, k, style, settings, model)
    figure = describe(drawn.figure, drawn.alt)  # the page reads it as the figure's aria-label
    return LessonView(step, k, lesson_heading(drawn), lesson_body(drawn), figure, drawn.alt)


def _draw(analysis: Analysis, step: int, k, style, settings: Settings, model) -> steps.LessonStep:
    """The LessonStep for one step number."""
    if step == 7:
        lm = with_weights(model(), "Training (step 7)")
        slots, wait_s = training_slots(settings), settings.time_limit_s
        result = TRAINED_RESULTS.get(
            _key(analysis, lm), lambda: computations.after_training(analysis, lm, slots=slots, wait_s=wait_s)
        )
        return steps.training_step(result, k, style)
    if step == 8:
        lm = with_weights(model(), "The padded batch of step 8")
        answers = OPEN_QUESTIONS.get(_key(analysis, lm), lambda: computations.open_questions(analysis, lm))
        return steps.open_questions_step(answers, style)
    return {
        1: lambda: steps.tokens_step(analysis, style),
        2: lambda: steps.batch_step(analysis, style),
        3: lambda: steps.snapshots_step(analysis, style),
        4: lambda: steps.prediction_step(analysis, k, style),
        5: lambda: steps.crude_loss_step(analysis, k, style),
        6: lambda: steps.real_loss_step(analysis, style),
    }[step]()


def moved(step, delta: int) -> int:
    """The step after moving `delta` (±1), kept within 1..STEPS."""
    return min(STEPS, max(1, check_step(step) + delta))
