"""A model served by a vLLM engine, read through vLLM's own HTTP API (its OpenAI-compatible server).

An entry `vllm:http://HOST:PORT/SERVED_NAME` names one served model (the name may hold slashes). The engine
runs the forward pass; this process keeps the model's tokenizer, so token ids, display forms and masking are
the same as for an in-process model. Only entries from the settings are ever loaded (see Settings.allows):
a request cannot make the server call a URL of its choosing.

Every failure (server down, slow, HTTP error, malformed answer, unknown served name) becomes one
`EngineError` sentence; retries are bounded and every call has a time limit, so nothing hangs.
The API key (VISUALIZER_ENGINE_API_KEY) goes out as a Bearer token only, never into a message or log.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import httpx

from ..errors import ModelLoadError
from .tokens import TokenDecoder

if TYPE_CHECKING:  # annotations only: transformers is imported where a tokenizer is loaded
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

ENGINE_PREFIX = "vllm:"
API_KEY_ENV = "VISUALIZER_ENGINE_API_KEY"
RETRIES = 2
"""Extra attempts after a refused connection or a 502/503/504; a time-out is not retried."""
RETRY_PAUSE_S = 0.5
CONNECT_TIMEOUT_S = 5.0


class EngineError(ModelLoadError):
    """The engine could not give an answer: its one sentence is shown as is."""


@dataclass(frozen=True)
class EngineEntry:
    """Where a served model lives: the server's base URL and the model's served name."""

    base_url: str
    """'http://127.0.0.1:8000': scheme, host and port, nothing else."""
    served_name: str

    @property
    def name(self) -> str:
        """The entry as written in the settings."""
        return f"{ENGINE_PREFIX}{self.base_url}/{self.served_name}"


def is_engine_entry(name: object) -> bool:
    """Whether a model name is an engine entry (`vllm:...`)."""
    return isinstance(name, str) and name.startswith(ENGINE_PREFIX)


def parse_entry(name: str) -> EngineEntry:
    """`vllm:http://HOST:PORT/SERVED_NAME` -> its EngineEntry, or an EngineError saying what the form is."""
    form = "write it as vllm:http://HOST:PORT/SERVED_NAME"
    if not is_engine_entry(name):
        raise EngineError(f"'{name[:80]}' is not an engine entry; {form}.")
    parts = urlsplit(name[len(ENGINE_PREFIX) :])
    served = parts.path.lstrip("/")
    if parts.scheme not in ("http", "https") or not parts.hostname or not served:
        raise EngineError(f"The engine entry '{name[:80]}' is incomplete; {form}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise EngineError(f"An engine entry holds no user, password, query or fragment; {form}.")
    try:
        port = parts.port
    except ValueError:
        raise EngineError(f"The engine entry '{name[:80]}' has an invalid port; {form}.") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return EngineEntry(f"{parts.scheme}://{host}{f':{port}' if port else ''}", served)


class EngineClient:
    """vLLM's HTTP API for one served model: every call bounded in time, retried a bounded number of times."""

    def __init__(self, entry: EngineEntry, timeout_s: float = 60.0, api_key: str | None = None):
        self.entry = entry
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=entry.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the environment: the configured URL is the one called
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def served_models(self) -> list[dict]:
        """GET /v1/models: what the server serves, each with `id`, `root` and `max_model_len`."""
        data = self._call("GET", "/v1/models").get("data")
        if not isinstance(data, list) or not all(isinstance(m, dict) and "id" in m for m in data):
            raise self._malformed("/v1/models has no list of models")
        return data

    def tokenize(self, text: str) -> list[int]:
        """POST /tokenize: the engine's own token ids for `text`, no special tokens added."""
        body = {"model": self.entry.served_name, "prompt": text, "add_special_tokens": False}
        tokens = self._call("POST", "/tokenize", body).get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise self._malformed("/tokenize gave no list of token ids")
        return tokens

    def completion(self, prompt: list[int], **options) -> dict:
        """POST /v1/completions with token ids as the prompt: its first choice."""
        return self.completions([prompt], **options)[0]

    def completions(self, prompts: list[list[int]], **options) -> list[dict]:
        """POST /v1/completions with several token-id prompts in one request: one choice per prompt, in order."""
        body = {"model": self.entry.served_name, "prompt": prompts, **options}
        choices = self._call("POST", "/v1/completions", body).get("choices")
        if not isinstance(choices, list) or len(choices) != len(prompts):
            raise self._malformed(f"/v1/completions gave no choice for each of its {len(prompts)} prompts")
        if not all(isinstance(c, dict) and isinstance(c.get("index", 0), int) for c in choices):
            raise self._malformed("/v1/completions gave a choice that is not an object")
        ordered = sorted(choices, key=lambda c: c.get("index", 0))
        if [c.get("index", i) for i, c in enumerate(ordered)] != list(range(len(prompts))):
            raise self._malformed("/v1/completions numbered its choices out of range")
        return ordered

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One API call as a JSON object, with bounded retries; every failure an EngineError sentence."""
        where = self.entry.base_url
        for attempt in range(RETRIES + 1):
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TimeoutException:
                raise EngineError(f"The vLLM server at {where} did not answer within {self.timeout_s:g} s.") from None
            except httpx.TransportError as err:
                if attempt < RETRIES:
                    time.sleep(RETRY_PAUSE_S * (attempt + 1))
                    continue
                raise EngineError(
                    f"The vLLM server at {where} cannot be reached ({type(err).__name__}); is it running?"
                ) from None
            if response.status_code in (502, 503, 504) and attempt < RETRIES:
                time.sleep(RETRY_PAUSE_S * (attempt + 1))
                continue
            return self._json(response, path)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _json(self, response: httpx.Response, path: str) -> dict:
        """The answer's JSON object, or an EngineError with the server's own message for an HTTP error."""
        if response.status_code >= 400:
            kind = "refused the request" if response.status_code < 500 else "failed"
            message = _error_message(response)
            raise EngineError(
                f"The vLLM server {kind} (HTTP {response.status_code} on {path}){': ' + message if message else '.'}"
            )
        try:
            data = response.json()
        except ValueError:
            raise self._malformed(f"{path} did not answer with JSON") from None
        if not isinstance(data, dict):
            raise self._malformed(f"{path} did not answer with a JSON object")
        return data

    def _malformed(self, what: str) -> EngineError:
        return EngineError(f"The vLLM server at {self.entry.base_url} gave an answer this app cannot read: {what}.")


def _error_message(response: httpx.Response, limit: int = 300) -> str:
    """The server's error text (vLLM: {"error": {"message": ...}} or {"message": ...}), one line, cut to `limit`."""
    try:
        data = response.json()
    except ValueError:
        return ""
    error = data.get("error", data) if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if not isinstance(message, str):
        return ""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class EngineModel:
    """A served model ready for analysis: its engine client and, locally, its tokenizer and token decoder."""

    backend: ClassVar[str] = "vllm"
    name: str
    client: EngineClient = field(repr=False)
    tokenizer: PreTrainedTokenizerBase = field(repr=False)
    decoder: TokenDecoder = field(repr=False)
    max_model_len: int
    source: str = "vllm"

    @property
    def max_context(self) -> int:
        """The longest input, in tokens: the engine's max_model_len less the one token a completion must add."""
        return max(1, self.max_model_len - 1)

    def check_ids(self, text: str, ids: list[int], truncated: bool) -> None:
        """Refuse when the engine tokenizes `text` differently from the local tokenizer (`ids`, no BOS): the served
        weights would read other tokens than the ones shown."""
        served = self.client.tokenize(text)
        served = served[: len(ids)] if truncated else served
        if served != ids:
            first = next((i for i, (a, b) in enumerate(zip(served, ids)) if a != b), min(len(served), len(ids)))
            raise EngineError(
                f"The vLLM server's tokenizer splits this text differently from the local one (from token {first} "
                f"on: {len(served)} vs {len(ids)} tokens); the served model and its tokenizer do not match."
            )


