"""The annotation app mounted under /annotate in a parent app (as `biomedica serve` does): every route works there."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from biomedica.annotate.app import AnnotateConfig, create_app
from biomedica.web.guard import RequestGuard


@pytest.fixture()
def parent(clustered, tmp_path):
    """A parent app with its own guard and one route of its own, the annotate app mounted at /annotate."""
    archive, annotations = clustered
    config = AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=4,
                            database=tmp_path / "labels.sqlite")
    app = FastAPI()

    @app.get("/api/search")
    def search() -> dict:
        return {"total": 0, "results": []}

    app.mount("/annotate", create_app(config, guard=False))
    app.add_middleware(RequestGuard, multipart_paths={"/api/search/image": 10 * 2**20})
    with TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False) as client:
        yield client, config


def test_queue_cluster_label_and_image_through_the_mount(parent):
    client, _ = parent
    assert client.get("/api/search").json() == {"total": 0, "results": []}  # the parent's own routes untouched
    redirect = client.get("/annotate")
    assert redirect.status_code in (307, 308) and redirect.headers["location"].endswith("/annotate/")
    page = client.get("/annotate/")
    assert page.status_code == 200 and 'id="annotator"' in page.text
    queue = client.get("/annotate/api/queue", params={"annotator": "alice"}).json()
    assert queue["total"] == 3 and len(queue["remaining"]) == 3
    first = queue["remaining"][0]
    cluster = client.get(f"/annotate/api/clusters/{first}").json()
    assert cluster["cluster"] == first and len(cluster["samples"]) == 4
    key = cluster["samples"][0]["key"]
    thumb = client.get(f"/annotate/api/image/{key}", params={"size": "thumb"})
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert client.get(f"/annotate/api/images/{key}").status_code == 200
    assert client.get("/annotate/api/image/PMC0_000").status_code == 404
    stored = client.post("/annotate/api/labels", json={"annotator": "alice", "cluster": first, "status": "split"})
    assert stored.status_code == 200 and stored.json()["stored"] is True
    assert first not in client.get("/annotate/api/queue", params={"annotator": "alice"}).json()["remaining"]
    assert client.get("/annotate/api/openapi.json").status_code == 200
    assert client.get("/api/queue", params={"annotator": "alice"}).status_code == 404  # only below the mount


def test_parent_guard_covers_the_mounted_routes(parent):
    client, _ = parent
    label = {"annotator": "bob", "cluster": 0, "status": "split"}
    cross = client.post("/annotate/api/labels", json=label, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post("/annotate/api/labels", json=label, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    form = client.post("/annotate/api/labels", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert form.status_code == 415  # multipart is allowed only on the parent's upload path
    assert client.get("/annotate/", headers={"Host": "evil.example"}).status_code == 421
