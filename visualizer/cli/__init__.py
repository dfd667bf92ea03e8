"""Command line: `python -m visualizer analyze|generate|lens|train|labels|export-model ...`, one module per command.

Bad input prints one line on stderr and exits with status 2; nothing raises to the user.
`main` here is the console entry point (`visualizer = "visualizer.cli:main"`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import InputError, ModelLoadError
from ..settings import Settings
from . import analyze, export, generate, labels, lens, train
from .arguments import EXIT_BAD_INPUT, _Parser


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The CLI's parser, its defaults taken from `settings`."""
    parser = _Parser(prog="visualizer", description="See what a causal LM predicts, position by position.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log loading details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (analyze, generate, lens, train, labels, export):
        command.register(commands, settings)
    return parser


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
