"""The tabs about labels: Batches & padding, Shift mistakes and Train (Compare's components sit among them:
compare_tab), and redrawing all of their figures when classroom mode changes."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from ..analysis.trained_copies import TRAINED
from ..service import batches as service_batches
from ..service import compare as service_compare
from ..service import labels
from ..service import page as service
from ..service import shifts as service_shifts
from ..service import training as service_training
from ..service.models import TRAINED_CHOICE
from ..service.shifts import MISTAKES
from ..settings import Settings
from .compare_tab import build_compare_tab, compared_figures
from .shared import NEWEST, model_choices, session_id


def make_label_handlers(settings: Settings) -> SimpleNamespace:
    """Handlers of the Batches, Shift mistakes and Train tabs, the classroom restyle of every labels tab
    (Compare's too) and freeing a closed page's trained copy, closed over one settings object."""

    def batch(texts, model, mask_pads, classroom):
        try:
            result, grid, losses, table, explanation = service_batches.run_batch(
                texts, settings, model, mask_pads, classroom
            )
            return result, explanation, grid, losses, table
        except Exception as err:  # noqa: BLE001
            return None, f"⚠ {service.user_message(err)}", None, None, None

    def shift(text, model, mistake, bos, classroom):
        try:
            comparison, fig, table, explanation = service_shifts.run_shift(
                text, settings, model, mistake, bos, classroom
            )
            return comparison, explanation, fig, table
        except Exception as err:  # noqa: BLE001
            return None, f"⚠ {service.user_message(err)}", None, None

    def train(
        text,
        model,
        steps,
        optimizer,
        lr,
        bos,
        classroom,
        mask_mode,
        mask_n,
        marker,
        picked,
        held=None,
        request: gr.Request | None = None,
        progress=gr.Progress(),
    ):
        """Train this session's copy; the trained copy joins the model menus."""
        try:
            session = session_id(request)
            views = service_training.run_training(
                session,
                text,
                settings,
                model,
                steps,
                optimizer,
                lr or None,
                labels.page_mask(held, text, settings, model, bos, session, mask_mode, mask_n, marker, picked),
                bos,
                classroom,
                progress=lambda step, total, loss: progress(step / total, desc=f"step {step}/{total}, loss {loss:.3f}"),
            )
        except Exception as err:  # noqa: BLE001
            return [gr.skip(), f"⚠ {service.user_message(err)}", *[gr.skip()] * 4, *[gr.skip()] * 3]
        menus = [gr.Dropdown(choices=model_choices(settings, True))] * 3
        return [views.redrawable, views.summary, views.curve, views.heatmap, views.before, views.after, *menus]

    def reset(model, request: gr.Request):
        menus = [gr.Dropdown(choices=model_choices(settings, False))] * 3
        chosen = settings.model if model == TRAINED_CHOICE else model
        return [
            None,
            service_training.reset_training(session_id(request)),
            None,
            None,
            None,
            None,
            gr.Dropdown(choices=model_choices(settings, False), value=chosen),
            *menus[1:],
        ]

    def restyle(batched, shifted, trained, compared, classroom, view=service_compare.COMPARE_VIEWS[0], row=None):
        """The Batches, Shift mistakes, Train and Compare figures redrawn in the chosen style (no model call)."""
        skip = gr.skip()
        return [
            *(service_batches.batch_figures(batched, classroom) if batched else [skip] * 2),
            service_shifts.shift_figure(shifted, classroom) if shifted else skip,
            *(service_training.training_figures(*trained, classroom) if trained else [skip] * 4),
            *(compared_figures(compared, view, classroom, row) if compared else [skip] * 3),
        ]

    def release(request: gr.Request):
        """Free the session's trained copy and its records when its page closes."""
        TRAINED.release(session_id(request) or "")
        NEWEST.forget(session_id(request))

    return SimpleNamespace(
        **{
            f.__name__: f
            for f in (
                batch,
                shift,
                train,
                reset,
                restyle,
                release,
            )
        }
    )


def build_label_tabs(settings: Settings) -> SimpleNamespace:
    """The Batches, Shift mistakes, Train and Compare tabs (inside `gr.Tabs`)."""
    c = SimpleNamespace()
    with gr.Tab("Batches & padding", id="batches"):
        # What each tab last showed, kept to redraw its figures when classroom mode changes (inside a
        # tab: a State directly in gr.Tabs makes Gradio draw a visited tab's button twice).
        c.batch_state, c.shift_state, c.train_state, c.compare_state = (gr.State(None) for _ in range(4))
        with gr.Row(elem_classes="controls-beside"):  # the figures start right under the tab bar
            with gr.Column(scale=2, min_width=320):
                c.batch_texts = gr.Textbox(
                    "the dog likes food\nthe cat sleeps on the warm mat all day",
                    lines=3,
                    label="Sentences, one per line",
                    elem_id="batch-texts",
                )
                with gr.Row():
                    c.mask_pads = gr.Checkbox(
                        True, label="Pad labels are −100 (uncheck to see what goes wrong)", elem_id="mask-pads"
                    )
                    c.batch_run = gr.Button("Run the batch", variant="primary", elem_id="batch-run")
                c.batch_note = gr.Textbox(
                    label="Why the batch loss differs from the mean of row losses",
                    interactive=False,
                    lines=3,
                    elem_id="batch-note",
                )
            with gr.Column(scale=5, min_width=480):
                c.batch_grid = gr.Plot(show_label=False, elem_id="batch-grid")
                c.batch_losses = gr.Plot(show_label=False, elem_id="batch-losses")
                c.batch_table = gr.Dataframe(
                    label="Rows", headers=list(service_batches.BATCH_COLUMNS), interactive=False, elem_id="batch-table"
                )
    with gr.Tab("Shift mistakes", id="shifts"), gr.Row(elem_classes="controls-beside"):
        with gr.Column(scale=2, min_width=320):
            with gr.Row():
                c.mistake = gr.Radio(
                    list(MISTAKES), value=list(MISTAKES)[0], label="Mistake", elem_id="mistake", scale=3
                )
                c.shift_run = gr.Button("Show it on the text", variant="primary", elem_id="shift-run", scale=1)
            c.shift_note = gr.Textbox(label="What goes wrong", interactive=False, lines=3, elem_id="shift-note")
        with gr.Column(scale=5, min_width=480):
            c.shift_plot = gr.Plot(show_label=False, elem_id="shift-plot")
            c.shift_table = gr.Dataframe(
                label="Right vs mistaken, per position",
                headers=list(service_shifts.SHIFT_COLUMNS),
                interactive=False,
                elem_id="shift-table",
            )
    with gr.Tab("Train", id="train"), gr.Row(elem_classes="controls-beside"):
        with gr.Column(scale=2, min_width=320):
            gr.Markdown(
                "Train a private copy of the model on the text (respecting the masking above); the shared "
                "model never changes. This server trains "
                f"{settings.training_concurrency} text{'s' if settings.training_concurrency != 1 else ''} at a "
                "time; others wait in the queue, which shows their place."
            )
            with gr.Row():
                c.steps = gr.Slider(1, settings.max_train_steps, value=10, step=1, label="Steps", elem_id="train-steps")
                c.optimizer = gr.Radio(["adamw", "sgd"], value="adamw", label="Optimizer", elem_id="train-optimizer")
                c.lr = gr.Number(0, label="Learning rate (0: the default, 1e-4 AdamW / 1e-3 SGD)", elem_id="train-lr")
            with gr.Row():
                c.train = gr.Button("Train", variant="primary", elem_id="train-run")
                c.reset = gr.Button("Reset to the base model", elem_id="train-reset")
            c.train_note = gr.Textbox(label="Training", interactive=False, lines=3, elem_id="train-note")
        with gr.Column(scale=5, min_width=480):
            c.curve = gr.Plot(show_label=False, elem_id="train-curve")
            c.heat = gr.Plot(show_label=False, elem_id="train-heatmap")
            c.before = gr.Plot(show_label=False, elem_id="train-before")
            c.after = gr.Plot(show_label=False, elem_id="train-after")
    with gr.Tab("Compare", id="compare"):
        build_compare_tab(c, settings)
    return c


def wire_label_tabs(
    h: SimpleNamespace, c: SimpleNamespace, shared: list, mask_inputs: list, settings: Settings
) -> None:
    """Events of the Batches, Shift mistakes and Train tabs, and the restyle of all labels tabs' figures."""
    state, text, model, top_k, bos, classroom = shared
    batch_figures = [c.batch_grid, c.batch_losses]
    for trigger in (c.batch_run.click, c.mask_pads.input):
        trigger(
            h.batch,
            [c.batch_texts, model, c.mask_pads, classroom],
            [c.batch_state, c.batch_note, *batch_figures, c.batch_table],
            api_visibility="private",
            concurrency_id="views",
        )
    c.shift_run.click(
        h.shift,
        [text, model, c.mistake, bos, classroom],
        [c.shift_state, c.shift_note, c.shift_plot, c.shift_table],
        api_visibility="private",
        concurrency_id="views",
    )
    menus = [model, c.model_a, c.model_b]
    train_figures = [c.curve, c.heat, c.before, c.after]
    c.train.click(
        h.train,
        [text, model, c.steps, c.optimizer, c.lr, bos, classroom, *mask_inputs, state],
        [c.train_state, c.train_note, *train_figures, *menus],
        api_visibility="private",
        concurrency_id="training",
        concurrency_limit=settings.training_concurrency,
    )
    c.reset.click(
        h.reset, [model], [c.train_state, c.train_note, *train_figures, *menus], api_visibility="private", queue=False
    )
    classroom.change(
        h.restyle,
        [c.batch_state, c.shift_state, c.train_state, c.compare_state, classroom, c.view, c.compare_position],
        [*batch_figures, c.shift_plot, *train_figures, c.plot_a, c.plot_b, c.diff],
        api_visibility="private",
        queue=False,
    )
