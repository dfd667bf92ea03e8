"""The engine benchmark's pure parts (the ratios, the table, the server's command line, the page's model input),
then, marked slow and engine, its quick run against a real vLLM server and app. No time is asserted."""

from pathlib import Path

import pytest

from visualizer.bench import engine, engine_server
from visualizer.bench.server import analyze_event


def _run(rps: float, p50: float, p95: float, errors: int = 0, requests: int = 20) -> dict:
    return {"rps": rps, "p50_s": p50, "p95_s": p95, "errors": errors, "requests": requests}


def _spread(median: float) -> dict:
    return {"median": median, "q1": median * 0.9, "q3": median * 1.1, "min": median * 0.8, "max": median * 1.2, "n": 5}


SIDES = {
    "engine": {"single": _run(4.0, 0.25, 0.3), "concurrent": _run(12.0, 1.0, 2.0, requests=320)},
    "in_process": {"single": _run(5.0, 0.2, 0.22), "concurrent": _run(6.0, 2.5, 3.0, errors=1, requests=320)},
}


def test_load_ratios_compare_the_sides_and_each_side_with_its_lone_client():
    r = engine.load_ratios(SIDES)
    assert r["throughput_ratio"] == pytest.approx(2.0)  # 12 / 6 requests per second under load
    assert r["single_p50_ratio"] == pytest.approx(1.25)  # 0.25 / 0.2 s
    assert r["engine_p95_over_single_p50"] == pytest.approx(8.0)  # 2.0 / 0.25
    assert r["in_process_p95_over_single_p50"] == pytest.approx(15.0)  # 3.0 / 0.2
    assert r["engine_scaling"] == pytest.approx(3.0) and r["in_process_scaling"] == pytest.approx(1.2)


def test_a_run_that_served_nothing_gives_no_ratio_instead_of_dividing_by_zero():
    broken = {**SIDES, "in_process": {"single": _run(0.0, None, None), "concurrent": _run(0.0, None, None)}}
    r = engine.load_ratios(broken)
    assert r["throughput_ratio"] is None and r["single_p50_ratio"] is None
    assert r["in_process_p95_over_single_p50"] is None and r["in_process_scaling"] is None
    assert r["engine_scaling"] == pytest.approx(3.0)


def test_the_table_shows_every_figure_with_both_sides_and_the_ratio():
    analysis = {
        "16": {
            "engine_s": _spread(0.2),
            "in_process_s": _spread(0.1),
            "forward_s": _spread(0.08),
            "ratio": _spread(2.0),
            "engine_over_forward": _spread(2.5),
            "loss_abs_diff": 3e-6,
            "logp_max_abs_diff": 2e-5,
        }
    }
    load = {"clients": 16, "engine": SIDES["engine"], "in_process": SIDES["in_process"], **engine.load_ratios(SIDES)}
    text = engine.table({"analysis": analysis, "load": load})
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "engine", "in-process", "engine", "/", "in-process"]
    row = next(line for line in lines if line.startswith("analyze(), 16 tokens"))
    assert "0.200" in row and "0.100" in row and "2.00x [IQR 1.80-2.20]" in row
    assert "engine / it 2.50x" in next(line for line in lines if "bare forward" in line)
    assert "3.0e-06 (log p 2.0e-05)" in text
    assert "12.00" in next(line for line in lines if "requests/s" in line) and "2.00x" in text
    assert "8.0x" in text and "15.0x" in text  # p95 under load / lone p50, each side
    errors = next(line for line in lines if line.startswith("errors"))
    assert "0 of 340" in errors and "1 of 340" in errors
    assert "FAILED" not in text


def test_a_failed_section_is_named_and_the_other_still_shown():
    text = engine.table({"analysis": {"error": "RuntimeError: boom"}, "load": {}})
    assert "analysis: FAILED: RuntimeError: boom" in text and "load" not in text.split("FAILED")[0].splitlines()[-1]


