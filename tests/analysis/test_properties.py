"""Property tests: arbitrary unicode text and settings never break the analysis's invariants, its agreement
with the test's own cross-entropy, or the round trip from display forms back to the text's bytes."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.model.test_tokens import LOOK_ALIKES, bytes_of_display, check_display_round_trip, piece_bytes
from visualizer.analysis.one_pass import NOT_SPELLED, analyze
from visualizer.errors import InputError

TEXTS = st.text(min_size=0, max_size=60)
OPTIONS = st.fixed_dictionaries({"top_k": st.integers(1, 50), "bos": st.booleans(), "mask_first": st.integers(0, 6)})


def check_invariants(result, lm):
    """The invariants every analysis must satisfy, its losses against the test's own cross-entropy, and its
    display forms against the exact bytes of the text."""
    for pos in result.positions:
        assert 0.0 <= pos.p_target <= 1.0
        assert all(0.0 <= c.p <= 1.0 for c in pos.top)
        assert [c.p for c in pos.top] == sorted((c.p for c in pos.top), reverse=True)
        assert pos.rank >= 1 and pos.entropy >= -1e-6
    with torch.no_grad():
        logits = lm.model(torch.tensor([result.input_ids])).logits[0, :-1].double()  # (n-1, V)
    ce = F.cross_entropy(logits, torch.tensor(result.labels[1:]), reduction="none")  # 0 where masked
    for pos, expected in zip(result.positions, ce.tolist()):
        if pos.loss is None:
            assert result.labels[pos.k] == -100
        else:
            assert pos.loss == pytest.approx(expected, abs=3e-5, rel=1e-5)
    if result.counted:
        assert result.mean_token_loss == pytest.approx(result.loss, abs=1e-4, rel=1e-5)
    else:
        assert result.loss is None
    tokens = result.tokens[1:] if result.bos else result.tokens
    spelled = b"".join(piece_bytes(lm.tokenizer, t.id) for t in tokens)  # what the model read, from the vocabulary
    if not result.truncated and not LOOK_ALIKES.search(result.text):
        if spelled == result.text.encode("utf-8"):
            check_display_round_trip(tokens, result.text, lm.tokenizer)
            assert NOT_SPELLED not in result.notices
        else:  # the tokenizer dropped bytes it has no token for: said so, and the displays show what was read
            assert NOT_SPELLED in result.notices
            assert b"".join(bytes_of_display(t.display) for t in tokens) == spelled
    for candidate in (c.token for p in result.positions for c in p.top):
        own = piece_bytes(lm.tokenizer, candidate.id)
        if not LOOK_ALIKES.search(own.decode("utf-8", "replace")):
            assert bytes_of_display(candidate.display) == own
    assert result.to_dict()["positions"] == [p.to_dict() for p in result.positions]  # read from the arrays


def run(text, lm, options):
    """Analyse, accepting only the documented input errors."""
    try:
        result = analyze(text, lm, **options)
    except InputError as err:
        assert str(err)  # a message, never empty
        return
    check_invariants(result, lm)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, options=OPTIONS)
def test_tiny_model_invariants(tiny_lm, text, options):
    run(text, tiny_lm, options)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, options=OPTIONS)
def test_bundled_model_invariants(bundled_lm, text, options):
    run(text, bundled_lm, options)


def _readable_by_character(data: bytes) -> str:
    """The definition of `readable`, one character at a time (no fast path)."""
    from visualizer.model.tokens import VISIBLE_WHITESPACE

    text = data.decode("utf-8", errors="surrogateescape")
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":  # an undecodable byte
            out.append(f"<0x{ord(ch) - 0xDC00:02X}>")
        elif ch.isprintable() or ch in VISIBLE_WHITESPACE:
            out.append(ch)
        else:
            out.append("".join(f"<0x{b:02X}>" for b in ch.encode("utf-8")))
    return "".join(out).replace("\ufffd", "<U+FFFD>")


@given(st.binary(max_size=40) | st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_readable_matches_its_character_by_character_definition(data):
    from visualizer.model.tokens import readable

    assert readable(data) == _readable_by_character(data)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(min_size=1, max_size=200))
def test_all_contexts_at_once_equal_each_context(tiny_lm, text):
    from visualizer.analysis.one_pass import context_text
    from visualizer.analysis.result import contexts

    ids = tiny_lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = [context_text(tiny_lm.decoder, ids, k) for k in range(1, len(ids))]
    assert contexts(tiny_lm.decoder, ids) == expected


AWKWARD = st.sampled_from(
    ["😀", "👩‍👩‍👧", "🐕", "日本語", "e\u0301", "\u0308", "ñ", "\u202e", "\x00", "\r\n", "\t", " ", "<", "0x", "%{x}"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(AWKWARD | st.text(max_size=4), max_size=12).map("".join))
def test_display_forms_give_back_the_text(tiny_tokenizer, text):
    from visualizer.model.tokens import TokenDecoder

    assume(not LOOK_ALIKES.search(text))
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    check_display_round_trip(TokenDecoder(tiny_tokenizer).tokens(ids), text, tiny_tokenizer)
