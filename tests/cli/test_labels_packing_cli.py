"""`visualizer labels FILE --packing --format json`: the rows as before, then one object per packed sequence with
its examples' places and their losses seeing each other and kept apart (the same numbers as the service's)."""

import json

import pytest

from tests.training_data import write_jsonl
from visualizer.model.loading import load_model
from visualizer.service import training_data as td
from visualizer.service.packing import pack_comparisons
from visualizer.settings import Settings

TEXTS = ["the dog likes food and the cat likes fish", "a quick brown fox", "the lazy dog", "the cat likes"]


def test_packs_follow_the_rows(run_cli, tiny_llama_dir, tmp_path):
    path = write_jsonl(tmp_path / "text.jsonl", [{"text": t} for t in TEXTS])
    status, out, err = run_cli(
        ["labels", path, "--model", tiny_llama_dir, "--packing", "--max-length", "48", "--format", "json"]
    )
    assert status == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    rows, packs = lines[: len(TEXTS)], lines[len(TEXTS) :]
    assert [r["row"] for r in rows] == [0, 1, 2, 3] and all("examples" not in r for r in rows)
    assert {"row", "tokens", "counted", "loss", "warnings", "dropped", "pack"} <= set(rows[0])
    assert [p["pack"] for p in packs] == sorted({r["pack"] for r in rows})
    by_row = {r["row"]: r for r in rows}
    for pack in packs:
        at = 0
        for example in pack["examples"]:
            row = by_row[example["row"]]
            assert row["pack"] == pack["pack"] and example["start"] == at
            assert example["end"] - example["start"] == row["tokens"] and example["counted"] == row["counted"]
            assert example["loss_apart"] == pytest.approx(row["loss"], abs=1e-5)
            at = example["end"]
        assert at == pack["tokens"]
        assert pack["examples"][0]["loss_together"] == pytest.approx(pack["examples"][0]["loss_apart"], abs=1e-5)
    options = td.label_options("all", 48, packing=True)
    data = td.open_data(path, Settings())
    assert packs == [c.to_dict() for c in pack_comparisons(data, load_model(tiny_llama_dir), options)]
