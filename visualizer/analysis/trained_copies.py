"""The trained copies a server holds: a small bounded registry keyed by session id, oldest dropped first.

A copy is a whole model (~0.55 GB for the 135M one), so at most `max_copies` live at once; a session
whose copy was dropped is told so. Pure: no gradio, no plotly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..errors import InputError
from ..model.loading import LoadedModel
from .training import TrainingRun, train_on_text


class TrainedCopies:
    """At most `max_copies` trained models, keyed by session id; the oldest is dropped first."""

    FORGET_AFTER = 1000
    """How many dropped session ids are remembered, to say 'dropped' rather than 'none'."""

    def __init__(self, max_copies: int = 2):
        if max_copies < 1:
            raise ValueError("max_copies must be at least 1")
        self.max_copies = max_copies
        self._copies: OrderedDict[str, LoadedModel] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, session_id: str, trained: LoadedModel) -> list[str]:
        """Hold `trained` for the session (replacing its previous copy); returns the session ids dropped."""
        with self._lock:
            self._copies.pop(session_id, None)
            self._dropped.pop(session_id, None)
            self._copies[session_id] = trained
            dropped = []
            while len(self._copies) > self.max_copies:
                old, _ = self._copies.popitem(last=False)
                dropped.append(old)
                self._remember_dropped(old)
            return dropped

    def get(self, session_id: str) -> LoadedModel:
        """The session's trained copy, or an InputError saying it was dropped or never made."""
        with self._lock:
            if session_id in self._copies:
                return self._copies[session_id]
            if session_id in self._dropped:
                raise InputError(
                    f"Your trained copy was dropped to make room for newer ones (the server keeps "
                    f"{self.max_copies}). Train again to get a new one."
                )
        raise InputError("There is no trained copy for this session yet: train on a sentence first.")

    def release(self, session_id: str) -> bool:
        """Free the session's copy; True when there was one."""
        with self._lock:
            self._dropped.pop(session_id, None)
            return self._copies.pop(session_id, None) is not None

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._copies

    def __len__(self) -> int:
        return len(self._copies)

    def _remember_dropped(self, session_id: str) -> None:
        """Note a dropped id, forgetting the oldest notes past FORGET_AFTER."""
        self._dropped[session_id] = None
        while len(self._dropped) > self.FORGET_AFTER:
            self._dropped.popitem(last=False)


TRAINED = TrainedCopies()
"""The server's trained copies (2 of the 135M model: ~1.1 GB)."""


def train_for_session(
    session_id: str, text: str, lm: LoadedModel, copies: TrainedCopies = TRAINED, **options
) -> TrainingRun:
    """train_on_text, then hold the trained copy for `session_id` in `copies`."""
    run = train_on_text(text, lm, **options)
    assert run.trained is not None  # train_on_text always returns its trained copy
    copies.put(session_id, run.trained)
    return run
