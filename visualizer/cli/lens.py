"""`python -m visualizer lens TEXT ...`: the logit lens, each layer's prediction at each position."""

from __future__ import annotations

from ..analysis.lens import LogitLens, logit_lens
from ..service.inputs import check_text
from ..settings import Settings
from .arguments import add_model_argument, write_result

CELL_WIDTH = 22


def register(commands, settings: Settings) -> None:
    """Add the `lens` subcommand to the CLI's subparsers."""
    parser = commands.add_parser("lens", help="the logit lens: what each layer predicts at each position")
    parser.add_argument("text", metavar="TEXT", help="text to look through")
    add_model_argument(parser, settings)
    parser.add_argument("--bos", action="store_true", help="prepend the BOS token so the first token is predicted too")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=run_lens)


def run_lens(args, settings: Settings, out) -> None:
    """Validate the text, load the model, run the lens, print it."""
    from ..model.loading import load_model, with_weights

    text = check_text(args.text, settings)
    lens = logit_lens(
        text, with_weights(load_model(args.model), "The lens command"), bos=args.bos, max_tokens=settings.max_tokens
    )
    write_result(out, args.format, lens, lens_text)


def lens_text(lens: LogitLens) -> str:
    """A grid: one line per layer (last layer first), one column per position, 'top p(target) #rank'."""

    def cell(text: str) -> str:
        return text[:CELL_WIDTH].ljust(CELL_WIDTH)

    header = cell("layer \\ target") + "".join(cell(repr(t.display)) for t in lens.tokens[1:])
    lines = [
        f"{lens.model}: {lens.layers} layers (embeddings + {lens.layers - 1} blocks), {len(lens.tokens)} tokens",
        header,
    ]
    lines.extend(f"note: {n}" for n in lens.notices)
    for layer in reversed(range(lens.layers)):
        cells = (cell(f"{c.top.display} {c.p_target:.1%} #{c.rank}") for c in lens.rows[layer])
        lines.append(cell(LogitLens.layer_name(layer)) + "".join(cells))
    lines.append("cell: the layer's top token, p(target), #rank of the target")
    return "\n".join(lines)
