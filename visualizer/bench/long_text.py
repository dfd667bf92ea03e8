"""Section long: a 2048-token text analysed in a fresh process, its time and memory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .in_process import forward_fn
from .measure import MB, Plan, text_of_tokens, timed
from .server import vm_hwm
from .startup import run_probe


def long_probe(model: str, tokens: str) -> dict:
    """In a fresh process: analyse a long text; its time and peak memory beside the bare forward pass."""
    import torch

    from ..analysis.one_pass import analyze
    from ..model.loading import load_model, with_weights

    lm = with_weights(load_model(model), "The long-text benchmark")
    n = min(int(tokens), lm.max_context)
    text = text_of_tokens(lm.tokenizer, n)
    forward, _ = forward_fn(lm, text)
    analyze(text_of_tokens(lm.tokenizer, 16), lm)  # warm-up on a short text
    out = {
        "tokens": n,
        "vocab": lm.model.config.vocab_size,
        "rss_model_mb": _rss() / MB,
        "full_logits_mb": n * lm.model.config.vocab_size * 4 / MB,
        "device": str(lm.device),
    }
    for name, fn in (("analyze", lambda: out.__setitem__("result", analyze(text, lm, top_k=10))), ("forward", forward)):
        _reset_peak()
        out[f"{name}_s"] = timed(fn)
        out[f"{name}_peak_rss_mb"] = (vm_hwm(os.getpid()) or _rss()) / MB
        if torch.cuda.is_available():
            out[f"{name}_peak_gpu_mb"] = torch.cuda.max_memory_allocated() / MB
    result = out.pop("result")
    out["result_holds_vocab_rows"] = holds_vocab_rows(result, lm.model.config.vocab_size)
    out["ratio"] = out["analyze_s"] / out["forward_s"]
    out["analyze_extra_mb"] = out["analyze_peak_rss_mb"] - out["rss_model_mb"]
    out["forward_extra_mb"] = out["forward_peak_rss_mb"] - out["rss_model_mb"]
    out["extra_peak_over_forward_mb"] = out["analyze_peak_rss_mb"] - out["forward_peak_rss_mb"]
    return out


def holds_vocab_rows(result, vocab_size: int) -> bool:
    """Whether an analysis keeps any tensor or array as wide as the vocabulary (full-size logits)."""
    import numpy as np
    import torch

    held = [*vars(result).values(), *vars(result.arrays).values(), *vars(result.vocab).values()]
    if result.top_k >= vocab_size:  # a top-K as wide as a (toy) vocabulary was asked for
        held = [v for v in held if v is not result.arrays.top_p and v is not result.arrays.top_ids]
    return any(isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim and v.shape[-1] >= vocab_size for v in held)


def _rss() -> int:
    """This process's resident set size, bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def _reset_peak() -> None:
    """Start a new peak-memory window: Linux clear_refs for VmHWM, and CUDA's peak counter."""
    import torch

    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak then counts from the start
        Path("/proc/self/clear_refs").write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def bench_long(model: str, plan: Plan) -> dict:
    """The long-text probe in its own process, so its peak memory is its own."""
    out = run_probe("long_text.long_probe", model, str(plan.long_tokens))
    out["met"] = not out["result_holds_vocab_rows"]
    return out
