"""The search API on the demo archive: ranking, filters, image query, similar, figure, images, facets, export."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from biomedica.archive.reader import read_shard_index

from .conftest import IMG, MARKED_PMCID, SCRIPT, UNIQUE_WORD


@pytest.fixture(scope="module")
def samples(search_archive) -> list[dict]:
    """Ground truth straight from the archive's shard index (not from the search index)."""
    columns = ["key", "pmcid", "caption", "license", "year", "journal", "mentions"]
    return read_shard_index(search_archive, columns=columns).to_pylist()


@pytest.fixture(scope="module")
def annotations(search_archive) -> dict[str, dict]:
    dedup = {r["key"]: r for r in pq.read_table(search_archive / "annotations" / "dedup.parquet").to_pylist()}
    panels = {r["key"]: r for r in pq.read_table(search_archive / "annotations" / "panels.parquet").to_pylist()}
    return {"dedup": dedup, "panels": panels}


def _get(client, path, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _marked_key(samples) -> str:
    (key,) = [s["key"] for s in samples if UNIQUE_WORD in s["caption"]]
    return key


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_a_caption_word_finds_its_figure_first(client, samples, mode):
    body = _get(client, "/api/search", q=UNIQUE_WORD, mode=mode)
    assert body["results"][0]["key"] == _marked_key(samples)
    first = body["results"][0]
    assert set(first) >= {"key", "pmcid", "caption", "score", "license", "license_group", "year", "journal", "image_url"}
    assert first["pmcid"] == MARKED_PMCID and first["image_url"] == f"/api/image/{first['key']}?size=thumb"
    if mode == "keyword":
        assert body["total"] == 1 and len(body["results"]) == 1


def test_biomedical_terms_are_searchable(client, samples):
    body = _get(client, "/api/search", q="IL-6")
    expected = {s["key"] for s in samples if "IL-6" in s["caption"]}
    assert expected and {r["key"] for r in body["results"]} >= expected


def test_paging_and_total(client):
    everything = _get(client, "/api/search", q="image", limit=100)
    assert everything["total"] == len(everything["results"]) > 4
    page = _get(client, "/api/search", q="image", limit=2, offset=2)
    assert [r["key"] for r in page["results"]] == [r["key"] for r in everything["results"][2:4]]
    assert page["total"] == everything["total"]
    scores = [r["score"] for r in everything["results"]]
    assert scores == sorted(scores, reverse=True)


def test_each_filter_removes_what_it_should(client, samples, annotations):
    q = "image"
    base = _get(client, "/api/search", q=q, limit=100)
    base_keys = {r["key"] for r in base["results"]}
    by_key = {s["key"]: s for s in samples}

    nc = _get(client, "/api/search", q=q, license_group="noncommercial", limit=100)
    assert nc["results"] and all(r["license_group"] == "noncommercial" for r in nc["results"])
    assert {r["key"] for r in nc["results"]} == {k for k in base_keys if by_key[k]["group"] == "noncommercial"}

    years = _get(client, "/api/search", q=q, year_from=2016, year_to=2019, limit=100)
    assert {r["key"] for r in years["results"]} == {k for k in base_keys if 2016 <= by_key[k]["year"] <= 2019}

    journal = samples[0]["journal"]
    by_journal = _get(client, "/api/search", q=q, journal=journal, limit=100)
    assert {r["key"] for r in by_journal["results"]} == {k for k in base_keys if by_key[k]["journal"] == journal}

    mentioned = _get(client, "/api/search", q=q, has_mentions="true", limit=100)
    assert {r["key"] for r in mentioned["results"]} == {k for k in base_keys if by_key[k]["mentions"]}

    canonical = _get(client, "/api/search", q=q, canonical_only="true", limit=100)
    dedup = annotations["dedup"]
    assert {r["key"] for r in canonical["results"]} == {k for k in base_keys if dedup[k]["canonical"]}

    panels = annotations["panels"]
    single = _get(client, "/api/search", q=q, panel_type="single", limit=100)
    assert {r["key"] for r in single["results"]} == {k for k in base_keys if panels[k]["panel_type"] == "single"}

    both = _get(client, "/api/search", q=q, license_group="commercial,other", year_from=2019, limit=100)
    assert {r["key"] for r in both["results"]} == {
        k for k in base_keys if by_key[k]["group"] in ("commercial", "other") and by_key[k]["year"] >= 2019}


def test_semantic_returns_ranked_results(client, samples):
    body = _get(client, "/api/search", q="fundus photography of the retina", mode="semantic", limit=10)
    assert body["mode"] == "semantic" and body["total"] == len(samples)
    keys = [r["key"] for r in body["results"]]
    assert len(keys) == 10 == len(set(keys))
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    filtered = _get(client, "/api/search", q="fundus", mode="semantic", license_group="other", limit=100)
    assert filtered["results"] and all(r["license_group"] == "other" for r in filtered["results"])
    assert filtered["total"] == sum(s["group"] == "other" for s in samples)


def test_image_query_returns_that_image_first(client, engine, samples):
    key = samples[5]["key"]
    data = client.get(f"/api/image/{key}", params={"size": "full"}).content
    response = client.post("/api/search/image", files={"image": ("query.png", data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    doc = engine.index.doc_of(key)
    same = {key, *(engine.index.row(d)["key"] for d in engine.duplicates_of(doc))}
    assert results[0]["key"] in same
    assert results[0]["score"] == pytest.approx(1.0, abs=0.02)


def test_image_query_refuses_what_is_not_an_image(client):
    response = client.post("/api/search/image", files={"image": ("x.png", b"not an image at all", "image/png")})
    assert response.status_code == 400 and "PNG or JPEG" in response.json()["detail"]
    response = client.post("/api/search/image", files={"other": ("x.png", b"abc", "image/png")})
    assert response.status_code == 400 and "image" in response.json()["detail"]


def test_similar_leaves_the_key_out_and_marks_duplicates(client, annotations):
    dedup = annotations["dedup"]
    groups: dict[str, list[str]] = {}
    for key, row in dedup.items():
        groups.setdefault(row["dup_group"], []).append(key)
    duplicated = [keys for keys in groups.values() if len(keys) > 1]
    assert duplicated, "the demo archive has near-duplicate figures"
    key, *others = sorted(duplicated[0])
    body = _get(client, f"/api/similar/{key}", limit=10)
    results = body["results"]
    assert key not in [r["key"] for r in results] and len(results) == 10
    marked = {r["key"] for r in results if r["duplicate"]}
    assert set(others) <= {r["key"] for r in results} and marked == set(others)


def test_figure_record_links_and_attribution(client, search_archive, samples):
    key = _marked_key(samples)
    body = _get(client, f"/api/figure/{key}")
    record = json.loads(json.dumps(body["record"]))
    assert body["key"] == key == record["key"] and body["pmcid"] == MARKED_PMCID
    assert body["pmc_url"] == f"https://pmc.ncbi.nlm.nih.gov/articles/{MARKED_PMCID}/"
    assert body["mentions"] == record["mentions"] and body["caption"] == record["caption"]
    article = next(a for a in pq.read_table(search_archive / "articles").to_pylist() if a["pmcid"] == MARKED_PMCID)
    assert body["article_title"] == article["title"] and body["doi"] == article["doi"]
    line = body["attribution"]
    assert article["title"] in line and MARKED_PMCID in line and f"doi:{article['doi']}" in line
    assert body["license"] and f"licensed {body['license']}" in line
    if body["license"].startswith("CC BY"):
        assert "https://creativecommons.org/licenses/" in body["license_url"] and body["license_url"] in line
    surname = (article["authors"] or [{}])[0].get("surname")
    if surname:
        assert surname in line


def test_markup_in_a_caption_comes_back_as_plain_json_text(client, samples):
    body = client.get("/api/search", params={"q": UNIQUE_WORD})
    assert body.headers["content-type"].startswith("application/json")
    caption = body.json()["results"][0]["caption"]
    assert SCRIPT in caption and IMG in caption  # the text as published, for the page to show as text
    figure = client.get(f"/api/figure/{_marked_key(samples)}").json()
    assert SCRIPT in figure["caption"]


def test_image_bytes_full_and_thumb(client, samples):
    key = samples[0]["key"]
    full = client.get(f"/api/image/{key}", params={"size": "full"})
    thumb = client.get(f"/api/image/{key}", params={"size": "thumb"})
    assert full.status_code == thumb.status_code == 200
    big = Image.open(io.BytesIO(full.content))
    small = Image.open(io.BytesIO(thumb.content))
    big.load()
    small.load()
    assert thumb.headers["content-type"] == "image/jpeg" and max(small.size) <= 256
    assert client.get(f"/api/image/{key}", params={"size": "huge"}).status_code == 400
    assert client.get("/api/image/PMC0_000").status_code == 404


def test_facets_count_the_query(client, samples):
    every = _get(client, "/api/facets")
    groups = {}
    for s in samples:
        groups[s["group"]] = groups.get(s["group"], 0) + 1
    assert every["license_group"] == groups
    assert sum(every["year"].values()) == len(samples)
    assert set(every) >= {"license_group", "year", "journal", "panel_type", "concept"}
    query = _get(client, "/api/facets", q="image", license_group="noncommercial")
    total = _get(client, "/api/search", q="image", license_group="noncommercial")["total"]
    assert sum(query["license_group"].values()) == total and set(query["license_group"]) == {"noncommercial"}


def test_info_says_what_is_served(client, samples):
    info = _get(client, "/api/info")
    assert info["figures"] == len(samples) and info["embedding"] == "tiny-random"
    assert info["modes"] == ["keyword", "semantic", "hybrid"] and info["annotate"] is False


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_a_filter_on_an_annotation_the_index_lacks_is_a_400_not_an_empty_answer(search_archive, tmp_path):
    """Indexed before `curate`: panel type, concept, cluster, canonical-only and quality flags would match nothing
    (or everything) in silence; each is refused naming the table and the command, and /api/info says so."""
    from fastapi.testclient import TestClient

    from biomedica.index.build import build_index
    from biomedica.index.config import IndexConfig
    from biomedica.serve.app import create_app
    from biomedica.serve.config import ServeConfig

    bare = tmp_path / "no-annotations"
    bare.mkdir()
    build_index(IndexConfig(archive=search_archive, index_dir=tmp_path / "index", annotations=bare), None)
    config = ServeConfig(archive=search_archive, index=tmp_path / "index", annotations=bare)
    with TestClient(create_app(config)) as client:
        refusals = {"panel_type": ("single", "panels.parquet", "curate run"),
                    "concept": ("microscopy", "concepts.parquet", "curate zeroshot"),
                    "cluster": ("1", "clusters.parquet", "curate cluster"),
                    "canonical_only": ("true", "dedup.parquet", "curate run"),
                    "exclude_flags": ("any", "quality.parquet", "curate run")}
        for name, (value, table, command) in refusals.items():
            for path in ("/api/search", "/api/facets"):
                response = client.get(path, params={"q": "image", name: value})
                detail = response.json()["detail"]
                assert response.status_code == 400 and table in detail and command in detail, (name, path, detail)
            typed = {"cluster": [1], "canonical_only": True, "exclude_flags": ["any"], "concept": ["microscopy"]}
            export = client.post("/api/export", json={"q": "image", name: typed.get(name, value)})
            assert export.status_code == 400 and table in export.json()["detail"]
        assert client.get("/api/search", params={"q": "image", "license_group": "commercial"}).status_code == 200
        assert client.get("/api/info").json()["filters"] == {name: False for name in refusals}


def test_info_lists_the_filters_the_index_has_data_for(client):
    filters = client.get("/api/info").json()["filters"]
    assert filters["panel_type"] and filters["canonical_only"] and filters["exclude_flags"] and filters["cluster"]
