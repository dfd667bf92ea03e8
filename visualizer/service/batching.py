"""Running overlapping requests: concurrent analyses of one model share one forward pass (a queue of
requests and one worker thread), long ones take turns (a token budget), and each session sees its newest.

While the worker runs a forward pass, new requests wait; the next pass takes all of them that are for
the same model (up to `max_requests`, and `max_tokens` padded tokens so the batch's logits stay as
small as one long text's). A request that finds the worker idle runs at once, alone: batching adds no
wait, it only shares the pass when requests overlap (a class pressing Analyze together).

Why not Gradio's `batch=True`: it hands a batched call one session's state and fails every request of
the batch when one input is bad. Batching only the forward pass keeps each request's validation,
errors, progress and session apart. Pure: no gradio.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..analysis.one_pass import Measured, Request, measure_batch
from ..errors import InputError
from ..model.loading import LoadedModel
from .memory import release_freed_memory

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One waiting request and where its result goes."""

    lm: LoadedModel
    request: Request
    result: Future = field(default_factory=Future)


class ForwardBatcher:
    """Runs the forward passes of concurrent requests as padded batches, one batch at a time."""

    def __init__(self, max_requests: int = 16, max_tokens: int = 1024):
        if max_requests < 1 or max_tokens < 1:
            raise ValueError("max_requests and max_tokens must be at least 1")
        self.max_requests, self.max_tokens = max_requests, max_tokens
        self._jobs: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None

    def measure(self, lm: LoadedModel, request: Request) -> Measured:
        """Queue one text's forward pass and wait for its statistics; the same result as `measure_one`."""
        job = _Job(lm, request)
        with self._ready:
            self._jobs.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name="forward-batcher", daemon=True)
                self._worker.start()
            self._ready.notify()
        return job.result.result()

    def _serve(self) -> None:
        """The worker: take a batch, run it, hand each request its result; forever."""
        while True:
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                batch = self._take()
            self._run(batch)

    def _take(self) -> list[_Job]:
        """The first waiting job and those after it for the same model that fit the limits (lock held)."""
        first = self._jobs.popleft()
        batch, longest = [first], len(first.request.ids)
        for job in list(self._jobs):
            if len(batch) == self.max_requests:
                break
            size = max(longest, len(job.request.ids))
            if job.lm is first.lm and size * (len(batch) + 1) <= self.max_tokens:
                self._jobs.remove(job)
                batch.append(job)
                longest = size
        return batch

    def _run(self, batch: list[_Job]) -> None:
        """One forward pass for the batch; an error reaches every request in it."""
        try:
            results = measure_batch(batch[0].lm, [job.request for job in batch])
        except BaseException as err:  # noqa: BLE001 - handed to the waiting requests, the worker lives on
            log.warning("a batch of %d forward passes failed: %s", len(batch), err)
            for job in batch:
                job.result.set_exception(err)
            return
        finally:
            release_freed_memory()
        for job, measured in zip(batch, results):
            job.result.set_result(measured)


class TokenBudget:
    """Bounds the tokens of requests in flight at once, first come first served (a weighted semaphore).

    Many short analyses may be drawn at the same time, but long ones (each holding megabytes of
    statistics, figures and export) take turns, so memory stays bounded however many users press
    Analyze. A request larger than the whole budget waits until it can have all of it."""

    def __init__(self, tokens: int):
        if tokens < 1:
            raise ValueError("the budget must be at least one token")
        self.total = self.free = tokens
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, tokens: int, wait_s: float | None = None):
        """Wait for the turn and `tokens` of the budget (at most all of it); give them back on exit.

        `wait_s`: the longest wait for the turn (None: no limit); past it, an InputError says the server is busy."""
        need, turn = max(1, min(tokens, self.total)), object()
        with self._changed:
            self._turns.append(turn)
            try:
                began = self._changed.wait_for(lambda: self._turns[0] is turn and self.free >= need, wait_s)
            finally:
                self._turns.remove(turn)
                self._changed.notify_all()
            if not began:
                raise InputError(
                    f"The server is busy: this analysis could not start within {wait_s:g} s "
                    "(the time limit). Try again in a moment, or with a shorter text."
                )
            self.free -= need
        try:
            yield
        finally:
            with self._changed:
                self.free += need
                self._changed.notify_all()


class NewestRequests:
    """Which request of each session is its newest, so that when requests overlap (they run at once)
    an older one finishing last is not shown over a newer one.

    A page numbers its requests itself as its user makes them (`order`), since two requests sent
    within a moment of each other may begin here in either order; without one, the order in which
    they begin here counts."""

    def __init__(self):
        self._lock = threading.Lock()
        self._newest: dict[str, tuple[bool, int]] = {}  # session -> (numbered by the page, newest number)
        self._count = 0

    def begin(self, session: str | None, order: int | None = None) -> tuple[bool, int]:
        """Record a request of `session` (numbered `order` by its page, if it was); its ticket."""
        with self._lock:
            self._count += 1
            ticket = (True, order) if order else (False, self._count)
            if session is not None:
                self._newest[session] = max(self._newest.get(session, ticket), ticket)
            return ticket

    def is_newest(self, session: str | None, ticket: tuple[bool, int]) -> bool:
        """Whether no later request of `session` has begun (always true without a session)."""
        with self._lock:
            return session is None or self._newest.get(session, ticket) == ticket

    def forget(self, session: str | None) -> None:
        """Drop a closed session's record."""
        with self._lock:
            if session is not None:
                self._newest.pop(session, None)
