"""What the lesson's last two steps compute beyond the page's one forward pass: a few training steps on a
copy of the model, and the walkthrough's open questions (a masked prompt, a padded batch).

Steps 1-6 of the lesson read the page's `Analysis` as it is; these two need the model again."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.loading import LoadedModel
from .batches import BatchResult, analyze_batch
from .one_pass import Analysis, analyze
from .training import SLOTS, BeforeAfter, TrainingSlots, train_before_after

LESSON_STEPS = 3
"""Optimizer steps the lesson takes on its sentence (the walkthrough's "after training")."""
LESSON_SEED = 0
"""The lesson trains with a fixed seed, so the class sees the same numbers each time."""


def after_training(
    analysis: Analysis,
    lm: LoadedModel,
    steps: int = LESSON_STEPS,
    slots: TrainingSlots = SLOTS,
    wait_s: float = 0.0,
) -> BeforeAfter:
    """Train a copy of `lm` for `steps` AdamW steps on the analysed text (its labels as they are) and
    analyse the text again with the copy; `lm` itself is not changed, and the copy is dropped (only the
    numbers are kept)."""
    masked = [i for i, label in enumerate(analysis.labels) if label < 0]
    result = train_before_after(
        analysis.text,
        lm,
        top_k=analysis.top_k,
        masked=masked,
        bos=analysis.bos,
        max_tokens=len(analysis.tokens),
        steps=steps,
        seed=LESSON_SEED,
        slots=slots,
        wait_s=wait_s,
    )
    result.run.trained = None
    return result


def prompt_length(n_tokens: int) -> int:
    """How many leading tokens the lesson treats as a prompt and masks: about half, at least two (the first
    token is never predicted, so masking one changes nothing), and never every prediction.

    Example: prompt_length(4) -> 2 ("the dog" masked, "likes" and "food" counted); prompt_length(2) -> 0."""
    return 0 if n_tokens < 3 else max(2, n_tokens // 2)


@dataclass
class OpenQuestions:
    """The walkthrough's open questions answered on the lesson's text: when do labels differ from input_ids?"""

    full: Analysis
    """Labels = input_ids: every prediction counts."""
    masked: Analysis | None
    """The first `prompt_tokens` labels set to -100 (None when the text is too short to have a prompt)."""
    prompt_tokens: int
    companion: str | None
    """A shorter text batched with the lesson's text, so that one row is padded (None when too short)."""
    pads_masked: BatchResult | None
    """The padded batch with pad labels -100, as a collator should make them."""
    pads_counted: BatchResult | None
    """The same batch with the pads left in the labels: the batch loss now includes predicting pads."""


def companion_text(analysis: Analysis) -> str | None:
    """The text of the first half of the analysed tokens (at least two), to batch beside the full text so
    that the shorter row is padded; None for a text of fewer than three tokens. 'the dog likes food' -> 'the dog'."""
    start = 1 if analysis.bos else 0
    words = analysis.tokens[start:]
    if len(words) < 3:
        return None
    half = words[: max(2, len(words) // 2)]
    return analysis.decoder.text_of([t.id for t in half])


def open_questions(analysis: Analysis, lm: LoadedModel) -> OpenQuestions:
    """Answer both open questions on the analysed text with real forward passes."""
    prompt = prompt_length(len(analysis.tokens))
    masked = (
        analyze(
            analysis.text,
            lm,
            top_k=analysis.top_k,
            bos=analysis.bos,
            max_tokens=len(analysis.tokens),
            mask_first=prompt,
        )
        if prompt
        else None
    )
    companion = companion_text(analysis)
    batches = (
        [analyze_batch([analysis.text, companion], lm, mask_pads=m, bos=analysis.bos) for m in (True, False)]
        if companion
        else [None, None]
    )
    return OpenQuestions(analysis, masked, prompt, companion, *batches)
