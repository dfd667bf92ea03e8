"""A loaded model written out as a standard Hugging Face checkpoint: what the weight cache holds, what
`visualizer export-model` writes, and what a vLLM server (or any transformers program) reads.

The directory holds `config.json` (without GGUF's `quantization_config`: the weights are already plain
floats), `generation_config.json` where the model has one, the tokenizer's files (its chat template
among them) and `model.safetensors`. Weights that are one tensor under two names (tied input and output
embeddings) are stored once, under the name transformers' `save_pretrained` keeps: the input embedding
(`model.embed_tokens.weight`), which is the name vLLM reads; it ties `lm_head` to it and ignores a stored
`lm_head.weight`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InputError

if TYPE_CHECKING:  # annotations only: the loader imports this module
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from .loading import LoadedModel

WEIGHTS_FILE = "model.safetensors"


def check_export_directory(directory: str | Path) -> Path:
    """`directory` as a Path, refused when it exists and is not an empty directory."""
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"'{path}' is a file, not a directory: give a new or empty directory to export into.")
    if path.is_dir() and any(path.iterdir()):
        raise InputError(f"'{path}' is not empty: give a new or empty directory to export into.")
    return path


def export_checkpoint(
    model: PreTrainedModel | LoadedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    directory: str | Path,
) -> dict[str, int]:
    """Write `model` (a transformers model, or a `LoadedModel` whose tokenizer is used when `tokenizer` is None)
    and its tokenizer into `directory` (created if missing; refused when not empty); returns {file name: bytes}."""
    weights: Any = model if isinstance(model, torch.nn.Module) else getattr(model, "model", None)
    if tokenizer is None:
        tokenizer = getattr(model, "tokenizer", None)
    if not _holds_weights(weights) or tokenizer is None:
        raise TypeError("export_checkpoint needs a model held in this process (torch weights) and its tokenizer")
    path = check_export_directory(directory)
    path.mkdir(parents=True, exist_ok=True)

    config = copy.deepcopy(weights.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(path)
    generation = getattr(weights, "generation_config", None)
    if generation is not None:
        generation.save_pretrained(path)
    tokenizer.save_pretrained(path)

    from safetensors.torch import save_file

    save_file(checkpoint_state_dict(weights), str(path / WEIGHTS_FILE), metadata={"format": "pt"})
    # safetensors creates the file private (0600); give it the mode the config got, so a server running as
    # another user (a vLLM container) can read the whole directory.
    os.chmod(path / WEIGHTS_FILE, (path / "config.json").stat().st_mode & 0o777)
    return {p.name: p.stat().st_size for p in sorted(path.iterdir()) if p.is_file()}


def checkpoint_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors as safetensors stores them: on the CPU, contiguous, each shared tensor once.

    Names that alias one tensor (tied embeddings) keep one: not a name the model declares as tied to another
    (`_tied_weights_keys`, e.g. `lm_head.weight`), else the first in the model's own order. A tensor that only
    shares storage with another (a view of part of it) is copied, as safetensors refuses shared memory."""
    state = model.state_dict()
    tied_targets = _tied_targets(model)
    by_storage: dict[int, list[str]] = {}
    for name, tensor in state.items():
        by_storage.setdefault(tensor.untyped_storage().data_ptr(), []).append(name)

    out: dict[str, torch.Tensor] = {}
    for names in by_storage.values():
        aliases: dict[tuple, list[str]] = {}
        for name in names:
            tensor = state[name]
            aliases.setdefault((tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride())), []).append(name)
        for group in aliases.values():
            kept = next((n for n in group if n not in tied_targets), group[0])
            tensor = state[kept].detach().to("cpu")
            out[kept] = tensor.clone() if len(aliases) > 1 else tensor.contiguous()
    order = {name: i for i, name in enumerate(state)}
    return dict(sorted(out.items(), key=lambda item: order[item[0]]))


def _holds_weights(model: object) -> bool:
    """Whether `model` is a torch module (an engine's model holds no weights here)."""
    return isinstance(model, torch.nn.Module)


def _tied_targets(model: torch.nn.Module) -> set[str]:
    """Names the model declares as tied to another weight (the keys of transformers' `_tied_weights_keys`)."""
    declared: Iterable[str] = getattr(model, "_tied_weights_keys", None) or ()
    return set(declared)
