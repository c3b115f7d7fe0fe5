"""Export -> select manifest -> `biomedica select --keys` and train's key-manifest source, as they are."""

from __future__ import annotations

import tarfile

import pyarrow.parquet as pq
from typer.testing import CliRunner

from biomedica.archive.selection import parse_key_manifest
from biomedica.archive.split import HeldOutSplit
from biomedica.train.config import SourceConfig
from biomedica.train.sources import resolve_source


def _export(client, body) -> tuple[bytes, dict]:
    response = client.post("/api/export", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in response.headers["content-disposition"]
    return response.content, response.headers


def _tar_keys(folder) -> set[str]:
    keys = set()
    for tar in folder.glob("*.tar"):
        with tarfile.open(tar) as archive:
            keys |= {m.name.rsplit(".", 1)[0].rsplit("/", 1)[-1] for m in archive.getmembers() if m.isfile()}
    return keys


def test_query_export_is_a_select_manifest_that_select_and_train_read(client, search_archive, tmp_path):
    searched = client.get("/api/search", params={"q": "image", "license_group": "commercial", "limit": 100}).json()
    held = HeldOutSplit()
    expected = {r["key"] for r in searched["results"] if not held.holds(r["key"], r["pmcid"])}
    data, headers = _export(client, {"q": "image", "mode": "keyword", "license_group": ["commercial"]})
    path = tmp_path / "export.parquet"
    path.write_bytes(data)
    manifest = parse_key_manifest(data, path.name)
    assert {key for _, key in manifest.rows} == expected and manifest.held_out == held
    assert int(headers["x-biomedica-rows"]) == len(expected)
    assert int(headers["x-biomedica-held-out"]) == searched["total"] - len(expected)

    from biomedica.cli import app

    out = tmp_path / "subset"
    result = CliRunner().invoke(app, ["select", str(search_archive), "--keys", str(path), "--out", str(out),
                                      "--output", "shards"])
    assert result.exit_code == 0, result.output
    assert _tar_keys(out) == expected

    resolved = resolve_source(SourceConfig(name="search", selection=str(path)))
    assert {k for shard in resolved.shards for k in shard.keys} == expected
    assert resolved.origin == "selection"


def test_key_list_export_and_held_out_articles(client, search_archive):
    rows = pq.read_table(search_archive / "commercial" / "000000.parquet", columns=["key", "pmcid"]).to_pylist()
    keys = [r["key"] for r in rows]
    data, _ = _export(client, {"keys": keys, "include_held_out": True})
    assert sorted(k for _, k in parse_key_manifest(data, "x.parquet").rows) == sorted(keys)
    semantic, _ = _export(client, {"q": "ultrasound", "mode": "semantic", "limit": 5, "include_held_out": True})
    assert len(parse_key_manifest(semantic, "x.parquet").rows) == 5


def test_export_refusals(client):
    assert client.post("/api/export", json={}).status_code == 400
    response = client.post("/api/export", json={"q": "zzzznotaword"})
    assert response.status_code == 400 and "no figures" in response.json()["detail"]
    assert client.post("/api/export", json={"q": "x", "mode": "fuzzy"}).status_code == 422


def test_an_export_equals_manifest_for_keys_of_the_same_keys(client, engine, search_archive):
    """The export takes its rows from the index's docs table; select --keys reads the shard index: same manifest."""
    import io

    from biomedica.archive.selection import manifest_for_keys
    from biomedica.search.filters import SearchFilters

    docs = engine.export_docs("image", "keyword", SearchFilters(), None, None)
    keys = engine.index.keys(docs)
    assert len(keys) > 5
    for include_held_out in (False, True):
        data, headers = _export(client, {"q": "image", "mode": "keyword", "include_held_out": include_held_out})
        exported = pq.read_table(io.BytesIO(data))
        expected = manifest_for_keys(search_archive, keys, None) if include_held_out else manifest_for_keys(
            search_archive, keys)
        assert not expected.missing
        assert exported.equals(expected.table, check_metadata=True)
        assert exported.schema.metadata == expected.table.schema.metadata
        assert int(headers["x-biomedica-held-out"]) == expected.held_out
    assert exported.num_rows == len(set(keys))

    import pyarrow as pa

    from biomedica.archive.selection import manifest_for_rows
    from biomedica.serve.export import ROW_COLUMNS

    half = HeldOutSplit(0.5)  # the demo's hits hold no eval article out: the same rule with half the articles out
    rows = engine.index.docs.select(ROW_COLUMNS).take(pa.array(docs))
    mine, theirs = manifest_for_rows(search_archive, rows, half), manifest_for_keys(search_archive, keys, half)
    assert mine.table.equals(theirs.table, check_metadata=True)
    assert mine.held_out == theirs.held_out > 0 and mine.table.num_rows == len(keys) - mine.held_out

    listed = list(reversed(keys[:7])) + keys[:2]  # a key list: order and repeats do not matter
    data, _ = _export(client, {"keys": listed, "include_held_out": True})
    assert pq.read_table(io.BytesIO(data)).equals(manifest_for_keys(search_archive, listed, None).table,
                                                  check_metadata=True)


def test_an_export_over_the_cap_is_refused_not_cut(search_archive, engine):
    """max_export 3: a query matching more is a 400 naming both numbers; with a limit it exports the top N."""
    from fastapi.testclient import TestClient

    from biomedica.serve.app import create_app
    from biomedica.serve.config import ServeConfig

    config = ServeConfig(archive=search_archive, max_export=3)
    with TestClient(create_app(config, engine.__class__(config, engine.index))) as small:
        response = small.post("/api/export", json={"q": "image", "include_held_out": True})
        assert response.status_code == 400 and "more than one export holds (3)" in response.json()["detail"]
        assert small.post("/api/export", json={"license_group": ["commercial"]}).status_code == 400
        assert small.post("/api/export", json={"q": "image", "limit": 4}).status_code == 400
        ok = small.post("/api/export", json={"q": "image", "limit": 3, "include_held_out": True})
        assert ok.status_code == 200 and ok.headers["x-biomedica-rows"] == "3"
