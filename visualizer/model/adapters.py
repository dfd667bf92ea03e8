"""A PEFT (LoRA) adapter directory: checked, applied to a private copy of its base model, merged in.

An adapter directory (what `PeftModel.save_pretrained` writes) holds `adapter_config.json`, which names its
kind (`peft_type`) and its base model (`base_model_name_or_path`), and `adapter_model.safetensors`. The base
is any name the registry loads (the bundled name, a local directory, a .gguf file, a hub id) but not a vLLM
entry (its weights are elsewhere) nor another adapter; on a server it must itself be an allowed model
(`check_adapter_base`, called by the service with the settings' allow-list).

The adapter is merged (`merge_and_unload`) into a deep copy of the base's weights, never into the shared
base, which PEFT would change in place. Merged, it is a plain transformers model: the forward pass costs
what the base's does, and every view that reaches inside a model (the logit lens's final norm, training's
copy, generation's KV cache, export) reads it like any other; its numbers are PEFT's own merged model's.
Only safetensors are read: `adapter_model.bin` is pickle and refused with the reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelLoadError

if TYPE_CHECKING:  # annotations only: peft and transformers are imported where an adapter is applied
    from transformers import PreTrainedModel

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_FILES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")
KINDS = ("LORA",)
"""The adapter kinds that load: LoRA (DoRA and rsLoRA included), which merge exactly into the weights."""


@dataclass(frozen=True)
class AdapterConfig:
    """What an adapter directory says about itself, checked."""

    path: Path
    base: str
    """The base model's name as written in adapter_config.json (`base_model_name_or_path`)."""
    kind: str


def is_adapter(name: str) -> bool:
    """Whether `name` is a directory holding an adapter_config.json."""
    if not isinstance(name, str) or not name.strip() or name.startswith("vllm:"):
        return False
    try:
        return (Path(name).expanduser() / CONFIG_FILE).is_file()
    except (OSError, ValueError, RuntimeError):  # a name too long for a path, a NUL byte, an unknown ~user
        return False


def adapter_base(name: str) -> str | None:
    """The base model named by adapter `name`, or None when `name` is not an adapter directory."""
    return read_adapter_config(name).base if is_adapter(name) else None


def check_adapter_base(name: str, allows: Callable[[str], bool]) -> None:
    """A ModelLoadError when `name` is an adapter whose base `allows` refuses (what a server offers is the
    base's list too: an adapter's config cannot make it load, or download, a model it does not offer)."""
    base = adapter_base(name)
    if base is not None and not allows(base):
        raise ModelLoadError(
            f"'{name}' is a LoRA adapter on '{base}', which is not a model offered here: "
            "add the base to VISUALIZER_MODELS too."
        )


def read_adapter_config(name: str) -> AdapterConfig:
    """The checked config of adapter directory `name`: a LoRA adapter naming its base, with safetensors weights."""
    path = Path(name).expanduser()
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"'{name}' has an unreadable {CONFIG_FILE}: {err}.") from err
    if not isinstance(raw, dict):
        raise ModelLoadError(f"'{name}' has a {CONFIG_FILE} that is not a JSON object.")
    kind = raw.get("peft_type")
    if kind not in KINDS:
        raise ModelLoadError(f"'{name}' is a {kind or 'untyped'} adapter; only LoRA adapters load here.")
    base = raw.get("base_model_name_or_path")
    if not isinstance(base, str) or not base.strip():
        raise ModelLoadError(f"'{name}' names no base model (base_model_name_or_path in {CONFIG_FILE}).")
    if not (path / WEIGHTS_FILE).is_file():
        pickled = [p for p in PICKLE_FILES if (path / p).is_file()]
        if pickled:
            raise ModelLoadError(
                f"'{name}' holds its adapter weights only as pickle ({pickled[0]}), which is not loaded for "
                "safety; save the adapter with safetensors (save_pretrained does by default)."
            )
        raise ModelLoadError(f"'{name}' holds no {WEIGHTS_FILE}.")
    return AdapterConfig(path, base.strip(), kind)


def merged_copy(base: PreTrainedModel, config: AdapterConfig) -> PreTrainedModel:
    """A deep copy of `base` with the adapter's weights loaded and merged in; `base` itself is left as it was.
    Refuses an adapter whose weights do not cover every module it adapts (a missing key would silently be
    the base's own numbers)."""
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors import safe_open

    try:
        with safe_open(str(config.path / WEIGHTS_FILE), framework="pt") as stored:
            keys = set(stored.keys())
        wrapped = PeftModel.from_pretrained(copy.deepcopy(base), str(config.path), is_trainable=False)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"Could not apply adapter '{config.path}' to '{config.base}': {first_line}") from err
    missing = sorted(set(get_peft_model_state_dict(wrapped, save_embedding_layers=False)) - keys)  # no hub call
    if missing:
        raise ModelLoadError(
            f"Adapter '{config.path}' lacks {len(missing)} of its weights for '{config.base}' (first: {missing[0]})."
        )
    return wrapped.merge_and_unload()
