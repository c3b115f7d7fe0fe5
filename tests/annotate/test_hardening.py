"""The annotation app under hostile requests: body cap, cross-site refusal, Host check, no 5xx, no echo.

Network checks talk to a real uvicorn on 127.0.0.1 (a thread, or a subprocess where its memory is
measured); the route walk uses FastAPI's in-process client.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from biomedica.testing.web import free_port, serving

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient

import biomedica
from biomedica.annotate.app import AnnotateConfig, create_app

SRC = Path(biomedica.__file__).resolve().parents[1]  # the sources under test, for the server subprocess
MB = 1024 * 1024



def _wait_for_port(port: int, deadline_s: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"annotation server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"annotation server did not listen on port {port} within {deadline_s} s")


@pytest.fixture()
def live(clustered, tmp_path):
    """A real uvicorn serving the app on 127.0.0.1 in a thread: (port, config)."""
    archive, annotations = clustered
    port = free_port()
    config = AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=5, port=port,
                            database=tmp_path / "labels.sqlite")
    with serving(create_app(config), port):
        yield port, config


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             host: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"127.0.0.1:{port}" if host is None else host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}
LABEL = json.dumps({"annotator": "alice", "cluster": 0, "status": "split"}).encode()


# --- 1. request bodies are capped while they stream, and never echoed -------------------------------------


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def _stream_chunked(port: int, path: str, prefix: bytes, total: int) -> tuple[int, bytes, int]:
    """POST a chunked JSON body of about `total` bytes; returns (status, response body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"a" * MB
    sent = 0

    def send() -> None:
        nonlocal sent
        try:
            piece = prefix
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
                piece = chunk
            sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        except OSError:  # the server answered and closed: the rest is never read
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received or len(received) < received.index(b"\r\n\r\n") + 4 + _length(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
            if len(received) > 4 * MB:
                break  # an echo of the body: enough to fail the test
    except OSError:
        pass
    sender.join(timeout=60)
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    return status, body, sent


def _length(received: bytes) -> int:
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 40


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_huge_streamed_body_is_refused_without_growing_the_server(clustered, tmp_path):
    archive, annotations = clustered
    port = free_port()
    script = (
        "import sys, uvicorn\n"
        "from pathlib import Path\n"
        "from biomedica.annotate.app import AnnotateConfig, create_app\n"
        "config = AnnotateConfig(archive=Path(sys.argv[1]), annotations=Path(sys.argv[2]), database=Path(sys.argv[3]))\n"
        "uvicorn.run(create_app(config), host='127.0.0.1', port=int(sys.argv[4]), log_level='warning')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(archive), str(annotations), str(tmp_path / "labels.sqlite"), str(port)],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    try:
        _wait_for_port(port, process=process)
        assert _request(port, "POST", "/api/labels", LABEL, JSON)[0] == 200  # warmed up: the normal peak
        before = _vm_hwm_kib(process.pid)
        status, body, sent = _stream_chunked(port, "/api/labels", b'{"annotator": "', 200 * MB)
        grown_mb = (_vm_hwm_kib(process.pid) - before) / 1024
        assert status == 413, (status, body[:200])
        assert len(body) < 500 and b"aaaa" not in body
        assert grown_mb < 64, f"server peak memory grew by {grown_mb:.0f} MB for a {sent // MB} MB body"
        # a declared length over the cap is refused before any byte of the body is read
        status, body = _request(port, "POST", "/api/labels", None, {**JSON, "Content-Length": str(10**9)})
        assert status == 413 and b"bytes" in body
        assert process.poll() is None  # the server lives on
        assert _request(port, "GET", "/api/taxonomy")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_validation_errors_do_not_echo_the_input(clustered):
    archive, annotations = clustered
    client = TestClient(create_app(AnnotateConfig(archive=archive, annotations=annotations)))
    marker = "Q" * 200_000
    for body in ({"annotator": marker, "cluster": 0}, {"annotator": "a", "cluster": marker},
                 {"annotator": "a", "cluster": 0, "note": marker}, {"annotator": "a", "cluster": 0, marker: 1},
                 {"annotator": "a", "cluster": 0, "status": "labelled", "global_concepts": [marker[:90]] * 90}):
        response = client.post("/api/labels", json=body)
        assert response.status_code == 422
        assert "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ" not in response.text
        assert len(response.content) < 2000 and isinstance(response.json()["detail"], str)
    response = client.post("/api/labels", content=b'{"annotator": "' + marker.encode(), headers=JSON)
    assert response.status_code == 422 and marker[:100] not in response.text and len(response.content) < 2000
    response = client.get("/api/images/" + marker[:5000])
    assert response.status_code == 404 and len(response.content) < 500


# --- 2. cross-origin state-changing requests are refused ---------------------------------------------------


def test_cross_origin_posts_are_refused(live):
    port, config = live
    assert _request(port, "POST", "/api/labels", LABEL, JSON)[0] == 200
    for headers in (
        {**JSON, "Origin": "http://evil.example"},
        {**JSON, "Origin": f"http://evil.example:{port}"},
        {**JSON, "Origin": "null"},
        {**JSON, "Origin": f"http://127.0.0.1:{port + 1}"},
        {**JSON, "Sec-Fetch-Site": "cross-site"},
    ):
        status, body = _request(port, "POST", "/api/export", b"{}", headers)
        assert status == 403, (headers, status, body)
        assert b"refused" in body
        assert _request(port, "POST", "/api/labels", LABEL, headers)[0] == 403
    # a plain HTML form (no JSON content type) cannot post either, with or without Origin
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, body = _request(port, "POST", "/api/export", b"a=1", {"Content-Type": content_type})
        assert status == 415 and b"application/json" in body
    status, _ = _request(port, "POST", "/api/export", None)
    assert status == 415
    assert not config.store().table_path("labels").exists()  # nothing was exported
    # the app's own origin (what its page sends) works
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        status, body = _request(port, "POST", "/api/export", b"{}",
                                {**JSON, "Origin": origin, "Sec-Fetch-Site": "same-origin"})
        assert status == 200, body
    assert config.store().table_path("labels").exists()
    assert _request(port, "GET", "/api/agreement", headers={"Origin": "http://evil.example"})[0] == 200  # reads stay open


# --- 3. the Host header must name this server (DNS rebinding) ----------------------------------------------


def test_host_header_must_name_this_server(live):
    port, _ = live
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert _request(port, "GET", "/api/taxonomy", host=host)[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1", f"localhost.evil.example:{port}",
                 f"127.0.0.1.nip.io:{port}", ""):
        status, body = _request(port, "GET", "/api/taxonomy", host=host)
        assert status == 421, (host, status)
        assert b"not this server" in body
    assert _request(port, "POST", "/api/labels", LABEL, JSON, host=f"evil.example:{port}")[0] == 421


def test_allowed_hosts_and_bound_host_are_accepted(clustered):
    archive, annotations = clustered
    app = create_app(AnnotateConfig(archive=archive, annotations=annotations, host="10.1.2.3",
                                    allowed_hosts=["annotate.lab"]))
    client = TestClient(app)  # the in-process server is "testserver:80"
    assert client.get("/api/taxonomy", headers={"Host": "annotate.lab"}).status_code == 200
    assert client.get("/api/taxonomy", headers={"Host": "annotate.lab:81"}).status_code == 421
    assert client.get("/api/taxonomy", headers={"Host": "10.1.2.3"}).status_code == 200
    assert client.get("/api/taxonomy", headers={"Host": "evil.example"}).status_code == 421


# --- 4. no 5xx for malformed input -------------------------------------------------------------------------

HUGE = "x" * 300_000  # a body field
LONG = "x" * 20_000  # a path or query value (httpx caps a URL at 64 KiB)
BAD_TEXT = ["", " ", "   \t ", LONG, "-1", "1e9", "null", "\x00", "..%2F..%2Fetc%2Fpasswd", "99999999999999999999999",
            "%F0%9F%92%A9", "<script>"]
BAD_BODIES = [
    None, b"", b"{", b"[]", b"null", b"1", b'"x"', b"[" * 50_000, json.dumps({"x": 1}).encode(),
    json.dumps({"annotator": "   ", "cluster": 0, "status": "split"}).encode(),
    json.dumps({"annotator": "", "cluster": 0}).encode(),
    json.dumps({"annotator": HUGE, "cluster": 0}).encode(),
    json.dumps({"annotator": "a", "cluster": "zero"}).encode(),
    json.dumps({"annotator": "a", "cluster": 10**40, "status": "split"}).encode(),
    json.dumps({"annotator": "a", "cluster": -5, "status": "split"}).encode(),
    json.dumps({"annotator": "a", "cluster": 0, "status": ["x"]}).encode(),
    json.dumps({"annotator": "a", "cluster": 0, "status": "labelled", "global_concepts": "plots"}).encode(),
    json.dumps({"annotator": "a", "cluster": 0, "status": "labelled", "global_concepts": [1, None, {}]}).encode(),
    json.dumps({"annotator": "a", "cluster": 0, "status": "labelled", "local_concepts": ["x"] * 10_000}).encode(),
    json.dumps({"annotator": ["a"], "cluster": 0}).encode(),
    json.dumps({"annotator": "a\x00b", "cluster": 0, "status": "split", "note": "\ud800"}).encode("utf-8", "surrogatepass"),
]


def test_no_route_answers_5xx_to_malformed_input(clustered):
    from fastapi.routing import APIRoute

    archive, annotations = clustered
    app = create_app(AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=5))
    client = TestClient(app, raise_server_exceptions=False)
    routes = [r for r in app.routes if hasattr(r, "methods")]
    assert {r.path for r in routes if isinstance(r, APIRoute)} >= {
        "/api/taxonomy", "/api/queue", "/api/clusters/{cluster}", "/api/images/{key}", "/api/labels",
        "/api/agreement", "/api/export"}
    seen = 0
    for route in routes:
        paths = [route.path]
        if "{" in route.path:
            name = route.path[route.path.index("{"):route.path.index("}") + 1]
            paths = [route.path.replace(name, quote(value, safe="%")) for value in BAD_TEXT if value]
        for method in sorted(route.methods - {"HEAD"}):
            for path in paths:
                if method == "GET":
                    for params in ({}, *({"annotator": v} for v in BAD_TEXT), {"annotator": ["a", "b"]}):
                        response = client.get(path, params=params)
                        assert response.status_code < 500, (path, str(params)[:80], response.status_code)
                        seen += 1
                else:
                    for body in BAD_BODIES:
                        response = client.request(method, path, content=body, headers=JSON)
                        assert response.status_code < 500, (method, path, (body or b"")[:80], response.status_code)
                        assert len(response.content) < 5000 or path == "/api/export"
                        seen += 1
    assert seen > 300


def test_whitespace_annotator_and_openapi(clustered):
    archive, annotations = clustered
    client = TestClient(create_app(AnnotateConfig(archive=archive, annotations=annotations)),
                        raise_server_exceptions=False)
    response = client.post("/api/labels", json={"annotator": "   ", "cluster": 0, "status": "split"})
    assert response.status_code == 422 and "annotator name is blank" in response.json()["detail"]
    response = client.get("/api/queue", params={"annotator": "  "})
    assert response.status_code == 422 and "blank" in response.json()["detail"]
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200 and "/api/labels" in schema.json()["paths"]
    assert client.get("/api/docs").status_code == 200


# --- 5. the page never turns data into markup --------------------------------------------------------------


def test_page_builds_its_dom_from_text_only(clustered):
    archive, annotations = clustered
    page = TestClient(create_app(AnnotateConfig(archive=archive, annotations=annotations))).get("/").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in page, sink
    assert "textContent" in page
    # every POST the page makes sends JSON, as the server's cross-site guard requires
    assert page.count('method: "POST"') == page.count('"Content-Type": "application/json"') == 2
