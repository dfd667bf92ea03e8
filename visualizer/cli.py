"""Command line: `python -m visualizer analyze TEXT ...` prints the walkthrough for each text.

Bad input prints one line on stderr and exits with status 2; nothing raises to the user.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import InputError, ModelLoadError
from .settings import Settings

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        """Print `prog: error: message` only (no usage block) and exit 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The CLI's parser, its defaults taken from `settings`."""
    parser = _Parser(prog="visualizer", description="See what a causal LM predicts, position by position.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log loading details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    analyze = commands.add_parser("analyze", help="per-position predictions and loss of one or more texts")
    analyze.add_argument("texts", nargs="+", metavar="TEXT", help="text to analyse (several allowed)")
    add_model_argument(analyze, settings)
    analyze.add_argument("--top-k", type=int, default=settings.top_k, help="candidates per position (default %(default)s)")
    analyze.add_argument("--mask-first", type=int, default=0, metavar="N", help="set the first N labels to -100")
    analyze.add_argument("--mask-until", metavar="TEXT", help="set every label up to and including the first TEXT to -100")
    analyze.add_argument("--bos", action="store_true", help="prepend the BOS token so the first token is scored too")
    analyze.add_argument("--format", choices=("table", "json", "csv"), default="table")
    analyze.add_argument("--no-sentence-vocab", action="store_true",
                         help="json: leave out the walkthrough's table (it grows with positions x distinct tokens)")
    analyze.set_defaults(run=run_analyze)
    for register in _extra_commands():
        register(commands, settings)
    return parser


def add_model_argument(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """The shared --model option."""
    parser.add_argument(
        "--model", default=settings.model,
        help="bundled name, local directory, .gguf file or hub id (default %(default)s; env VISUALIZER_MODEL)",
    )


def _extra_commands():
    """Registration functions of the other subcommands (generate, lens, train), when present."""
    registrars = []
    for module_name in ("visualizer.generation_cli", "visualizer.lens_cli", "visualizer.train_cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        registrars.append(module.register)
    return registrars


def run_analyze(args, settings: Settings, out) -> None:
    """Analyse each text and print it in the chosen format."""
    from . import tables
    from .analysis import analyze, validate_top_k
    from .loading import load_model
    from .masking import mask_until

    texts = checked_texts(args.texts, settings)
    validate_top_k(args.top_k, settings.max_top_k)
    lm = load_model(args.model)
    results = [
        analyze(text, lm, top_k=args.top_k, mask_first=args.mask_first, bos=args.bos,
                masked=mask_until(text, args.mask_until, lm, bos=args.bos, max_tokens=settings.max_tokens)
                if args.mask_until is not None else (),
                max_tokens=settings.max_tokens, max_top_k=settings.max_top_k)
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
        from .report import walkthrough_text

        out.write("\n\n".join(walkthrough_text(r) for r in results) + "\n")


def checked_texts(texts: list[str], settings: Settings) -> list[str]:
    """Refuse empty texts, and texts longer than the configured maximum, before loading a model."""
    for text in texts:
        if not text.strip():
            raise InputError("Please enter some text: it is empty.")
        if len(text) > settings.max_chars:
            raise InputError(f"The text is {len(text):,} characters; the limit is {settings.max_chars:,}.")
    return texts


def main(argv: list[str] | None = None, out=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input or unusable model)."""
    out = out or sys.stdout
    settings = Settings.from_env()
    args = build_parser(settings).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        args.run(args, settings, out)
    except (InputError, ModelLoadError) as err:
        print(f"visualizer: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
