"""The page's downloads: the JSON file is the contract, the CSV files are the tables."""

import io
import json

import pandas as pd

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
