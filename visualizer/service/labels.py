"""The page's labels, without Gradio: which labels a masking choice sets to -100, the main analysis
with them (tokens picked by the user carried across edits), and chat examples where only the answer counts."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from functools import cached_property

from ..analysis.masking import chat_example, mask_until_encoded
from ..analysis.one_pass import IGNORE_INDEX, Analysis, Encoded, analyze_encoded, encode_text, token_limit
from ..errors import InputError
from ..model.loading import AnyModel, is_loaded
from ..settings import Settings
from .inputs import check_text, whole_number
from .models import TRAINED_CHOICE, resolve_model
from .page import FIGURES, Views, batcher, build_views, get_model, taking_turns

MASK_MODES = ("none", "first N tokens", "up to a marker", "picked tokens")


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

    @property
    def needs_offsets(self) -> bool:
        """Whether the labels depend on where each token starts in the text: masking up to a typed marker."""
        return self.mode == "up to a marker" and not self.waiting_for_marker

    def indices(self, lm: AnyModel, encoded: Encoded) -> list[int]:
        """The label indices to mask for the encoded text (encoded with offsets when `needs_offsets`)."""
        if self.mode not in MASK_MODES:
            raise InputError(f"Unknown masking mode '{self.mode}'; choose one of: {', '.join(MASK_MODES)}.")
        if self.mode == "first N tokens":
            n = whole_number(self.first_n, "N", at_least=0)
            return list(range(min(n, lm.max_context)))  # no longer than any text
        if self.mode == "up to a marker":
            return [] if self.waiting_for_marker else mask_until_encoded(encoded, self.marker, lm)
        if self.mode == "picked tokens":
            return [int(i) for i in self.picked]
        return []


@dataclass
class EncodedOnce:
    """A request's text for one model, encoded the first time its tokens are asked for and the same `Encoded`
    after: the steps of a page request (the picks kept across an edit, whether the page already shows it, the
    analysis) share one tokenizer call, and a step that can read the held analysis's ids makes none."""

    lm: AnyModel
    text: str
    bos: bool
    max_tokens: int | None
    offsets: bool = False
    """Whether to ask for where each token starts (masking up to a marker)."""

    @cached_property
    def encoded(self) -> Encoded:
        """The text's tokens, from one tokenizer call however often this is read (a failure is not kept)."""
        return encode_text(self.lm, self.text, bos=self.bos, max_tokens=self.max_tokens, offsets=self.offsets)


def analyze_with_mask(
    text: str,
    settings: Settings,
    model: str,
    mask: MaskChoice,
    session_id: str | None = None,
    top_k=10,
    bos: bool = False,
    on_loading: Callable[[str], None] | None = None,
) -> Analysis:
    """The main analysis, with the labels the masking choice sets to -100 (and the trained copy allowed)."""
    check_text(text, settings)
    lm = resolve_model(model, settings, session_id, on_loading)
    return masked_analysis(lm, _once(lm, text, settings, mask, bos).encoded, settings, mask, top_k)


def _once(lm: AnyModel, text: str, settings: Settings, mask: MaskChoice, bos: bool) -> EncodedOnce:
    """The request's one encoding of its text: what the budget counts, the masking reads and the model is fed."""
    return EncodedOnce(lm, text, bool(bos), settings.max_tokens, offsets=mask.needs_offsets)


def masked_analysis(lm: AnyModel, encoded: Encoded, settings: Settings, mask: MaskChoice, top_k) -> Analysis:
    """The one forward pass over the encoded text, with the labels the masking choice sets to -100."""
    masked = mask.indices(lm, encoded)
    result = analyze_encoded(
        lm, encoded, top_k=top_k, masked=masked, max_top_k=settings.max_top_k, measure=batcher(settings).measure
    )
    if mask.waiting_for_marker:
        result.notices.append("Type a marker: every label up to and including it becomes -100. Nothing is masked yet.")
    return result


def page_analysis(
    text: str,
    settings: Settings,
    model: str,
    mask: MaskChoice,
    session_id: str | None = None,
    top_k=10,
    bos: bool = False,
    color_by: str = "probability",
    classroom: bool = False,
    on_loading: Callable[[str], None] | None = None,
    encoded: Encoded | None = None,
    figures: Collection[str] = FIGURES,
) -> tuple[Analysis, Views]:
    """The page's main request: the masked analysis and its views (the figures named in `figures`), made in its
    turn of the in-flight token budget (the downloads are written when asked for: `service.export_file`). One
    way through: the text is encoded once (here, or `encoded` when the request already did), and those ids go to
    the budget, the masking and the one forward pass."""
    check_text(text, settings)
    lm = resolve_model(model, settings, session_id, on_loading)
    encoded = encoded or _once(lm, text, settings, mask, bos).encoded
    with taking_turns(settings, len(encoded.ids)):
        analysis = masked_analysis(lm, encoded, settings, mask, top_k)
        return analysis, build_views(analysis, color_by, classroom, figures=figures)


@dataclass(frozen=True)
class PageAnswer:
    """What a page request shows: the analysis, its views, and the masking it ran with (picks that still count)."""

    analysis: Analysis
    views: Views
    mask: MaskChoice


