"""Packing made visible (issue 18): a data file's packed sequences as TRL builds them, each through the in-process
model with its examples seeing each other and kept apart. What the page's packing view and `visualizer labels
--packing --format json` call; the work is in analysis/packing.py, the drawing in views/packing_figures.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from ..analysis.data_files import DataFile
from ..analysis.packing import PackComparison, PackedSequence, compare_pack, packed_sequences
from ..analysis.trainer_labels import LabelOptions
from ..errors import InputError
from ..model.loading import AnyModel, with_weights
from ..views.headings import style_for
from ..views.packing_figures import examples_table, pack_figure
from .inputs import whole_number
from .remembered import Remembered
from .training_data import trainer_for

NEEDS_PACKING = "The packing view needs packing turned on (and a max_length: the length of TRL's sequences)."
PACKED_FILES_KEPT = 4
"""Files whose packed sequences are kept (the last used first): moving through one file's sequences labels it once."""
_PACKED = Remembered(PACKED_FILES_KEPT)


@dataclass
class PackView:
    """One packed sequence for the page: the comparison, its figure and its table per example."""

    comparison: PackComparison
    figure: go.Figure
    table: pd.DataFrame
    """One line per example: row, start, end, tokens, counted, loss together, loss apart, difference."""
    packs: int
    """How many packed sequences the file makes (for the page's pack picker)."""
    notices: list[str]


def packed_file(data: DataFile, lm: AnyModel, options: LabelOptions) -> Iterator[PackedSequence]:
    """The file's packed sequences in order, as TRL's `pack_dataset` bins them (PACK_ROWS rows at a time), each
    example's first label -100 as TRL's collator sets it. TRL's refusals are raised at the first step."""
    if not options.packing:
        raise InputError(NEEDS_PACKING)
    trainer = trainer_for(data, lm, options)
    return (sequence for chunk in trainer.label_chunks(data.dataset) for sequence in packed_sequences(chunk))


def packed_list(data: DataFile, lm: AnyModel, options: LabelOptions) -> list[PackedSequence]:
    """`packed_file` as a list, kept for the last PACKED_FILES_KEPT (file, model, options): the page's next click on
    the same file reads them back instead of running TRL over every row again. A file is its dataset object (the
    page's state hands the same one to each click; a file read again is labelled again)."""
    key = (id(data.dataset), lm.name, options)
    # the dataset is kept beside its sequences, so no other object can take its id while they are remembered
    return _PACKED.get(key, lambda: (data.dataset, list(packed_file(data, lm, options))))[1]


def pack_comparisons(data: DataFile, lm: AnyModel, options: LabelOptions) -> Iterator[PackComparison]:
    """Every packed sequence's comparison (two forward passes each), in pack order, each as it is done; the
    model and the options are checked here, at once."""
    weights = with_weights(lm, "Comparing packed examples")
    return (compare_pack(weights, sequence) for sequence in packed_file(data, lm, options))


def pack_view(data: DataFile, pack, lm: AnyModel, options: LabelOptions, classroom: bool = False) -> PackView:
    """Packed sequence `pack` (0-based) of the file: its two forward passes, the figure (bands per example, bars of
    the per-token difference) and the table per example; an InputError past the last sequence."""
    pack = whole_number(pack, "The packed sequence", at_least=0)
    weights = with_weights(lm, "Comparing packed examples")
    sequences = packed_list(data, lm, options)
    if pack >= len(sequences):
        raise InputError(
            f"Packed sequence {pack} is past the end: the file packs into sequences 0 to {len(sequences) - 1}."
        )
    comparison = compare_pack(weights, sequences[pack])
    figure = pack_figure(comparison, style_for(classroom))
    return PackView(comparison, figure, examples_table(comparison), len(sequences), list(comparison.notices))
