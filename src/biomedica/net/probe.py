"""Is a server there at all? One TCP connect, so a closed port or no network fails in seconds.

Retries with backoff are right for a server that answers badly; for one nobody can reach
they only turn "offline" into half a minute of waiting. Callers probe once before (or after)
a failed request and stop with one line naming the host. Standard library only.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def host_of(url: str) -> str:
    """`host:port` of an http(s) URL, as messages name it."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or DEFAULT_PORTS.get(parts.scheme, 80)}"


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to the URL's host opens within `timeout` seconds, else why not (one line).

    Only http(s) URLs are probed (others: None); the client connects directly too (no proxy).
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:  # a port out of range
        return str(exc)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
