"""The shared request guard with serve's needs: multipart uploads on one path with their own cap, JSON elsewhere.

In-process checks use FastAPI's TestClient on a real app; the streamed (chunked) upload goes to a real
uvicorn on 127.0.0.1, since only a real server streams a body in pieces.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Annotated

import pytest

from biomedica.testing.web import free_port, serving

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi import FastAPI, File, UploadFile
from fastapi.testclient import TestClient

from biomedica.web.guard import DEFAULT_MAX_UPLOAD, RequestGuard, route_path

MB = 1024 * 1024
UPLOAD = "/api/search/image"


def _app(**guard) -> FastAPI:
    """A small app shaped like serve: a JSON write route and a multipart image route."""
    app = FastAPI()

    @app.post("/api/export")
    def export(body: dict) -> dict:
        return {"keys": len(body.get("keys", []))}

    @app.post(UPLOAD)
    async def search_image(image: Annotated[UploadFile, File()]) -> dict:
        return {"bytes": len(await image.read()), "name": image.filename}

    app.add_middleware(RequestGuard, **{"multipart_paths": {UPLOAD: DEFAULT_MAX_UPLOAD}, **guard})
    return app


@pytest.fixture()
def client():
    with TestClient(_app(), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def _image(size: int) -> dict:
    return {"image": ("query.png", b"\x89PNG" + b"\0" * (size - 4), "image/png")}


def test_multipart_upload_is_accepted_on_its_path_only(client):
    response = client.post(UPLOAD, files=_image(3 * MB))  # over the 1 MiB JSON cap, under the 10 MiB upload cap
    assert response.status_code == 200 and response.json() == {"bytes": 3 * MB, "name": "query.png"}
    same_origin = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert client.post(UPLOAD, files=_image(1000), headers=same_origin).status_code == 200
    refused = client.post("/api/export", files=_image(1000))
    assert refused.status_code == 415 and "JSON" in refused.json()["detail"]
    assert client.post("/api/export", json={"keys": ["a", "b"]}).json() == {"keys": 2}


def test_upload_path_still_refuses_other_sites_and_other_bodies(client):
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:9999"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = client.post(UPLOAD, files=_image(1000), headers=headers)
        assert response.status_code == 403, headers
    plain_form = client.post(UPLOAD, content=b"image=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert plain_form.status_code == 415 and "multipart" in plain_form.json()["detail"]
    text = client.post(UPLOAD, content=b"x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415


def test_upload_cap_is_its_own_and_json_cap_unchanged(client):
    big = client.post(UPLOAD, files=_image(DEFAULT_MAX_UPLOAD + 1))
    assert big.status_code == 413 and "MiB" in big.json()["detail"] and len(big.content) < 300
    declared = client.post(UPLOAD, content=b"", headers={"Content-Type": "multipart/form-data; boundary=x",
                                                         "Content-Length": str(10**9)})
    assert declared.status_code == 413
    json_over = client.post("/api/export", content=b'{"keys": ["' + b"a" * (2 * MB) + b'"]}',
                            headers={"Content-Type": "application/json"})
    assert json_over.status_code == 413 and "JSON" in json_over.json()["detail"]


def test_smaller_upload_cap_and_host_check():
    with TestClient(_app(multipart_paths={UPLOAD: 64 * 1024}), base_url="http://127.0.0.1:8000") as client:
        assert client.post(UPLOAD, files=_image(32 * 1024)).status_code == 200
        assert client.post(UPLOAD, files=_image(128 * 1024)).status_code == 413
        assert client.post(UPLOAD, files=_image(1000), headers={"Host": "rebound.example:8000"}).status_code == 421


def test_upload_path_is_matched_below_a_mount_point():
    parent = FastAPI()
    parent.mount("/search", _app())
    with TestClient(parent, base_url="http://127.0.0.1:8000") as client:
        assert client.post("/search" + UPLOAD, files=_image(2 * MB)).json()["bytes"] == 2 * MB
        assert client.post("/search/api/export", files=_image(1000)).status_code == 415
    assert route_path({"path": "/search/api/search/image", "root_path": "/search"}) == UPLOAD
    assert route_path({"path": "/searchx/api", "root_path": "/search"}) == "/searchx/api"
    assert route_path({"path": "/search", "root_path": "/search"}) == "/"


def test_bad_upload_paths_are_refused():
    with pytest.raises(ValueError, match="leading /"):
        RequestGuard(FastAPI(), multipart_paths={"api/search/image": 10})
    with pytest.raises(ValueError, match="positive"):
        RequestGuard(FastAPI(), multipart_paths={UPLOAD: 0})


def test_old_import_path_is_the_same_module():
    import biomedica.annotate.guard as old
    import biomedica.web.guard as new

    assert old is new and old.RequestGuard is RequestGuard



@pytest.fixture()
def live():
    """The app on a real uvicorn in a thread (upload cap 1 MiB, so a streamed body crosses it quickly)."""
    port = free_port()
    with serving(_app(multipart_paths={UPLOAD: MB}), port):
        yield port


def test_streamed_upload_over_the_cap_is_cut_off(live):
    port = live
    boundary = b"x1x1x1"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())

    def send() -> None:
        try:
            piece = head
            for _ in range(8):  # 8 x 256 KiB: twice the cap
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                piece = b"Q" * (256 * 1024)
            tail = b"\r\n--" + boundary + b"--\r\n"
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        except OSError:  # the server answered and closed
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    except OSError:
        pass
    sender.join(timeout=30)
    sock.close()
    status = int(received.split()[1])
    assert status == 413 and b"QQQQ" not in received
    # a small upload on the same server still works
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    body = head + b"\x89PNG" + b"\r\n--" + boundary + b"--\r\n"
    connection.request("POST", UPLOAD, body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"})
    response = connection.getresponse()
    assert response.status == 200 and b'"bytes":4' in response.read()
    connection.close()
