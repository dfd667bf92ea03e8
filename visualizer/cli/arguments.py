"""What the commands share: the --model option, the text checks, and a parser whose errors are one line."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ..settings import Settings

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        """Print `prog: error: message` only (no usage block) and exit 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def add_model_argument(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """The shared --model option."""
    parser.add_argument(
        "--model",
        default=settings.model,
        help="bundled name, local directory, .gguf file or hub id (default %(default)s; env VISUALIZER_MODEL)",
    )


def checked_texts(texts: list[str], settings: Settings) -> list[str]:
    """Refuse empty texts, and texts longer than the configured maximum, before loading a model."""
    for text in texts:
        if not text.strip():
            raise InputError("Please enter some text: it is empty.")
        if len(text) > settings.max_chars:
            raise InputError(f"The text is {len(text):,} characters; the limit is {settings.max_chars:,}.")
    return texts
