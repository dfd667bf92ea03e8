"""What the commands share: the --model and masking options, the text checks, the JSON-or-table output, and a
parser whose errors are one line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

from ..service.inputs import check_text
from ..settings import Settings

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        """Print `prog: error: message` only (no usage block) and exit 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def add_model_argument(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """The shared --model option."""
    parser.add_argument(
        "--model",
        default=settings.model,
        help="bundled name, local directory, .gguf file, hub id, LoRA adapter directory or vllm: entry "
        "(default %(default)s; env VISUALIZER_MODEL)",
    )


def add_masking_arguments(parser: argparse.ArgumentParser, first_token: str) -> None:
    """The shared --mask-first, --mask-until and --bos options (`first_token`: what --bos lets the first token be)."""
    parser.add_argument("--mask-first", type=int, default=0, metavar="N", help="set the first N labels to -100")
    parser.add_argument(
        "--mask-until", metavar="TEXT", help="set every label up to and including the first TEXT to -100"
    )
    parser.add_argument(
        "--bos", action="store_true", help=f"prepend the BOS token so the first token is {first_token} too"
    )


def marker_mask(text: str, args: argparse.Namespace, lm, settings: Settings) -> Sequence[int]:
    """The label indices --mask-until masks in `text` (none without it)."""
    from ..analysis.masking import mask_until

    if args.mask_until is None:
        return ()
    return mask_until(text, args.mask_until, lm, bos=args.bos, max_tokens=settings.max_tokens)


def checked_texts(texts: list[str], settings: Settings) -> list[str]:
    """Refuse empty texts, and texts longer than the configured maximum, before loading a model."""
    return [check_text(text, settings) for text in texts]


def write_result(out, fmt: str, result, as_text: Callable) -> None:
    """`--format json`: the result's `to_dict()` as one line of JSON (non-ASCII kept as is); else `as_text(result)`."""
    out.write((json.dumps(result.to_dict(), ensure_ascii=False) if fmt == "json" else as_text(result)) + "\n")
