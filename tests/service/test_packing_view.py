"""The packing view's request and drawing: a file's packed sequence as a figure (a band per example, bars of the
per-token difference, a text alternative, every token escaped) and a table per example; its refusals."""

import json
import math

import pytest

from tests.training_data import write_jsonl
from visualizer.errors import InputError
from visualizer.model.loading import load_model
from visualizer.service import training_data as td
from visualizer.service.packing import pack_comparisons, pack_view
from visualizer.settings import Settings
from visualizer.views.packing_figures import EXAMPLE_COLUMNS

SETTINGS = Settings()
TEXTS = ["the dog likes <b>food</b> &amp; %{x}", "a quick brown fox", "the lazy dog", "the cat likes", "fish"]


@pytest.fixture(scope="module")
def lm(tiny_llama_dir):
    return load_model(tiny_llama_dir)


@pytest.fixture
def data(tmp_path):
    return td.open_data(write_jsonl(tmp_path / "text.jsonl", [{"text": t} for t in TEXTS]), SETTINGS)


def test_the_view_draws_a_packed_sequence_and_its_table(lm, data):
    options = td.label_options("all", 48, packing=True)
    view = pack_view(data, 0, lm, options)
    comparison = view.comparison
    assert view.packs == len(list(pack_comparisons(data, lm, options))) >= 1
    assert list(view.table.columns) == list(EXAMPLE_COLUMNS)
    assert view.table["row"].tolist() == comparison.sequence.rows and len(comparison.sequence.rows) > 1
    first = view.table.iloc[0]
    assert math.isclose(first["difference"], 0, abs_tol=1e-5) and first["start"] == 0
    assert (view.table["tokens"] == view.table["end"] - view.table["start"]).all()
    fig = view.figure
    assert len(fig.layout.shapes) == len(comparison.sequence.rows)  # one band per example
    bars = fig.data[0]
    assert len(bars.x) == sum(d is not None for d in comparison.difference)
    assert list(bars.y) == pytest.approx([d for d in comparison.difference if d is not None])
    text = json.dumps(fig.to_plotly_json(), default=str)
    assert (
        "<" not in text.replace("<br>", "").replace("<extra></extra>", "") and "&lt;" in text and "&amp;" in text
    )  # every token escaped
    alt = fig.layout.meta["alt"]
    assert alt.startswith(f"packed sequence {comparison.sequence.pack}, mean −ln p per example: row ")
    assert "together" in alt and "apart" in alt


def test_refusals(lm, data):
    with pytest.raises(InputError, match="needs packing"):
        pack_view(data, 0, lm, td.label_options("all", 48))
    with pytest.raises(InputError, match="past the end"):
        pack_view(data, 99, lm, td.label_options("all", 48, packing=True))
    with pytest.raises(InputError, match="whole number"):
        pack_view(data, -1, lm, td.label_options("all", 48, packing=True))


def test_the_data_tabs_packing_panel_draws_what_the_service_gives(lm, data, tiny_llama_dir):
    from visualizer.ui.data_tab import make_data_handlers

    handlers = make_data_handlers(Settings(model=tiny_llama_dir, models=(tiny_llama_dir,)))
    figure, table, note = handlers.packing(data, tiny_llama_dir, "all", 48, True, 0, False)
    view = pack_view(data, 0, lm, td.label_options("all", 48, packing=True))
    assert table.equals(view.table.round(4)) and figure.layout.meta["alt"] == view.figure.layout.meta["alt"]
    assert note.startswith(f"Packed sequence 0 of {view.packs} (0 to {view.packs - 1}): rows 0, 1")
    for args, message in [
        ((None, tiny_llama_dir, "all", 48, True, 0, False), "⚠ Scan a data file first"),
        ((data, tiny_llama_dir, "all", 48, False, 0, False), "⚠ The packing view needs packing turned on"),
        ((data, tiny_llama_dir, "all", 48, True, 99, False), "⚠ Packed sequence 99 is past the end"),
    ]:
        figure, table, note = handlers.packing(*args)
        assert figure is None and table.empty and note.startswith(message)


def test_moving_through_a_files_sequences_labels_it_once(lm, data, tmp_path, monkeypatch):
    from visualizer.analysis.trainer_labels import TrainerLabels

    options = td.label_options("all", 16, packing=True)
    calls = []
    label_chunks = TrainerLabels.label_chunks
    monkeypatch.setattr(
        TrainerLabels, "label_chunks", lambda self, *a, **k: calls.append(1) or label_chunks(self, *a, **k)
    )
    views = [pack_view(data, pack, lm, options) for pack in (0, 1, 0)]
    assert len(calls) == 1 and views[0].packs == views[1].packs >= 2
    assert views[2].comparison.sequence.rows == views[0].comparison.sequence.rows != views[1].comparison.sequence.rows
    pack_view(data, 0, lm, td.label_options("all", 24, packing=True))  # other options: labelled again
    assert len(calls) == 2
    rewritten = write_jsonl(tmp_path / "text.jsonl", [{"text": t.upper()} for t in TEXTS])  # the same path, new rows
    again = pack_view(td.open_data(rewritten, SETTINGS), 0, lm, options)
    assert len(calls) == 3 and again.comparison.sequence.input_ids != views[0].comparison.sequence.input_ids
