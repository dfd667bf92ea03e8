"""Launch the app on a free loopback port for a test, and stop it afterwards."""

from __future__ import annotations

import contextlib
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(settings=None):
    """Yield the URL of the app launched on 127.0.0.1 (its own queue settings); close it on exit."""
    import app
    from visualizer.settings import Settings

    settings = settings or Settings()
    demo = app.configure_queue(app.build_demo(settings), settings)
    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **app.launch_options(),
    )
    try:
        yield url.rstrip("/")
    finally:
        demo.close()
