"""Local servers for tests and benchmarks: a real S3 server, a file server, a fault-injecting HTTP proxy.

`LocalS3Server` runs moto's S3 server on 127.0.0.1 (real sockets, real S3 protocol).
`FaultProxy` sits in front of any HTTP server and adds latency, 500s or stalls to chosen
requests and logs every request, so tests can count what a run fetched.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"})


class LocalS3Server:
    """moto's threaded S3 server on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def __enter__(self) -> "LocalS3Server":
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def admin_client(self):
        """A boto3 S3 client with dummy credentials, to create buckets and upload objects."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}),
        )


@dataclass
class FaultRule:
    """Apply to requests whose path contains `path_contains` (all when empty), `times` times (None = always)."""

    path_contains: str = ""
    status: int | None = None  # answer with this status instead of forwarding (e.g. 500)
    stall: float = 0.0  # sleep this long before answering (provokes read timeouts)
    times: int | None = None

    def take(self, path: str) -> bool:
        if self.path_contains and self.path_contains not in path:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True


@dataclass
class ProxyRequest:
    method: str
    path: str  # decoded path, no query
    query: str
    status: int


@dataclass
class FaultProxy:
    """An HTTP/1.1 proxy to `upstream` on 127.0.0.1 with injected latency and faults."""

    upstream: str  # http://host:port
    latency: float = 0.0  # seconds added to every request
    fail_every: int | None = None  # every n-th request answers 500 (intermittent server)
    rules: list[FaultRule] = field(default_factory=list)
    log: list[ProxyRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    def __enter__(self) -> "FaultProxy":
        proxy = self
        parts = urlsplit(self.upstream)
        upstream_host, upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path, _, query = self.path.partition("?")
                status_override, stall = proxy._decide(unquote(path))
                if proxy.latency:
                    time.sleep(proxy.latency)
                if stall:
                    time.sleep(stall)
                if status_override is not None:
                    proxy._record(self.command, unquote(path), query, status_override)  # logged before the client sees it
                    payload = b"<Error><Code>InternalError</Code><Message>injected by FaultProxy</Message></Error>"
                    self.send_response(status_override)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                for attempt in range(2):  # a pooled upstream connection may have been closed
                    conn = getattr(local, "conn", None)
                    if conn is None:
                        conn = local.conn = http.client.HTTPConnection(upstream_host, upstream_port, timeout=60)
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        response = conn.getresponse()
                        data = response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt:
                            raise
                proxy._record(self.command, unquote(path), query, response.status)
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _decide(self, path: str) -> tuple[int | None, float]:
        with self._lock:
            self._count += 1
            status: int | None = None
            stall = 0.0
            for rule in self.rules:
                if rule.take(path):
                    status = rule.status if rule.status is not None else status
                    stall = max(stall, rule.stall)
            if status is None and self.fail_every and self._count % self.fail_every == 0:
                status = 500
            return status, stall

    def _record(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self.log.append(ProxyRequest(method, path, query, status))

    def requests_for(self, path_contains: str, method: str = "GET") -> list[ProxyRequest]:
        with self._lock:
            return [r for r in self.log if r.method == method and path_contains in r.path]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()


@dataclass
class ServerOptions:
    """Behaviour of the file server, changeable while it runs."""

    token: str | None = None  # required as "Bearer <token>" when set
    honour_ranges: bool = True
    drop_after: int | None = None  # cut the first response of each path after this many bytes
    redirect_to: str | None = None  # 302 every request to this base URL (+ path)
    fail_first: int = 0  # answer the first n requests with 503 (a server that recovers)
    requests: list[dict] = field(default_factory=list)
    _dropped: set[str] = field(default_factory=set)


def _make_handler(root: Path, options: ServerOptions):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 - http.server naming
            options.requests.append({"path": self.path, "headers": dict(self.headers)})
            if len(options.requests) <= options.fail_first:
                self.send_error(503)
                return
            if options.redirect_to:
                self.send_response(302)
                self.send_header("Location", options.redirect_to.rstrip("/") + self.path)
                self.end_headers()
                return
            if options.token and self.headers.get("Authorization") != f"Bearer {options.token}":
                self.send_error(401)
                return
            path = root / self.path.split("?")[0].lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range")
            if ranged and options.honour_ranges:
                start = int(ranged.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if options.drop_after is not None and self.path not in options._dropped:
                options._dropped.add(self.path)
                self.wfile.write(body[: options.drop_after])
                self.wfile.flush()
                self.connection.shutdown(2)  # the client sees a short read
                return
            self.wfile.write(body)

    return Handler


@dataclass
class RunningServer:
    url: str
    options: ServerOptions

    def shard_requests(self) -> list[dict]:
        return [r for r in self.options.requests if r["path"].endswith(".tar")]


def serve_folder(root: Path, **options) -> tuple[ThreadingHTTPServer, RunningServer]:
    """Serve `root` over HTTP on 127.0.0.1 (a free port) in a daemon thread; stop with `server.shutdown()`."""
    server_options = ServerOptions(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(Path(root), server_options))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, RunningServer(f"http://127.0.0.1:{server.server_address[1]}", server_options)