def load_engine(name: str, timeout_s: float = 60.0) -> EngineModel:
    """Connect to the engine an entry names: check it serves the model, then load that model's tokenizer locally."""
    entry = parse_entry(name)
    client = EngineClient(entry, timeout_s=timeout_s, api_key=os.environ.get(API_KEY_ENV) or None)
    served = {m["id"]: m for m in client.served_models()}
    if entry.served_name not in served:
        names = ", ".join(f"'{n}'" for n in list(served)[:5]) or "nothing"
        raise EngineError(f"The vLLM server at {entry.base_url} serves {names}, not '{entry.served_name}'.")
    info = served[entry.served_name]
    tokenizer = _load_tokenizer([info.get("root"), entry.served_name])
    max_len = info.get("max_model_len")
    max_len = max_len if isinstance(max_len, int) and max_len > 1 else 2048
    log.info("connected to %s (max_model_len %d)", entry.name, max_len)
    return EngineModel(entry.name, client, tokenizer, TokenDecoder(tokenizer), max_len)


def _load_tokenizer(places: list[object]):
    """The served model's tokenizer, from the first place that has it: the directory or hub id the server
    loaded (`root`), then the served name. Never remote code."""
    from transformers import AutoTokenizer

    tried = [p for p in dict.fromkeys(places) if isinstance(p, str) and p]
    for place in tried:
        try:
            return AutoTokenizer.from_pretrained(place, trust_remote_code=False)
        except (OSError, ValueError, KeyError):
            log.info("no tokenizer at %s", place, exc_info=True)
    raise EngineError(
        f"Could not load the served model's tokenizer here (tried {', '.join(repr(p) for p in tried)}); the app "
        "shows tokens with the model's own tokenizer, so its files must be readable on this machine or the hub."
    )
