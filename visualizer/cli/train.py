"""`python -m visualizer train TEXT ...`: a few optimizer steps on one text, and the walkthrough's table
before and after, as the Train tab shows them (on a private copy: the model on disk never changes)."""

from __future__ import annotations

import pandas as pd

from ..analysis.training import DEFAULT_STEPS, OPTIMIZERS, BeforeAfter
from ..settings import Settings
from .arguments import add_masking_arguments, add_model_argument, checked_texts, marker_mask

OTHER_COLUMN = "(all other tokens)"


def register(commands, settings: Settings) -> None:
    """Add the `train` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "train", help="train a copy of the model on one text for a few steps; the loss and the table before and after"
    )
    parser.add_argument("text", metavar="TEXT", help="the text to train on")
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        metavar="N",
        help=f"optimizer steps, 1..{settings.max_train_steps} (default %(default)s)",
    )
    parser.add_argument("--lr", type=float, metavar="X", help="learning rate (default 1e-4 for adamw, 1e-3 for sgd)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    add_masking_arguments(parser, "trained on")
    parser.add_argument(
        "--seed", type=int, metavar="S", help="seed of torch's RNG for the run (default: a new one, printed)"
    )
    add_model_argument(parser, settings)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=run_train)


def run_train(args, settings: Settings, out) -> None:
    """Check the options, load the model, train a copy, print the losses and both tables."""
    from ..analysis.training import train_before_after
    from ..errors import InputError
    from ..model.loading import load_model, with_weights

    (text,) = checked_texts([args.text], settings)
    if args.steps > settings.max_train_steps:
        raise InputError(f"At most {settings.max_train_steps} steps are allowed here, not {args.steps}.")
    lm = with_weights(load_model(args.model), "The train command")
    result = train_before_after(
        text,
        lm,
        top_k=settings.top_k,
        mask_first=args.mask_first,
        masked=marker_mask(text, args, lm, settings),
        bos=args.bos,
        max_tokens=settings.max_tokens,
        max_top_k=settings.max_top_k,
        steps=args.steps,
        optimizer=args.optimizer,
        lr=args.lr,
        seed=args.seed,
    )
    if args.format == "json":
        import orjson

        out.write(orjson.dumps(result.to_dict()).decode() + "\n")
    else:
        out.write(training_text(result) + "\n")


def training_text(result: BeforeAfter) -> str:
    """The settings, the loss before each update, and the walkthrough's table before | after."""
    run, before, after = result.run, result.before, result.after
    taken = len(run.history) - 1
    lines = [
        f"{run.model}: trained a copy for {taken} of {run.steps} steps ({run.optimizer}, lr {run.lr:g}, "
        f"seed {run.seed}) on {len(run.tokens)} tokens, {before.counted} counted",
        "step  loss before the update",
    ]
    lines += [f"{step:>4}  {_num(loss)}" for step, loss in enumerate(run.losses_before_updates, 1)]
    lines.append(f"after {taken} steps: loss {_num(after.loss)} (before: {_num(before.loss)})")
    lines += run.notices
    lines.append("")
    lines.append("p(token | context) for the positions that count, before | after training:")
    lines.append(side_by_side(_counted_rows(before), _counted_rows(after)))
    return "\n".join(lines)


def _counted_rows(analysis) -> pd.DataFrame:
    """The walkthrough's table as percentages, only the rows whose label counts; the true token's cell starred."""
    from ..views import tables

    table = tables.sentence_vocab_table(analysis)  # (n-1, D+1)
    targets = analysis.vocab.target_column
    shown = table.map(lambda p: f"{p:.2%}")
    for row, column in enumerate(targets):
        shown.iat[row, column] = "*" + shown.iat[row, column]
    return shown[analysis.arrays.counted]


def side_by_side(left: pd.DataFrame, right: pd.DataFrame) -> str:
    """Two tables with the same rows printed next to each other: 'before' columns | 'after' columns."""
    left_lines = left.to_string().splitlines()
    right_lines = right.to_string(index=False).splitlines()
    width = max(len(line) for line in left_lines)
    head = f"{'before':<{width}} | after"
    body = [f"{a:<{width}} | {b}" for a, b in zip(left_lines, right_lines)]
    return "\n".join([head, *body, "(* = the true next token)"])


def _num(value: float | None) -> str:
    """A loss with four decimals, or 'none' (no position counts, or not a number)."""
    return "none" if value is None else f"{value:.4f}"
