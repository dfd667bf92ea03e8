"""The data-scan benchmark's file: deterministic, conversational, varied (system prompts, multi-turn, edge rows),
and readable by the service as `messages` and as prompt + completion. Nothing is timed."""

from visualizer.bench.data_scan import EDGE_EVERY, as_prompt_completion, conversations, write_jsonl
from visualizer.service import training_data as td
from visualizer.settings import Settings


def test_the_file_is_deterministic_and_varied(tmp_path):
    rows = conversations(1000)
    assert rows == conversations(1000) and len(rows) == 1000
    messages = [r["messages"] for r in rows]
    assert all(m[-1]["role"] == "assistant" for m in messages)
    assert sum(m[0]["role"] == "system" for m in messages) == 200
    assert {len([x for x in m if x["role"] == "user"]) for m in messages} == {1, 2, 3}
    edges = messages[1::EDGE_EVERY]
    assert any(m[-1]["content"] == "" for m in edges) and any(m[-2]["content"] == "" for m in edges)
    assert any(m[-2]["content"] == "   " for m in edges) and max(len(m[-1]["content"]) for m in edges) > 500
    assert len({str(m) for m in messages}) > 100
    settings = Settings()
    data = td.open_data(write_jsonl(tmp_path / "m.jsonl", rows[:50]), settings)
    assert (data.format, len(data)) == ("messages", 50)
    pc = td.open_data(write_jsonl(tmp_path / "pc.jsonl", as_prompt_completion(rows[:50])), settings)
    assert pc.format == "prompt-completion" and pc.conversational
