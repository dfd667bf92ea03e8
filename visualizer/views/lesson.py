"""The lesson: the walkthrough of "the dog likes food" as eight steps, each a title, one figure and at most
three plain sentences, all computed from the current text's analysis (steps 7 and 8 from the extra runs in
`analysis.lesson`). Sentences are plain text; whoever renders them as markup escapes them first."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ..analysis.lesson import OpenQuestions
from ..analysis.result import Analysis
from ..analysis.training import BeforeAfter
from .loss import loss_summary
from .plotting import (
    NORMAL,
    FigureStyle,
    _layout,
    context_label,
    cut,
    escape_text,
    percent,
    sentence_columns,
    set_layout,
    shorten,
)

TITLES = (
    "A sentence becomes tokens",
    "labels mirror input_ids",
    "One sentence, n − 1 predictions",
    "What the model says at position k",
    "A crude loss: |predicted − true|",
    "The real loss: −ln p(true token)",
    "After a few training steps",
    "When labels differ from input_ids",
)
STEPS = len(TITLES)
MAX_COLUMNS = 16
"""The token grids of steps 1-2 show at most this many tokens (the rest are summarised in the title)."""
MAX_SNAPSHOTS = 8
"""Step 3 lists at most this many snapshots input_ids[:k] -> labels[k]."""
CELL_CHARS = 10
"""A token's text in a grid cell keeps at most this many characters."""
PREDICTED, TRUE, AFTER, DIFF = "#0072B2", "#E69F00", "#CC79A7", "#009E73"
"""Okabe-Ito colours, told apart with any colour vision: the model's p, the one-hot truth, after training, |diff|."""


@dataclass
class LessonStep:
    """One screen of the lesson."""

    number: int
    """1..STEPS."""
    title: str
    sentences: list[str]
    """At most three, plain text (token text inside is as typed: escape before rendering as markup)."""
    figure: go.Figure
    alt: str
    """The figure's key numbers in one line, for a screen reader (plain text)."""


def lesson_style(style: FigureStyle) -> FigureStyle:
    """The style's fonts at a height that leaves room for the step's title, text and the text box on a
    1280x720 screen."""
    return dataclasses.replace(style, height=400)


def quoted(token_display: str) -> str:
    """A token for a sentence: '“␣food”'."""
    return f"“{token_display}”"


def counted_positions(analysis: Analysis) -> list[int]:
    """k (1..n-1) of every position that counts in the loss."""
    return [j + 1 for j, c in enumerate(analysis.arrays.counted.tolist()) if c]


# ---------------------------------------------------------------- grids (steps 1-3)


def text_grid(rows: Sequence[tuple[str, Sequence[object]]], title: str, style: FigureStyle, columns: Sequence[str]):
    """A table drawn as a figure: one row per (name, cells), one column per entry of `columns`; every cell
    shown as its str(), escaped. Rows are read top to bottom."""
    style = lesson_style(style)
    names = [name for name, _ in rows]
    cells = [[escape_text(str(c)) for c in values] for _, values in rows]
    shade = [[0.0 if i % 2 else 1.0] * len(columns) for i in range(len(rows))]  # (rows, columns) banding
    fig = go.Figure(
        go.Heatmap(
            z=shade,
            x=list(columns),
            y=names,
            text=cells,
            texttemplate="%{text}",
            textfont=dict(size=style.label_size + 2, color=style.text_color),
            colorscale=[[0, "#ffffff"], [1, "#eef3f8"]],
            showscale=False,
            xgap=2,
            ygap=2,
            hoverinfo="skip",
        )
    )
    _layout(fig, style, title, 0)
    set_layout(
        fig,
        dict(
            xaxis=dict(type="category", side="top", showline=False, ticks=""),
            yaxis=dict(type="category", autorange="reversed", showline=False, ticks=""),
        ),
    )
    return fig


def _shown(analysis: Analysis) -> tuple[int, str]:
    """(tokens shown in a grid, ' (first 16 of 40)' or '')."""
    n = len(analysis.tokens)
    return min(n, MAX_COLUMNS), (f" (first {MAX_COLUMNS} of {n})" if n > MAX_COLUMNS else "")


def _label_cells(analysis: Analysis, shown: int) -> tuple[list[str], list[str]]:
    """(labels as ids, labels as tokens) for the first `shown` positions; −100 where masked."""
    ids = [str(label) for label in analysis.labels[:shown]]
    words = [
        "−100" if label < 0 else cut(name, CELL_CHARS)
        for label, name in zip(analysis.labels[:shown], analysis.readable_tokens)
    ]
    return ids, words


