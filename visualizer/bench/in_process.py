"""Section analysis: analyze() against the bare forward pass, in this process."""

from __future__ import annotations

import time

from .measure import TARGETS, Plan, paired, ratios, spread, sync, text_of_tokens


def forward_fn(lm, text: str):
    """The floor: the bare `model(input_ids)` for `text`, under no_grad."""
    import torch

    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]], device=lm.device)

    def forward():
        with torch.no_grad():
            lm.model(ids)

    return forward, ids


def timed_measure():
    """A `measure` for analyze() that runs the usual tensor work (forward pass and statistics) and
    appends its seconds to the returned list: analyze() minus it is the Python work around it."""
    from ..analysis.one_pass import measure_one

    seconds: list[float] = []

    def measure(lm, request):
        sync()
        start = time.perf_counter()
        measured = measure_one(lm, request)
        sync()
        seconds.append(time.perf_counter() - start)
        return measured

    return measure, seconds


def bench_analysis(lm, plan: Plan) -> dict:
    """analyze() over the bare forward pass per length; the per-prefix loop as the naive baseline."""
    import torch

    from ..analysis.one_pass import analyze

    out: dict = {"lengths": {}, "per_prefix": {}}
    for n, repeats in zip(_fit(lm, plan.lengths), plan.repeats):
        text = text_of_tokens(lm.tokenizer, n)
        forward, _ = forward_fn(lm, text)
        measure, tensor_s = timed_measure()
        t = paired(
            {
                "forward": forward,
                "analyze": lambda text=text, measure=measure: analyze(text, lm, top_k=10, measure=measure),
                "tokenize": lambda text=text: lm.tokenizer(text, add_special_tokens=False),
            },
            repeats,
        )
        row = out["lengths"][str(n)] = _pair_result(
            t, "analyze", TARGETS["analysis_ratio_short" if n < 64 else "analysis_ratio"]
        )
        row["outside_tensor_work_s"] = spread(
            [a - m for a, m in zip(t["analyze"], tensor_s[-repeats:])]
        )  # after the warm-up
        row["tokenize_s"] = spread(t["tokenize"])  # part of the work outside: text to ids
    for n in _fit(lm, plan.prefix_lengths):
        forward, ids = forward_fn(lm, text_of_tokens(lm.tokenizer, n))

        def per_prefix(ids=ids):
            with torch.no_grad():
                for k in range(1, ids.shape[1] + 1):
                    lm.model(ids[:, :k])

        t = paired({"forward": forward, "per_prefix": per_prefix}, plan.prefix_repeats, warmup=0)
        out["per_prefix"][str(n)] = _pair_result(t, "per_prefix", None)
    return out


def _fit(lm, lengths) -> list[int]:
    """The lengths that fit the model's context (a tiny test model reads 64 tokens)."""
    return [min(n, lm.max_context) for n in lengths]


def _pair_result(t: dict, name: str, target: float | None) -> dict:
    """Both sides' times and their repeat-by-repeat ratio, with the target and whether it is met."""
    ratio = spread(ratios(t[name], t["forward"]))
    return {
        "forward_s": spread(t["forward"]),
        f"{name}_s": spread(t[name]),
        "ratio": ratio,
        "target": target,
        "met": None if target is None else ratio["median"] <= target,
    }
