"""A burst larger than the queue: each request gets a result or 'busy' at once, none hangs, and the server recovers.

Loopback only, bounded in count (24 requests) and time (each waits at most 120 s).
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import time

import pytest

from tests.served import serve
from visualizer.service import page as service
from visualizer.settings import Settings

pytestmark = pytest.mark.slow
BURST = 24
QUEUE = 4


def one_request(url: str, text: str) -> str:
    """'ok', 'busy' or the error's text, for one /analyze call from its own client."""
    from gradio_client import Client

    try:
        result = Client(url, verbose=False).predict(text, api_name="/analyze")
    except Exception as err:  # noqa: BLE001 - the kind of answer is what this test reads
        return "busy" if "queue is full" in str(err).lower() else f"error: {err}"
    return "ok" if result["positions"] else "empty"


def test_a_burst_over_the_queue_is_answered_and_the_server_recovers(tiny_gpt2_dir):
    settings = Settings(model=tiny_gpt2_dir, models=(tiny_gpt2_dir,), queue_size=QUEUE)
    with serve(settings) as url:
        start = time.monotonic()
        with futures.ThreadPoolExecutor(max_workers=BURST) as pool:
            jobs = [pool.submit(one_request, url, f"the dog likes food number {i}") for i in range(BURST)]
            answers = [job.result(timeout=120) for job in jobs]
        elapsed = time.monotonic() - start
        assert set(answers) <= {"ok", "busy"}, answers
        assert answers.count("ok") >= 1 and answers.count("busy") >= 1, answers
        assert elapsed < 120
        assert one_request(url, "the server still answers") == "ok"


def test_an_unexpected_error_is_logged_with_its_traceback_and_shown_as_one_sentence(caplog):
    with caplog.at_level(logging.ERROR):
        try:
            raise ZeroDivisionError("deep inside")
        except ZeroDivisionError as err:
            message = service.user_message(err)
    assert message == "Something went wrong while analysing this text; the server logged the details."
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text
