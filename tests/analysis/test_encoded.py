"""A text encoded once (`encode_text`) is what `encode`, `analyze` and `mask_until` each made for themselves."""

import pytest

from tests.analysis.test_masking import _NoOffsets
from visualizer.analysis.masking import mask_until, mask_until_encoded, tokens_before
from visualizer.analysis.one_pass import analyze, analyze_encoded, encode, encode_text
from visualizer.model.loading import LoadedModel

TEXT = "Q: does the cat like fish? A: the cat likes fish and the dog likes bones"


@pytest.mark.parametrize("bos", [False, True])
@pytest.mark.parametrize("max_tokens", [None, 5])
def test_one_encoding_holds_the_ids_and_where_each_token_starts(tiny_lm, bos, max_tokens):
    encoded = encode_text(tiny_lm, TEXT, bos=bos, max_tokens=max_tokens, offsets=True)
    assert (encoded.ids, encoded.truncated) == encode(tiny_lm, TEXT, bos=bos, max_tokens=max_tokens)
    assert encoded.truncated == (max_tokens is not None) and encoded.text_ids == encoded.ids[int(bos) :]
    assert encoded.starts is not None and len(encoded.starts) == len(encoded.text_ids)
    assert encoded.starts == sorted(encoded.starts) and encoded.starts[0] == 0
    assert encode_text(tiny_lm, TEXT, bos=bos, max_tokens=max_tokens).starts is None  # only when asked for


@pytest.mark.parametrize("bos", [False, True])
@pytest.mark.parametrize("marker", ["Q:", "A:", "likes fish", TEXT])
def test_masking_and_analysing_an_encoded_text_equal_encoding_it_again(tiny_lm, bos, marker):
    encoded = encode_text(tiny_lm, TEXT, bos=bos, offsets=True)
    masked = mask_until_encoded(encoded, marker, tiny_lm)
    assert masked == mask_until(TEXT, marker, tiny_lm, bos=bos)
    assert len(masked) == tokens_before(TEXT, TEXT.index(marker) + len(marker), tiny_lm, bos=bos)
    once = analyze_encoded(tiny_lm, encoded, top_k=3, masked=masked)
    again = analyze(TEXT, tiny_lm, top_k=3, masked=masked, bos=bos)
    assert once.to_json() == again.to_json() and once.notices == again.notices


def test_a_tokenizer_without_offsets_is_called_once_and_the_starts_come_from_decoding(tiny_lm):
    slow = LoadedModel(tiny_lm.name, tiny_lm.model, _NoOffsets(tiny_lm.tokenizer), tiny_lm.decoder, "directory")
    encoded = encode_text(slow, TEXT, offsets=True)
    assert encoded.starts is None and encoded.ids == encode(tiny_lm, TEXT)[0]
    assert mask_until_encoded(encoded, "A:", slow) == mask_until(TEXT, "A:", tiny_lm)
