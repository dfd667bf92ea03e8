"""Checks of what a request's fields hold, shared by every kind of request: one message each."""

from __future__ import annotations

from ..errors import InputError
from ..settings import Settings


def check_text(text, settings: Settings, what: str = "text") -> str:
    """The text if it is a non-empty string within the length limit, else an InputError."""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be a string.")
    if len(text) > settings.max_chars:
        raise InputError(f"The {what} is {len(text):,} characters; the limit is {settings.max_chars:,}.")
    if not text.strip():
        raise InputError(f"Please enter {'a prompt' if what == 'prompt' else 'some text'}: it is empty.")
    return text
