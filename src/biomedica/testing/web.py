"""Web apps in tests and benchmarks: a free loopback port, a real uvicorn in a thread, Debian's Chromium.

Why here: the annotate, serve and web tests (and the search benchmark) each need a real HTTP
server on 127.0.0.1 (the guard checks the Host header and the port, which FastAPI's TestClient
does not exercise) and the browser tests drive the Chromium that Debian ships (never
`playwright install`, which downloads a browser).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CHROMIUM_MISSING = f"{CHROMIUM} is absent: install it with `apt-get install -y chromium`"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (an app whose guard checks the port is built with it first)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app, port: int | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Serve the ASGI `app` with uvicorn on 127.0.0.1:`port` (a free one if None) in a thread; yields its URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port} within {timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
