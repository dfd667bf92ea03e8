"""The Generate tab: step-by-step generation from a prompt (greedy or sampled), each step's distribution, and
teacher forcing beside it; and the /generate API."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..analysis.generation import DEFAULT_NEW_TOKENS, MAX_NEW_TOKENS
from ..service import generation as service_generation
from ..service import page as service
from ..settings import Settings
from ..views.generation_figures import FORCED_COLUMNS


def generation_outputs(run, views):
    """Outputs of a generation step, in the order of the Generate tab's `outputs`."""
    return [
        run,
        views.summary,
        views.text,
        views.steps,
        views.step,
        views.forced,
        views.table,
        gr.Dropdown(choices=views.step_choices, value=views.step_choices[-1][1]),
    ]


def make_generation_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Generate tab and the /generate API, closed over one settings object."""

    def advance(to_end, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress):
        """One step or the rest of the held generation (a new one when the controls changed)."""
        try:
            dec = service_generation.page_decoding(max_new, mode, temperature, top_k, top_p, seed)
            run = service_generation.advance(
                run, prompt, settings, model, dec, bos, to_end=to_end, on_loading=lambda msg: progress(0, desc=msg)
            )
            return generation_outputs(run, service_generation.generation_views(run, classroom))
        except Exception as err:  # noqa: BLE001 - reported in the page; what was shown stays
            return [gr.skip(), f"⚠ {service.user_message(err)}", *[gr.skip()] * 6]

    def next_token(
        run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress=gr.Progress()
    ):
        return advance(
            False, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress
        )

    def run_to_end(
        run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress=gr.Progress()
    ):
        return advance(
            True, run, prompt, model, bos, classroom, max_new, mode, temperature, top_k, top_p, seed, progress
        )

    def start_over():
        return [
            None,
            "Press Next token to generate one token, or Run to end.",
            *[None] * 5,
            gr.Dropdown(choices=[], value=None),
        ]

    def redraw_generation(run, classroom, step):
        """Redraw the generation's figures (no model call)."""
        if run is None:
            return [gr.skip()] * 4
        views = service_generation.generation_views(run, classroom, step)
        return [views.text, views.steps, views.step, views.forced]

    def redraw_step(run, step, classroom):
        return gr.skip() if run is None else service_generation.step_figure(run, step, classroom)

    def generate_api(
        prompt: str,
        model: str = settings.model,
        max_new_tokens: int = DEFAULT_NEW_TOKENS,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        candidates: int = settings.top_k,
        bos: bool = False,
    ) -> dict:
        """API: generate to the end (greedy unless a temperature is given); the JSON of `generate --format json`."""
        try:
            return service_generation.generate(
                prompt, settings, model, max_new_tokens, temperature, top_k, top_p, seed, candidates, bos
            )
        except Exception as err:  # noqa: BLE001
            raise gr.Error(service.user_message(err)) from None

    return SimpleNamespace(
        **{
            f.__name__: f
            for f in (
                next_token,
                run_to_end,
                start_over,
                redraw_generation,
                redraw_step,
                generate_api,
            )
        }
    )


def build_generate_tab() -> SimpleNamespace:
    """The Generate tab's components (inside a `gr.Tab`)."""
    c = SimpleNamespace()
    with gr.Row(elem_classes="controls-beside"):  # the figures start right under the tab bar
        with gr.Column(scale=2, min_width=320):
            c.prompt = gr.Textbox(
                label="Prompt",
                value=service_generation.PROMPT_EXAMPLE,
                lines=1,
                max_lines=6,
                elem_id="gen-prompt",
                placeholder="Type a prompt and press Next token",
            )
            with gr.Row():
                c.max_new = gr.Slider(
                    1,
                    MAX_NEW_TOKENS,
                    value=DEFAULT_NEW_TOKENS,
                    step=1,
                    label="New tokens (at most)",
                    elem_id="gen-max-new",
                )
                c.mode = gr.Radio(
                    [service_generation.GREEDY, service_generation.SAMPLE],
                    value=service_generation.GREEDY,
                    label="Next token by",
                    elem_id="gen-mode",
                )
                c.temperature = gr.Slider(
                    0.05, 2.0, value=1.0, step=0.05, label="Temperature (sampling)", elem_id="gen-temperature"
                )
                c.top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k (0 = off)", elem_id="gen-top-k")
                c.top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.01, label="Top-p (1 = off)", elem_id="gen-top-p")
                c.seed = gr.Number(0, precision=0, label="Seed (empty: random)", elem_id="gen-seed")
            with gr.Row():
                c.next = gr.Button("Next token", variant="primary", elem_id="gen-next")
                c.run = gr.Button("Run to end", elem_id="gen-run")
                c.reset = gr.Button("Start over", elem_id="gen-reset")
            c.summary = gr.Textbox(
                label="Generation", interactive=False, lines=3, elem_id="gen-summary", elem_classes="summary"
            )
        with gr.Column(scale=5, min_width=480):
            c.text = gr.Plot(label="Generated text", show_label=False, elem_id="gen-text")
            c.steps = gr.Plot(label="Steps x candidates", show_label=False, elem_id="gen-steps")
            c.step = gr.Dropdown(
                choices=[], label="Step: its distribution before and after the filters", elem_id="gen-step"
            )
            c.bars = gr.Plot(label="One step before and after", show_label=False, elem_id="gen-bars")
            c.forced = gr.Plot(label="Teacher forcing", show_label=False, elem_id="gen-forced")
            c.table = gr.Dataframe(
                label="Teacher forcing beside the steps",
                headers=list(FORCED_COLUMNS),
                interactive=False,
                elem_id="gen-forced-table",
            )
    return c


def wire_generate_tab(h: SimpleNamespace, gen: SimpleNamespace, gen_state, shared: list, settings: Settings) -> None:
    """Next token, run to end, start over and redrawing; `shared`: the page's model, BOS and classroom controls."""
    model, bos, classroom = shared
    controls = [
        gen_state,
        gen.prompt,
        model,
        bos,
        classroom,
        gen.max_new,
        gen.mode,
        gen.temperature,
        gen.top_k,
        gen.top_p,
        gen.seed,
    ]
    outputs = [gen_state, gen.summary, gen.text, gen.steps, gen.bars, gen.forced, gen.table, gen.step]
    limit = generation_limit(settings)
    for trigger in (gen.next.click, gen.prompt.submit):
        trigger(h.next_token, controls, outputs, api_visibility="private", **limit)
    gen.run.click(h.run_to_end, controls, outputs, api_visibility="private", **limit)
    gen.reset.click(h.start_over, None, outputs, api_visibility="private", queue=False)
    classroom.change(
        h.redraw_generation,
        [gen_state, classroom, gen.step],
        [gen.text, gen.steps, gen.bars, gen.forced],
        api_visibility="private",
        queue=False,
    )
    gen.step.input(h.redraw_step, [gen_state, gen.step, classroom], gen.bars, api_visibility="private", queue=False)


def generation_limit(settings: Settings) -> dict:
    """Event options shared by the page's generation steps and /generate: `generation_concurrency` at once."""
    return dict(concurrency_id="generation", concurrency_limit=settings.generation_concurrency)
