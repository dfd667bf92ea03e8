"""An engine model through the app's API and the CLI, and the engine going away in the middle of a session.

"Going away" is real: the app reaches vLLM through a loopback TCP relay that the test closes, so the app sees
exactly what a stopped or unplugged server gives (refused connections), while the session's vLLM server keeps
serving the other tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import pytest

from tests.served import serve
from visualizer.settings import BUNDLED_MODEL, Settings

pytestmark = [pytest.mark.slow, pytest.mark.engine]


class Relay:
    """Forwards every connection to 127.0.0.1:<port> until `close()`; then its port refuses connections."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self):
        """Stop listening and cut every relayed connection."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone leaves it listening
        self.listener.close()
        for sock in self.open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked reading it
            sock.close()


def test_the_api_serves_an_engine_model_and_keeps_serving_when_the_engine_goes_away(vllm_server):
    from gradio_client import Client

    relay = Relay(int(vllm_server.url.rsplit(":", 1)[1]))
    entry = f"vllm:http://127.0.0.1:{relay.port}/{vllm_server.served_name}"
    settings = Settings(models=(BUNDLED_MODEL, entry))
    try:
        with serve(settings) as url:
            client = Client(url, verbose=False)
            served = client.predict("the dog likes food", entry, 5, api_name="/analyze")
            local = client.predict("the dog likes food", BUNDLED_MODEL, 5, api_name="/analyze")
            assert served["backend"] == "vllm" and local["backend"] == "transformers"
            assert served["loss"] is None
            assert served["mean_token_loss"] == pytest.approx(local["loss"], abs=1e-4)

            relay.close()  # the engine is gone mid-session
            with pytest.raises(Exception, match="cannot be reached") as caught:
                client.predict("the dog likes food", entry, 5, api_name="/analyze")
            assert "Traceback" not in str(caught.value)
            again = client.predict("the cat likes fish", BUNDLED_MODEL, 5, api_name="/analyze")
            assert again["backend"] == "transformers" and again["loss"] > 0  # in-process models keep serving
    finally:
        relay.close()


def test_the_cli_analyses_through_an_engine_and_a_dead_one_is_exit_2(vllm_server, run_cli):
    status, out, err = run_cli(["analyze", "the dog likes food", "--model", vllm_server.entry, "--format", "json"])
    assert status == 0, err
    result = json.loads(out)
    result = result[0] if isinstance(result, list) else result
    assert result["backend"] == "vllm" and result["loss"] is None and result["mean_token_loss"] > 0

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    status, out, err = run_cli(["analyze", "the dog", "--model", f"vllm:http://127.0.0.1:{closed}/m"])
    assert status == 2 and out == ""
    assert err.strip().count("\n") == 0 and "cannot be reached" in err

    status, _, err = run_cli(["lens", "the dog likes", "--model", vllm_server.entry])
    assert status == 2 and "needs the model's weights in this process" in err
