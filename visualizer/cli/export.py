"""`python -m visualizer export-model DIR`: the model as a standard Hugging Face checkpoint (config, tokenizer
with its chat template, safetensors weights) that transformers and a vLLM server load."""

from __future__ import annotations

from ..settings import Settings
from .arguments import add_model_argument


def register(commands, settings: Settings) -> None:
    """Add the `export-model` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "export-model",
        help="write the model as a standard Hugging Face checkpoint (safetensors) for transformers or vLLM",
    )
    parser.add_argument("directory", metavar="DIR", help="a new or empty directory to write into")
    add_model_argument(parser, settings)
    parser.set_defaults(run=run_export)


def run_export(args, settings: Settings, out) -> None:
    """Check the model name and the directory, load the model, write it, print what was written."""
    from ..errors import InputError
    from ..model.adapters import check_adapter_base
    from ..model.export import check_export_directory, export_checkpoint
    from ..model.loading import LoadedModel, load_model

    if not settings.allows(args.model):
        raise InputError(
            f"Model '{args.model}' is not one this installation offers ({', '.join(settings.models)}); "
            "set VISUALIZER_MODELS or VISUALIZER_ALLOW_ANY_MODEL=1 to allow it."
        )
    check_adapter_base(args.model, settings.allows)  # an adapter exports merged into its base: that base too
    directory = check_export_directory(args.directory)  # before loading: a refusal should not wait for weights
    lm = load_model(args.model)
    if not isinstance(lm, LoadedModel):
        raise InputError(f"'{args.model}' runs in an engine, not in this process: there are no weights here to export.")
    try:
        files = export_checkpoint(lm, None, directory)
    except OSError as err:
        raise InputError(f"Could not write '{directory}': {err.strerror or err}.") from err
    size = sum(files.values()) / 1e6
    out.write(f"{lm.name}: wrote {len(files)} files, {size:.1f} MB, to {directory} ({', '.join(files)})\n")
