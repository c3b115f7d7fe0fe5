"""The web apps' request guard (annotate and serve): a plain ASGI middleware in front of every route.

Why hand-written: Starlette's TrustedHostMiddleware ignores the port and mis-parses `[::1]`,
and neither Starlette nor FastAPI caps a request body. The guard

- accepts only a Host header naming this server: `127.0.0.1`, `localhost` or `[::1]` (plus the
  interface it was bound to and any `allowed_hosts`) with the port it listens on, so a page on a
  rebound DNS name cannot talk to it (421 otherwise);
- refuses state-changing requests (POST/PUT/PATCH/DELETE) from another site: an `Origin` that is
  not this server or `Sec-Fetch-Site: cross-site` is 403, a body that is not JSON is 415 (so a
  plain HTML form on another page cannot post); only the paths named in `multipart_paths` (serve's
  `POST /api/search/image`) also take `multipart/form-data`, each with its own, larger body cap;
- caps the request body while it streams: a `Content-Length` over the cap is refused before a
  byte is read, a chunked body is counted and cut off at the cap (413), so a huge upload never
  sits in memory.

Error replies are one short JSON line and never carry the request's bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024  # an image query's multipart body
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"


def shorten(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters: replies name what was refused without echoing it at length."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def split_host(value: str, default_port: int | None) -> tuple[str, int | None]:
    """(lower-case host name without IPv6 brackets, port) of a Host header or origin's netloc."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8765
        end = value.find("]")
        if end < 0:
            return value, None
        name, rest = value[1:end], value[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, port_text = value.split(":")
    else:
        name, port_text = value, ""
    if not port_text:
        return name, default_port
    return (name, int(port_text)) if port_text.isdigit() else (name, None)


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (`root_path`), as the app's routes see it."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        return path[len(root):] or "/"
    return path


class RequestGuard:
    """ASGI middleware: Host check, cross-site refusal for state-changing methods, body cap.

    `multipart_paths`: {route path: body cap} of the routes that take a `multipart/form-data`
    upload (and JSON) with that cap; every other path takes JSON bodies up to `max_body_bytes`.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY,
                 allowed_hosts: Iterable[str] = (), bound_host: str | None = None,
                 multipart_paths: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.multipart_paths = dict(multipart_paths or {})
        for path, cap in self.multipart_paths.items():
            if not path.startswith("/") or cap < 1:
                raise ValueError(f"multipart path {path!r} needs a leading / and a positive body cap")
        names = {*LOOPBACK_NAMES, *(h.strip().strip("[]").lower() for h in allowed_hosts if h.strip())}
        if bound_host and bound_host not in ("0.0.0.0", "::", ""):
            names.add(bound_host.strip("[]").lower())
        self.names = frozenset(names)

    def _allowed(self, name: str, port: int | None, scope: Scope) -> bool:
        server = scope.get("server")
        server_name, server_port = (str(server[0]).lower(), server[1]) if server else (None, None)
        if server_port is not None and port != server_port:
            return False
        # the address the connection really arrived at (an IP literal when bound to 0.0.0.0) is
        # never a rebound DNS name, so it is safe to accept as well
        return name in self.names or name == server_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        default_port = 443 if scope.get("scheme") == "https" else 80
        host, port = split_host(headers.get("host", ""), default_port)
        if not self._allowed(host, port, scope):
            await _reply(send, 421, f"Host {shorten(headers.get('host', ''))!r} is not this server: open it as "
                                    "http://127.0.0.1:PORT/ (or start it with --allow-host NAME)")
            return
        upload_cap = self.multipart_paths.get(route_path(scope))
        cap = self.max_body_bytes if upload_cap is None else upload_cap
        too_big = (f"request body over {cap} bytes; this app takes small JSON bodies" if upload_cap is None
                   else f"upload over {cap} bytes ({cap / 2**20:g} MiB); send a smaller image")
        if scope["method"] in STATE_CHANGING:
            refusal = self._cross_site(headers, scope, default_port, multipart=upload_cap is not None)
            if refusal:
                await _reply(send, *refusal)
                return
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > cap):
            await _reply(send, 413, too_big)
            return
        await self._capped(scope, receive, send, cap, too_big)

    def _cross_site(self, headers: dict[str, str], scope: Scope, default_port: int,
                    multipart: bool = False) -> tuple[int, str] | None:
        if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
            return 403, "cross-site request refused: use the app's own page"
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin.strip())
            name, port = split_host(parts.netloc, 443 if parts.scheme == "https" else 80)
            if parts.scheme not in ("http", "https") or not self._allowed(name, port, scope):
                return 403, f"request from origin {shorten(origin)!r} refused: use the app's own page"
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if multipart:
            if content_type not in (MULTIPART_TYPE, JSON_TYPE):
                return 415, "send the image as multipart/form-data (or the request as JSON)"
        elif content_type != JSON_TYPE:
            return 415, "send the request body as JSON (Content-Type: application/json)"
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int, too_big: str) -> None:
        """Run the app with a receive that stops at the cap; the app's own reply is then replaced by 413."""
        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True  # the chunk is dropped; the app sees the client leave
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _reply(send, 413, too_big)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
