"""`python -m visualizer labels FILE ...`: a fine-tuning file's rows with the labels TRL trains on (tokens, counted
tokens, loss, warnings), or with --row I one row's analysis in the JSON contract."""

from __future__ import annotations

import os
import sys

import orjson

from ..settings import Settings
from .arguments import add_model_argument

PRESET_NAMES = ("all", "completion-only", "assistant-only")


def register(commands, settings: Settings) -> None:
    """Add the `labels` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "labels", help="a fine-tuning data file's rows with the labels TRL's SFTTrainer makes, and the model's loss"
    )
    parser.add_argument(
        "file", metavar="FILE", help="a .jsonl, .json, .csv or .parquet file (messages, prompt + completion, or text)"
    )
    parser.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="all",
        help="all: every token; completion-only: TRL's completion_only_loss; assistant-only: its assistant_only_loss",
    )
    parser.add_argument(
        "--packing",
        action="store_true",
        help="TRL's packing (bfd): rows binned into max_length; with --format json each packed sequence follows "
        "the rows, its examples' losses seeing each other and kept apart",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=1024,
        metavar="N",
        help="SFTConfig.max_length: rows cut to N tokens (default %(default)s, TRL's; 0: no truncation)",
    )
    add_model_argument(parser, settings)
    parser.add_argument("--row", type=int, metavar="I", help="one row's analysis (0-based), labels included")
    parser.add_argument(
        "--top-k", type=int, default=settings.top_k, help="with --row: candidates per position (default %(default)s)"
    )
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.set_defaults(run=run_labels)


def run_labels(args, settings: Settings, out) -> None:
    """Read the file, check the options, load the model; print the rows as they are done, or one row."""
    from ..analysis.one_pass import validate_top_k
    from ..model.loading import load_model
    from ..service import training_data

    options = training_data.label_options(args.preset, args.max_length, args.packing)
    data = training_data.open_data(args.file, settings)
    validate_top_k(args.top_k, settings.max_top_k)
    lm = load_model(args.model)
    if args.row is not None:
        labeled = training_data.analyze_row(data, args.row, lm, options, settings, top_k=args.top_k)
        print_labeled(labeled, args.format, out)
        return
    scan = training_data.scan_file(data, lm, options, settings)
    header = (
        f"{lm.name}: {args.file}, {scan.total} rows ({data.format}), preset {options.preset}, "
        f"max_length {options.max_length or 'none'}{', packing' if options.packing else ''}"
    )
    try:
        {"table": _print_table, "json": _print_json, "csv": _print_csv}[args.format](scan, header, out)
        if options.packing and args.format == "json":
            _print_packs(data, lm, options, out)
    except BrokenPipeError:  # `| head`: the reader has gone; stop scanning, and say nothing more
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_table(scan, header: str, out) -> None:
    """The rows as a text table, each printed as it is done, then the totals."""
    from ..service.training_data import totals
    from ..views.data_report import ROW_HEADER, row_line

    out.write("\n".join([header, *(f"note: {n}" for n in scan.notices), ROW_HEADER]) + "\n")
    reports = []
    for report in scan.rows:
        reports.append(report)
        out.write(row_line(report) + "\n")
        out.flush()
    t = totals(reports)
    loss = "no loss (nothing counts)" if t.loss is None else f"loss {t.loss:.4f} over them"
    out.write(
        f"{t.rows} rows: {t.counted} counted tokens, {loss}; {t.dropped} dropped by TRL, {t.warned} with warnings\n"
    )


def _print_json(scan, header: str, out) -> None:
    """One JSON object per row, one line each, as each is done; the file's notes on stderr."""
    for note in scan.notices:
        print(f"visualizer: note: {note}", file=sys.stderr)
    for report in scan.rows:
        out.write(orjson.dumps(report.to_dict()).decode() + "\n")
        out.flush()


def _print_packs(data, lm, options, out) -> None:
    """After the rows, one JSON object per packed sequence, as each is done: {pack, tokens, examples: [{row, start,
    end, counted, loss_together, loss_apart, difference}]} from two forward passes (examples seeing each other, and
    kept apart as TRL's packed training keeps them)."""
    from ..service.packing import pack_comparisons

    for comparison in pack_comparisons(data, lm, options):
        out.write(orjson.dumps(comparison.to_dict()).decode() + "\n")
        out.flush()


def _print_csv(scan, header: str, out) -> None:
    """The rows as CSV (warnings joined by ' | '); the file's notes on stderr."""
    from ..views.data_report import rows_table

    for note in scan.notices:
        print(f"visualizer: note: {note}", file=sys.stderr)
    rows_table(list(scan.rows)).to_csv(out, index=False)


def print_labeled(labeled, fmt: str, out, sentence_vocab: bool = True) -> None:
    """One row's analysis: the walkthrough and its tokens by role, the JSON contract, or the positions as CSV."""
    if fmt == "json":
        out.write(orjson.dumps(labeled.to_dict(sentence_vocab=sentence_vocab)).decode() + "\n")
    elif fmt == "csv":
        from ..views import tables

        tables.position_table(labeled.analysis).to_csv(out, index=False)
    else:
        from ..views.data_report import roles_text
        from ..views.report import walkthrough_text

        roles = roles_text(labeled)
        out.write(walkthrough_text(labeled.analysis) + ("\n" + roles if roles else "") + "\n")
