"""`python -m visualizer analyze TEXT ...`: the walkthrough of each text as a table, JSON or CSV."""

from __future__ import annotations

from ..settings import Settings
from .arguments import add_masking_arguments, add_model_argument, checked_texts, marker_mask


def register(commands, settings: Settings) -> None:
    """Add the `analyze` subcommand to the CLI's subparsers."""
    parser = commands.add_parser("analyze", help="per-position predictions and loss of one or more texts")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="text to analyse (several allowed)")
    parser.add_argument(
        "--chat",
        metavar="FILE.json",
        help='analyse one conversation (a JSON list of {role, content}, or {"messages": [...]}) through the '
        "model's chat template instead of a text",
    )
    parser.add_argument(
        "--preset",
        choices=("all", "completion-only", "assistant-only"),
        default="all",
        help="with --chat: which tokens count, as TRL's SFTTrainer labels them (default %(default)s)",
    )
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
    """Analyse each text (or the --chat conversation) and print it in the chosen format."""
    from ..analysis.one_pass import analyze, validate_top_k
    from ..errors import InputError
    from ..model.loading import load_model
    from ..views import tables

    if args.chat is not None:
        if args.texts:
            raise InputError("Give either texts or --chat FILE.json, not both.")
        run_chat(args, settings, out)
        return
    if not args.texts:
        raise InputError("Give a TEXT to analyse, or --chat FILE.json.")
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
            exact_table=args.format == "table" or (args.format == "json" and not args.no_sentence_vocab),
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


def run_chat(args, settings: Settings, out) -> None:
    """One conversation from a JSON file through the model's chat template, with TRL's labels under --preset."""
    from pathlib import Path

    from ..analysis.one_pass import validate_top_k
    from ..errors import InputError
    from ..model.loading import load_model
    from ..service.training_data import analyze_chat, read_chat
    from .labels import print_labeled

    path = Path(args.chat)
    if not path.is_file():
        raise InputError(f"There is no file at {path}.")
    if path.stat().st_size > settings.max_data_mb * 1_000_000:
        raise InputError(f"{path.name} is larger than {settings.max_data_mb} MB.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not UTF-8 text.") from None
    messages = read_chat(text)
    validate_top_k(args.top_k, settings.max_top_k)
    labeled = analyze_chat(messages, load_model(args.model), settings, preset=args.preset, top_k=args.top_k)
    print_labeled(labeled, args.format, out, sentence_vocab=not args.no_sentence_vocab)
