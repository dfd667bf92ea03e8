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


def whole_number(value, name: str, at_least: int | None = None) -> int:
    """A whole number from a form field (an int, or a float like 3.0 from a slider) as int, else an InputError
    that says what came; with `at_least`, a smaller one is refused too and the message says so.
    Example: whole_number(3.0, "N") -> 3; whole_number(-1, "N", at_least=0) -> 'N must be a whole number, 0 or more,
    not -1.'"""
    whole = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    )
    if not whole or (at_least is not None and value < at_least):
        least = "" if at_least is None else f", {at_least} or more"
        came = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"  # never a whole long string back
        raise InputError(f"{name} must be a whole number{least}, not {came}.")
    return int(value)
