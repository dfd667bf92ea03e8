"""The typing benchmark's pieces that need no browser: its report, with and without a checkout to compare, and
what it reads of a checkout (its pause before an analysis, its commit). No time is asserted."""

from __future__ import annotations

import pytest

from visualizer.bench import typing as bench
from visualizer.bench.measure import ROOT


def side(p50: float, commit: str = "abc1234", pause: int = 200) -> dict:
    lat = {"min": p50 - 0.1, "max": p50 + 0.2, "p50": p50, "p95": p50 + 0.1}
    return {
        "commit": commit,
        "pause_ms": pause,
        "latency_s": lat,
        "latency_all_views_s": {**lat, "p50": 2 * p50},
        "seconds": [p50],
        "seconds_all_views": [2 * p50],
    }


LOAD = {
    "pasted + Enter": {"keystrokes": 0, "requests": 3, "cpu_s": 0.5},
    "typed, 150 ms a key": {"keystrokes": 41, "requests": 3, "cpu_s": 1.0},
}


def test_the_report_gives_both_views_and_the_ratio_to_the_checkout_compared():
    result = {
        "model": "m",
        "tokens": 16,
        **side(0.4),
        "load": LOAD,
        "against": {"root": "/old", **side(0.8, "def5678", 250)},
    }
    text = bench.report(result)
    assert "this checkout (abc1234), 200 ms pause: token strip p50 0.400 s" in text
    assert "every view opened: p50 0.800 s" in text
    assert "against /old (def5678), 250 ms pause: token strip p50 0.800 s" in text
    assert "top-K heatmap" not in text  # a result without the heatmap's times (older runs) reads as before
    assert "this / against, p50 alone: 0.50" in text and "this / against, p50 every view opened: 0.50" in text
    assert "typed, 150 ms a key" in text and "2.00" in text  # the CPU seconds as a multiple of the pasted text's


def test_the_report_without_a_checkout_to_compare():
    text = bench.report({"model": "m", "tokens": 16, **side(0.4), "load": LOAD})
    assert "against" not in text and "p50 0.400 s" in text


def test_a_checkouts_pause_and_commit_are_read_from_it(tmp_path):
    from visualizer.ui.shared import LIVE_DELAY_MS

    assert bench.pause_ms(ROOT) == LIVE_DELAY_MS
    assert bench.pause_ms(tmp_path) is None and bench.commit_of(tmp_path.parent / "no-such-dir") == "?"
    assert bench.commit_of(ROOT) not in ("", "?")


def test_a_checkout_without_app_py_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--against", str(tmp_path)])
    assert "has no app.py" in capsys.readouterr().err


def test_the_report_gives_the_heatmap_drawn_after_the_strip():
    heat = {"min": 0.5, "max": 0.9, "p50": 0.6, "p95": 0.8}
    text = bench.report({"model": "m", "tokens": 16, **side(0.4), "heatmap_latency_s": heat, "load": LOAD})
    assert "token strip p50 0.400 s" in text and "top-K heatmap p50 0.600 s, p95 0.800 s" in text
