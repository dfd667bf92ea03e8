"""Packing made visible: a packed sequence through the model with its examples seeing each other and kept apart.
Kept apart (TRL's input: position ids restarted, no mask), each example's loss is its loss analysed alone by the
scan; together, the first example's loss is unchanged and a later one's is not."""

import pytest
import torch
from datasets import Dataset

from visualizer.analysis.data_rows import batched_losses, counted_positions
from visualizer.analysis.one_pass import IGNORE_INDEX
from visualizer.analysis.packing import compare_pack, packed_sequences, token_losses
from visualizer.analysis.trainer_labels import LabelOptions, TrainerLabels

TEXTS = [
    "the dog likes food and the cat likes fish",
    "a quick brown fox",
    "the lazy dog",
    "the cat likes",
    "fish and bones",
]


def packed(lm, max_length: int, texts=TEXTS):
    """TRL's labelled, packed rows of `texts` (preset all) and their packed sequences."""
    trainer = TrainerLabels(lm.tokenizer, LabelOptions("all", max_length, packing=True), False, "text")
    rows = trainer.label_rows(Dataset.from_list([{"text": t} for t in texts]))
    return rows, packed_sequences(rows)


def alone(lm, ids, labels):
    """Per-token −ln p of one example run as its own sequence."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    return token_losses(logits, labels)


def check_pack(lm, rows, sequence):
    """The three claims on one packed sequence; the later examples' largest |difference|."""
    result = compare_pack(lm, sequence)
    by_row = {r.row: r for r in rows}
    scanned = dict(
        zip(sequence.rows, batched_losses(lm, [(by_row[r].input_ids, by_row[r].labels) for r in sequence.rows], 10_000))
    )
    for k, example in enumerate(result.examples):
        row = by_row[example.row]
        assert (example.start, example.end) == (row.pack_offset, row.pack_offset + len(row.input_ids))
        assert example.counted == counted_positions(row.labels)
        assert result.together[example.start] is None and result.apart[example.start] is None  # TRL's -100 at reset
        assert example.apart == pytest.approx(scanned[example.row], abs=1e-5)  # kept apart = analysed alone
        own = alone(lm, row.input_ids, [IGNORE_INDEX, *row.labels[1:]])
        got = result.apart[example.start : example.end]
        assert [a is None for a in got] == [b is None for b in own]
        assert max((abs(a - b) for a, b in zip(got, own) if a is not None), default=0) < 1e-4
        if k == 0:  # nothing before it: together is apart
            assert example.together == pytest.approx(example.apart, abs=1e-5)
    later = [abs(d) for e in result.examples[1:] for d in result.difference[e.start : e.end] if d is not None]
    return result, max(later)


def test_kept_apart_is_alone_and_together_differs_after_the_first(tiny_lm):
    rows, sequences = packed(tiny_lm, 48)
    multi = [s for s in sequences if len(s.rows) > 1]
    assert multi, [s.rows for s in sequences]
    for sequence in multi:
        result, largest = check_pack(tiny_lm, rows, sequence)
        assert largest > 1e-3
        assert all(e.difference is not None and abs(e.difference) > 1e-4 for e in result.examples[1:])
    assert sum(len(s.input_ids) for s in sequences) == sum(len(r.input_ids) for r in rows)


@pytest.mark.slow
def test_on_the_bundled_model(bundled_lm):
    texts = ["The capital of France is Paris.", "Paris is a city in", "Water boils at 100 degrees.", "Hello!"]
    rows, sequences = packed(bundled_lm, 64, texts)
    (sequence,) = sequences
    assert len(sequence.rows) == 4
    result, largest = check_pack(bundled_lm, rows, sequence)
    assert largest > 0.05  # "Paris is a city in" after a sentence about Paris reads otherwise
    assert result.to_dict()["examples"][0]["difference"] == pytest.approx(0, abs=1e-5)


def test_the_labels_and_positions_are_the_collators(tiny_llama_dir):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from visualizer.model.loading import load_model

    lm = load_model(tiny_llama_dir)
    rows, sequences = packed(lm, 48)
    sequence = next(s for s in sequences if len(s.rows) > 1)
    by_row = {r.row: r for r in rows}
    lengths = [len(by_row[r].input_ids) for r in sequence.rows]
    example = {
        "input_ids": sequence.input_ids,
        "labels": sum((by_row[r].labels for r in sequence.rows), []),
        "seq_lengths": lengths,
    }
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)([example])
    assert batch["labels"][0].tolist() == sequence.labels
    assert batch["position_ids"][0].tolist() == sequence.position_ids


def test_a_sequence_past_the_context_is_cut(tiny_llama_dir):
    from visualizer.model.loading import load_model

    lm = load_model(tiny_llama_dir)  # 64 positions
    rows, sequences = packed(lm, 120, TEXTS * 2)
    longest = max(sequences, key=lambda s: len(s.input_ids))
    assert len(longest.input_ids) > 64
    result = compare_pack(lm, longest)
    assert len(result.together) == 64 and result.examples[-1].end <= 64
    assert "more than the model's context (64)" in result.notices[0]
