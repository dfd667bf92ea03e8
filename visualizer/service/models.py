"""Which model a request means: a configured one, or this session's trained copy."""

from __future__ import annotations

from ..analysis.trained_copies import TRAINED
from ..model.loading import AnyModel
from ..settings import Settings
from .page import get_model

TRAINED_CHOICE = "your trained copy"
"""The model-menu entry that means: this session's trained copy."""


def resolve_model(name: str, settings: Settings, session_id: str | None, on_loading=None) -> AnyModel:
    """A configured model, or this session's trained copy when `name` is TRAINED_CHOICE."""
    if name == TRAINED_CHOICE:
        return TRAINED.get(session_id or "")
    return get_model(name or settings.model, settings, on_loading)
