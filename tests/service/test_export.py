"""The page's downloads: the JSON file is the contract, the CSV files are the tables."""

import io
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from visualizer.analysis.one_pass import analyze
from visualizer.errors import InputError
from visualizer.service import exports
from visualizer.views import tables


def test_the_exported_files_hold_the_contract_and_the_tables(tiny_lm, tmp_path):
    result = analyze('the dog likes food 🐕 "quoted"\n', tiny_lm, top_k=3, masked=(2,))
    positions, top_k, contract = exports.export_files(result, str(tmp_path))
    assert json.loads((tmp_path / "analysis.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(result.to_dict())
    )
    assert contract == str(tmp_path / "analysis.json")
    pd.testing.assert_frame_equal(
        pd.read_csv(positions, keep_default_na=False),
        pd.read_csv(io.StringIO(tables.position_table(result).to_csv(index=False)), keep_default_na=False),
    )
    assert len(pd.read_csv(top_k)) == len(result.positions) * 3


def test_the_tables_hold_each_position_objects_numbers(tiny_lm):
    """The tables read the arrays column by column; here they are rebuilt row by row from `Position`s."""
    result = analyze("the dog likes food and the cat likes fish", tiny_lm, top_k=4, masked=(1, 5))
    rows = [
        {
            "k": p.k,
            "context": p.context,
            "target": p.target.display,
            "target_id": p.target.id,
            "p_target": p.p_target,
            "rank": p.rank,
            "loss": p.loss,
            "masked": p.masked,
            "entropy": p.entropy,
            "top1": p.top[0].token.display,
            "p_top1": p.top[0].p,
        }
        for p in result.positions
    ]
    pd.testing.assert_frame_equal(tables.position_table(result), pd.DataFrame(rows), check_dtype=False)
    long = [
        {
            "k": p.k,
            "rank": r,
            "token": c.token.display,
            "token_id": c.token.id,
            "p": c.p,
            "is_target": c.token.id == p.target.id,
        }
        for p in result.positions
        for r, c in enumerate(p.top, 1)
    ]
    pd.testing.assert_frame_equal(tables.top_k_table(result), pd.DataFrame(long), check_dtype=False)
    labels = tables.labels_table(result)
    assert labels["label"].tolist() == result.labels
    assert labels["counts_in_loss"].tolist() == [False, False] + [True] * 3 + [False] + [True] * (
        len(result.labels) - 6
    )
    assert labels["predicted_from"].tolist()[1:] == [f"input_ids[:{p.k}] = {p.context}" for p in result.positions]


def test_the_walkthrough_table_holds_each_rows_probabilities(tiny_lm):
    result = analyze("the dog likes the food", tiny_lm)
    table, vocab = tables.sentence_vocab_table(result), result.vocab
    assert list(table.columns) == [t.display for t in vocab.columns] + ["(all other tokens)"]  # distinct here
    assert list(table.index) == [f"{p.context} → {p.target.display}" for p in result.positions]
    assert table.to_numpy().tolist() == [vocab.predicted(r) for r in range(len(result.positions))]
    assert table.sum(axis=1).tolist() == pytest.approx([1.0] * len(table), abs=1e-5)


def test_each_download_is_written_when_asked_for_and_equals_the_full_export(tiny_lm, tmp_path):
    result = analyze("the dog likes food", tiny_lm, top_k=2)
    every = dict(zip(exports.EXPORTS, exports.export_files(result, str(tmp_path))))
    for kind, name in exports.EXPORTS.items():
        path = exports.export_file(result, kind)
        assert path.endswith(name) and Path(path).read_bytes() == Path(every[kind]).read_bytes()
    with pytest.raises(InputError, match="Unknown download"):
        exports.export_file(result, "positions.csv; rm -rf /")


def test_old_downloads_are_removed_so_the_disk_does_not_fill(tiny_lm):
    result = analyze("the dog likes food", tiny_lm, top_k=2)
    old, recent = (
        Path(exports.export_file(result, "analysis")).parent,
        Path(exports.export_file(result, "top_k")).parent,
    )
    stale = time.time() - exports.EXPORT_MAX_AGE_S - 1
    os.utime(old, (stale, stale))
    exports.export_file(result, "positions")
    assert not old.exists() and recent.exists()
    assert old.parent == recent.parent == exports._export_root()
    shutil.rmtree(exports._export_root())  # as a /tmp cleaner might
    assert Path(exports.export_file(result, "top_k")).is_file()


def test_a_page_analysis_writes_no_files(tiny_gpt2_dir, monkeypatch):
    """The downloads cost nothing until clicked: the page's request itself writes nothing to disk."""
    from visualizer.service import labels as service_labels
    from visualizer.settings import Settings

    def no_disk(*args, **kwargs):
        raise AssertionError("the page's analysis wrote a file")

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    monkeypatch.setattr(exports.tempfile, "mkdtemp", no_disk)
    monkeypatch.setattr(exports, "_write_export", no_disk)
    analysis, views = service_labels.page_analysis(
        "the dog likes food", settings, settings.model, service_labels.MaskChoice()
    )
    assert views.summary and len(analysis.positions) == len(analysis.tokens) - 1


def test_the_pages_download_buttons_write_the_held_analysis(tiny_gpt2_dir, tiny_lm):
    from visualizer.settings import Settings
    from visualizer.ui import analysis_tabs
    from visualizer.ui.page import build_demo

    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,))
    download = analysis_tabs.make_analysis_handlers(settings).download
    with pytest.warns(UserWarning, match="Analyze a text first"):
        assert download("analysis")(None) is None  # nothing held yet: no file, no stale download
    result = analyze("the dog likes food", tiny_lm, top_k=2)
    assert json.loads(Path(download("analysis")(result)).read_text(encoding="utf-8")) == json.loads(
        json.dumps(result.to_dict())
    )
    assert Path(download("top_k")(result)).read_text(encoding="utf-8").startswith("k,rank,token")
    frequency, age = build_demo(settings).delete_cache  # Gradio's copies of the downloads are removed too
    assert 0 < frequency <= 3600 and 0 < age <= 3600


def test_every_trigger_of_the_pages_analysis_gets_as_many_outputs_as_a_failure_gives(tiny_gpt2_dir):
    """A failed analysis clears the page through the same outputs as a successful one."""
    from visualizer.settings import Settings
    from visualizer.ui import analysis_tabs
    from visualizer.ui.page import build_demo

    demo = build_demo(Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,)))
    triggers = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") in ("analyze_page", "analyze_if_changed")]
    assert len(triggers) >= 10  # Analyze, Enter, an example, page load, the chat example, the masking controls
    assert {len(f.outputs) for f in triggers} == {len(analysis_tabs.failure_outputs("x"))}
