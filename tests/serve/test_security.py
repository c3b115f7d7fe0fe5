"""The search server under hostile or careless requests: Host check, cross-site writes, upload cap, bad params.

Host and cap checks run against a real uvicorn on 127.0.0.1 (a thread); parameter checks use FastAPI's
in-process client. No request gets a 5xx, and no reply repeats what was sent.
"""

from __future__ import annotations

import http.client
import socket

import pytest

from biomedica.testing.web import free_port, serving

from .conftest import UNIQUE_WORD

MB = 1024 * 1024



@pytest.fixture(scope="module")
def live(search_archive, engine):
    """A real uvicorn serving the search app on a free 127.0.0.1 port: its port."""
    from biomedica.serve.app import create_app
    from biomedica.serve.config import ServeConfig

    port = free_port()
    app = create_app(ServeConfig(archive=search_archive, port=port, max_upload_bytes=1 * MB), engine)
    with serving(app, port):
        yield port


def _request(port, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_host_header_must_name_this_server(live):
    status, _ = _request(live, "GET", f"/api/search?q={UNIQUE_WORD}", headers={"Host": f"127.0.0.1:{live}"})
    assert status == 200
    status, body = _request(live, "GET", f"/api/search?q={UNIQUE_WORD}", headers={"Host": f"evil.example:{live}"})
    assert status == 421 and b"not this server" in body
    status, _ = _request(live, "GET", "/", headers={"Host": f"localhost:{live}"})
    assert status == 200


def test_cross_origin_posts_are_refused(live):
    body = b'{"keys": ["PMC9000001_000"]}'
    headers = {"Host": f"127.0.0.1:{live}", "Content-Type": "application/json"}
    status, _ = _request(live, "POST", "/api/export", body, {**headers, "Origin": "https://evil.example"})
    assert status == 403
    status, _ = _request(live, "POST", "/api/export", body, {**headers, "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _ = _request(live, "POST", "/api/export", body, {**headers, "Content-Type": "text/plain"})
    assert status == 415  # a plain HTML form elsewhere cannot post
    status, _ = _request(live, "POST", "/api/export", body, {**headers, "Origin": f"http://127.0.0.1:{live}"})
    assert status == 200
    status, _ = _request(live, "POST", "/api/search/image", b"--x--\r\n",
                         {"Host": f"127.0.0.1:{live}", "Content-Type": "multipart/form-data; boundary=x",
                          "Origin": "https://evil.example"})
    assert status == 403


def _declared(port, path, content_type, length) -> tuple[int, bytes]:
    """Send headers declaring a `length`-byte body and a first chunk of it only, then read the reply:
    the guard answers from Content-Length before reading the body (and closes the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {length}\r\n\r\n").encode() + b"\0" * 1024)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _chunked(port, path, content_type, total) -> tuple[int, bytes]:
    """Stream a chunked body of `total` bytes (no Content-Length); the guard counts and cuts it off at the cap."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        head = (b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
                b"Content-Type: image/png\r\n\r\n")
        piece = b"\0" * 65536
        try:
            sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
            for _ in range(total // len(piece)):
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading at the cap
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_oversize_upload_is_413(live):
    multipart = "multipart/form-data; boundary=b0undary"
    status, body = _declared(live, "/api/search/image", multipart, 2 * MB)
    assert status == 413 and b"MiB" in body and b"\0" not in body
    status, body = _chunked(live, "/api/search/image", multipart, 2 * MB)
    assert status == 413 and b"\0" not in body
    status, _ = _declared(live, "/api/export", "application/json", 5 * MB)
    assert status == 413
    # multipart is taken by the image route only
    status, _ = _request(live, "POST", "/api/export", b"--x--\r\n",
                         {"Host": f"127.0.0.1:{live}", "Content-Type": "multipart/form-data; boundary=x"})
    assert status == 415


@pytest.mark.parametrize("params, status, words", [
    ({"q": "x", "limit": "-1"}, 422, "limit"),
    ({"q": "x", "limit": "10000"}, 422, "limit"),
    ({"q": "x", "limit": "ten"}, 422, "limit"),
    ({"q": "x", "offset": "-5"}, 422, "offset"),
    ({"q": "x", "year_from": "abc"}, 422, "year_from"),
    ({"q": "x", "year_from": "2020", "year_to": "2010"}, 422, "year_from"),
    ({"q": "x", "mode": "foo"}, 422, "mode"),
    ({"q": "x", "license_group": "secret"}, 422, "license_group"),
    ({"q": "x", "panel_type": "many"}, 422, "panel_type"),
    ({"q": "x", "canonical_only": "perhaps"}, 422, "canonical_only"),
    ({"q": "x", "cluster": "abc"}, 422, "cluster"),
    ({"q": "x", "colour": "red", "sort": "date"}, 400, "'colour', 'sort'"),
    ({"q": ""}, 400, "empty"),
])
def test_bad_parameters_are_a_clear_4xx(client, params, status, words):
    response = client.get("/api/search", params=params)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and "Traceback" not in detail
    for value in params.values():
        if len(value) > 3 and not value.lstrip("-").isdigit():
            assert value not in detail.replace(words, "")  # never an echo of what was sent


def test_unknown_keys_are_404(client):
    for path in ("/api/figure/PMC0_000", "/api/similar/PMC0_000", "/api/image/PMC0_000?size=thumb"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.text)
    response = client.post("/api/export", json={"keys": ["PMC0_000"]})
    assert response.status_code == 404 and "PMC0_000" in response.json()["detail"]
    assert client.get("/api/facets", params={"bogus": "1"}).status_code == 400
    assert client.get("/api/similar/PMC9000001_000", params={"q": "x"}).status_code == 400
    response = client.post("/api/export", json={"keys": ["PMC9000001_000"], "format": "zip"})
    assert response.status_code == 422 and "format" in response.json()["detail"]
