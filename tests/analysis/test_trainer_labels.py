"""The labels TRL trains on: ours equal a real trl.SFTTrainer's prepared dataset, element by element, for each
preset, with truncation (its dropped rows shown, not lost) and with packing; TRL's refusals are reported."""

import copy

import pytest
from datasets import Dataset

from tests.training_data import (
    MESSAGES,
    PROMPT_COMPLETION,
    PROMPT_COMPLETION_CHAT,
    TEXT,
    chat,
    save_chat_model,
    trl_trainer,
)
from visualizer.analysis.data_rows import counted_positions
from visualizer.analysis.trainer_labels import LabelOptions, TrainerLabels, chunk_bounds, conversation_labels
from visualizer.errors import InputError

DATA = {
    "messages": (MESSAGES, True),
    "prompt-completion": (PROMPT_COMPLETION, False),
    "prompt-completion-chat": (PROMPT_COMPLETION_CHAT, True),
    "text": (TEXT, False),
}
CASES = [  # (data, preset, max_length, packing)
    ("messages", "all", 60, False),
    ("messages", "assistant-only", 60, False),
    ("messages", "assistant-only", None, False),
    ("messages", "completion-only", 60, False),
    ("prompt-completion", "all", 16, False),
    ("prompt-completion", "completion-only", 16, False),
    ("prompt-completion", "completion-only", None, False),
    ("prompt-completion-chat", "completion-only", 60, False),
    ("prompt-completion-chat", "assistant-only", 60, False),
    ("text", "all", 12, False),
    ("messages", "assistant-only", 72, True),
    ("messages", "all", 30, True),
    ("prompt-completion", "completion-only", 16, True),
    ("text", "all", 12, True),
]


@pytest.fixture(scope="module")
def chat_model_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama with a ChatML-like template whose assistant turns are in {% generation %} markers."""
    return save_chat_model(tiny_llama_dir, tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="module")
def tokenizer(chat_model_dir):
    """Our side's own copy of the tokenizer (the trainer loads another)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_model_dir)


def ours(tokenizer, data: str, preset: str, max_length, packing: bool):
    """Our rows for one case."""
    rows, conversational = DATA[data]
    trainer = TrainerLabels(
        tokenizer, LabelOptions(preset, max_length, packing), conversational, data.split("-chat")[0]
    )
    return trainer.label_rows(Dataset.from_list(rows))


def theirs(chat_model_dir, data: str, preset: str, max_length, packing: bool, tmp_path):
    """A real SFTTrainer's train_dataset for one case, and the trainer."""
    trainer = trl_trainer(
        chat_model_dir,
        DATA[data][0],
        tmp_path,
        max_length=max_length,
        packing=packing,
        completion_only_loss=preset == "completion-only",
        assistant_only_loss=preset == "assistant-only",
    )
    return trainer.train_dataset, trainer


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_labels_equal_a_real_sft_trainers(case, chat_model_dir, tokenizer, tmp_path):
    data, preset, max_length, packing = case
    rows = ours(tokenizer, data, preset, max_length, packing)
    prepared, trainer = theirs(chat_model_dir, data, preset, max_length, packing, tmp_path)
    assert [r.row for r in rows] == list(range(len(DATA[data][0])))  # every row shown, in file order
    if packing:
        assert not any(r.dropped for r in rows)  # TRL's packing drops no row: it cuts each to max_length
        packs = [sorted((r for r in rows if r.pack == p), key=lambda r: r.pack_offset) for p in range(len(prepared))]
        assert all(packs) and sum(map(len, packs)) == len(rows)
        for pack, (theirs_ids, theirs_labels, lengths) in zip(
            packs, zip(prepared["input_ids"], prepared["labels"], prepared["seq_lengths"])
        ):
            assert [t for r in pack for t in r.input_ids] == theirs_ids
            assert [t for r in pack for t in r.labels] == theirs_labels
            assert [len(r.input_ids) for r in pack] == lengths
            assert [r.pack_offset for r in pack] == [sum(lengths[:i]) for i in range(len(lengths))]
    else:
        kept = [r for r in rows if not r.dropped]
        assert [r.input_ids for r in kept] == prepared["input_ids"]
        assert [r.labels for r in kept] == prepared["labels"]
        for r in rows:
            if r.dropped:  # shown as TRL cut it: no label counts
                assert len(r.input_ids) == max_length and set(r.labels) == {-100}
    collated_counts_match(trainer, prepared, rows, packing)


def collated_counts_match(trainer, prepared, rows, packing: bool) -> None:
    """TRL's own collator on the prepared rows: every position it counts (labels[1:] after padding, or after
    packing's position resets) is one our rows count, and no other."""
    batch = trainer.data_collator([prepared[i] for i in range(len(prepared))])
    labels = batch["labels"]  # (B, L); packed: (1, total)
    if packing:
        starts = batch["position_ids"][0] == 0
        assert int(starts.sum()) == len(rows)  # each row starts its own positions
        assert bool((labels[0][starts] == -100).all())  # the collator masks each row's first label
        assert int((labels[0] != -100).sum()) == sum(counted_positions(r.labels) for r in rows)
    else:
        kept = [r for r in rows if not r.dropped]
        assert [int((row[1:] != -100).sum()) for row in labels] == [counted_positions(r.labels) for r in kept]
        padding = batch["attention_mask"] == 0
        assert bool((labels[padding] == -100).all())  # pads never count


