"""What the tab groups share: the browser session's id, the newest-request tracker, browser snippets,
the model menu, and the event options of the page's main analysis."""

from __future__ import annotations

import gradio as gr

from ..service.batching import NewestRequests
from ..service.models import TRAINED_CHOICE
from ..settings import Settings

# A resize event makes Gradio measure the tab bar again and Plotly fit each figure to its box: neither
# notices new font sizes, nor a figure drawn while its tab was hidden (Plotly then draws it 700 px wide).
RELAYOUT = "requestAnimationFrame(() => window.dispatchEvent(new Event('resize')))"
TOGGLE_CLASSROOM_JS = f"(on) => {{ document.body.classList.toggle('classroom', !!on); {RELAYOUT}; }}"
RELAYOUT_JS = f"() => {{ {RELAYOUT}; }}"
NEWEST = NewestRequests()
LIVE_DELAY_MS = 200
"""Live typing: the analysis starts once the text has rested this long (a pause between words, not letters; a
quick typist's keys come 150 ms apart, and the pause counts in the keystroke-to-figure time: 250 ms before)."""
LIVE_TYPING_JS = f"""() => {{
  if (window.visualizerLiveTyping) return;
  window.visualizerLiveTyping = true;
  let timer = null;
  const inText = (e) => e.target && e.target.closest && e.target.closest('#text-input');
  document.addEventListener('input', (e) => {{
    if (!inText(e)) return;
    clearTimeout(timer);
    if (!e.target.value.trim()) return;  // a box being emptied is not a text to analyse yet
    timer = setTimeout(() => document.getElementById('live-analyze')?.click(), {LIVE_DELAY_MS});
  }});
  document.addEventListener('keydown', (e) => {{  // Enter sends the text now: no second run after the pause
    if (e.key === 'Enter' && !e.shiftKey && inText(e)) clearTimeout(timer);
  }}, true);
}}"""


def session_id(request: gr.Request | None) -> str | None:
    """The browser session's id (None for API calls without one)."""
    return getattr(request, "session_hash", None)


def model_choices(settings: Settings, trained: bool) -> list[str]:
    """The model menu: the configured models, and this session's trained copy when it has one."""
    return [*settings.models, *([TRAINED_CHOICE] if trained else [])]


def number_requests_js(inputs: int) -> str:
    """Browser code run as each main analysis is sent: it numbers the request, in its last input (a hidden
    number), in the order the user made them, which the server may begin them out of when they run at once."""
    return (
        "(...values) => { window.visualizerRequests = (window.visualizerRequests || 0) + 1; "
        f"return [...values.slice(0, {inputs - 1}), window.visualizerRequests]; }}"
    )


def main_analysis(settings: Settings, inputs: list) -> dict:
    """Event options of the page's main analysis (`inputs`: its input components, the request number last):
    up to `batch_size` at once, their forward passes shared; a trigger pressed again while its analysis
    runs is sent once that one is done, and each request is numbered, so the page ends on the latest."""
    return dict(
        api_visibility="private",
        concurrency_id="analysis",
        concurrency_limit=max(1, settings.batch_size),
        trigger_mode="always_last",
        js=number_requests_js(len(inputs)),
    )


# Every Plotly figure on the page is a labelled figure for screen readers: its aria-label is the text
# alternative the views put in `layout.meta.alt` (its key numbers), else its title.
DESCRIBE_FIGURES_JS = """() => {
  if (window.visualizerDescribeFigures) return;
  window.visualizerDescribeFigures = true;
  let queued = false;
  const describe = () => {
    queued = false;
    document.querySelectorAll('.js-plotly-plot').forEach((plot) => {
      const layout = plot.layout || {};
      const title = layout.title && (typeof layout.title === 'string' ? layout.title : layout.title.text);
      const alt = (layout.meta && layout.meta.alt) || title || 'figure';
      if (plot.getAttribute('aria-label') !== alt) {
        plot.setAttribute('role', 'figure');
        plot.setAttribute('aria-label', alt);
      }
    });
  };
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(describe); }
  }).observe(document.body, {childList: true, subtree: true});
  describe();
}"""
