"""The step benchmarks run (quick mode, tiny model) and report every figure; no time is asserted."""

import json

from visualizer.bench.steps import main


def test_quick_step_benchmark_reports_every_figure(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "steps.json"
    assert main(["--quick", "--model", tiny_llama_dir, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    gen, train = report["generation"], report["training"]
    for key in (
        "cached_step_s_early",
        "cached_step_s_late",
        "uncached_pass_s_early",
        "uncached_pass_s_late",
        "cached_over_uncached_early",
        "cached_over_uncached_late",
    ):
        assert gen[key] > 0
    assert train["steps"] == 2 and train["seconds_per_step"] > 0 and "peak_extra_rss_gb" in train
    assert "wrote" in capsys.readouterr().out