def test_the_load_runs_alternate_a_b_b_a_and_every_request_is_sent():
    assert engine.abba(["engine", "in_process"], 20) == [
        ("engine", 10),
        ("in_process", 10),
        ("in_process", 10),
        ("engine", 10),
    ]
    order = engine.abba(["a", "b"], 3)  # an odd count: the second half takes the extra request
    assert order == [("a", 1), ("b", 1), ("b", 2), ("a", 2)]
    assert sum(n for side, n in order if side == "a") == 3


def test_the_quick_plan_is_smaller_and_every_length_has_its_repeats():
    for plan in (engine.FULL, engine.QUICK):
        assert len(plan.lengths) == len(plan.repeats) and all(r >= 3 for r in plan.repeats)
    assert engine.FULL.lengths == (16, 256, 1024) and engine.FULL.clients == 16
    assert engine.QUICK.clients < engine.FULL.clients and max(engine.QUICK.lengths) < max(engine.FULL.lengths)


def test_the_server_command_serves_our_directory_in_fp32_on_loopback():
    command = engine_server.serve_command(Path("/m"), 1234, "a/b")
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert command[0].endswith(".venv-vllm/bin/python") and command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert flags["--model"] == "/m" and flags["--host"] == "127.0.0.1" and flags["--port"] == "1234"
    assert flags["--dtype"] == "float32" and flags["--served-model-name"] == "a/b"
    assert "--enforce-eager" in command and "--no-enable-prefix-caching" in command
    assert command[command.index("--max-logprobs") + 1] == "50"
    assert command[command.index("--max-model-len") + 1] == "2048"
    env = engine_server.server_env({"PATH": "/bin", "OMP_NUM_THREADS": "1"})
    assert env["PATH"] == "/bin" and env["OMP_NUM_THREADS"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"
    assert engine_server.tail("a\nb\nc\n", 2) == "b\nc"


def test_the_page_client_finds_the_model_input_of_the_analyze_click():
    def component(id_, elem_id, value=None):
        return {"id": id_, "props": {"elem_id": elem_id, "value": value}}

    config = {
        "components": [component(1, "text-input", ""), component(2, "model", "m1"), component(3, "analyze-button")],
        "dependencies": [
            {"id": 7, "targets": [[9, "click"]], "inputs": [1]},  # another button
            {"id": 8, "targets": [[3, "click"]], "inputs": [2, 1]},
        ],
    }
    assert analyze_event(config) == (8, 3, ["m1", ""], 1, 0)
    config["dependencies"][1]["inputs"] = [1]
    with pytest.raises(RuntimeError, match="'model'"):
        analyze_event(config)


@pytest.mark.slow
@pytest.mark.engine
def test_the_quick_engine_benchmark_runs_end_to_end_and_both_sides_agree(tmp_path, capsys):
    """A real vLLM server and app (about 2 minutes): every figure is there, the loss agrees, nothing failed."""
    import json

    try:
        engine_server.install_vllm()
    except engine_server.VllmUnavailable as err:
        pytest.skip(str(err))
    out = tmp_path / "engine.json"
    assert engine.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "quick" and data["threads"] == 1 and data["vllm"]
    assert list(data["analysis"]) == [str(n) for n in engine.QUICK.lengths]
    for row in data["analysis"].values():
        assert row["ratio"]["n"] == 3 and row["engine_s"]["median"] > 0 and row["forward_s"]["median"] > 0
        assert row["loss_abs_diff"] < 1e-4 and row["logp_max_abs_diff"] < 1e-3
    load = data["load"]
    for side in ("engine", "in_process"):
        assert load[side]["single"]["errors"] == load[side]["concurrent"]["errors"] == 0
        assert load[side]["concurrent"]["requests"] == engine.QUICK.clients * engine.QUICK.requests
    assert load["throughput_ratio"] > 0 and load["engine_p95_over_single_p50"] > 0
    printed = capsys.readouterr().out
    assert "FAILED" not in printed and "requests/s" in printed and "wrote" in printed
