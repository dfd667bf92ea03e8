"""Section e2e: a request through the running app against the same forward pass, and the bytes the page receives."""

from __future__ import annotations

import json

from .in_process import _fit, forward_fn
from .measure import TARGETS, Plan, paired, spread, text_of_tokens
from .server import PageClient, Reply, Server, api_client


def bench_e2e(lm, server: Server, plan: Plan) -> dict:
    """A request through the app (API via gradio_client, and the page's own event) over the bare forward pass."""
    api, page = api_client(server.url), PageClient(server.url)
    out: dict = {"lengths": {}, "payload": {}}
    for n in _fit(lm, plan.e2e_lengths):
        text = text_of_tokens(lm.tokenizer, n)
        forward, _ = forward_fn(lm, text)
        t = paired(
            {
                "forward": forward,
                "api": lambda text=text: api.predict(text, api_name="/analyze"),
                "page": lambda text=text: _checked(page.analyze(text)),
            },
            plan.e2e_repeats,
        )
        out["lengths"][str(n)] = {
            "forward_s": spread(t["forward"]),
            "api_s": spread(t["api"]),
            "page_s": spread(t["page"]),
            "api_added_s": spread([a - f for a, f in zip(t["api"], t["forward"])]),
            "page_added_s": spread([p - f for p, f in zip(t["page"], t["forward"])]),
            "target_added_s": TARGETS["e2e_added_s"] if n == min(plan.e2e_lengths) else None,
        }
    for n in _fit(lm, plan.payload_lengths):
        out["payload"][str(n)] = _payload(lm, page, api, text_of_tokens(lm.tokenizer, n))
    short = out["lengths"][str(_fit(lm, plan.e2e_lengths)[0])]
    short["met"] = short["api_added_s"]["median"] <= TARGETS["e2e_added_s"]
    page.close()
    return out


def _checked(reply: Reply) -> Reply:
    """The reply, or an error when the page reported a failure."""
    if not reply.ok:
        raise RuntimeError(f"page request failed: {reply.error}")
    return reply


def _payload(lm, page: PageClient, api, text: str) -> dict:
    """Bytes the page receives for one analysis on its Predictions view (the page draws the figures of the tab
    shown: its lead figure with the analysis, the others in a follow-up): the figures' JSON as received and as built
    in-process."""
    from ..analysis.one_pass import analyze
    from ..service.page import build_views
    from ..ui.analysis_tabs import PREDICTIONS, TAB_FIGURES

    reply = _checked(page.analyze(text, follow=True))
    shown = TAB_FIGURES[PREDICTIONS]
    views = build_views(analyze(text, lm, top_k=10), figures=shown)
    built = sum(len(getattr(views, f).to_json()) for f in shown)
    api_bytes = len(json.dumps(api.predict(text, api_name="/analyze"), ensure_ascii=False))
    received = reply.figure_bytes + reply.follow_bytes
    return {
        "figures_kb": received / 1000,
        "lead_figure_kb": reply.figure_bytes / 1000,
        "figures_built_kb": built / 1000,
        "stream_kb": reply.stream_bytes / 1000,
        "api_json_kb": api_bytes / 1000,
        "target_kb": TARGETS["payload_kb"],
        "met": received / 1000 <= TARGETS["payload_kb"],
    }
