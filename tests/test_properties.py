"""Property tests: arbitrary unicode text and settings never break the analysis's invariants."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visualizer.analysis import analyze
from visualizer.errors import InputError

TEXTS = st.text(min_size=0, max_size=60)
OPTIONS = st.fixed_dictionaries(
    {"top_k": st.integers(1, 50), "bos": st.booleans(), "mask_first": st.integers(0, 6)}
)


def check_invariants(result):
    """The invariants every analysis must satisfy."""
    for pos in result.positions:
        assert 0.0 <= pos.p_target <= 1.0
        assert all(0.0 <= c.p <= 1.0 for c in pos.top)
        assert [c.p for c in pos.top] == sorted((c.p for c in pos.top), reverse=True)
        assert pos.rank >= 1 and pos.entropy >= -1e-6
        if pos.loss is not None:
            assert pos.loss == pytest.approx(-math.log(max(pos.p_target, 1e-45)), abs=1e-3, rel=1e-4)
    for row, other in zip(result.vocab.probs, result.vocab.other):
        assert sum(row) + other == pytest.approx(1.0, abs=1e-4)
    if result.counted:
        assert result.mean_token_loss == pytest.approx(result.loss, abs=1e-4, rel=1e-5)
    else:
        assert result.loss is None
    tokens = result.tokens + [c.token for p in result.positions for c in p.top]
    assert all("\ufffd" not in t.display for t in tokens)
    assert result.to_dict()["positions"] == [p.to_dict() for p in result.positions]  # read from the arrays


def run(text, lm, options):
    """Analyse, accepting only the documented input errors."""
    try:
        result = analyze(text, lm, **options)
    except InputError as err:
        assert str(err)  # a message, never empty
        return
    check_invariants(result)


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
    from visualizer.tokens import VISIBLE_WHITESPACE

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
    from visualizer.tokens import readable

    assert readable(data) == _readable_by_character(data)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(min_size=1, max_size=200))
def test_all_contexts_at_once_equal_each_context(tiny_lm, text):
    from visualizer.analysis import context_text
    from visualizer.result import contexts

    ids = tiny_lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = [context_text(tiny_lm.decoder, ids, k) for k in range(1, len(ids))]
    assert contexts(tiny_lm.decoder, ids) == expected