def page_request(
    held: Analysis | None,
    text: str,
    settings: Settings,
    model: str,
    bos: bool,
    session_id: str | None,
    mode: str,
    first_n,
    marker: str | None,
    picked,
    top_k=10,
    color_by: str = "probability",
    classroom: bool = False,
    on_loading: Callable[[str], None] | None = None,
    skip_if_shown: bool = False,
    figures: Collection[str] = FIGURES,
) -> PageAnswer | None:
    """The page's request from its controls (`page_mask`, then `page_analysis`) with its text encoded at most once,
    whichever steps read the tokens: None when `skip_if_shown` and `held` already is this analysis. `figures`:
    the figures to draw (those of the tab the page shows)."""
    check_text(text, settings)
    lm = resolve_model(model, settings, session_id, on_loading)
    mask = MaskChoice(mode, first_n or 0, marker or "")
    once = _once(lm, text, settings, mask, bos)
    mask = replace(mask, picked=picks_still_meant(held, text, settings, model, picked, bos, session_id, once))
    if skip_if_shown and already_shown(held, text, settings, model, mask, top_k=top_k, bos=bos, once=once):
        return None
    analysis, views = page_analysis(
        text,
        settings,
        model,
        mask,
        session_id,
        top_k=top_k,
        bos=bos,
        color_by=color_by,
        classroom=classroom,
        on_loading=on_loading,
        encoded=once.encoded,
        figures=figures,
    )
    return PageAnswer(analysis, views, mask)


def already_shown(
    held: Analysis | None,
    text: str,
    settings: Settings,
    model: str,
    mask: MaskChoice,
    top_k=10,
    bos: bool = False,
    once: EncodedOnce | None = None,
) -> bool:
    """Whether `held` already is the analysis this request asks for: same text, configured model, top-K,
    BOS and labels. A masking control touched without changing which labels count (N edited while the
    mode is 'none', a marker box left as it was) then needs no forward pass. Never for the trained copy,
    which training again changes; any doubt (a bad field, a model not loaded) answers False. `once`: the
    request's text, when it encodes it for more than this (with offsets when the mask needs them)."""
    if (
        held is None
        or model == TRAINED_CHOICE
        or held.model != (model or settings.model)
        or held.text != text
        or held.bos != bool(bos)
        or held.top_k != top_k
        or not is_loaded(held.model)
    ):
        return False
    try:
        once = once or _once(get_model(held.model, settings), text, settings, mask, bos)
        encoded = Encoded(text, held.input_ids, held.truncated, held.bos)  # the same text and BOS: held's ids
        if mask.needs_offsets:  # ... and where each token starts, which only the tokenizer says
            encoded = once.encoded
        masked = set(mask.indices(once.lm, encoded))
    except Exception:  # noqa: BLE001 - the full analysis reports it
        return False
    return held.labels == [IGNORE_INDEX if i in masked else t for i, t in enumerate(held.input_ids)]


def page_mask(
    held: Analysis | None,
    text: str,
    settings: Settings,
    model: str,
    bos: bool,
    session_id: str | None,
    mode: str,
    first_n,
    marker: str | None,
    picked,
) -> MaskChoice:
    """The page's masking controls as a MaskChoice for `text`, keeping only the picks that still name
    the token that was picked in `held` (the analysis the page shows)."""
    picks = picks_still_meant(held, text, settings, model, picked, bos, session_id)
    return MaskChoice(mode, first_n or 0, marker or "", picks)


def picks_still_meant(
    held: Analysis | None,
    text: str,
    settings: Settings,
    model: str,
    picked,
    bos: bool = False,
    session_id: str | None = None,
    once: EncodedOnce | None = None,
) -> tuple[int, ...]:
    """The picked label indices that still name the token the user picked: those whose tokens, up to
    and including it, the new text shares with the held one. Picks are indices, so after an edit
    earlier in the text (or a new text) index 3 would silently mean another token. `once`: the request's
    text, when it encodes it for more than this."""
    picked = tuple(int(i) for i in picked or ())
    if held is None or not picked:
        return picked
    try:
        once = once or EncodedOnce(resolve_model(model, settings, session_id), text, bool(bos), settings.max_tokens)
        if (held.text, held.bos, held.model) == (text, bool(bos), once.lm.name):  # its ids: held's, cut to this limit
            return tuple(i for i in picked if i < min(len(held.input_ids), token_limit(once.lm, settings.max_tokens)))
        ids = once.encoded.ids
    except Exception:  # noqa: BLE001 - the analysis itself reports a bad text or model
        return ()
    before = held.input_ids
    same = next((i for i, (a, b) in enumerate(zip(before, ids)) if a != b), min(len(before), len(ids)))
    return tuple(i for i in picked if i < same)


def chat_text(prompt: str, answer: str, settings: Settings, model: str) -> tuple[str, int]:
    """A chat example's full text and how many prompt tokens to mask (only the answer counts)."""
    example = chat_example(prompt, answer, get_model(model or settings.model, settings))
    return example.text, example.prompt_tokens
