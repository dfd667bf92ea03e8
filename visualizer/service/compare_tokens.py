"""Compare on the page's own tokens: a conversation or a data row from the Your data tab (a chat template's ids
and a trainer's labels) read by two models as they are, e.g. a base model and its LoRA adapter.

A token sequence means the same thing only to models with the same vocabulary, so both models must name each
of its ids as the tokenizer that made them does; else one sentence says so (compare on a text instead, which
each model tokenizes itself). Rows pair position k with position k.
"""

from __future__ import annotations

from ..analysis.alignment import Alignment
from ..analysis.one_pass import Analysis, analyze_ids, token_limit
from ..errors import InputError
from ..model.loading import AnyModel
from ..settings import Settings
from .compare import Compared
from .models import resolve_model


def compare_on_tokens(
    held: Analysis, settings: Settings, model_a: str, model_b: str, session_id: str | None, top_k=10
) -> Compared:
    """`held`'s token ids and labels through two models (each cut to its own limit), position k beside position k."""
    a, b = (
        _read_by(resolve_model(name, settings, session_id), held, settings, int(top_k)) for name in (model_a, model_b)
    )
    n = min(len(a.tokens), len(b.tokens))
    tokens = Alignment([(i, i) for i in range(n)])
    positions = Alignment([(j, j) for j in range(n - 1)])
    note = (
        f"Both models read the same {n} tokens of {held.source} (from Your data), with its labels: row k is "
        "position k in both. Analyse a text to compare on the text instead."
    )
    return Compared(a, b, tokens, positions, note)


def _read_by(lm: AnyModel, held: Analysis, settings: Settings, top_k: int) -> Analysis:
    """`held`'s ids and labels analysed by `lm`, after checking `lm` names every id as `held`'s tokenizer does."""
    ids = held.input_ids
    _check_same_vocabulary(lm, held)
    limit = token_limit(lm, settings.max_tokens)
    result = analyze_ids(
        lm, ids[:limit], held.labels[:limit], text=held.text, bos=held.bos, top_k=top_k, truncated=len(ids) > limit
    )
    result.source = held.source
    if len(ids) > limit:
        result.notices.append(f"{lm.name} reads at most {limit} tokens: the rest of {held.source} is left out.")
    return result


def _check_same_vocabulary(lm: AnyModel, held: Analysis) -> None:
    """An InputError unless `lm`'s tokenizer names each of `held`'s ids as the tokenizer that made them does."""
    ids, made_by = held.input_ids, held.decoder.tokenizer
    if lm.tokenizer is made_by:
        return
    same = max(ids) < len(lm.tokenizer) and lm.tokenizer.convert_ids_to_tokens(ids) == made_by.convert_ids_to_tokens(
        ids
    )
    if not same:
        raise InputError(
            f"{lm.name} has another vocabulary than {held.model}, so {held.source}'s token ids mean other tokens to "
            "it: compare it on a text (each model tokenizes the text itself), or pick models with the same tokenizer."
        )
