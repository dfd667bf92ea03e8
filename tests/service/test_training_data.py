"""Checking a fine-tuning file: the scan yields rows as they are done, each loss equal to the test's own
cross-entropy over TRL's labels, with the warnings a row deserves; one row's analysis and one conversation's."""

import math
import types
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from tests.training_data import MESSAGES, NO_SYSTEM, PROMPT_COMPLETION, TEXT, chat, save_chat_model, write_jsonl
from visualizer.analysis import data_rows, one_pass
from visualizer.errors import InputError
from visualizer.model.loading import load_model
from visualizer.service import training_data as td
from visualizer.settings import Settings
from visualizer.views.data_report import COUNTED_COLOR, MASKED_COLOR, role_spans

SETTINGS = Settings()


@pytest.fixture(scope="module")
def chat_lm(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama (context 64) with a ChatML-like template with generation markers."""
    return load_model(save_chat_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-chat")))


def own_loss(lm, ids: list[int], labels: list[int]) -> float | None:
    """The test's own mean cross-entropy over the counted positions of a row cut to the model's context."""
    ids, labels = ids[: lm.max_context], labels[: lm.max_context]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].float()  # (n, V)
    target = torch.tensor(labels[1:])
    if not bool((target != -100).any()):
        return None
    return F.cross_entropy(logits[:-1], target, ignore_index=-100).item()


def scan(lm, path, options, settings=SETTINGS):
    """Every row's report of the file."""
    return list(td.scan_rows(td.open_data(path, settings), lm, options, settings))


def test_each_rows_loss_is_the_cross_entropy_over_trls_labels(chat_lm, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", MESSAGES)
    options = td.label_options("assistant-only", 60)
    reports = scan(chat_lm, path, options)
    data = td.open_data(path, SETTINGS)
    labeled = td.trainer_for(data, chat_lm, options).label_rows(data.dataset)
    assert [r.row for r in reports] == [0, 1, 2, 3]
    for report, row in zip(reports, labeled):
        assert report.tokens == len(row.input_ids) and report.counted == data_rows.counted_positions(row.labels)
        expected = own_loss(chat_lm, row.input_ids, row.labels)
        assert (report.loss is None) == (expected is None) and (
            expected is None or math.isclose(report.loss, expected, rel_tol=1e-5)
        )
    assert [r.dropped for r in reports] == [False, True, True, False]


def test_rows_batched_together_give_the_losses_they_give_alone(chat_lm, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", MESSAGES + [{"messages": chat("hi", "the dog")}])
    options = td.label_options("all", 0)
    together = scan(chat_lm, path, options, replace(SETTINGS, batch_tokens=4096))
    alone = scan(chat_lm, path, options, replace(SETTINGS, batch_tokens=1))
    assert [r.loss for r in together] == pytest.approx([r.loss for r in alone], rel=1e-5)


def test_the_scan_yields_each_row_once_its_batch_is_done(chat_lm, tmp_path, monkeypatch):
    passes = []
    real = data_rows.forward_padded
    monkeypatch.setattr(data_rows, "forward_padded", lambda lm, rows: passes.append(len(rows)) or real(lm, rows))
    data = td.open_data(write_jsonl(tmp_path / "d.jsonl", MESSAGES), SETTINGS)
    started = td.scan_file(data, chat_lm, td.label_options("all", 0), replace(SETTINGS, batch_tokens=1))
    assert isinstance(started.rows, types.GeneratorType) and started.total == 4 and passes == []
    first = next(started.rows)
    assert first.row == 0 and passes == [1]  # one row's forward pass, not the file's
    assert [r.row for r in started.rows] == [1, 2, 3] and passes == [1, 1, 1, 1]


def test_warnings_of_a_row(chat_lm, tmp_path):
    rows = [MESSAGES[0], MESSAGES[1], {"messages": chat("", "the dog likes food")}]
    reports = scan(chat_lm, write_jsonl(tmp_path / "d.jsonl", rows), td.label_options("assistant-only", 60))
    cut, dropped, empty = (r.warnings for r in reports)
    assert cut == [
        "max_length 60 cuts the row at 60 of its 65 tokens: 4 of its 13 counted tokens (the answer, or part of it) "
        "are never trained."
    ]
    assert dropped[0].startswith("TRL drops this row: cut to max_length 60, none of its labels counts")
    assert "Message 0 (user) is empty." in empty
    whole = scan(chat_lm, write_jsonl(tmp_path / "w.jsonl", rows[:1]), td.label_options("all", 0))
    assert whole[0].warnings == [
        "The row has 65 tokens, more than the model's context (64): its loss here is over the first 64."
    ]


def test_a_row_with_nothing_counted_is_said(chat_lm, tmp_path):
    reports = scan(
        chat_lm, write_jsonl(tmp_path / "d.jsonl", MESSAGES[:1]), td.label_options("assistant-only", 40, True)
    )
    assert reports[0].counted == 0 and reports[0].loss is None and not reports[0].dropped and reports[0].pack == 0
    assert reports[0].warnings[0] == "No token of this row counts in the loss (every label after the first is -100)."


def test_a_template_that_drops_the_system_prompt_warns(tiny_llama_dir, tmp_path):
    lm = load_model(save_chat_model(tiny_llama_dir, tmp_path / "no-system", template=NO_SYSTEM))
    reports = scan(lm, write_jsonl(tmp_path / "d.jsonl", MESSAGES[:2]), td.label_options("all", 0))
    assert not any("system prompt" in w for w in reports[0].warnings)
    assert any(w.startswith("The chat template drops the system prompt") for w in reports[1].warnings)


def test_plain_rows_and_the_totals(tiny_lm, tmp_path):
    rows = [*PROMPT_COMPLETION, {"prompt": "", "completion": " the dog"}]
    reports = scan(tiny_lm, write_jsonl(tmp_path / "d.jsonl", rows), td.label_options("completion-only", 16))
    assert "The prompt is empty." in reports[3].warnings
    totals = td.totals(reports)
    kept = [r for r in reports if not r.dropped and r.loss is not None]
    assert totals.counted == sum(r.counted for r in kept) and totals.rows == 4
    assert totals.loss == pytest.approx(sum(r.loss * r.counted for r in kept) / totals.counted)
    text = scan(tiny_lm, write_jsonl(tmp_path / "t.jsonl", TEXT), td.label_options("all", 0))
    assert [r.counted for r in text] == [r.tokens - 1 for r in text]  # every label but the first, EOS included


def test_a_scan_needs_the_weights_and_a_template(tiny_lm, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", MESSAGES)
    with pytest.raises(InputError, match="has no chat template"):
        td.scan_file(td.open_data(path, SETTINGS), tiny_lm, td.label_options(), SETTINGS)


def test_one_rows_analysis_has_trls_labels_and_roles(chat_lm, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", MESSAGES)
    data, options = td.open_data(path, SETTINGS), td.label_options("assistant-only", 60)
    labeled = td.trainer_for(data, chat_lm, options).label_rows(data.dataset)
    result = td.analyze_row(data, 3, chat_lm, options, SETTINGS, top_k=3)
    assert result.analysis.labels == labeled[3].labels and result.analysis.input_ids == labeled[3].input_ids
    counted_roles = {role for role, label in zip(result.roles, result.analysis.labels) if label != -100}
    assert counted_roles <= {"assistant", "template"} and "user" in result.roles
    spans, colors = role_spans(result)  # the page's marks: the label decides counted, whatever the role
    assert [t for t, _ in spans] == result.analysis.readable_tokens
    assert [m.endswith("counted") for _, m in spans] == [k > 0 and x != -100 for k, x in enumerate(labeled[3].labels)]
    assert {m.split(" · ")[0] for _, m in spans} == set(result.roles)
    assert {colors[m] for _, m in spans if m.endswith("masked")} == {MASKED_COLOR} != {COUNTED_COLOR}
    out = result.to_dict()
    assert out["row"] == 3 and out["preset"] == "assistant-only" and out["labels"] == labeled[3].labels
    assert out["loss"] == pytest.approx(own_loss(chat_lm, labeled[3].input_ids, labeled[3].labels), rel=1e-5)
    dropped = td.analyze_row(data, 1, chat_lm, options, SETTINGS)
    assert dropped.dropped and dropped.analysis.loss is None
    assert any(n.startswith("TRL drops this row") for n in dropped.analysis.notices)
    with pytest.raises(InputError, match="Row 4 is past the end: the file has rows 0 to 3."):
        td.analyze_row(data, 4, chat_lm, options, SETTINGS)


def test_a_packed_rows_analysis_is_its_segment(chat_lm, tmp_path):
    data = td.open_data(write_jsonl(tmp_path / "d.jsonl", MESSAGES), SETTINGS)
    options = td.label_options("all", 30, packing=True)
    result = td.analyze_row(data, 2, chat_lm, options, SETTINGS)
    reports = list(td.scan_rows(data, chat_lm, options, SETTINGS))
    assert len(result.analysis.tokens) == 30 and result.pack == reports[2].pack


def test_one_conversation_analysed_with_the_bundled_template(bundled_lm):
    messages = td.read_chat('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}')
    result = td.analyze_chat(messages, bundled_lm, SETTINGS, top_k=2)
    assert result.analysis.labels == result.analysis.input_ids and result.roles.count("user") == 1
    assert result.to_dict()["roles"] == result.roles and len(result.roles) == len(result.analysis.tokens)
    direct = one_pass.analyze_ids(bundled_lm, result.analysis.input_ids, result.analysis.labels, text="x", top_k=2)
    assert result.analysis.loss == pytest.approx(direct.loss)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[", "The conversation is not valid JSON"),
        ('{"chat": []}', "Give the conversation as a list"),
        ("[]", "The conversation is empty"),
        ('[{"role": "user", "content": null}]', "the content must be a string, not null"),
    ],
)
def test_a_bad_conversation_is_one_sentence(text, message):
    with pytest.raises(InputError, match=message):
        td.read_chat(text)


def test_the_options_from_a_form():
    assert td.label_options("all", 0).max_length is None and td.label_options().max_length == 1024
    assert td.label_options("completion-only", 12.0, True).packing
    for preset, max_length in (("every", 10), ("all", -1), ("all", 2.5), ("all", "ten")):
        with pytest.raises(InputError):
            td.label_options(preset, max_length)
    with pytest.raises(InputError, match="Packing needs a max_length"):
        td.label_options("all", 0, packing=True)


def test_a_prompt_that_merges_with_its_completion_is_said(tiny_lm, tmp_path):
    rows = [{"prompt": "the dog likes", "completion": " food"}, {"prompt": "the dog lik", "completion": "es food"}]
    whole, merged = scan(tiny_lm, write_jsonl(tmp_path / "d.jsonl", rows), td.label_options("completion-only", 0))
    assert not any("prompt alone" in w for w in whole.warnings)
    (warning,) = [w for w in merged.warnings if "prompt alone" in w]
    assert warning.startswith("The prompt alone ends in 2 tokens that prompt + completion tokenizes otherwise ('")


def test_a_plain_prompt_completion_rows_tokens_are_marked_prompt_or_completion(tiny_lm, tmp_path):
    data = td.open_data(write_jsonl(tmp_path / "d.jsonl", PROMPT_COMPLETION), SETTINGS)
    for index, row in enumerate(PROMPT_COMPLETION):
        result = td.analyze_row(data, index, tiny_lm, td.label_options("completion-only", 0), SETTINGS)
        prompt_tokens = len(tiny_lm.tokenizer(row["prompt"])["input_ids"])  # the test's own count
        n = len(result.analysis.tokens)
        assert result.roles == ["prompt"] * prompt_tokens + ["completion"] * (n - prompt_tokens)
        counted = [k for k, label in enumerate(result.analysis.labels) if label != -100]
        assert counted == list(range(prompt_tokens, n))  # completion-only: TRL counts the completion alone
        assert result.to_dict()["roles"] == result.roles
    every = td.analyze_row(data, 0, tiny_lm, td.label_options("all", 0), SETTINGS)  # the roles whatever counts
    prompt_tokens = len(tiny_lm.tokenizer(PROMPT_COMPLETION[0]["prompt"])["input_ids"])
    assert every.roles[prompt_tokens - 1 : prompt_tokens + 1] == ["prompt", "completion"]
    marks = {m for _, m in role_spans(every)[0]}
    assert {"prompt · counted", "completion · counted"} <= marks