def test_the_cases_hold_dropped_and_cut_rows(tokenizer):
    dropped = ours(tokenizer, "messages", "assistant-only", 60, False)
    assert [r.row for r in dropped if r.dropped] == [1, 2]  # their answers start past token 60
    assert dropped[2].cut_counted > 0 and dropped[2].full_length > 60
    cut = ours(tokenizer, "prompt-completion", "completion-only", 16, False)
    assert any(r.cut_counted and not r.dropped for r in cut)
    masks = ours(tokenizer, "messages", "assistant-only", None, False)
    assert all(-100 in r.labels and any(label != -100 for label in r.labels) for r in masks)


def test_chunks_label_as_the_whole(tokenizer):
    trainer = TrainerLabels(tokenizer, LabelOptions("assistant-only", 60), True)
    dataset = Dataset.from_list(MESSAGES)
    whole = trainer.label_rows(dataset)
    assert [r for chunk in trainer.label_chunks(dataset, chunk=3) for r in chunk] == whole


def test_a_scan_labels_a_few_rows_first_then_larger_chunks_and_packing_in_trls_bins():
    assert chunk_bounds(600, packing=False) == [(0, 16), (16, 266), (266, 516), (516, 600)]
    assert chunk_bounds(10, packing=False) == [(0, 10)]
    assert chunk_bounds(2500, packing=True) == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert chunk_bounds(0, packing=False) == []


def test_default_chunks_label_as_the_whole(tokenizer):
    trainer = TrainerLabels(tokenizer, LabelOptions("all", 60), True)
    dataset = Dataset.from_list(MESSAGES * 5)  # 20 rows: a first chunk of FIRST_ROWS, then the rest
    chunks = list(trainer.label_chunks(dataset))
    assert [len(c) for c in chunks] == [16, 4]
    assert [r for chunk in chunks for r in chunk] == trainer.label_rows(dataset)


def test_packed_chunks_number_their_packs_on(tokenizer):
    trainer = TrainerLabels(tokenizer, LabelOptions("all", 30, packing=True), True)
    chunks = list(trainer.label_chunks(Dataset.from_list(MESSAGES), chunk=2))
    first = {r.pack for r in chunks[0]}
    assert min(r.pack for r in chunks[1]) == max(first) + 1


def test_assistant_only_without_generation_markers_reports_what_trl_raises(bundled_lm, tiny_llama_dir, tmp_path):
    from transformers import LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    with pytest.raises(ValueError) as real:
        SFTTrainer(
            model=LlamaForCausalLM.from_pretrained(tiny_llama_dir),
            args=SFTConfig(str(tmp_path), report_to=[], assistant_only_loss=True, bf16=False, use_cpu=True),
            train_dataset=Dataset.from_list(MESSAGES),
            processing_class=copy.deepcopy(bundled_lm.tokenizer),
        )
    with pytest.raises(InputError) as mine:
        TrainerLabels(bundled_lm.tokenizer, LabelOptions("assistant-only"), True)
    assert " ".join(str(real.value).split()) in str(mine.value)
    assert "{% generation %}" in str(mine.value) and "\n" not in str(mine.value)


def test_assistant_only_on_plain_text_is_refused_with_trls_message(tokenizer, chat_model_dir, tmp_path):
    with pytest.raises(ValueError) as real:
        theirs(chat_model_dir, "text", "assistant-only", None, False, tmp_path)
    with pytest.raises(InputError) as mine:
        TrainerLabels(tokenizer, LabelOptions("assistant-only"), False, "text")
    assert str(real.value) in str(mine.value)


def test_a_row_without_an_assistant_turn_is_named_with_trls_message(tokenizer, chat_model_dir, tmp_path):
    rows = [*MESSAGES[:2], {"messages": chat("the dog likes")}, MESSAGES[3]]
    with pytest.raises(RuntimeError) as real:
        trl_trainer(chat_model_dir, rows, tmp_path, assistant_only_loss=True)
    with pytest.raises(InputError) as mine:
        TrainerLabels(tokenizer, LabelOptions("assistant-only"), True).label_rows(Dataset.from_list(rows))
    assert str(mine.value).startswith("TRL refuses row 2: ")
    assert " ".join(str(real.value).split()) in str(mine.value)


def test_one_conversation_gets_the_same_labels_as_in_a_dataset(tokenizer):
    options = LabelOptions("assistant-only")
    row = TrainerLabels(tokenizer, options, True).label_rows(Dataset.from_list(MESSAGES[1:2]))[0]
    one = conversation_labels(tokenizer, MESSAGES[1]["messages"], options)
    assert (one.input_ids, one.labels, one.dropped) == (row.input_ids, row.labels, False)
    assert one.input_ids == tokenizer.apply_chat_template(MESSAGES[1]["messages"], return_dict=True)["input_ids"]


def test_options_are_checked():
    with pytest.raises(InputError, match="preset must be one of"):
        LabelOptions("everything")
    with pytest.raises(InputError, match="Packing needs a max_length"):
        LabelOptions("all", None, packing=True)


def test_the_tokenizers_are_not_changed(tokenizer):
    before = (tokenizer.chat_template, tokenizer.pad_token, tokenizer.eos_token, len(tokenizer))
    ours(tokenizer, "messages", "assistant-only", 72, True)
    assert (tokenizer.chat_template, tokenizer.pad_token, tokenizer.eos_token, len(tokenizer)) == before
