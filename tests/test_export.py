"""The page's downloads: the JSON file is the contract, the CSV files are the tables."""

import io
import json

import pandas as pd
import pytest

from visualizer import service, tables
from visualizer.analysis import analyze


def test_the_exported_files_hold_the_contract_and_the_tables(tiny_lm, tmp_path):
    result = analyze("the dog likes food 🐕 \"quoted\"\n", tiny_lm, top_k=3, masked=(2,))
    positions, top_k, contract = service.export_files(result, str(tmp_path))
    assert json.loads((tmp_path / "analysis.json").read_text(encoding="utf-8")) == json.loads(json.dumps(result.to_dict()))
    assert contract == str(tmp_path / "analysis.json")
    pd.testing.assert_frame_equal(pd.read_csv(positions, keep_default_na=False),
                                  pd.read_csv(io.StringIO(tables.position_table(result).to_csv(index=False)),
                                              keep_default_na=False))
    assert len(pd.read_csv(top_k)) == len(result.positions) * 3


def test_the_tables_hold_each_position_objects_numbers(tiny_lm):
    """The tables read the arrays column by column; here they are rebuilt row by row from `Position`s."""
    result = analyze("the dog likes food and the cat likes fish", tiny_lm, top_k=4, masked=(1, 5))
    rows = [{"k": p.k, "context": p.context, "target": p.target.display, "target_id": p.target.id,
             "p_target": p.p_target, "rank": p.rank, "loss": p.loss, "masked": p.masked, "entropy": p.entropy,
             "top1": p.top[0].token.display, "p_top1": p.top[0].p} for p in result.positions]
    pd.testing.assert_frame_equal(tables.position_table(result), pd.DataFrame(rows), check_dtype=False)
    long = [{"k": p.k, "rank": r, "token": c.token.display, "token_id": c.token.id, "p": c.p,
             "is_target": c.token.id == p.target.id} for p in result.positions for r, c in enumerate(p.top, 1)]
    pd.testing.assert_frame_equal(tables.top_k_table(result), pd.DataFrame(long), check_dtype=False)
    labels = tables.labels_table(result)
    assert labels["label"].tolist() == result.labels
    assert labels["counts_in_loss"].tolist() == [False, False] + [True] * 3 + [False] + [True] * (len(result.labels) - 6)
    assert labels["predicted_from"].tolist()[1:] == [f"input_ids[:{p.k}] = {p.context}" for p in result.positions]


def test_the_walkthrough_table_holds_each_rows_probabilities(tiny_lm):
    result = analyze("the dog likes the food", tiny_lm)
    table, vocab = tables.sentence_vocab_table(result), result.vocab
    assert list(table.columns) == [t.display for t in vocab.columns] + ["(all other tokens)"]  # distinct here
    assert list(table.index) == [f"{p.context} → {p.target.display}" for p in result.positions]
    assert table.to_numpy().tolist() == [vocab.predicted(r) for r in range(len(result.positions))]
    assert table.sum(axis=1).tolist() == pytest.approx([1.0] * len(table), abs=1e-5)
