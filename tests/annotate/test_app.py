import io

import pyarrow.parquet as pq
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from biomedica.annotate.app import AnnotateConfig, create_app


@pytest.fixture()
def client(clustered, tmp_path):
    archive, annotations = clustered
    app = create_app(AnnotateConfig(archive=archive, annotations=annotations, samples_per_cluster=5))
    with TestClient(app) as test_client:
        yield test_client


def test_queue_clusters_images_and_taxonomy(client):
    queue = client.get("/api/queue", params={"annotator": "alice"}).json()
    assert queue["total"] == 3 and queue["done"] == 0
    sizes = [client.get(f"/api/clusters/{c}").json()["size"] for c in queue["remaining"]]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == 51  # largest cluster first
    detail = client.get(f"/api/clusters/{queue['remaining'][0]}").json()
    assert len(detail["samples"]) == 5 and detail["top_terms"]
    image = client.get(f"/api/images/{detail['samples'][0]['key']}")
    assert image.status_code == 200 and image.headers["content-type"] in ("image/jpeg", "image/png")
    assert image.content[:2] in (b"\xff\xd8", b"\x89P")
    assert client.get("/api/images/PMC0_000").status_code == 404
    assert client.get("/api/clusters/99").status_code == 404
    taxonomy = client.get("/api/taxonomy").json()
    assert taxonomy["label"] == "biomedica 1.0.0" and len(taxonomy["global_concepts"]) == 12


def test_labels_validation_agreement_and_export(client, clustered):
    bad = client.post("/api/labels", json={"annotator": "alice", "cluster": 0, "status": "labelled",
                                           "global_concepts": ["not_a_concept"]})
    assert bad.status_code == 422 and "not_a_concept" in bad.json()["detail"] and "panel type" in bad.json()["detail"]
    for annotator, local in (("alice", "bar_chart"), ("bob", "bar_chart"), ("carol", "line_plot")):
        response = client.post("/api/labels", json={"annotator": annotator, "cluster": 0, "status": "labelled",
                                                    "panel_type": "single", "local_concepts": [local]})
        assert response.json()["stored"] is True
    client.post("/api/labels", json={"annotator": "alice", "cluster": 1, "status": "split"})
    client.post("/api/labels", json={"annotator": "bob", "cluster": 1, "status": "split"})
    assert client.get("/api/queue", params={"annotator": "alice"}).json()["remaining"] == [2]
    agreement = client.get("/api/agreement").json()
    clusters = {c["cluster"]: c for c in agreement["clusters"]}
    # a local concept implies its global concept
    assert clusters[0]["global_concepts"] == ["plots_and_charts"] and clusters[0]["local_concepts"] == ["bar_chart"]
    assert clusters[1]["status"] == "split"
    assert agreement["report"]["annotators"] == ["alice", "bob", "carol"]
    exported = client.post("/api/export", json={}).json()
    assert exported["clusters"] == 2
    labels = pq.read_table(exported["labels"]).to_pylist()
    clusters_table = pq.read_table(clustered[1] / "clusters.parquet").to_pylist()
    in_cluster_0 = {r["key"] for r in clusters_table if r["cluster"] == 0}
    assert {r["key"] for r in labels if r["label_global"] == ["plots_and_charts"]} == in_cluster_0
    assert exported["samples"] == sum(1 for r in clusters_table if r["cluster"] in (0, 1))


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="annotator"' in page.text and '"api/labels"' in page.text
    assert '"/api/' not in page.text  # relative URLs only, so the app works mounted below a prefix


def test_image_route_thumb_full_and_alias(client):
    from PIL import Image

    key = client.get("/api/clusters/0").json()["samples"][0]["key"]
    full = client.get(f"/api/image/{key}", params={"size": "full"})
    assert full.status_code == 200 and full.content == client.get(f"/api/images/{key}").content  # the old alias
    assert client.get(f"/api/image/{key}").content == full.content  # full by default
    thumb = client.get(f"/api/image/{key}", params={"size": "thumb"})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small, Image.open(io.BytesIO(full.content)) as big:
        assert max(small.size) <= 256 and max(small.size) == min(256, max(big.size))
    missing = client.get("/api/image/PMC0_000", params={"size": "thumb"})
    assert missing.status_code == 404 and "PMC0_000" in missing.json()["detail"]
    bad = client.get(f"/api/image/{key}", params={"size": "huge" * 100})
    assert bad.status_code == 400 and "thumb or full" in bad.json()["detail"] and len(bad.content) < 300
