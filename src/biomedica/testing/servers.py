"""Local servers for tests and benchmarks: a real S3 server, a file server, a fault-injecting HTTP proxy.

`LocalS3Server` runs moto's S3 server on 127.0.0.1 (real sockets, real S3 protocol).
`FaultProxy` sits in front of any HTTP server and adds latency, 500s or stalls to chosen
requests, damages response bodies (flipped bytes, a short body, a connection cut mid-body)
and logs every request, so tests can count what a run fetched. moto sends the
`x-amz-checksum-crc32` of objects uploaded by boto3, so a damaged body reaches botocore's
own response checksum validation (FlexibleChecksumError) as it would from AWS.
"""

from __future__ import annotations

import http.client
import random
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


BODY_FAULTS = ("flip", "truncate", "cut")


@dataclass
class FaultRule:
    """Apply to requests whose path contains `path_contains` (all when empty), `times` times (None = always).

    `body` damages the body of a successful object GET instead of answering an error:
    "flip" changes one byte (same length, so only a checksum sees it), "truncate" sends the
    first half with a Content-Length that matches it, "cut" announces the whole length, sends
    half and closes the connection; a tuple picks one of its modes per request. `fraction`
    applies the rule to that share of matching requests, chosen from (seed, path, n-th request
    of that path): the same requests every run, whatever the order threads send them in.
    `per_path` applies it to the first n requests of each matching path (every object fails
    its first attempt, say), a fixed pattern that no interleaving of threads can change.
    `strip_headers` drops response headers starting with these names (e.g. "x-amz-checksum",
    "etag"), so only the checks that remain can notice a damaged body.
    """

    path_contains: str = ""
    status: int | None = None  # answer with this status instead of forwarding (e.g. 500)
    stall: float = 0.0  # sleep this long before answering (provokes read timeouts)
    times: int | None = None
    body: str | tuple[str, ...] | None = None
    fraction: float | None = None
    seed: int = 0
    strip_headers: tuple[str, ...] = ()
    per_path: int | None = None
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        modes = (self.body,) if isinstance(self.body, str) else (self.body or ())
        unknown = [m for m in modes if m not in BODY_FAULTS]
        if unknown:
            raise ValueError(f"FaultRule body {unknown[0]!r} is not one of {', '.join(BODY_FAULTS)}")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"FaultRule fraction must be within [0, 1], got {self.fraction}")

    def take(self, path: str) -> bool:
        if self.path_contains and self.path_contains not in path:
            return False
        n = self._seen.get(path, 0)
        self._seen[path] = n + 1
        if self.per_path is not None and n >= self.per_path:
            return False
        if self.fraction is not None and self._draw(path, n, "apply").random() >= self.fraction:
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        return True

    def body_fault(self, path: str) -> str | None:
        """The body fault for the request just taken (one mode, drawn when `body` lists several)."""
        if self.body is None or isinstance(self.body, str):
            return self.body
        return self._draw(path, self._seen.get(path, 0), "mode").choice(self.body)

    def _draw(self, path: str, n: int, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}\0{path}\0{n}\0{purpose}")


@dataclass
class _Decision:
    status: int | None = None
    stall: float = 0.0
    body: str | None = None
    strip_headers: tuple[str, ...] = ()


def damage(data: bytes, fault: str) -> bytes:
    """`data` as a body fault leaves it: one byte flipped (same length) or the first half."""
    if fault == "flip":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
    return data[: len(data) // 2]


def corrupting_proxy(
    upstream_url: str,
    fraction: float,
    seed: int = 0,
    modes: tuple[str, ...] = BODY_FAULTS,
    path_contains: str = "",
    latency: float = 0.0,
) -> FaultProxy:
    """A FaultProxy (use it as a context manager) damaging `fraction` of object GET bodies, deterministically.

    Which requests are damaged depends on (seed, path, n-th request of that path) only, so a
    rerun damages the same attempts; a retry of a damaged attempt is drawn afresh. Listings
    are never damaged (no checksum protects a listing; TLS does): only object GETs.
    """
    rule = FaultRule(path_contains=path_contains, body=tuple(modes), fraction=fraction, seed=seed)
    return FaultProxy(upstream_url, latency=latency, rules=[rule])


@dataclass
class ProxyRequest:
    method: str
    path: str  # decoded path, no query
    query: str
    status: int
    fault: str | None = None  # the body fault applied ("flip", "truncate", "cut"), if any


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
                decision = proxy._decide(self.command, unquote(path))
                status_override = decision.status
                if proxy.latency:
                    time.sleep(proxy.latency)
                if decision.stall:
                    time.sleep(decision.stall)
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
                fault = decision.body if 200 <= response.status < 300 and data else None
                announced = len(data)
                if fault is not None:
                    data = damage(data, fault)
                    if fault != "cut":
                        announced = len(data)
                proxy._record(self.command, unquote(path), query, response.status, fault)
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    lower = key.lower()
                    if lower in _HOP_HEADERS or lower == "content-length":
                        continue
                    if any(lower.startswith(prefix.lower()) for prefix in decision.strip_headers):
                        continue
                    self.send_header(key, value)
                self.send_header("Content-Length", str(announced))
                if fault == "cut":
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                if fault == "cut":  # the client sees the connection end before the announced length
                    self.wfile.flush()
                    self.close_connection = True

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

    def _decide(self, method: str, path: str) -> _Decision:
        with self._lock:
            self._count += 1
            decision = _Decision()
            # body faults damage objects only: a GET of /bucket/key (path-style), never a listing
            names_object = method == "GET" and len([p for p in path.split("/") if p]) >= 2
            for rule in self.rules:
                if rule.body is not None and not names_object:
                    continue
                if rule.take(path):
                    decision.status = rule.status if rule.status is not None else decision.status
                    decision.stall = max(decision.stall, rule.stall)
                    decision.body = rule.body_fault(path) or decision.body
                    decision.strip_headers += rule.strip_headers
            if decision.status is None and self.fail_every and self._count % self.fail_every == 0:
                decision.status = 500
            return decision

    def _record(self, method: str, path: str, query: str, status: int, fault: str | None = None) -> None:
        with self._lock:
            self.log.append(ProxyRequest(method, path, query, status, fault))

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
