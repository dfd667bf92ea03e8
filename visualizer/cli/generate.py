"""`python -m visualizer generate PROMPT ...`: generate token by token and show each step's distributions."""

from __future__ import annotations

from ..analysis.generation import (
    DEFAULT_NEW_TOKENS,
    MAX_NEW_TOKENS,
    Decoding,
    Generation,
)
from ..service.inputs import check_text
from ..settings import Settings
from .arguments import add_model_argument, write_result

SHOWN_IN_TABLE = 5


def register(commands, settings: Settings) -> None:
    """Add the `generate` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "generate", help="generate a continuation one token at a time, with each step's choice"
    )
    parser.add_argument("prompt", metavar="PROMPT", help="text to continue")
    add_model_argument(parser, settings)
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_NEW_TOKENS,
        metavar="N",
        help=f"most new tokens, 1..{MAX_NEW_TOKENS} (default %(default)s); stops earlier at EOS",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="always take the most likely token (the default)")
    mode.add_argument("--temperature", type=float, metavar="T", help="sample, dividing the logits by T (> 0)")
    parser.add_argument("--top-k", type=int, metavar="K", help="keep only the K most likely tokens")
    parser.add_argument(
        "--top-p", type=float, metavar="P", help="keep the fewest likeliest tokens whose p adds up to >= P"
    )
    parser.add_argument("--seed", type=int, metavar="S", help="seed of the sampling RNG, to repeat a run")
    parser.add_argument(
        "--candidates",
        type=int,
        default=settings.top_k,
        metavar="N",
        help="candidates recorded per step (default %(default)s)",
    )
    parser.add_argument("--bos", action="store_true", help="prepend the BOS token to the prompt")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=run_generate)


def run_generate(args, settings: Settings, out) -> None:
    """Validate the options, load the model, generate to the end, print it."""
    from ..analysis.one_pass import validate_top_k
    from ..model.loading import load_model

    prompt = check_text(args.prompt, settings, "prompt")
    decoding = Decoding(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed)
    candidates = validate_top_k(args.candidates, settings.max_top_k)
    generation = Generation(
        load_model(args.model),
        prompt,
        decoding,
        bos=args.bos,
        candidates=candidates,
    )
    generation.run()
    write_result(out, args.format, generation, generation_text)


def generation_text(generation: Generation) -> str:
    """One line per step: the chosen token, p_model -> p, how many tokens were kept, the top few."""
    d = generation.decoding
    mode = "greedy" if d.greedy else f"sampling T={d.temperature} seed={generation.seed}"
    filters = "".join(f" {name}={v}" for name, v in (("top-k", d.top_k), ("top-p", d.top_p)) if v is not None)
    lines = [f"{generation.lm.name}: {mode}{filters}", f"prompt: {generation.prompt!r}"]
    for s in generation.steps:
        top = ", ".join(f"{c.token.display} {c.p_model:.1%}" + ("" if c.kept else " ✗") for c in s.top[:SHOWN_IN_TABLE])
        lines.append(
            f"{s.index + 1:>3}  {s.token.display!r:<16} p_model {s.p_model:7.2%} -> p {s.p:7.2%}"
            f"  kept {'?' if s.n_kept is None else s.n_kept:<6} top: {top}"
        )
    lines.append(f"text: {generation.text!r}")
    lines.append(f"stop: {generation.stop_reason}")
    return "\n".join(lines)