def tokens_step(analysis: Analysis, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 1: the tokenizer's output, each token's text under its id."""
    n, (shown, more) = len(analysis.tokens), _shown(analysis)
    ids = analysis.input_ids
    tokens = analysis.tokens[:shown]
    fig = text_grid(
        [
            ("input_ids", [t.id for t in tokens]),
            ("token", [cut(name, CELL_CHARS) for name in analysis.readable_tokens[:shown]]),
            ("attention_mask", [1] * shown),
        ],
        f"{n} tokens{more}",
        style,
        [str(i) for i in range(shown)],
    )
    output = f"{{'input_ids': {ids}, 'attention_mask': {[1] * n}}}"
    sentences = [
        f"The tokenizer cuts the text into {n} tokens and replaces each by its id: {output}.",
        "The model never sees letters, only these ids; ␣ marks a space that belongs to a token.",
        "The attention mask is all 1s: every token may look at every token before it.",
    ]
    if analysis.bos:
        sentences[2] = "The first token is BOS, added so that the first real token is predicted too."
    alt = f"{n} tokens: " + ", ".join(f"{t.id} {name}" for t, name in zip(tokens, analysis.readable_tokens))
    return LessonStep(1, TITLES[0], sentences, fig, alt)


def batch_step(analysis: Analysis, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 2: the batch a trainer builds, labels beside input_ids, as words and ids."""
    n, (shown, more) = len(analysis.tokens), _shown(analysis)
    tokens = analysis.tokens[:shown]
    label_ids, label_words = _label_cells(analysis, shown)
    fig = text_grid(
        [
            ("input_ids", [t.id for t in tokens]),
            ("  (as text)", [cut(name, CELL_CHARS) for name in analysis.readable_tokens[:shown]]),
            ("attention_mask", [1] * shown),
            ("labels", label_ids),
            ("  (as text) ", label_words),
        ],
        f"one batch: every row is 1 × {n} (batch × sequence){more}",
        style,
        [str(i) for i in range(shown)],
    )
    masked = sum(1 for label in analysis.labels if label < 0)
    sentences = [
        f"To train, the batch gets a third key, labels, with the same shape as input_ids: 1 × {n}.",
        "labels is not shifted: the model shifts it itself, so labels[k] is graded against what it "
        "predicted after input_ids[:k].",
        (
            f"{masked} labels are −100: those positions are left out of the loss."
            if masked
            else "Here labels is an exact copy of input_ids, which is what most training scripts do."
        ),
    ]
    alt = f"input_ids and labels, 1 × {n}; {masked} labels masked with −100"
    return LessonStep(2, TITLES[1], sentences, fig, alt)


def snapshots_step(analysis: Analysis, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 3: the n − 1 snapshots input_ids[:k] -> labels[k] that one sentence holds."""
    n, positions = len(analysis.tokens), analysis.positions
    shown = positions[:MAX_SNAPSHOTS]
    names = [f"k={p.k}" for p in shown]
    targets = analysis.readable_tokens[1:]  # (n-1,): labels[k] for k = 1..n-1
    rows = [
        (name, [shorten(p.context, 28) or "(start)", "→", cut(targets[p.k - 1], 14)]) for name, p in zip(names, shown)
    ]
    more = f" (first {MAX_SNAPSHOTS})" if len(positions) > MAX_SNAPSHOTS else ""
    fig = text_grid(rows, f"{n} tokens, {n - 1} predictions{more}", style, ["input_ids[:k]", " ", "labels[k]"])
    set_layout(fig, dict(xaxis=dict(tickfont=dict(size=style.font_size))))
    sentences = [
        "A causal LM reads left to right and, at every position, predicts the token that comes next.",
        f"So one sentence of {n} tokens is {n - 1} training examples at once: input_ids[:k] → labels[k] "
        f"for k = 1 … {n - 1}.",
        "All of them come out of one forward pass: nobody cuts the sentence into rows.",
    ]
    alt = "; ".join(f"k={p.k}: {p.context} → {targets[p.k - 1]}" for p in shown)
    return LessonStep(3, TITLES[2], sentences, fig, alt)


# ---------------------------------------------------------------- bars (steps 4-8)


def _bar_figure(names: list[str], series, title: str, style: FigureStyle, percent_axis: bool = True):
    """Grouped bars: `series` is (name, values, colour, pattern) per group. With three groups the bars are
    too narrow for every label: only values of 1% or more are written on them (the hover has every value)."""
    style = lesson_style(style)
    crowded = percent_axis and len(series) >= 3
    line = dict(color=style.text_color, width=style.bar_line_width)
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=list(values),
                name=name,
                text=[_bar_text(v, crowded, percent_axis) for v in values],
                textposition="outside",
                cliponaxis=False,
                textfont=dict(size=style.label_size),
                hovertemplate="%{y:.4f}<extra>%{fullData.name}</extra>",
                marker=dict(color=color, pattern=dict(shape=shape), line=line),
            )
            for name, values, color, shape in series
        ]
    )
    _layout(fig, style, title, 0, extra_top=2 * style.font_size)
    yaxis = dict(showgrid=True, gridcolor="#d0d0d0", rangemode="tozero")
    if percent_axis:
        yaxis.update(range=[0, 1.15], tickformat=".0%")
    set_layout(
        fig,
        dict(
            barmode="group",
            xaxis=dict(type="category", tickangle=0),
            yaxis=yaxis,
            uniformtext=dict(minsize=style.label_size, mode="show"),
        ),
    )
    return fig


def _bar_text(v: float, crowded: bool, percent_axis: bool) -> str:
    """A bar's label: its percent or value; '?' where an engine did not give it (NaN); none for a tiny bar in a
    crowded figure."""
    if v != v:
        return "?"
    return "" if crowded and v < 0.01 else percent(v) if percent_axis else f"{v:.2f}"


def check_k(analysis: Analysis, k: int | None) -> int:
    """k within 1..n-1; the last position when missing or out of range (the walkthrough's k = 3)."""
    last = len(analysis.positions)
    return last if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= last else k


def prediction_step(analysis: Analysis, k: int | None = None, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 4: the probability row at position k over the sentence's tokens, beside the one-hot truth."""
    k = check_k(analysis, k)
    row, pos = k - 1, analysis.positions[k - 1]
    predicted, truth = analysis.vocab.predicted(row), analysis.vocab.one_hot(row)
    title = f"k={k}: {context_label(pos.context)} {escape_text(pos.target.display)}"
    series = (("predicted p", predicted, PREDICTED, ""), ("true (one-hot)", truth, TRUE, "/"))
    fig = _bar_figure(sentence_columns(analysis), series, title, style)
    top = pos.top[0]
    sentences = [
        f"After {quoted(shorten(pos.context, 40))} the model gives every token of its vocabulary a probability; "
        f"here are the sentence's own {len(analysis.vocab.columns)} tokens and all the others together.",
        f"The truth is one-hot: 100% on {quoted(pos.target.display)}, 0 on everything else.",
        f"The model gives {quoted(pos.target.display)} {percent(pos.p_target)} (rank {pos.rank}); its favourite "
        f"is {quoted(top.token.display)} at {percent(top.p)}. ↑/↓ move k.",
    ]
    alt = f"k={k}: p({pos.target.display}) = {percent(pos.p_target)}, rank {pos.rank}; top {top.token.display}"
    return LessonStep(4, TITLES[3], sentences, fig, alt)


def crude_loss_step(analysis: Analysis, k: int | None = None, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 5: |predicted − true| per column at position k, and their sum."""
    k = check_k(analysis, k)
    row, pos = k - 1, analysis.positions[k - 1]
    diff = analysis.vocab.abs_diff(row)
    total = analysis.vocab.crude_loss(row)
    title = f"k={k}: sum of |predicted − true| = {total:.3f}"
    fig = _bar_figure(sentence_columns(analysis), (("|predicted − true|", diff, DIFF, "x"),), title, style)
    sentences = [
        "Compare the two rows of the last step column by column: |predicted − true|.",
        f"Their sum is {total:.3f}; it would be 0 only if the model put 100% on {quoted(pos.target.display)}, "
        "and it is at most 2.",
        "A fine intuition, but training uses another loss, which looks only at the true token (next step).",
    ]
    return LessonStep(5, TITLES[4], sentences, fig, f"k={k}: sum of absolute differences {total:.3f}")


def real_loss_step(analysis: Analysis, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 6: −ln p per counted position, their mean, and the model's own loss."""
    counted = counted_positions(analysis)
    losses = analysis.arrays.would_be_losses()  # (n-1,)
    names = [f"k={k} {escape_text(name)}" for k, name in enumerate(analysis.readable_tokens[1:], 1)]
    mean, own = analysis.mean_token_loss, analysis.loss
    fig = _bar_figure(names, (("−ln p(true token)", losses.tolist(), PREDICTED, ""),), "", style, percent_axis=False)
    if mean is not None:
        fig.add_hline(y=mean, line=dict(color=style.text_color, dash="dash", width=2))
    own_text = "not given by the engine" if own is None else f"{own:.4f}"
    heading = "no position counts" if mean is None else f"mean = {mean:.4f} nats · model's own loss = {own_text}"
    set_layout(fig, dict(title=dict(text=heading)))
    if not counted or mean is None:
        sentences = ["Every label is −100 here, so nothing counts and there is no loss to show."]
    else:
        worst = max(counted, key=lambda k: losses[k - 1])
        sentences = [
            "Cross-entropy keeps only the true token's probability: loss_k = −ln p(labels[k]), 0 when p is 100%.",
            f"The mean over the {len(counted)} counted positions is {mean:.4f} nats, and the model's own "
            f"loss (outputs.loss) is {own:.4f}: the same number."
            if own is not None
            else f"The mean over the {len(counted)} counted positions is {mean:.4f} nats: the loss a trainer would "
            "report (a vLLM server gives no loss of its own to compare with).",
            f"The largest is at k={worst}: p({quoted(analysis.tokens[worst].display)}) = "
            f"{percent(float(analysis.arrays.p_target[worst - 1]))}, {losses[worst - 1]:.2f} nats.",
        ]
    return LessonStep(6, TITLES[5], sentences, fig, loss_summary(analysis))


def training_step(result: BeforeAfter, k: int | None = None, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 7: the step-4 row again after a few optimizer steps, beside the row before them."""
    before, after, run = result.before, result.after, result.run
    k = check_k(before, k)
    row, pos = k - 1, after.positions[k - 1]
    series = (
        ("before", before.vocab.predicted(row), PREDICTED, ""),
        (f"after {len(run.history) - 1} steps", after.vocab.predicted(row), AFTER, "."),
        ("true (one-hot)", before.vocab.one_hot(row), TRUE, "/"),
    )
    title = f"k={k}: {context_label(pos.context)} {escape_text(pos.target.display)}"
    fig = _bar_figure(sentence_columns(before), series, title, style)
    lost = "fell" if (after.mean_token_loss or 0) < (before.mean_token_loss or 0) else "rose"
    p0, p1 = before.positions[row].p_target, pos.p_target
    sentences = [
        f"We took {len(run.history) - 1} {run.optimizer} steps (lr {run.lr:g}) on this one sentence, "
        "on a copy of the model.",
        f"The loss {lost} from {_nats(before.mean_token_loss)} to {_nats(after.mean_token_loss)}; "
        f"p({quoted(pos.target.display)}) at k={k} went from {percent(p0)} to {percent(p1)}.",
        "The model everyone else uses is unchanged: training changes a copy here. ↑/↓ move k.",
    ]
    alt = (
        f"loss {_nats(before.mean_token_loss)} before, {_nats(after.mean_token_loss)} after; "
        f"k={k}: p {p0:.4f} → {p1:.4f}"
    )
    return LessonStep(7, TITLES[6], sentences, fig, alt)


def _nats(x: float | None) -> str:
    """'2.345 nats', or 'no loss' for None."""
    return "no loss" if x is None else f"{x:.3f} nats"


def open_questions_step(answers: OpenQuestions, style: FigureStyle = NORMAL) -> LessonStep:
    """Step 8: the mean loss with labels = input_ids, with the prompt masked, and in a padded batch with
    the pads masked or counted."""
    bars = [("labels =<br>input_ids", answers.full.mean_token_loss)]
    if answers.masked is not None:
        bars.append((f"first {answers.prompt_tokens}<br>labels −100", answers.masked.mean_token_loss))
    if answers.pads_masked is not None and answers.pads_counted is not None:
        bars += [
            ("padded batch,<br>pads −100", answers.pads_masked.batch_loss),
            ("padded batch,<br>pads counted", answers.pads_counted.batch_loss),
        ]
    values = [np.nan if v is None else v for _, v in bars]
    fig = _bar_figure([name for name, _ in bars], (("mean loss, nats", values, PREDICTED, ""),), "", style, False)
    set_layout(fig, dict(title=dict(text="the mean loss under four labellings"), showlegend=False))
    sentences = ["labels is its own array so that a position can be left out: −100 means “not in the loss”."]
    if answers.masked is not None:
        prompt = answers.full.decoder.text_of(answers.full.input_ids[: answers.prompt_tokens])
        sentences.append(
            f"Masking the prompt {quoted(shorten(prompt, 30))} leaves {answers.masked.counted} predictions and "
            f"moves the mean from {_nats(answers.full.mean_token_loss)} to {_nats(answers.masked.mean_token_loss)}."
        )
    if answers.pads_masked is not None and answers.pads_counted is not None:
        sentences.append(
            f"Batched with {quoted(shorten(answers.companion or '', 30))}, that row is padded: with pad labels −100 "
            f"the batch loss is {_nats(answers.pads_masked.batch_loss)}, with pads counted "
            f"{_nats(answers.pads_counted.batch_loss)}, grading the model on predicting padding."
        )
    else:
        sentences.append("A text of three tokens or more also shows a padded batch.")
    alt = "; ".join(f"{name.replace('<br>', ' ')}: {_nats(v)}" for name, v in bars)
    return LessonStep(8, TITLES[7], sentences, fig, alt)
