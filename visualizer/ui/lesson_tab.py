"""The Lesson tab: the walkthrough as eight steps on the page's current text, with Previous / Next buttons,
←/→ (steps) and ↑/↓ (position k) keys, and the step in the URL (?lesson=1&step=N)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..errors import InputError
from ..service import lesson
from ..service import page as service
from ..settings import Settings
from .shared import session_id

LESSON_TAB = "Lesson"
FIGURE_ID = "lesson-figure"

# Keys drive the lesson while its tab is shown, except while the user types in a field (Escape leaves it).
KEYS_JS = """() => {
  if (window.visualizerLessonKeys) return;
  window.visualizerLessonKeys = true;
  const buttons = {ArrowRight: 'lesson-next', ArrowLeft: 'lesson-prev',
                   ArrowUp: 'lesson-k-up', ArrowDown: 'lesson-k-down'};
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (e.key === 'Escape' && t && t.blur) { t.blur(); return; }
    if (!buttons[e.key] || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    const panel = document.getElementById('lesson-panel');
    if (!panel || !panel.offsetParent) return;
    const button = document.getElementById(buttons[e.key]);
    if (!button || button.disabled) return;
    e.preventDefault();
    button.click();
  });
  const params = new URLSearchParams(location.search);
  if (['1', 'true', 'yes', 'on'].includes((params.get('lesson') || '').toLowerCase())) {
    document.body.classList.add('lesson-mode');
  }
}"""

STEP_IN_URL_JS = """(step) => {
  const url = new URL(location.href);
  url.searchParams.set('step', String(step));
  history.replaceState(history.state, '', url);
}"""


def make_lesson_handlers(settings: Settings) -> SimpleNamespace:
    """The lesson's handlers, closed over one settings object."""
    from ..service.models import resolve_model

    def render(analysis, step, k, classroom, model, open_tab=None, request: gr.Request | None = None):
        """Draw the step for the analysis the page holds, while the Lesson is shown (steps 7-8 run the model, and a
        figure drawn in a hidden tab costs the typing its time); opening the tab draws it (`render_opened`)."""
        if analysis is None or open_tab not in (None, LESSON_TAB):
            return [gr.skip()] * 4
        try:
            view = lesson.lesson_view(
                analysis,
                step or 1,
                int(k) if k else None,
                bool(classroom),
                settings,
                lambda: resolve_model(model, settings, session_id(request)),
            )
        except Exception as err:  # noqa: BLE001 - every failure is reported in the page
            return gr.skip(), f"⚠ {lesson.markdown_literal(service.user_message(err))}", None, gr.skip()
        return view.heading, view.body, view.figure, view.k  # the figure's alternative rides in its layout.meta

    def render_opened(analysis, step, k, classroom, model, _open_tab=None, request: gr.Request | None = None):
        """The same, as the Lesson tab is opened (before the page records which tab is open)."""
        return render(analysis, step, k, classroom, model, LESSON_TAB, request)

    def move(step, delta: int):
        return lesson.moved(step or 1, delta)

    def move_k(k, delta: int):
        return max(1, int(k or 1) + delta)

    def from_url(request: gr.Request):
        """The step from ?step=N (1 when missing or not a step)."""
        raw = dict(request.query_params).get("step", "1") if request else "1"
        try:
            return lesson.check_step(int(raw))
        except (ValueError, InputError):  # a bad step in a URL opens step 1
            return 1

    return SimpleNamespace(render=render, render_opened=render_opened, move=move, move_k=move_k, from_url=from_url)


def build_lesson_tab() -> SimpleNamespace:
    """The Lesson tab's components (inside `gr.Tabs`)."""
    c = SimpleNamespace()
    with gr.Tab(LESSON_TAB, id="lesson", elem_id="lesson-panel") as c.tab:
        with gr.Row(elem_id="lesson-head", equal_height=True):
            c.heading = gr.Markdown("", elem_id="lesson-heading", latex_delimiters=[], sanitize_html=True)
            c.prev = gr.Button("← Previous", elem_id="lesson-prev", size="sm", scale=0, min_width=130)
            c.next = gr.Button("Next →", elem_id="lesson-next", size="sm", variant="primary", scale=0, min_width=110)
            c.k_down = gr.Button("k − 1 ↓", elem_id="lesson-k-down", size="sm", scale=0, min_width=100)
            c.k_up = gr.Button("k + 1 ↑", elem_id="lesson-k-up", size="sm", scale=0, min_width=100)
        with gr.Row(elem_id="lesson-body"):
            with gr.Column(scale=3, min_width=480):
                c.figure = gr.Plot(show_label=False, elem_id=FIGURE_ID)
            with gr.Column(scale=2, min_width=320):
                c.text = gr.Markdown("", elem_id="lesson-text", latex_delimiters=[], sanitize_html=True)
        c.step = gr.Number(1, precision=0, visible=False)
        c.k = gr.Number(None, precision=0, visible=False)
    return c


def wire_lesson_tab(h: SimpleNamespace, c: SimpleNamespace, state, classroom, model, open_tab, demo) -> None:
    """Redraw on a new analysis, a step or k change, classroom mode or opening the tab; keep the URL current."""
    inputs = [state, c.step, c.k, classroom, model, open_tab]
    outputs = [c.heading, c.text, c.figure, c.k]
    options = dict(api_visibility="private", concurrency_id="views")

    def redraw(trigger, fn=h.render) -> None:
        trigger(fn, inputs, outputs, **options)

    for trigger in (state.change, classroom.change, c.step.change):
        redraw(trigger)
    redraw(c.tab.select, h.render_opened)
    c.step.change(None, [c.step], None, js=STEP_IN_URL_JS)
    for button, delta in ((c.prev, -1), (c.next, 1)):
        button.click(lambda s, d=delta: h.move(s, d), [c.step], c.step, api_visibility="private", queue=False)
    for button, delta in ((c.k_down, -1), (c.k_up, 1)):
        event = button.click(lambda k, d=delta: h.move_k(k, d), [c.k], c.k, api_visibility="private", queue=False)
        redraw(event.then)
    demo.load(h.from_url, None, c.step, api_visibility="private", queue=False).then(None, None, None, js=KEYS_JS)
