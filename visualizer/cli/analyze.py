"""`python -m visualizer analyze TEXT ...`: the walkthrough of each text as a table, JSON or CSV."""

from __future__ import annotations

from ..settings import Settings
from .arguments import add_masking_arguments, add_model_argument, checked_texts, marker_mask


def register(commands, settings: Settings) -> None:
    """Add the `analyze` subcommand to the CLI's subparsers."""
    parser = commands.add_parser("analyze", help="per-position predictions and loss of one or more texts")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="text to analyse (several allowed)")
    add_model_argument(parser, settings)
    parser.add_argument(
        "--top-k", type=int, default=settings.top_k, help="candidates per position (default %(default)s)"
    )
    add_masking_arguments(parser, "scored")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument(
        "--no-sentence-vocab",
        action="store_true",
        help="json: leave out the walkthrough's table (it grows with positions x distinct tokens)",
    )
    parser.set_defaults(run=run_analyze)


def run_analyze(args, settings: Settings, out) -> None:
    """Analyse each text and print it in the chosen format."""
    from ..analysis.one_pass import analyze, validate_top_k
    from ..model.loading import load_model
    from ..views import tables

    texts = checked_texts(args.texts, settings)
    validate_top_k(args.top_k, settings.max_top_k)
    lm = load_model(args.model)
    results = [
        analyze(
            text,
            lm,
            top_k=args.top_k,
            mask_first=args.mask_first,
            bos=args.bos,
            masked=marker_mask(text, args, lm, settings),
            max_tokens=settings.max_tokens,
            max_top_k=settings.max_top_k,
        )
        for text in texts
    ]
    if args.format == "json":
        for result in results:
            out.write(result.to_json(sentence_vocab=not args.no_sentence_vocab).decode() + "\n")
    elif args.format == "csv":
        frames = [tables.position_table(r).assign(text=r.text) for r in results]
        import pandas as pd

        pd.concat(frames, ignore_index=True).to_csv(out, index=False)
    else:
        from ..views.report import walkthrough_text

        out.write("\n\n".join(walkthrough_text(r) for r in results) + "\n")
