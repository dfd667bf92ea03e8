"""The benchmark runs in its quick mode on a tiny model and its JSON holds every figure (no time is asserted)."""

import json

import numpy as np
import pytest

from visualizer.analysis.one_pass import analyze
from visualizer.bench import long_text, measure, run


def _run(tmp_path, model: str, sections: str) -> dict:
    out = tmp_path / "bench.json"
    assert run.main(["--quick", "--model", model, "--sections", sections, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _spread_ok(s: dict) -> bool:
    return s["q1"] <= s["median"] <= s["q3"] and s["min"] <= s["median"] <= s["max"] and s["n"] >= 1


def _verdict_figures(data) -> list[str]:
    return [row["figure"] for row in data["verdicts"]]


def test_spread_and_percentile():
    s = measure.spread([3.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 10.0, 4)
    assert s["q1"] <= s["median"] <= s["q3"]
    assert measure.percentile([1, 2, 3, 4, 5], 50) == 3 and measure.percentile([1, 2], 95) == pytest.approx(1.95)


def test_texts_have_exactly_the_asked_length(tiny_lm):
    for n in (2, 8, 33):
        text = measure.text_of_tokens(tiny_lm.tokenizer, n)
        assert len(tiny_lm.tokenizer(text, add_special_tokens=False)["input_ids"]) == n
    assert len(set(measure.texts_of_tokens(tiny_lm.tokenizer, 16, 5))) == 5


def test_in_process_sections(tmp_path, tiny_llama_dir):
    data = _run(tmp_path, tiny_llama_dir, "analysis,long")
    assert data["mode"] == "quick" and data["machine"]["device"] in ("cpu", "cuda")
    lengths = data["analysis"]["lengths"]
    assert len(lengths) == len(measure.QUICK.lengths)
    for row in lengths.values():
        assert _spread_ok(row["ratio"]) and _spread_ok(row["forward_s"]) and _spread_ok(row["analyze_s"])
        assert row["target"] in (1.3, 1.15) and isinstance(row["met"], bool)
        assert _spread_ok(row["outside_tensor_work_s"]) and row["outside_tensor_work_s"]["min"] >= 0
        assert row["outside_tensor_work_s"]["median"] < row["analyze_s"]["median"] and _spread_ok(row["tokenize_s"])
    (prefix,) = data["analysis"]["per_prefix"].values()
    assert prefix["ratio"]["median"] > 1  # n forward passes cost more than one
    long = data["long"]
    assert long["tokens"] == 60 and long["result_holds_vocab_rows"] is False
    for key in ("analyze_s", "forward_s", "ratio", "analyze_peak_rss_mb", "forward_peak_rss_mb", "full_logits_mb"):
        assert _number(long[key]), key
    figures = _verdict_figures(data)
    assert sum(f.startswith("analyze / forward") for f in figures) == 3
    assert any("logits kept" in f for f in figures)
    assert "FAILED" not in run.table(data)


@pytest.mark.slow
def test_server_sections(tmp_path, tiny_llama_dir):
    data = _run(tmp_path, tiny_llama_dir, "startup,e2e,load,memory")
    start = data["startup"]
    for kind in ("cold", "warm"):
        assert start[kind]["ok"] and start[kind]["listening_s"] <= start[kind]["first_analysis_s"]
    assert len(start["warm"]["starts"]) == measure.QUICK.warm_starts and _spread_ok(
        start["warm"]["first_analysis_spread"]
    )
    for key in (
        "import_gradio_s",
        "import_torch_s",
        "build_page_s",
        "launch_server_s",
        "warm_tokenizer_s",
        "warm_weights_s",
        "first_analysis_s",
    ):
        assert _number(start["breakdown"][key]), key
    for row in data["e2e"]["lengths"].values():
        for key in ("forward_s", "api_s", "page_s", "api_added_s", "page_added_s"):
            assert _spread_ok(row[key]), key
    for row in data["e2e"]["payload"].values():
        assert row["figures_kb"] == pytest.approx(row["figures_built_kb"], rel=0.05)  # what is built is what is sent
        assert 0 < row["lead_figure_kb"] < min(row["stream_kb"], row["figures_kb"])  # the strip first, the rest after
    load = data["load"]
    assert load["concurrent"]["errors"] == load["single"]["errors"] == 0
    assert load["concurrent"]["requests"] == measure.QUICK.clients * measure.QUICK.requests
    assert _number(load["throughput_ratio"]) and _number(load["p95_over_single_p50"])
    assert _spread_ok(load["batching"]["speedup"]) and "rss_growth_mb" in load
    memory = data["memory"]
    assert memory["requests"] >= measure.QUICK.memory_requests and memory["sessions"] == measure.MEMORY_CLIENTS
    assert memory["peak_rss_mb"] >= memory["baseline_rss_mb"] > 0 and memory["errors"] == 0
    figures = _verdict_figures(data)
    for part in (
        "API request",
        "page request",
        "figures' JSON",
        "cold cache",
        "warm cache",
        "throughput",
        "p95",
        "errors under load",
        "peak RSS",
        "RSS growth",
    ):
        assert any(part in f for f in figures), part
    assert "FAILED" not in run.table(data)


def test_the_long_text_check_sees_an_array_as_wide_as_the_vocabulary(tiny_lm):
    result = analyze("the dog likes food", tiny_lm)
    vocab_size = tiny_lm.model.config.vocab_size
    assert not long_text.holds_vocab_rows(result, vocab_size)
    result.arrays.top_p = np.zeros((3, vocab_size), dtype=np.float32)  # as if full-size rows were kept
    assert long_text.holds_vocab_rows(result, vocab_size)
    whole = analyze("the dog likes food", tiny_lm, top_k=vocab_size, max_top_k=vocab_size)  # K = V, as asked
    assert not long_text.holds_vocab_rows(whole, vocab_size)


def test_the_script_comparing_checkouts_runs_and_leaves_no_files(tiny_llama_dir, capsys, tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the probe processes' temporary folders go here

    path = Path(__file__).resolve().parents[2] / "scripts" / "work_around_forward.py"
    spec = importlib.util.spec_from_file_location("work_around_forward", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--model", tiny_llama_dir, "--lengths", "16,40", "--rounds", "1", "--repeats", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[1] for row in rows] == ["16", "40"]
    assert all(float(value) >= 0 for row in rows for value in row.split()[2:])
    assert list(temp.iterdir()) == []
